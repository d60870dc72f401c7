//! auksd high availability (issue 11), all real: a three-member etcd
//! cluster on loopback, a throw-away MIT KDC, two or three `auksd` instances
//! sharing the etcd repository, the `auks` CLI as the users and
//! `auksdrenewer`: propagation, sealing at rest, kill -9 of the primary,
//! etcd member and quorum loss, one clean stage and one renewal pass per
//! cluster. Migration and administration: tests/ha_migrate.rs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use base64::Engine;
use common::etcd::*;
use common::*;

#[test]
fn add_get_remove_across_instances_and_nothing_in_clear_in_etcd() {
    let ha = Ha::start(3, AuksdOpts::default());
    let alice = alice();
    let cc = ha.realm.user_ccache(&alice, "alice-Pw-1");
    let admin = admin_cc(&ha.realm, ha.dir.path());
    let via: Vec<PathBuf> = (0..3).map(|i| ha.conf(i, i)).collect();

    assert_ok(&auks(&ha.realm, &via[0], &cc, Some(&alice), &["-a"]));
    for (i, conf) in via.iter().enumerate().skip(1) {
        let t = wait_until(Duration::from_secs(1), || get_ok(&ha, conf, &alice, &admin));
        assert!(
            t.is_some(),
            "GET through instance {i} failed for 1 s\n{}",
            ha.logs()
        );
    }
    // REMOVE through instance 1: every instance says "no credential".
    assert_ok(&auks(
        &ha.realm,
        &via[1],
        &cc,
        Some(&alice),
        &["-r", "-u", &alice.uid.to_string()],
    ));
    for (i, conf) in via.iter().enumerate() {
        let t = wait_until(Duration::from_secs(1), || {
            !get_ok(&ha, conf, &alice, &admin)
        });
        assert!(
            t.is_some(),
            "instance {i} still serves a removed credential"
        );
    }
    let o = auks(
        &ha.realm,
        &via[2],
        &admin,
        None,
        &["-g", "-u", &alice.uid.to_string()],
    );
    assert_fail(&o, 6);

    // Stored again; what etcd holds has no ticket bytes, in clear or base64.
    assert_ok(&auks(&ha.realm, &via[2], &cc, Some(&alice), &["-a"]));
    let ctx = auks::krb5::Context::new().unwrap();
    let krb_cred =
        auks::cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", cc.display()))).unwrap();
    let o = ha.cluster.etcdctl(&["get", "--prefix", PREFIX]);
    assert!(o.status.success(), "{}", out(&o));
    let raw = o.stdout;
    assert!(raw.windows(9).any(|w| w == b"AUKSSEAL1"), "no sealed value");
    let o = ha
        .cluster
        .etcdctl(&["get", "--prefix", PREFIX, "-w", "json"]);
    let json = o.stdout;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&krb_cred[..]);
    let mut checked = 0;
    for start in (0..krb_cred.len().saturating_sub(24)).step_by(3) {
        let w = &krb_cred[start..start + 24];
        assert!(
            !raw.windows(24).any(|x| x == w) && !json.windows(24).any(|x| x == w),
            "24 bytes of the credential at offset {start} are in etcd in clear"
        );
        let b = &b64.as_bytes()[start / 3 * 4..start / 3 * 4 + 32];
        assert!(
            !json.windows(32).any(|x| x == b) && !raw.windows(32).any(|x| x == b),
            "the credential's base64 at offset {start} is in etcd"
        );
        checked += 1;
    }
    assert!(checked > 100, "credential too small to check: {checked}");
}

