//! The etcd repository (src/store) against a real three-member etcd cluster
//! on loopback: propagation between instances through the watch, sealing at
//! rest, compare-and-swap between writers, the lease lock, and the degraded
//! modes (one member down, quorum lost, restored).

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auks::config::EtcdConf;
use auks::krb5::Context;
use auks::proto::CredRecord;
use auks::store::etcd::Etcd;
use auks::store::view::WriteError;
use auks::store::{watch, EtcdRepo, KeyRing, Leader, StoreError};
use base64::Engine;
use common::etcd::EtcdCluster;
use zeroize::Zeroizing;

const KEYS: &str = "k1 5f9c0d0b1e7a4c3d2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0918f7e6d5c4\n";

fn conf(cluster: &EtcdCluster, prefix: &str) -> EtcdConf {
    EtcdConf {
        endpoints: cluster.endpoints().split(',').map(str::to_string).collect(),
        prefix: prefix.to_string(),
        ca_file: None,
        cert_file: None,
        key_file: None,
        seal_key_file: "/nonexistent".into(),
        timeout: 2,
    }
}

/// An instance: repository + its watch thread.
fn instance(cluster: &EtcdCluster, prefix: &str) -> (Arc<EtcdRepo>, Arc<AtomicBool>) {
    let c = conf(cluster, prefix);
    let repo = Arc::new(EtcdRepo::with(
        Etcd::new(&c).unwrap(),
        KeyRing::parse(KEYS, "test").unwrap(),
        prefix,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    watch::spawn(repo.clone(), stop.clone(), |_, l| eprintln!("watch: {l}")).unwrap();
    assert!(repo.wait_synced(Duration::from_secs(10)), "view not synced");
    (repo, stop)
}

fn rec(uid: u32, end: i64, marker: &str) -> CredRecord {
    CredRecord {
        principal: format!("user{uid}@TEST.REALM"),
        uid,
        starttime: 1,
        endtime: end,
        renew_till: end + 1000,
        addressless: true,
        crossrealm: false,
        data: Zeroizing::new(format!("TICKET<{marker}>-{uid}-SECRET-SESSION-KEY").into_bytes()),
        status: 0,
    }
}

fn allow(_: &CredRecord, _: Option<&CredRecord>) -> Result<(), ()> {
    Ok(())
}

fn wait_until(max: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < max {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn add_and_remove_propagate_within_a_second_and_values_are_sealed() {
    let cluster = EtcdCluster::start(3);
    let ctx = Context::new().unwrap();
    let (a, _sa) = instance(&cluster, "/t1/");
    let (b, _sb) = instance(&cluster, "/t1/");
    let (c, _sc) = instance(&cluster, "/t1/");
    let end = now() + 3600;
    for uid in 2000..2010 {
        a.add(&ctx, rec(uid, end, "a"), allow).unwrap();
        for other in [&b, &c] {
            let t = wait_until(Duration::from_secs(1), || other.get(uid).is_some())
                .unwrap_or_else(|| panic!("uid {uid} not seen by another instance in 1 s"));
            assert!(t < Duration::from_secs(1));
        }
        assert_eq!(&b.get(uid).unwrap().data[..], &rec(uid, end, "a").data[..]);
    }
    // A newer credential through B replaces it everywhere.
    b.add(&ctx, rec(2003, end + 60, "b"), allow).unwrap();
    wait_until(Duration::from_secs(1), || {
        a.get(2003).is_some_and(|r| r.endtime == end + 60)
    })
    .expect("replacement not propagated");
    // REMOVE through C is honoured by A and B.
    c.remove(2005, |_| Ok::<(), ()>(())).unwrap();
    for other in [&a, &b] {
        wait_until(Duration::from_secs(1), || other.get(2005).is_none())
            .expect("remove not propagated in 1 s");
    }
    assert!(matches!(
        a.remove(2005, |_| Ok::<(), ()>(())),
        Err(WriteError::NotFound)
    ));
    assert_eq!(a.dump().len(), 9);

    // What etcd holds: no ticket bytes, in clear or base64.
    let o = cluster.etcdctl(&["get", "--prefix", "/t1/", "--print-value-only"]);
    assert!(o.status.success(), "{}", common::out(&o));
    let stored = o.stdout;
    assert!(
        stored.windows(9).any(|w| w == b"AUKSSEAL1"),
        "values are sealed"
    );
    for uid in 2000..2010 {
        for m in ["a", "b"] {
            let data = rec(uid, end, m).data.to_vec();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            assert!(!stored.windows(data.len()).any(|w| w == &data[..]));
            assert!(!stored.windows(16).any(|w| w == &b64.as_bytes()[..16]));
            let secret = b"SECRET-SESSION-KEY";
            assert!(!stored.windows(secret.len()).any(|w| w == secret));
        }
    }
    let o = cluster.etcdctl(&["get", "--prefix", "/t1/", "-w", "json"]);
    let json = String::from_utf8_lossy(&o.stdout).to_string();
    let secret_b64 = base64::engine::general_purpose::STANDARD.encode("SECRET-SESSION-KEY");
    assert!(!json.contains(&secret_b64[..16]));

    // A restarted instance serves everything once synced.
    let (d, _sd) = instance(&cluster, "/t1/");
    assert_eq!(d.dump().len(), 9);
}

#[test]
fn concurrent_writers_on_two_instances_keep_the_freshest() {
    let cluster = EtcdCluster::start(3);
    let (a, _sa) = instance(&cluster, "/t2/");
    let (b, _sb) = instance(&cluster, "/t2/");
    let end = now() + 3600;
    let threads: Vec<_> = [(a.clone(), 0i64), (b.clone(), 1i64)]
        .into_iter()
        .map(|(r, k)| {
            std::thread::spawn(move || {
                let ctx = Context::new().unwrap();
                for i in 0..20 {
                    let e = end + 2 * i + k;
                    r.add(&ctx, rec(3000, e, "x"), allow).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let best = end + 2 * 19 + 1;
    for r in [&a, &b] {
        wait_until(Duration::from_secs(1), || {
            r.get(3000).is_some_and(|x| x.endtime == best)
        })
        .unwrap_or_else(|| panic!("freshest credential lost: {:?}", r.get(3000)));
    }
}

#[test]
fn lease_lock_elects_one_holder_and_fails_over() {
    let cluster = EtcdCluster::start(3);
    let c = conf(&cluster, "/t3/");
    let e1 = Arc::new(Etcd::new(&c).unwrap());
    let e2 = Arc::new(Etcd::new(&c).unwrap());
    let l1 = Leader::new(e1, b"/t3/lock/clean".to_vec(), 3);
    let l2 = Leader::new(e2, b"/t3/lock/clean".to_vec(), 3);
    assert!(l1.try_lead().unwrap());
    assert!(!l2.try_lead().unwrap());
    assert!(l1.try_lead().unwrap(), "holder keeps it");
    assert!(!l2.try_lead().unwrap());
    assert_eq!(l2.holder().unwrap().as_deref(), Some(l1.me()));
    l1.resign();
    assert!(l2.try_lead().unwrap(), "taken over after resign");
    // A holder that stops refreshing loses it after its TTL.
    let t = wait_until(Duration::from_secs(8), || l1.try_lead().unwrap());
    assert!(t.is_some(), "lease of a silent holder never ran out");
    assert!(!l2.try_lead().unwrap());
}

#[test]
fn degraded_modes_one_member_down_then_quorum_lost_then_restored() {
    let mut cluster = EtcdCluster::start(3);
    let ctx = Context::new().unwrap();
    let (a, _sa) = instance(&cluster, "/t4/");
    let (b, _sb) = instance(&cluster, "/t4/");
    let end = now() + 3600;
    a.add(&ctx, rec(4000, end, "a"), allow).unwrap();

    // One member down: nothing visible.
    cluster.kill(0);
    for uid in 4001..4006 {
        a.add(&ctx, rec(uid, end, "a"), allow)
            .unwrap_or_else(|e| panic!("ADD with one member down: {e}"));
        wait_until(Duration::from_secs(2), || b.get(uid).is_some())
            .expect("propagation with one member down");
    }

    // Quorum lost: reads from the view, writes refused with a reason.
    cluster.kill(1);
    for r in [&a, &b] {
        assert!(r.get(4000).is_some() && r.get(4005).is_some());
        assert_eq!(r.dump().len(), 6);
    }
    let t = Instant::now();
    let err = a.add(&ctx, rec(4100, end, "a"), allow).unwrap_err();
    let elapsed = t.elapsed();
    assert!(
        matches!(err, WriteError::Store(StoreError::Unavailable(_))),
        "{err}"
    );
    assert!(err.to_string().contains("etcd unavailable"), "{err}");
    assert!(elapsed < Duration::from_secs(5), "refusal took {elapsed:?}");
    assert!(a.get(4100).is_none());
    assert!(!a.is_healthy());

    // Restored: writes work again and every instance converges.
    cluster.restart(0);
    cluster.restart(1);
    cluster.wait_healthy(Duration::from_secs(30));
    let ok = wait_until(Duration::from_secs(20), || {
        a.add(&ctx, rec(4100, end, "a"), allow).is_ok()
    });
    assert!(ok.is_some(), "writes never came back\n{}", cluster.logs());
    wait_until(Duration::from_secs(10), || b.get(4100).is_some())
        .expect("instance B did not converge");
    assert_eq!(b.dump().len(), 7);
}

#[test]
fn tls_with_client_certificates() {
    let cluster = EtcdCluster::start_with(3, true);
    let tls = cluster.tls().unwrap().clone();
    let ctx = Context::new().unwrap();
    let mut c = conf(&cluster, "/t5/");
    assert!(c.endpoints[0].starts_with("https://"));
    // Without a client certificate etcd refuses us.
    c.ca_file = Some(tls.ca.clone());
    let no_cert = Etcd::new(&c).unwrap();
    assert!(
        no_cert.get(b"/t5/x").is_err(),
        "etcd accepted a client without certificate"
    );
    // Without our CA we refuse etcd.
    let mut c2 = c.clone();
    c2.ca_file = Some(tls.client_cert.clone());
    c2.cert_file = Some(tls.client_cert.clone());
    c2.key_file = Some(tls.client_key.clone());
    let wrong_ca = Etcd::new(&c2).unwrap();
    assert!(
        wrong_ca.get(b"/t5/x").is_err(),
        "server certificate not verified"
    );
    // With both, the repository works as over plain HTTP.
    c.cert_file = Some(tls.client_cert.clone());
    c.key_file = Some(tls.client_key.clone());
    let mk = || {
        let r = Arc::new(EtcdRepo::with(
            Etcd::new(&c).unwrap(),
            KeyRing::parse(KEYS, "test").unwrap(),
            "/t5/",
        ));
        let stop = Arc::new(AtomicBool::new(false));
        watch::spawn(r.clone(), stop.clone(), |_, l| eprintln!("watch: {l}")).unwrap();
        assert!(r.wait_synced(Duration::from_secs(10)));
        (r, stop)
    };
    let (a, _sa) = mk();
    let (b, _sb) = mk();
    a.add(&ctx, rec(5000, now() + 3600, "tls"), allow).unwrap();
    wait_until(Duration::from_secs(1), || b.get(5000).is_some()).expect("propagation over TLS");
    let o = cluster.etcdctl(&["get", "--prefix", "/t5/", "--print-value-only"]);
    assert!(o.status.success(), "{}", common::out(&o));
    assert!(o.stdout.windows(9).any(|w| w == b"AUKSSEAL1"));
}

#[test]
fn a_watch_behind_a_compaction_reloads_the_view() {
    let cluster = EtcdCluster::start(3);
    let ctx = Context::new().unwrap();
    let (a, _sa) = instance(&cluster, "/t6/");
    let end = now() + 3600;
    a.add(&ctx, rec(6000, end, "a"), allow).unwrap();
    // C loads its view now, and starts following only later.
    let c = Arc::new(EtcdRepo::with(
        Etcd::new(&conf(&cluster, "/t6/")).unwrap(),
        KeyRing::parse(KEYS, "test").unwrap(),
        "/t6/",
    ));
    c.sync().unwrap();
    let behind = c.revision();
    for uid in 6001..6011 {
        a.add(&ctx, rec(uid, end, "a"), allow).unwrap();
    }
    a.remove(6000, |_| Ok::<(), ()>(())).unwrap();
    // Compact everything up to now: C's revision is gone.
    let o = cluster.etcdctl(&["get", "/t6/cred/6001", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rev = v["header"]["revision"].as_i64().unwrap();
    assert!(rev > behind + 5);
    let o = cluster.etcdctl(&["compact", &rev.to_string()]);
    assert!(o.status.success(), "{}", common::out(&o));
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let l2 = lines.clone();
    let stop = Arc::new(AtomicBool::new(false));
    watch::spawn(c.clone(), stop.clone(), move |_, l| {
        l2.lock().unwrap().push(l)
    })
    .unwrap();
    wait_until(Duration::from_secs(5), || {
        c.len() == 10 && c.get(6000).is_none()
    })
    .unwrap_or_else(|| panic!("view not reloaded: {:?}", lines.lock().unwrap()));
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("compaction")),
        "{:?}",
        lines.lock().unwrap()
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn a_lease_refreshed_in_the_background_outlives_a_long_turn() {
    let cluster = EtcdCluster::start(3);
    let c = conf(&cluster, "/t7/");
    let l1 = Arc::new(Leader::new(
        Arc::new(Etcd::new(&c).unwrap()),
        b"/t7/lock/renewer".to_vec(),
        3,
    ));
    let l2 = Leader::new(
        Arc::new(Etcd::new(&c).unwrap()),
        b"/t7/lock/renewer".to_vec(),
        3,
    );
    let stop = Arc::new(AtomicBool::new(false));
    l1.keep_alive_in_background(stop.clone()).unwrap();
    assert!(l1.try_lead().unwrap());
    // A turn longer than the TTL: the holder keeps the lock.
    std::thread::sleep(Duration::from_secs(5));
    assert!(!l2.try_lead().unwrap(), "lock lost during a long turn");
    // The holder dies (no more refreshes): taken over after the TTL.
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = wait_until(Duration::from_secs(10), || l2.try_lead().unwrap());
    assert!(t.is_some(), "a dead holder was never replaced");
}
