//! Benchmark of the etcd backend next to the local `CacheDir` in the same
//! run (issue 11), run by `scripts/bench-ha.sh` (ignored by a plain
//! `cargo test`: it prints figures and asserts nothing about them).
//!
//! An in-process load generator: the client library on many threads, each
//! request a full new authenticated session as on the wire. Measured
//! against a local-backend auksd and an etcd-backed one (three etcd members
//! on loopback), both release builds when run by the script:
//! - GET: requests/s, p50, p99 (16 clients);
//! - ADD of the credential already stored (every `srun --auks=yes`; no
//!   write): requests/s, p50, p99 (16 clients);
//! - ADD of a new credential (a write to disk, or to etcd): 4 clients, each
//!   its own user and a series of tickets renewed at the KDC beforehand;
//! - propagation: a new credential ADDed through instance A, then GETs
//!   through instance B until B serves it: p50 and p99 of the time from A's
//!   acknowledgement (resolution: one GET round trip, printed too).
//!
//! Each throughput figure sums three rounds that alternate between the
//! backends, so the load of the (shared) machine weighs on both alike.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use auks::client::Client;
use auks::cred;
use auks::krb5::Context;
use common::etcd::EtcdCluster;
use common::*;
use zeroize::Zeroizing;

/// Seconds per measurement, and rounds per backend.
const SECONDS: f64 = 3.0;
const ROUNDS: usize = 3;

fn pct(lat: &mut [Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return f64::NAN;
    }
    lat.sort_unstable();
    let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
    lat[i].as_secs_f64() * 1e3
}

#[derive(Default)]
struct Figures {
    n: usize,
    failed: usize,
    secs: f64,
    lat: Vec<Duration>,
}

impl Figures {
    fn merge(&mut self, o: Figures) {
        self.n += o.n;
        self.failed += o.failed;
        self.secs += o.secs;
        self.lat.extend(o.lat);
    }

    fn line(&mut self, what: &str) -> String {
        let rps = self.n as f64 / self.secs;
        let p50 = pct(&mut self.lat, 0.50);
        let p99 = pct(&mut self.lat, 0.99);
        format!(
            "{what:<34} {rps:>9.1} req/s  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  ({} requests, {} failed)",
            self.n, self.failed
        )
    }
}

/// `clients` threads running `op` for [`SECONDS`]; `op` returns whether
/// the request succeeded, or `None` when it had nothing to do.
fn load(clients: usize, op: impl Fn(usize) -> Option<bool> + Sync) -> Figures {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(clients + 1);
    let mut lat = Vec::new();
    let mut failed = 0;
    let mut secs = 0.0;
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|i| {
                let (stop, barrier, op) = (&stop, &barrier, &op);
                s.spawn(move || {
                    let (mut l, mut f) = (Vec::new(), 0);
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        match op(i) {
                            None => {
                                std::thread::sleep(Duration::from_millis(1));
                                continue;
                            }
                            Some(false) => f += 1,
                            Some(true) => {}
                        }
                        l.push(t.elapsed());
                    }
                    (l, f)
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(SECONDS));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            let (l, f) = h.join().unwrap();
            lat.extend(l);
            failed += f;
        }
        secs = t0.elapsed().as_secs_f64();
    });
    Figures {
        n: lat.len(),
        failed,
        secs,
        lat,
    }
}

fn client(conf: &std::path::Path, cc: &std::path::Path) -> Client {
    Client::from_config_file(Some(conf))
        .unwrap()
        .with_auth_ccache(Some(format!("FILE:{}", cc.display())))
}

/// `n` successive renewals of the TGT in `cc`, each a new credential.
fn renewals(ctx: &Context, cc: &std::path::Path, n: usize) -> Vec<Zeroizing<Vec<u8>>> {
    let first = cred::extract_from_ccache(ctx, Some(&format!("FILE:{}", cc.display()))).unwrap();
    let first = cred::make_addressless(ctx, first).unwrap();
    let mut out = Vec::with_capacity(n);
    let mut cur = first;
    for _ in 0..n {
        cur = cred::renew_at_kdc(ctx, &cur).unwrap();
        out.push(cur.clone());
    }
    out
}

