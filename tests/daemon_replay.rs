//! A replayed session is refused (`ReplayCache = yes`, auksd's own replay
//! cache), also after auksd restarted (its journal), and the client gets
//! libkrb5's KRB-ERROR for it. With `ReplayCache = no` the same replay is
//! accepted: the replays below are faithful, so the refusal is the cache's
//! doing. That control replay also waits for the version check's answer
//! before sending the AP-REQ, as MIT's `krb5_sendauth` (the C client)
//! does, where our client sends everything at once.
//!
//! One test in this binary: it points the process-wide `KRB5_CONFIG` at
//! the throw-away realm (libkrb5 reads it in-process).

mod common;

use auks::client::Client;
use auks::krb5::Context;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ALICE_PW: &str = "alice-Pw-1";
/// The sendauth and application version frames our client sends first.
const VERSIONS: usize = 4 + 19 + 4 + 4;

/// A ping through a proxy that records what the client sent to `port`.
fn recorded_ping(auksd: &Auksd, port: u16, cc: &std::path::Path) -> Vec<u8> {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let rec = Arc::clone(&sent);
    let relay = std::thread::spawn(move || {
        let (client, _) = proxy.accept().unwrap();
        let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let up = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match c_in.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        rec.lock().unwrap().extend_from_slice(&buf[..n]);
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = s_out.shutdown(Shutdown::Write);
        });
        let (mut s_in, mut c_out) = (server, client);
        let _ = std::io::copy(&mut s_in, &mut c_out);
        let _ = c_out.shutdown(Shutdown::Write);
        up.join().unwrap();
    });
    let conf = auksd.dir().join(format!("client-{proxy_port}.conf"));
    auksd.write_client_conf(&conf, proxy_port, closed_port());
    Client::from_config_file(Some(&conf))
        .expect("client configuration")
        .with_auth_ccache(Some(format!("FILE:{}", cc.display())))
        .ping()
        .expect("the recorded ping is answered");
    relay.join().unwrap();
    let bytes = sent.lock().unwrap().clone();
    assert!(
        bytes.len() > VERSIONS + 100,
        "{} bytes recorded",
        bytes.len()
    );
    bytes
}

/// What auksd answers to the versions and AP-REQ of `bytes` replayed on a
/// new connection: Ok(()) when it accepts the AP-REQ ("ok" frame),
/// Err(KRB-ERROR text) when it refuses it. `wait_for_version_ok`: send the
/// versions first and wait for the answer, as MIT's sendauth does.
fn replay(port: u16, bytes: &[u8], wait_for_version_ok: bool) -> Result<(), String> {
    let ap_len = u32::from_be_bytes(bytes[VERSIONS..VERSIONS + 4].try_into().unwrap());
    let ap_end = VERSIONS + 4 + ap_len as usize;
    assert!(ap_end < bytes.len(), "the request follows the AP-REQ");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut byte = [0u8; 1];
    if wait_for_version_ok {
        s.write_all(&bytes[..VERSIONS]).unwrap();
        s.read_exact(&mut byte).expect("version check answered");
        s.write_all(&bytes[VERSIONS..ap_end]).unwrap();
    } else {
        s.write_all(&bytes[..ap_end]).unwrap();
        s.read_exact(&mut byte).expect("version check answered");
    }
    assert_eq!(byte[0], 0, "versions accepted");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("sendauth answer");
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Ok(());
    }
    assert!(len < 65536, "KRB-ERROR of {len} bytes");
    let mut err = vec![0u8; len];
    s.read_exact(&mut err).expect("KRB-ERROR");
    let ctx = Context::new().unwrap();
    Err(auks::krb5::rd_error(&ctx, &err))
}

#[test]
fn a_replayed_session_is_refused_also_after_a_restart() {
    let realm = Realm::start();
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    let alice = alice();
    let cc = realm.user_ccache(&alice, ALICE_PW);

    // Control: without a replay cache the replays are accepted, whether
    // the versions' answer is waited for (as MIT's sendauth) or not.
    let open = Auksd::start(
        &realm,
        AuksdOpts {
            extra_auksd: "ReplayCache = no ;".into(),
            ..AuksdOpts::default()
        },
    );
    let bytes = recorded_ping(&open, open.port(), &cc);
    replay(open.port(), &bytes, false).expect("accepted without a replay cache");
    replay(open.port(), &bytes, true).expect("accepted without a replay cache (MIT's order)");
    drop(open);

    let mut auksd = Auksd::start(&realm, AuksdOpts::default());
    assert!(
        auksd.log().contains("replay cache: 0 authenticators"),
        "{}",
        auksd.log()
    );
    let bytes = recorded_ping(&auksd, auksd.port(), &cc);
    for wait in [false, true] {
        let e = replay(auksd.port(), &bytes, wait).expect_err("a replay is refused");
        assert!(e.contains("replay"), "KRB-ERROR text: {e}");
    }
    auksd.restart();
    assert!(
        auksd.log().contains("replay cache: 1 authenticators"),
        "{}",
        auksd.log()
    );
    let e = replay(auksd.port(), &bytes, false).expect_err("refused after a restart");
    assert!(e.contains("replay"), "KRB-ERROR text: {e}");
    // Fresh sessions are still served, and the daemon logged the refusals.
    let conf = auksd.conf_path();
    Client::from_config_file(Some(&conf))
        .unwrap()
        .with_auth_ccache(Some(format!("FILE:{}", cc.display())))
        .ping()
        .expect("a fresh session is served");
    assert!(
        auksd.log().contains("Request is a replay"),
        "{}",
        auksd.log()
    );
}
