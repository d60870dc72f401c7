//! Malformed input from an *authenticated* client: auksd answers with an
//! error (or closes the session), stores nothing, logs the reason and keeps
//! serving others. Uses the library's session layer to send raw AUKS
//! payloads inside valid KRB-PRIV messages.
//!
//! This file holds a single test because it points the process-wide
//! `KRB5_CONFIG` at the throw-away realm (libkrb5 reads it in-process).

mod common;

use auks::krb5::{Ccache, Context};
use auks::proto::{self, Reply};
use auks::session::{Session, SessionError};
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const ALICE_PW: &str = "alice-Pw-1";

fn ask(s: &mut Session<'_>, payload: &[u8]) -> Result<Reply, String> {
    s.send(payload).map_err(|e| e.to_string())?;
    let plain = s.recv(proto::MAX_MESSAGE).map_err(|e| e.to_string())?;
    proto::decode_reply(&plain).map_err(|e| e.to_string())
}

fn error_code(r: &Reply) -> Option<i32> {
    match r {
        Reply::Error(i) => i.code,
        _ => None,
    }
}

#[test]
fn authenticated_garbage_is_refused_and_nothing_is_stored() {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let mut auksd = Auksd::start(&realm, AuksdOpts::default());
    // One test in this binary: nothing else reads the environment
    // concurrently, and no libkrb5 context exists yet.
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    std::env::set_var("KRB5RCACHEDIR", realm.rcache_dir());
    let ctx = Context::new().unwrap();
    let cc = Ccache::resolve(&ctx, &format!("FILE:{}", alice_cc.display())).unwrap();
    let port = auksd.port();

    // Unknown request types get ERROR_REPLY and the session goes on.
    let mut s = session(&ctx, port, &cc, Duration::from_secs(5));
    for t in [7i32, 22, 99, -1] {
        let r = ask(&mut s, &t.to_be_bytes()).expect("reply to unknown type");
        assert_eq!(
            error_code(&r),
            Some(auks::client::reason::UNKNOWN_REQUEST),
            "type {t}: {r:?}"
        );
    }
    assert_eq!(ask(&mut s, &0i32.to_be_bytes()).unwrap(), Reply::Ping);

    // Corrupted requests get ERROR_REPLY "corrupted", then the session ends.
    let corrupted: Vec<(&str, Vec<u8>)> = vec![
        ("GET without uid", 3i32.to_be_bytes().to_vec()),
        ("REMOVE with 2 bytes of uid", vec![0, 0, 0, 4, 0, 1]),
        ("PING with trailing bytes", vec![0, 0, 0, 0, 1, 2, 3]),
        (
            "ADD with negative length",
            [2i32, -1].iter().flat_map(|v| v.to_be_bytes()).collect(),
        ),
        (
            "ADD with huge length",
            [2i32, 0x7fff_ffff]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect(),
        ),
        (
            "ADD longer than its data",
            [2i32, 100].iter().flat_map(|v| v.to_be_bytes()).collect(),
        ),
        ("empty message", vec![]),
    ];
    for (what, payload) in &corrupted {
        let mut s = session(&ctx, port, &cc, Duration::from_secs(5));
        let r = ask(&mut s, payload).unwrap_or_else(|e| panic!("{what}: no reply: {e}"));
        assert_eq!(
            error_code(&r),
            Some(auks::client::reason::CORRUPTED),
            "{what}: {r:?}"
        );
        let next = s.send(&0i32.to_be_bytes()).and_then(|()| s.recv(64));
        assert!(
            next.is_err(),
            "{what}: session must be closed after a corrupted request"
        );
    }

    // A well-formed ADD of bytes that are no KRB-CRED: refused with a reason.
    let mut s = session(&ctx, port, &cc, Duration::from_secs(5));
    let mut add = 2i32.to_be_bytes().to_vec();
    add.extend_from_slice(&16i32.to_be_bytes());
    add.extend_from_slice(&[0x42; 16]);
    let r = ask(&mut s, &add).expect("reply to bogus ADD");
    match &r {
        Reply::Error(i) => {
            assert_eq!(i.code, Some(auks::client::reason::BAD_CRED), "{r:?}");
            assert!(
                i.reason.as_deref().unwrap_or("").contains("KRB-CRED"),
                "{r:?}"
            );
        }
        other => panic!("bogus ADD accepted: {other:?}"),
    }

    // An oversized KRB-PRIV frame after authentication: connection closed
    // without the daemon allocating it.
    // (authenticate, then write only a frame header announcing 2 GiB on
    // the same socket)
    {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut raw = stream.try_clone().unwrap();
        let mut s2 = Session::connect(
            &ctx,
            stream,
            &cc,
            AUKSD_PRINCIPAL,
            false,
            Duration::from_secs(5),
        )
        .unwrap();
        raw.write_all(&0x7fff_ffffu32.to_be_bytes()).unwrap();
        let r = s2.recv(64);
        assert!(
            matches!(
                r,
                Err(SessionError::Closed { .. }) | Err(SessionError::Io { .. })
            ),
            "oversized frame must close the connection: {:?}",
            r.map(|v| v.len())
        );
    }

    // Nothing was stored, the daemon is alive and serves a normal client.
    assert!(auksd.alive(), "auksd died");
    let entries: Vec<_> = std::fs::read_dir(auksd.cache_dir()).unwrap().collect();
    assert!(entries.is_empty(), "cache dir not empty: {entries:?}");
    let o = auks(&realm, &auksd.conf_path(), &alice_cc, Some(&alice), &["-p"]);
    assert_ok(&o);
    let log = auksd.log();
    assert!(
        log.contains("request is corrupted"),
        "reason not logged:\n{log}"
    );
    assert!(
        log.contains("unknown request type"),
        "reason not logged:\n{log}"
    );
    assert!(
        log.contains("not a valid unencrypted KRB-CRED"),
        "reason not logged:\n{log}"
    );
    assert!(
        log.contains("exceeds the limit"),
        "oversized frame not logged:\n{log}"
    );
}
