//! auksd under bursts and idle sessions (issue 12), with the real daemon, a
//! real KDC and the client library on many threads (each request a full new
//! authenticated session):
//! - 1 000 simultaneous GETs with Workers = 4, QueueSize = 16: no failure;
//! - 50 authenticated sessions that stay silent (25 of a principal without
//!   any role, 25 of a user) with Workers = 2: a ping answers within 1 s;
//! - a user's session sending one request every 4 s is closed at the
//!   session deadline (30 s), not kept for minutes.
//!
//! After each, the stored credential is unchanged (memory and file).
//!
//! One test in this binary: it points the process-wide `KRB5_CONFIG` at
//! the throw-away realm (libkrb5 reads it in-process).

mod common;

use auks::client::Client;
use auks::krb5::{Ccache, Context};
use common::load::*;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";
const IDLE_PW: &str = "Idle-Pw-1";

fn client(conf: &Path, cc: &Path) -> Client {
    Client::from_config_file(Some(conf))
        .expect("client configuration")
        .with_auth_ccache(Some(format!("FILE:{}", cc.display())))
}

/// What is stored for `uid`, as GET returns it and as the file holds it.
fn stored(conf: &Path, cc: &Path, file: &Path, uid: u32) -> (Vec<u8>, i64, Vec<u8>) {
    let r = client(conf, cc)
        .get(uid)
        .expect("GET of the stored credential");
    (
        r.data.to_vec(),
        r.endtime,
        std::fs::read(file).expect("cache file"),
    )
}

fn burst(realm: &Realm, alice: &LocalUser, alice_cc: &Path) {
    let auksd = Auksd::start(
        realm,
        AuksdOpts {
            workers: 4,
            timeout: 60,
            ..AuksdOpts::default()
        },
    );
    let conf = auksd.conf_path();
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("Workers = 4 ; QueueSize = 16"));
    assert_ok(&auks(realm, &conf, alice_cc, Some(alice), &["-a"]));
    let file = auksd.cache_file(alice.uid);
    let before = stored(&conf, alice_cc, &file, alice.uid);

    const N: usize = 1000;
    let barrier = Arc::new(Barrier::new(N));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (b, conf, cc, uid) = (
                Arc::clone(&barrier),
                conf.clone(),
                alice_cc.to_path_buf(),
                alice.uid,
            );
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let c = client(&conf, &cc);
                    b.wait();
                    let t = Instant::now();
                    let r = c.get(uid).map(|_| ()).map_err(|e| e.to_string());
                    (r, t.elapsed())
                })
                .expect("spawn client thread")
        })
        .collect();
    let mut lat = Vec::new();
    let mut failures = Vec::new();
    for h in handles {
        let (r, took) = h.join().expect("client thread");
        lat.push(took);
        if let Err(e) = r {
            failures.push(e);
        }
    }
    let wall = t0.elapsed();
    lat.sort();
    eprintln!(
        "figure: burst of {N} GETs (Workers 4, QueueSize 16): {} failed, wall {:.2} s, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        failures.len(),
        wall.as_secs_f64(),
        pct_ms(&lat, 50),
        pct_ms(&lat, 99),
        pct_ms(&lat, 100)
    );
    assert!(
        failures.is_empty(),
        "{} of {N} GETs failed, e.g. {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(3)],
        tail(&auksd.log(), 30)
    );
    assert_eq!(
        stored(&conf, alice_cc, &file, alice.uid),
        before,
        "stored credential changed"
    );
}

fn idle_sessions(realm: &Realm, alice: &LocalUser, alice_cc: &Path, idle_cc: &Path) {
    let auksd = Auksd::start(
        realm,
        AuksdOpts {
            workers: 2,
            timeout: 5,
            ..AuksdOpts::default()
        },
    );
    let conf = auksd.conf_path();
    assert_ok(&auks(realm, &conf, alice_cc, Some(alice), &["-a"]));
    let file = auksd.cache_file(alice.uid);
    let before = stored(&conf, alice_cc, &file, alice.uid);

    let ctx = Context::new().unwrap();
    let no_role = Ccache::resolve(&ctx, &format!("FILE:{}", idle_cc.display())).unwrap();
    let user = Ccache::resolve(&ctx, &format!("FILE:{}", alice_cc.display())).unwrap();
    let mut held = Vec::new();
    for i in 0..50 {
        let cc = if i % 2 == 0 { &no_role } else { &user };
        let s = session(&ctx, auksd.port(), cc, Duration::from_secs(10));
        held.push(s); // and never send anything
    }
    let c = client(&conf, alice_cc);
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        c.ping().unwrap_or_else(|e| {
            panic!(
                "ping with 50 idle sessions: {e}\n{}",
                tail(&auksd.log(), 30)
            )
        });
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "figure: 50 idle authenticated sessions (25 without a role), Workers 2: worst ping {:.0} ms",
        worst.as_secs_f64() * 1000.0
    );
    assert!(
        worst < Duration::from_secs(1),
        "a ping took {worst:?} while idle sessions were held\n{}",
        tail(&auksd.log(), 30)
    );
    let log = auksd.log();
    assert!(
        log.contains("svc/idle@TEST.REALM from 127.0.0.1 : request failed : no matching ACL rule"),
        "a principal without a role is answered at once\n{}",
        tail(&log, 30)
    );
    drop(held);
    assert_eq!(
        stored(&conf, alice_cc, &file, alice.uid),
        before,
        "stored credential changed"
    );
}

/// One user session sending a PING every 4 s: returns how long the daemon
/// kept it and how many requests it answered.
fn slow_session(realm: &Realm, alice_cc: &Path) -> (Duration, usize) {
    let auksd = Auksd::start(realm, AuksdOpts::default());
    let ctx = Context::new().unwrap();
    let cc = Ccache::resolve(&ctx, &format!("FILE:{}", alice_cc.display())).unwrap();
    let t = Instant::now();
    let mut s = session(&ctx, auksd.port(), &cc, Duration::from_secs(20));
    let ping = auks::proto::encode_request(&auks::proto::Request::Ping);
    let mut answered = 0;
    while t.elapsed() < Duration::from_secs(90) {
        if s.send(&ping).is_err() || s.recv(auks::proto::MAX_MESSAGE).is_err() {
            return (t.elapsed(), answered);
        }
        answered += 1;
        std::thread::sleep(Duration::from_secs(4));
    }
    (t.elapsed(), answered)
}

#[test]
fn bursts_and_idle_sessions_are_absorbed() {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    realm.add_principal("svc/idle", IDLE_PW);
    let dir = temp_dir("auks-burst-");
    let idle_cc: PathBuf = dir.path().join("idle.cc");
    realm.kinit_password("svc/idle", IDLE_PW, &idle_cc, &[]);
    // One test in this binary: nothing else reads the environment
    // concurrently, and no libkrb5 context exists yet.
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    std::env::set_var("KRB5RCACHEDIR", realm.rcache_dir());
    std::thread::scope(|sc| {
        let slow = sc.spawn(|| slow_session(&realm, &alice_cc));
        burst(&realm, &alice, &alice_cc);
        idle_sessions(&realm, &alice, &alice_cc, &idle_cc);
        let (kept, answered) = slow.join().expect("slow session");
        eprintln!("figure: a session sending a request every 4 s was closed after {kept:?} ({answered} requests answered)");
        assert!(
            kept >= Duration::from_secs(24) && kept < Duration::from_secs(40),
            "session deadline: kept {kept:?}, {answered} requests answered"
        );
    });
}