#[test]
fn kill_9_of_the_primary_loses_no_acknowledged_add() {
    // A generous Timeout: a dead primary refuses at once, and a loaded
    // test machine must not turn a slow answer into a failure.
    let opts = AuksdOpts {
        timeout: 8,
        retries: 1,
        ..AuksdOpts::default()
    };
    let mut ha = Ha::start(2, opts);
    let users = [
        (alice(), "alice-Pw-1"),
        (bob(), "bob-Pw-2"),
        (carol(), "carol-Pw-3"),
        (ensure_user("dave", 3004), "dave-Pw-4"),
    ];
    let ccs: Vec<PathBuf> = users
        .iter()
        .map(|(u, pw)| ha.realm.user_ccache(u, pw))
        .collect();
    let admin = admin_cc(&ha.realm, ha.dir.path());
    let conf = ha.conf(0, 1);
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    // Per client: acknowledged ADDs, and failures of requests started
    // after the kill.
    type Tally = (usize, usize, Vec<String>);
    let results: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = users
            .iter()
            .zip(&ccs)
            .map(|((u, pw), cc)| {
                let (killed_at, stop, conf, admin, ha) = (&killed_at, &stop, &conf, &admin, &ha);
                s.spawn(move || {
                    let mut acked = 0;
                    let mut gets = 0;
                    let mut late_failures = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        let started = Instant::now();
                        let after_kill = killed_at.lock().unwrap().is_some_and(|k| started > k);
                        // A new ticket each time: the last acknowledged
                        // one must be what the survivor serves.
                        ha.realm
                            .kinit_password(&u.name, pw, cc, &["-f", "-r", "1d"]);
                        chown(cc, u);
                        let o = auks(&ha.realm, conf, cc, Some(u), &["-a"]);
                        if o.status.success() {
                            acked += 1;
                            fs::copy(cc, cc.with_extension("acked")).unwrap();
                        } else if after_kill {
                            late_failures.push(format!("ADD: {}", out(&o)));
                        }
                        let started = Instant::now();
                        let after_kill = killed_at.lock().unwrap().is_some_and(|k| started > k);
                        if get_ok(ha, conf, u, admin) {
                            gets += 1;
                        } else if after_kill {
                            late_failures.push(format!("GET of uid {}", u.uid));
                        }
                    }
                    (acked, gets, late_failures)
                })
            })
            .collect();
        sleep(Duration::from_secs(3));
        let pid = nix::unistd::Pid::from_raw(ha.instances[0].pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        *killed_at.lock().unwrap() = Some(Instant::now());
        sleep(Duration::from_secs(4));
        stop.store(true, Ordering::SeqCst);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(!ha.instances[0].alive(), "primary still alive");
    for ((u, _), (acked, gets, late)) in users.iter().zip(&results) {
        assert!(
            *acked > 2 && *gets > 2,
            "{}: {acked} ADDs, {gets} GETs",
            u.name
        );
        assert!(
            late.is_empty(),
            "{}: requests failed after the kill: {late:?}\n{}",
            u.name,
            ha.logs()
        );
        // Every acknowledged ADD is served by the survivor.
        let only_b = ha.conf(1, 1);
        assert!(get_ok(&ha, &only_b, u, &admin), "{} lost", u.name);
        let ctx = auks::krb5::Context::new().unwrap();
        let read = |p: &Path| {
            auks::cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", p.display()))).unwrap()
        };
        let served = read(&ha.dir.path().join(format!("got-{}", u.uid)));
        let last_acked =
            read(&ccs[users.iter().position(|x| x.0 == *u).unwrap()].with_extension("acked"));
        assert!(
            auks::cred::same_tickets(&ctx, &served, &last_acked),
            "{}: the survivor does not serve the last acknowledged credential",
            u.name
        );
    }
}

