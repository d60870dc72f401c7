//! Robustness of auksd before authentication, and of the client transport (timeouts,
//! fail-over), against the real binaries and a real throw-away KDC.
//!
//! (Post-authentication malformed input is tested elsewhere.)

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";

struct Fx {
    auksd: Auksd,
    realm: Realm,
    alice: LocalUser,
    alice_cc: PathBuf,
}

fn setup() -> Fx {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    Fx {
        auksd,
        realm,
        alice,
        alice_cc,
    }
}

impl Fx {
    fn alice_with_conf(
        &self,
        conf: &std::path::Path,
        args: &[&str],
        timeout: Duration,
    ) -> (std::process::Output, Duration) {
        let t = Instant::now();
        let o = AuksRun::new(&self.realm, conf)
            .ccache(&self.alice_cc)
            .user(&self.alice)
            .args(args)
            .timeout(timeout)
            .run();
        (o, t.elapsed())
    }

    fn alice(&self, args: &[&str]) -> std::process::Output {
        self.alice_with_conf(&self.auksd.conf_path(), args, CMD_TIMEOUT)
            .0
    }

    #[track_caller]
    fn assert_serving(&mut self, after: &str) {
        assert!(
            self.auksd.alive(),
            "auksd died after {after}\n{}",
            self.auksd.log()
        );
        let (o, took) =
            self.alice_with_conf(&self.auksd.conf_path(), &["-p"], Duration::from_secs(60));
        assert_ok(&o);
        assert!(
            took < Duration::from_secs(15),
            "ping after {after} took {took:?}\n{}",
            self.auksd.log()
        );
    }
}

fn msg(data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

const SENDAUTH_V: &[u8] = b"KRB5_SENDAUTH_V1.0\0";
const APPL_V: &[u8] = b"0.1\0";

/// Deterministic pseudo-random bytes (xorshift64*).
fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        v.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Read until the peer closes; panics if it is still open after `limit`.
/// Returns everything received.
#[track_caller]
fn read_until_closed(s: &mut TcpStream, limit: Duration, what: &str) -> Vec<u8> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "{what}: connection still open after {limit:?} (received {got:?})"
        );
        s.set_read_timeout(Some(
            left.min(Duration::from_secs(1))
                .max(Duration::from_millis(10)),
        ))
        .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return got
            }
            Err(e) => panic!("{what}: read error {e}"),
        }
    }
}

/// Connect, send `data` (write errors ignored: the daemon may close early), optionally
/// half-close, and wait for the daemon to close. Returns the bytes received.
#[track_caller]
fn probe(port: u16, data: &[u8], half_close: bool, what: &str) -> Vec<u8> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(data);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    read_until_closed(&mut s, Duration::from_secs(30), what)
}

/// Send the sendauth version message, then (if the daemon has not answered within a
/// short while, as MIT recvauth reads both first) the application version message, and
/// return everything received until the daemon closes.
#[track_caller]
fn version_probe(port: u16, sendauth: &[u8], appl: &[u8], what: &str) -> Vec<u8> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&msg(sendauth))
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut first = [0u8; 1];
    let mut got = Vec::new();
    match s.read(&mut first) {
        Ok(1) => got.push(first[0]),
        Ok(_) => return got, // closed without answering
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            let _ = s.write_all(&msg(appl));
        }
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
        Err(e) => panic!("{what}: read error {e}"),
    }
    got.extend(read_until_closed(&mut s, Duration::from_secs(30), what));
    got
}

// ---------------------------------------------------------------------------------------
// (a) idle pre-authentication clients do not block the service
// ---------------------------------------------------------------------------------------

