//! auksd life cycle on a real KDC: the repository survives a restart (start-up
//! load from CacheDir), SIGHUP reloads the ACL and the repository, SIGTERM
//! exits cleanly, and the clean stage drops expired credentials.

mod common;

use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal auksd");
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Fx {
    realm: Realm,
    auksd: Auksd,
    alice: LocalUser,
    alice_cc: PathBuf,
}

fn setup(opts: AuksdOpts, realm: Realm) -> Fx {
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let auksd = Auksd::start(&realm, opts);
    Fx {
        realm,
        auksd,
        alice,
        alice_cc,
    }
}

impl Fx {
    fn alice(&self, args: &[&str]) -> std::process::Output {
        auks(
            &self.realm,
            &self.auksd.conf_path(),
            &self.alice_cc,
            Some(&self.alice),
            args,
        )
    }
}

#[test]
fn repository_survives_restart_and_sigterm_is_clean() {
    let mut f = setup(AuksdOpts::default(), Realm::start());
    assert_ok(&f.alice(&["-a"]));
    let file = f.auksd.cache_file(f.alice.uid);
    assert!(file.exists());
    // A stray file that is not a ccache is reported and left in place; a
    // file whose name holds no uid is ignored (and said so).
    let junk = f.auksd.cache_dir().join("aukscc_4242");
    write_file(&junk, b"not a ccache", 0o600);
    let odd = f.auksd.cache_dir().join("aukscc_junk");
    write_file(&odd, b"not a ccache", 0o600);

    let pid = f.auksd.pid();
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    wait_for("auksd to exit on SIGTERM", Duration::from_secs(10), || {
        !pid_alive(pid)
    });
    let log = f.auksd.log();
    assert!(log.contains("termination requested"), "{log}");
    assert!(file.exists(), "SIGTERM must not remove stored credentials");

    f.auksd.restart();
    let uid = f.alice.uid.to_string();
    let got = f.realm.user_dir(&f.alice).join("after-restart.cc");
    assert_ok(&f.alice(&["-g", "-u", &uid, "-C", &format!("FILE:{}", got.display())]));
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
    let log = f.auksd.log();
    assert!(
        log.contains(&format!("uid {uid} principal alice@TEST.REALM")),
        "{log}"
    );
    assert!(
        log.contains("cannot load") && log.contains("aukscc_4242"),
        "{log}"
    );
    assert!(log.contains("ignored aukscc_junk"), "{log}");
    assert!(
        log.contains("repository loaded: 1 credentials in"),
        "one summary line: {log}"
    );
    assert!(junk.exists(), "unreadable cache files are left in place");
    assert!(odd.exists(), "other files are left in place");
}

#[test]
fn sighup_reloads_the_acl_and_the_repository() {
    let mut f = setup(AuksdOpts::default(), Realm::start());
    assert_ok(&f.alice(&["-p"]));
    // Deny everyone, reload: alice is refused with a clear reason.
    std::fs::write(
        f.auksd.acl_path(),
        "rule { principal = ^nobody@TEST.REALM$ ; host = * ; role = user ; }\n",
    )
    .unwrap();
    let pid = f.auksd.pid();
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    wait_for("auksd to reload", Duration::from_secs(10), || {
        f.auksd.log().contains("reloading configuration")
    });
    let mut o = f.alice(&["-p"]);
    let t = Instant::now();
    while o.status.code() == Some(3) && t.elapsed() < Duration::from_secs(10) {
        // the listener is re-created during the reload
        std::thread::sleep(Duration::from_millis(200));
        o = f.alice(&["-p"]);
    }
    assert_fail_with(&o, 5, "permission denied");
    assert!(pid_alive(pid), "SIGHUP must not stop auksd");

    // Restore the ACL and reload: alice is served again.
    std::fs::write(f.auksd.acl_path(), DEFAULT_ACL).unwrap();
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    let mut o = f.alice(&["-a"]);
    let t = Instant::now();
    while !o.status.success() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        o = f.alice(&["-a"]);
    }
    assert_ok(&o);
    assert!(f.auksd.alive());
}

#[test]
fn clean_stage_drops_expired_credentials() {
    let realm = Realm::start_with(RealmOpts {
        max_life: "12s",
        max_renew: "12s",
        ..RealmOpts::default()
    });
    let f = setup(
        AuksdOpts {
            extra_auksd: "CleanDelay = 1 ;".into(),
            ..AuksdOpts::default()
        },
        realm,
    );
    assert_ok(&f.alice(&["-a"]));
    let file = f.auksd.cache_file(f.alice.uid);
    assert!(file.exists());
    wait_for(
        "the cleaner to remove the expired credential",
        Duration::from_secs(40),
        || !file.exists(),
    );
    // the line is written after the file is gone: wait for it too
    wait_for(
        "the clean stage's log line",
        Duration::from_secs(10),
        || {
            let log = f.auksd.log();
            log.contains("clean stage") && log.contains("removed")
        },
    );
    // alice's own ticket expired too, so use a fresh one to ask.
    let f2_cc = f.realm.user_ccache(&f.alice, ALICE_PW);
    let uid = f.alice.uid.to_string();
    let o = auks(
        &f.realm,
        &f.auksd.conf_path(),
        &f2_cc,
        Some(&f.alice),
        &["-g", "-u", &uid, "-C", "MEMORY:x"],
    );
    assert_fail_with(&o, 6, &format!("no credential stored for uid {uid}"));
}