#[test]
fn etcd_member_loss_quorum_loss_and_recovery_as_clients_see_them() {
    let opts = AuksdOpts {
        timeout: 8,
        ..AuksdOpts::default()
    };
    let mut ha = Ha::start(2, opts);
    let alice = alice();
    let bob = bob();
    let a_cc = ha.realm.user_ccache(&alice, "alice-Pw-1");
    let b_cc = ha.realm.user_ccache(&bob, "bob-Pw-2");
    let admin = admin_cc(&ha.realm, ha.dir.path());
    let conf = ha.conf(0, 1);
    let only_b = ha.conf(1, 1);
    assert_ok(&auks(&ha.realm, &conf, &a_cc, Some(&alice), &["-a"]));

    // One member down: no client sees anything.
    ha.cluster.kill(2);
    for _ in 0..5 {
        assert_ok(&auks(&ha.realm, &conf, &b_cc, Some(&bob), &["-a"]));
        assert!(get_ok(&ha, &only_b, &alice, &admin));
        assert!(get_ok(&ha, &only_b, &bob, &admin));
    }
    assert_ok(&auks(
        &ha.realm,
        &conf,
        &b_cc,
        Some(&bob),
        &["-r", "-u", &bob.uid.to_string()],
    ));

    // Quorum lost: GETs served from the last view, ADDs refused, saying why.
    ha.cluster.kill(1);
    for c in [&conf, &only_b] {
        assert!(get_ok(&ha, c, &alice, &admin), "GET without quorum");
    }
    let t = Instant::now();
    let o = auks(&ha.realm, &conf, &b_cc, Some(&bob), &["-a"]);
    assert!(!o.status.success(), "ADD without quorum succeeded");
    let text = out(&o);
    assert!(
        text.contains("etcd") && text.contains("quorum"),
        "the refusal does not say why:\n{text}"
    );
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    assert!(!get_ok(&ha, &only_b, &bob, &admin));

    // Restored: ADDs work again, every instance converges.
    ha.cluster.restart(1);
    ha.cluster.restart(2);
    ha.cluster.wait_healthy(Duration::from_secs(30));
    let ok = wait_until(Duration::from_secs(20), || {
        auks(&ha.realm, &conf, &b_cc, Some(&bob), &["-a"])
            .status
            .success()
    });
    assert!(ok.is_some(), "ADD never worked again\n{}", ha.logs());
    let only_a = ha.conf(0, 0);
    for c in [&only_a, &only_b] {
        let t = wait_until(Duration::from_secs(2), || get_ok(&ha, c, &bob, &admin));
        assert!(t.is_some(), "not converged\n{}", ha.logs());
    }
    // A restarted instance serves as soon as it has synced.
    ha.instances[1].restart();
    assert!(get_ok(&ha, &only_b, &alice, &admin));
    assert!(get_ok(&ha, &only_b, &bob, &admin));
}

#[test]
fn renewal_pass_runs_once_per_delay_across_the_cluster() {
    let realm_opts = RealmOpts {
        max_life: "60s",
        max_renew: "1h",
        ..RealmOpts::default()
    };
    let realm = Realm::start_with(realm_opts);
    let cluster = EtcdCluster::start(3);
    let keys = temp_dir("auks-keys-");
    let keyfile = keys.path().join("seal.keys");
    auksd_etcd(&["genkey", "k1", keyfile.to_str().unwrap()]);
    let opts = AuksdOpts {
        extra_auksd: etcd_lines(&cluster, &keyfile),
        // renewer: every pass renews (life 60 s < MinLifeTime), every 3 s
        extra_renewer: "LogLevel = 1 ; Delay = 3 ; MinLifeTime = 3000 ;".into(),
        ..AuksdOpts::default()
    };
    let a = Auksd::start(&realm, opts.clone());
    let b = Auksd::start(&realm, opts);
    let dir = temp_dir("auks-ha-renew-");
    let alice = alice();
    let cc = realm.user_ccache(&alice, "alice-Pw-1");
    let admin = admin_cc(&realm, dir.path());
    let conf_a = dir.path().join("a.conf");
    let conf_b = dir.path().join("b.conf");
    a.write_client_conf(&conf_a, a.port(), b.port());
    b.write_client_conf(&conf_b, b.port(), a.port());
    assert_ok(&auks(&realm, &conf_a, &cc, Some(&alice), &["-a"]));

    let spawn = |conf: &Path, log: &Path| {
        let f = fs::File::create(log).unwrap();
        let mut c = realm.command(env!("CARGO_BIN_EXE_auksdrenewer"));
        c.arg("-F")
            .arg("-f")
            .arg(conf)
            .env("KRB5CCNAME", format!("FILE:{}", admin.display()))
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        c.spawn().unwrap()
    };
    let (la, lb) = (dir.path().join("ra.log"), dir.path().join("rb.log"));
    let t0 = Instant::now();
    let mut ra = spawn(&conf_a, &la);
    let mut rb = spawn(&conf_b, &lb);
    sleep(Duration::from_secs(10));
    let elapsed = t0.elapsed().as_secs();
    for r in [&mut ra, &mut rb] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(r.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = r.wait();
    }
    let count = |p: &Path| {
        fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| l.contains(&format!("uid {}", alice.uid)) && l.contains(": renewed"))
            .count()
    };
    let (na, nb) = (count(&la), count(&lb));
    let logs = format!(
        "--- ra ---\n{}\n--- rb ---\n{}",
        fs::read_to_string(&la).unwrap(),
        fs::read_to_string(&lb).unwrap()
    );
    let passes = elapsed / 3 + 1;
    assert!(na + nb >= 2, "no renewal at all ({na} + {nb})\n{logs}");
    assert!(
        na + nb <= passes as usize,
        "{na} + {nb} renewals in {elapsed} s with Delay 3: more than one per Delay\n{logs}"
    );
    assert!(na == 0 || nb == 0, "both renewers renewed\n{logs}");
    assert!(logs.contains("one pass per cluster"), "{logs}");
}