#[test]
fn idle_connections_do_not_block_service() {
    let mut fx = setup();
    assert_ok(&fx.alice(&["-p"]));
    // 20 silent connections, 5 times the number of workers
    let idle: Vec<TcpStream> = (0..20)
        .map(|i| {
            TcpStream::connect((Ipv4Addr::LOCALHOST, fx.auksd.port()))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    let (o, took) = fx.alice_with_conf(&fx.auksd.conf_path(), &["-p"], Duration::from_secs(60));
    assert_ok(&o);
    assert!(
        took < Duration::from_secs(15),
        "ping with 20 idle pre-auth connections took {took:?}\n{}",
        fx.auksd.log()
    );
    // a real operation too, while they are still connected
    assert_ok(&fx.alice(&["-a"]));
    assert_ok(&fx.alice(&["-g"]));
    drop(idle);
    fx.assert_serving("idle connections");
}

// ---------------------------------------------------------------------------------------
// (b) malformed pre-authentication input
// ---------------------------------------------------------------------------------------

#[test]
fn malformed_preauth_input_is_dropped() {
    let mut fx = setup();
    // a stored cred, so that "CacheDir unchanged" means something
    assert_ok(&fx.alice(&["-a"]));
    let before = dir_snapshot(&fx.auksd.cache_dir());
    assert_eq!(before.len(), 1, "{before:?}");
    let pid = fx.auksd.pid();
    let port = fx.auksd.port();

    // garbage text (its first 4 bytes read as a ~1.2 GB length)
    probe(port, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", true, "garbage");
    fx.assert_serving("garbage bytes");

    // sendauth header announcing 4 GiB - 1, connection kept open by us
    let mut huge = vec![0xff, 0xff, 0xff, 0xff];
    huge.extend_from_slice(b"KRB5_SENDAUTH_V1.0");
    probe(port, &huge, false, "length 0xFFFFFFFF");
    fx.assert_serving("a 0xFFFFFFFF length");

    // truncated sendauth version
    let mut trunc = 19u32.to_be_bytes().to_vec();
    trunc.extend_from_slice(b"KRB5_SEN");
    probe(port, &trunc, true, "truncated sendauth version");
    fx.assert_serving("a truncated sendauth version");

    // only 2 bytes of a length
    probe(port, &[0, 0], true, "truncated length");
    fx.assert_serving("a truncated length");

    // wrong sendauth version: one byte 1, then close
    let got = version_probe(
        port,
        b"KRB5_SENDAUTH_V9.9\0",
        APPL_V,
        "bad sendauth version",
    );
    assert_eq!(got, vec![1], "reply to a wrong sendauth version");
    fx.assert_serving("a wrong sendauth version");

    // wrong application version: one byte 2, then close
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut both = msg(SENDAUTH_V);
    both.extend(msg(b"9.9\0"));
    s.write_all(&both).unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(30), "bad application version");
    assert_eq!(got, vec![2], "reply to a wrong application version");
    fx.assert_serving("a wrong application version");

    // correct versions, then a garbage AP-REQ: accepted versions (byte 0), then closed
    let mut bad_req = msg(SENDAUTH_V);
    bad_req.extend(msg(APPL_V));
    bad_req.extend(msg(&pseudo_random(200, 7)));
    let got = probe(port, &bad_req, false, "garbage AP-REQ");
    assert_eq!(
        got.first(),
        Some(&0),
        "versions were valid: first reply byte 0 (got {got:?})"
    );
    fx.assert_serving("a garbage AP-REQ");

    // 64 KiB of random bytes
    probe(
        port,
        &pseudo_random(64 * 1024, 0x5eed),
        true,
        "random 64 KiB",
    );
    fx.assert_serving("64 KiB of random bytes");

    // many abrupt connects/closes
    for _ in 0..50 {
        drop(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap());
    }
    fx.assert_serving("50 abrupt connections");

    assert_eq!(fx.auksd.pid(), pid, "same daemon process");
    assert!(pid_alive(pid));
    assert_eq!(
        dir_snapshot(&fx.auksd.cache_dir()),
        before,
        "CacheDir changed"
    );
    // the stored cred is still served
    assert_ok(&fx.alice(&["-g"]));
    assert_eq!(fx.realm.ccache_principal(&fx.alice_cc), "alice@TEST.REALM");
}

// ---------------------------------------------------------------------------------------
// (c) a server that accepts and never answers
// ---------------------------------------------------------------------------------------

/// Accepts connections and never writes anything; stops (and closes them) on drop.
struct SilentServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, st) = (accepted.clone(), stop.clone());
        let handle = thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        held.push(s);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentServer {
            port,
            accepted,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn silent_server_times_out() {
    let fx = setup();
    let silent = SilentServer::start();
    let conf = fx.realm.user_dir(&fx.alice).join("silent.conf");
    fx.auksd.write_client_conf(&conf, silent.port, silent.port);
    let (o, took) = fx.alice_with_conf(&conf, &["-p"], Duration::from_secs(90));
    assert!(
        took < Duration::from_secs(30),
        "client against a silent server took {took:?}\n{}",
        out(&o)
    );
    assert!(
        matches!(o.status.code(), Some(3) | Some(9)),
        "expected exit 3 or 9\n{}",
        out(&o)
    );
    assert!(
        stderr_of(&o).starts_with("Auks API request failed : "),
        "{}",
        out(&o)
    );
    let e = stderr_of(&o).to_lowercase();
    assert!(
        e.contains("timed out") || e.contains("timeout"),
        "message should say it timed out\n{}",
        out(&o)
    );
    assert!(
        silent.accepted.load(Ordering::SeqCst) >= 1,
        "the client never connected to the silent server"
    );
}

/// Accepts connections and answers each one byte at a time, one byte every
/// 300 ms ("version ok", then a frame that never ends): a per-read timeout
/// never fires.
fn trickling_server() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    thread::spawn(move || {
        while !st.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let st = st.clone();
                    thread::spawn(move || {
                        let bytes = [0u8, 0, 0, 0, 200].into_iter().chain(std::iter::repeat(7));
                        for b in bytes.take(205) {
                            if st.load(Ordering::SeqCst) || s.write_all(&[b]).is_err() {
                                return;
                            }
                            thread::sleep(Duration::from_millis(300));
                        }
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, stop)
}

#[test]
fn timeout_bounds_the_whole_request() {
    let fx = setup();
    let (port, stop) = trickling_server();
    let conf = fx.realm.user_dir(&fx.alice).join("trickle.conf");
    // Timeout = 2 (the harness default), Retries = 1: two attempts.
    fx.auksd.write_client_conf(&conf, port, port);
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("Timeout = 2 ;"));
    let (o, took) = fx.alice_with_conf(&conf, &["-p"], Duration::from_secs(120));
    stop.store(true, Ordering::SeqCst);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(
        stderr_of(&o).contains("timed out"),
        "message should say it timed out\n{}",
        out(&o)
    );
    assert!(
        took < Duration::from_millis(2 * 2000 + 2500),
        "Timeout = 2 must bound each whole attempt (primary then secondary): took {took:?}"
    );
}

// ---------------------------------------------------------------------------------------
// (d) fail-over between primary and secondary
// ---------------------------------------------------------------------------------------

#[test]
fn failover_to_secondary_and_both_down() {
    let fx = setup();
    let dir = fx.realm.user_dir(&fx.alice);
    let closed = closed_ports(2);

    // primary down, secondary = the real auksd
    let conf = dir.join("failover.conf");
    fx.auksd
        .write_client_conf(&conf, closed[0], fx.auksd.port());
    let (o, took) = fx.alice_with_conf(&conf, &["-p"], Duration::from_secs(60));
    assert_ok(&o);
    assert!(
        took < Duration::from_secs(15),
        "fail-over ping took {took:?}"
    );
    let (o, _) = fx.alice_with_conf(&conf, &["-a"], Duration::from_secs(60));
    assert_ok(&o);
    let (o, _) = fx.alice_with_conf(&conf, &["-g"], Duration::from_secs(60));
    assert_ok(&o);

    // both down
    let conf2 = dir.join("down.conf");
    fx.auksd.write_client_conf(&conf2, closed[0], closed[1]);
    let (o, took) = fx.alice_with_conf(&conf2, &["-p"], Duration::from_secs(60));
    assert!(took < Duration::from_secs(30), "took {took:?}\n{}", out(&o));
    assert_fail(&o, 3);
    let e = stderr_of(&o);
    for p in &closed {
        assert!(
            e.contains(&p.to_string()),
            "stderr should name the endpoint with port {p}\n{}",
            out(&o)
        );
    }
}