#[test]
fn ipv6_client_and_dual_stack_daemon() {
    // PrimaryAddress = "" makes auksd bind the wildcard address (dual stack).
    let f = setup(
        AuksdOpts {
            extra_common: r#"PrimaryAddress = "" ;"#.into(),
            ..AuksdOpts::default()
        },
        Realm::start(),
    );
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        panic!("this machine has no IPv6 loopback; the IPv6 test cannot run here");
    }
    let v6_conf = f.realm.path().join("auks-v6.conf");
    let text = f
        .auksd
        .conf_text(f.auksd.port(), f.auksd.secondary_port())
        .replace(r#"PrimaryAddress = "" ;"#, r#"PrimaryAddress = "::1" ;"#)
        .replace("127.0.0.1", "::1");
    write_file(&v6_conf, text, 0o644);
    let o = auks(&f.realm, &v6_conf, &f.alice_cc, Some(&f.alice), &["-a"]);
    assert_ok(&o);
    let uid = f.alice.uid.to_string();
    let got = f.realm.user_dir(&f.alice).join("v6.cc");
    let o = auks(
        &f.realm,
        &v6_conf,
        &f.alice_cc,
        Some(&f.alice),
        &["-g", "-u", &uid, "-C", &format!("FILE:{}", got.display())],
    );
    assert_ok(&o);
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
    let log = f.auksd.log();
    assert!(log.contains("alice@TEST.REALM from ::1"), "{log}");
    // IPv4 clients still work against the same daemon.
    assert_ok(&f.alice(&["-p"]));
}

/// auksd keeps its keytab in memory but looks at the file once a second:
/// a key added by `ktadd` (a new kvno) is used within seconds without a
/// SIGHUP, and tickets under the previous key, still in the file, keep
/// working.
#[test]
fn rotated_service_key_is_used_without_a_reload() {
    // One worker, which copies the keytab at its first session.
    let opts = AuksdOpts {
        workers: 1,
        ..AuksdOpts::default()
    };
    let f = setup(opts, Realm::start());
    // A ticket under the current key (kept in alice's ccache).
    assert_ok(&f.alice(&["-p"]));
    let before = f.auksd.log().matches("reload").count();
    f.realm.kadmin(&format!(
        "ktadd -k {} {AUKSD_PRINCIPAL}",
        f.auksd.keytab_path().display()
    ));
    // A fresh TGT, so the next service ticket is under the new key.
    let fresh = f.realm.user_dir(&f.alice).join("fresh.cc");
    f.realm
        .kinit_password(&f.alice.name, ALICE_PW, &fresh, &["-f", "-r", "1d"]);
    chown(&fresh, &f.alice);
    let klist = |cc: &PathBuf| String::from_utf8_lossy(&f.realm.klist(cc).stdout).into_owned();
    assert!(!klist(&fresh).contains("auks/"), "{}", klist(&fresh));
    let t = Instant::now();
    loop {
        let o = auks(
            &f.realm,
            &f.auksd.conf_path(),
            &fresh,
            Some(&f.alice),
            &["-p"],
        );
        if o.status.success() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the new key is not used: {}\n{}",
            out(&o),
            f.auksd.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let kv = f.realm.kadmin(&format!("getprinc {AUKSD_PRINCIPAL}"));
    assert!(kv.contains("vno 2") || kv.contains("vno 3"), "{kv}");
    // The ticket under the previous key still works.
    assert_ok(&f.alice(&["-p"]));
    assert_eq!(f.auksd.log().matches("reload").count(), before, "no reload");
}

/// A keytab that disappears (an admin rewriting it) is noticed within a
/// second: clients get an authentication error from libkrb5 (exit 4), not
/// a silently closed connection, and are served again once it is back.
#[test]
fn a_missing_keytab_gives_an_authentication_error_until_it_is_back() {
    let opts = AuksdOpts {
        workers: 1,
        ..AuksdOpts::default()
    };
    let f = setup(opts, Realm::start());
    assert_ok(&f.alice(&["-p"]));
    let kt = f.auksd.keytab_path();
    let aside = kt.with_extension("aside");
    std::fs::rename(&kt, &aside).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let o = f.alice(&["-p"]);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", out(&o), f.auksd.log());
    std::fs::rename(&aside, &kt).unwrap();
    wait_for(
        "a ping once the keytab is back",
        Duration::from_secs(10),
        || f.alice(&["-p"]).status.success(),
    );
}
