//! One host floods auksd (issue 12): 2 000 silent TCP connections from
//! 127.0.0.2 that reconnect as soon as they are closed, for 30 s. Clients
//! from another address (127.0.0.1) are served throughout, each request
//! within its `Timeout`; the daemon's log about the flood stays a handful
//! of lines with counts; the stored credential is unchanged.

mod common;

use common::load::*;
use common::*;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";
const FLOOD: usize = 2000;
const FLOOD_FOR: Duration = Duration::from_secs(30);
const TIMEOUT_S: u64 = 3;

/// Keep `FLOOD` silent connections open, reconnecting each one that the
/// daemon closes, until `stop`.
fn flood(port: u16, stop: Arc<AtomicBool>, made: Arc<AtomicU64>) {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let from = Ipv4Addr::new(127, 0, 0, 2);
    let mut conns: Vec<Option<TcpStream>> = (0..FLOOD).map(|_| None).collect();
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        for c in conns.iter_mut() {
            let closed = match c {
                None => true,
                // A closed connection reads 0 or fails; an open silent one
                // would block.
                Some(s) => match s.peek(&mut buf) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                },
            };
            if closed {
                *c = connect_from(from, addr, Duration::from_millis(200))
                    .ok()
                    .inspect(|s| {
                        let _ = s.set_nonblocking(true);
                        made.fetch_add(1, Ordering::Relaxed);
                    });
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn silent_flood_from_one_address_does_not_lock_out_the_others() {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let mut base = Auksd::start(
        &realm,
        AuksdOpts {
            timeout: TIMEOUT_S as u32,
            ..AuksdOpts::default()
        },
    );
    base.stop();
    let dir = temp_dir("auks-flood-");
    let cconf = base.conf_path();
    let (d, _) = Daemon::start(
        &realm,
        &cconf,
        base.port(),
        &dir.path().join("auksd.log"),
        &[],
    );
    let run = |args: &[&str]| {
        AuksRun::new(&realm, &cconf)
            .ccache(&alice_cc)
            .user(&alice)
            .args(args)
            .timeout(Duration::from_secs(60))
            .run()
    };
    assert_ok(&run(&["-a"]));
    let file = base.cache_file(alice.uid);
    let before = std::fs::read(&file).unwrap();
    let log_start = d.log().len();

    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let f = {
        let (stop, made, port) = (Arc::clone(&stop), Arc::clone(&made), base.port());
        std::thread::spawn(move || flood(port, stop, made))
    };
    std::thread::sleep(Duration::from_secs(2)); // the flood is on
    let t0 = Instant::now();
    let (mut served, mut worst) = (0, Duration::ZERO);
    let uid = alice.uid.to_string();
    while t0.elapsed() < FLOOD_FOR {
        let t = Instant::now();
        let o = if served % 2 == 0 {
            run(&["-p"])
        } else {
            run(&["-g", "-u", &uid, "-C", "MEMORY:flood"])
        };
        let took = t.elapsed();
        assert_ok(&o);
        // The whole request within Timeout (plus the process start-up).
        assert!(
            took < Duration::from_secs(TIMEOUT_S) + Duration::from_millis(1500),
            "request {served} took {took:?} during the flood\n{}",
            tail(&d.log(), 20)
        );
        worst = worst.max(took);
        served += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    f.join().unwrap();
    let opened = made.load(Ordering::Relaxed);
    d.signal(nix::sys::signal::Signal::SIGUSR2); // flush the counts
    d.wait_log("sessions served", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let flood_log = d.log_since(log_start);
    let about: Vec<&str> = flood_log
        .lines()
        .filter(|l| l.contains("127.0.0.2 :") || l.contains("from 127.0.0.2 "))
        .collect();
    eprintln!(
        "figure: {opened} flood connections from 127.0.0.2 in {:.0} s; {served} requests from 127.0.0.1 all served, worst {:.0} ms; {} log lines about the flood",
        FLOOD_FOR.as_secs_f64() + 2.0,
        worst.as_secs_f64() * 1000.0,
        about.len()
    );
    assert!(opened >= FLOOD as u64, "the flood did not run: {opened}");
    assert!(served >= 20, "too few requests: {served}");
    assert!(
        about.len() <= 12,
        "the flood must be logged in a few aggregated lines, got {}:\n{}",
        about.len(),
        about.join("\n")
    );
    assert!(
        about
            .iter()
            .any(|l| l.contains("connections from 127.0.0.2")),
        "counts are logged:\n{}",
        about.join("\n")
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "stored credential changed"
    );
    assert_ok(&run(&["-g", "-u", &uid, "-C", "MEMORY:after"]));
}