#[test]
#[ignore = "benchmark: run by scripts/bench-ha.sh"]
fn bench_etcd_backend_next_to_local() {
    let realm = Realm::start();
    // In-process Kerberos calls (client library, renewals) use this realm.
    for (k, v) in realm.env() {
        std::env::set_var(k, v);
    }
    let cluster = EtcdCluster::start(3);
    let keys = temp_dir("auks-bench-keys-");
    let keyfile = keys.path().join("seal.keys");
    std::fs::write(
        &keyfile,
        auks::store::KeyRing::generate("bench").unwrap().as_bytes(),
    )
    .unwrap();
    set_mode(&keyfile, 0o600);
    let etcd_lines = format!(
        "EtcdEndpoints = \"{}\" ; EtcdSealKeyFile = \"{}\" ;",
        cluster.endpoints(),
        keyfile.display()
    );
    let quiet = |extra: String| AuksdOpts {
        extra_auksd: format!("LogLevel = 1 ; {extra}"),
        workers: 8,
        timeout: 10,
        ..AuksdOpts::default()
    };
    let local = Auksd::start(&realm, quiet(String::new()));
    let a = Auksd::start(&realm, quiet(etcd_lines.clone()));
    let b = Auksd::start(&realm, quiet(etcd_lines));
    let dir = temp_dir("auks-bench-");
    let conf_of = |d: &Auksd, name: &str| {
        let p = dir.path().join(name);
        d.write_client_conf(&p, d.port(), d.port());
        p
    };
    let (conf_l, conf_a, conf_b) = (
        conf_of(&local, "l.conf"),
        conf_of(&a, "a.conf"),
        conf_of(&b, "b.conf"),
    );
    let users = [
        (alice(), "alice-Pw-1"),
        (bob(), "bob-Pw-2"),
        (carol(), "carol-Pw-3"),
        (ensure_user("dave", 3004), "dave-Pw-4"),
    ];
    let ccs: Vec<_> = users
        .iter()
        .map(|(u, pw)| realm.user_ccache(u, pw))
        .collect();
    let ctx = Context::new().unwrap();
    let alice_uid = users[0].0.uid;
    let same =
        cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", ccs[0].display()))).unwrap();
    for conf in [&conf_l, &conf_a] {
        client(conf, &ccs[0]).add(same.clone()).unwrap();
    }
    let mut report = Vec::new();

    // Rounds alternate between the backends, so that the load of the
    // machine (2 cores, shared) weighs on both alike.
    let backends = [("local CacheDir", &conf_l), ("etcd", &conf_a)];
    let mut get = [Figures::default(), Figures::default()];
    let mut add_same = [Figures::default(), Figures::default()];
    for _round in 0..ROUNDS {
        for (b, (_, conf)) in backends.iter().enumerate() {
            let cl: Vec<Client> = (0..16).map(|_| client(conf, &ccs[0])).collect();
            cl[0].get(alice_uid).unwrap();
            get[b].merge(load(16, |i| Some(cl[i].get(alice_uid).is_ok())));
            add_same[b].merge(load(16, |i| Some(cl[i].add(same.clone()).is_ok())));
        }
    }
    for (b, (name, _)) in backends.iter().enumerate() {
        report.push(get[b].line(&format!("GET, 16 clients, {name}")));
    }
    for (b, (name, _)) in backends.iter().enumerate() {
        report.push(add_same[b].line(&format!("ADD same cred, 16 clients, {name}")));
    }
    // New credentials: 4 users, each a series of renewals, one slice of
    // it per round (the same slice for both backends, whose stores are
    // separate): every ADD replaces the stored credential (a write).
    let per_round = 800;
    let series: Vec<Vec<_>> = ccs
        .iter()
        .map(|cc| renewals(&ctx, cc, per_round * ROUNDS))
        .collect();
    let mut add_new = [Figures::default(), Figures::default()];
    let mut exhausted = [false, false];
    for round in 0..ROUNDS {
        for (b, (_, conf)) in backends.iter().enumerate() {
            let cl: Vec<Client> = ccs.iter().map(|cc| client(conf, cc)).collect();
            let next: Vec<std::sync::atomic::AtomicUsize> = (0..4)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect();
            add_new[b].merge(load(4, |i| {
                let k = next[i].fetch_add(1, Ordering::Relaxed);
                (k < per_round).then(|| cl[i].add(series[i][round * per_round + k].clone()).is_ok())
            }));
            exhausted[b] |= next.iter().any(|n| n.load(Ordering::Relaxed) > per_round);
        }
    }
    for (b, (name, _)) in backends.iter().enumerate() {
        let note = if exhausted[b] {
            " (ran out of credentials: req/s is a floor)"
        } else {
            ""
        };
        report.push(add_new[b].line(&format!("ADD new cred, 4 clients, {name}")) + note);
    }

    // Propagation A -> B.
    let ca = client(&conf_a, &ccs[0]);
    let cb = client(&conf_b, &ccs[0]);
    let fresh = renewals(&ctx, &ccs[0], 200);
    let mut prop = Vec::new();
    let mut rtt = Vec::new();
    let mut lost = 0;
    for d in &fresh {
        ca.add(d.clone()).unwrap();
        let acked = Instant::now();
        loop {
            let t = Instant::now();
            let got = cb.get(alice_uid);
            rtt.push(t.elapsed());
            if got.is_ok_and(|r| cred::same_tickets(&ctx, &r.data, d)) {
                prop.push(acked.elapsed());
                break;
            }
            if acked.elapsed() > Duration::from_secs(2) {
                lost += 1;
                break;
            }
        }
    }
    report.push(format!(
        "propagation A -> B (etcd watch)    p50 {:>7.2} ms  p99 {:>7.2} ms  ({} samples, {} not seen in 2 s; GET round trip p50 {:.2} ms)",
        pct(&mut prop, 0.50),
        pct(&mut prop, 0.99),
        prop.len(),
        lost,
        pct(&mut rtt, 0.50)
    ));
    // What etcd itself costs: sequential compare-and-swap puts of a sealed
    // credential-sized value, from this process (no auksd, no Kerberos).
    let etcd = auks::store::etcd::Etcd::new(&auks::config::EtcdConf {
        endpoints: cluster.endpoints().split(',').map(str::to_string).collect(),
        prefix: "/bench/".into(),
        ca_file: None,
        cert_file: None,
        key_file: None,
        seal_key_file: keyfile.clone(),
        timeout: 5,
    })
    .unwrap();
    etcd.prefer_leader();
    let value = vec![0x5au8; 1700];
    let mut rev = 0;
    let mut raw = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        rev = etcd
            .put_if(b"/bench/raw", &value, rev, 0)
            .unwrap()
            .expect("no concurrent writer");
        raw.push(t.elapsed());
    }
    report.push(format!(
        "etcd alone: CAS put of 1.7 KB      p50 {:>7.2} ms  p99 {:>7.2} ms  (500 sequential, leader endpoint)",
        pct(&mut raw, 0.50),
        pct(&mut raw, 0.99)
    ));
    // The same from 4 concurrent writers (distinct keys), as in the ADD
    // measure: what etcd on this machine costs under that concurrency.
    let revs: Vec<std::sync::atomic::AtomicI64> = (0..4)
        .map(|_| std::sync::atomic::AtomicI64::new(0))
        .collect();
    let mut f = load(4, |i| {
        let key = format!("/bench/raw{i}").into_bytes();
        let r = revs[i].load(Ordering::Relaxed);
        match etcd.put_if(&key, &value, r, 0) {
            Ok(Some(nr)) => {
                revs[i].store(nr, Ordering::Relaxed);
                Some(true)
            }
            _ => Some(false),
        }
    });
    report.push(f.line("etcd alone: CAS put, 4 writers"));
    println!("\n=== auksd: etcd backend next to the local CacheDir ===");
    for l in &report {
        println!("{l}");
    }
}