#[test]
fn clean_stage_runs_once_per_cluster() {
    let realm = Realm::start_with(RealmOpts {
        max_life: "12s",
        max_renew: "12s",
        ..RealmOpts::default()
    });
    let cluster = EtcdCluster::start(3);
    let keys = temp_dir("auks-keys-");
    let keyfile = keys.path().join("seal.keys");
    auksd_etcd(&["genkey", "k1", keyfile.to_str().unwrap()]);
    let opts = AuksdOpts {
        extra_auksd: format!("CleanDelay = 1 ; {}", etcd_lines(&cluster, &keyfile)),
        ..AuksdOpts::default()
    };
    let a = Auksd::start(&realm, opts.clone());
    let b = Auksd::start(&realm, opts);
    let dir = temp_dir("auks-ha-clean-");
    let conf = dir.path().join("c.conf");
    a.write_client_conf(&conf, a.port(), b.port());
    let users = [(alice(), "alice-Pw-1"), (bob(), "bob-Pw-2")];
    for (u, pw) in &users {
        let cc = realm.user_ccache(u, pw);
        assert_ok(&auks(&realm, &conf, &cc, Some(u), &["-a"]));
    }
    let removed = |d: &Auksd| {
        d.log()
            .lines()
            .filter(|l| l.contains("clean stage") && l.contains("removed"))
            .count()
    };
    let t = wait_until(Duration::from_secs(30), || removed(&a) + removed(&b) >= 2);
    assert!(
        t.is_some(),
        "expired credentials not cleaned\n{}{}",
        a.log(),
        b.log()
    );
    sleep(Duration::from_secs(3));
    let (ra, rb) = (removed(&a), removed(&b));
    assert_eq!(
        ra + rb,
        2,
        "each expired credential is removed once: {ra} + {rb}"
    );
    assert!(ra == 0 || rb == 0, "both instances removed credentials");
    // The other instance left every stage to the lock holder.
    let (holder, other) = if ra > 0 { (&a, &b) } else { (&b, &a) };
    let left = |d: &Auksd| {
        d.log()
            .matches("left to the holder of the clean lock")
            .count()
    };
    assert_eq!(
        left(holder),
        0,
        "the holder skipped a stage\n{}",
        holder.log()
    );
    assert!(
        left(other) >= 5,
        "the other instance did not skip\n{}",
        other.log()
    );
    let o = cluster.etcdctl(&["get", "--prefix", &format!("{PREFIX}cred/"), "--keys-only"]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).trim().is_empty(),
        "expired credentials left in etcd: {}",
        out(&o)
    );
}
