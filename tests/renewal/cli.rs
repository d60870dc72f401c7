//! `auks -R once` and `auks -R loop` (spec §8.3) and the HelperScript run
//! after a renewal (§8.4), for one user with a fresh 60 s ticket.

use super::*;

/// One user with a fresh 60 s ticket and an auksd.
struct Job {
    auksd: Auksd,
    realm: Realm,
    user: LocalUser,
    cc: PathBuf,
    dir: tempfile::TempDir,
}

fn job(max_renew: &'static str) -> Job {
    let realm = short_realm(max_renew);
    let user = alice();
    let cc = realm.user_ccache(&user, ALICE_PW);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    Job {
        auksd,
        realm,
        user,
        cc,
        dir: temp_dir("auks-renew-test-"),
    }
}

impl Job {
    fn conf(&self, name: &str, delay: u64, min_life: u64, extra_api: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        client_conf(&self.auksd, &p, delay, min_life, extra_api);
        p
    }

    /// `auks <args>` as the user, KRB5CCNAME = `cc`.
    fn auks_on(&self, conf: &Path, cc: &Path, args: &[&str]) -> Output {
        AuksRun::new(&self.realm, conf)
            .ccache(cc)
            .user(&self.user)
            .args(args)
            .run()
    }

    fn auks(&self, conf: &Path, args: &[&str]) -> Output {
        self.auks_on(conf, &self.cc, args)
    }

    /// A fresh ticket for the user in `<user dir>/<name>`.
    fn kinit(&self, name: &str) -> PathBuf {
        let cc = self.realm.user_dir(&self.user).join(name);
        self.realm
            .kinit_password(&self.user.name, ALICE_PW, &cc, &["-f", "-r", "1d"]);
        chown(&cc, &self.user);
        cc
    }

    /// `auks -R loop` (plus `extra` options) as the user, in the background.
    fn spawn_loop(&self, conf: &Path, extra: &[&str], log: &str) -> Bg {
        let mut c = self.realm.command(bin("auks"));
        c.env("AUKS_CONF", conf)
            .env("KRB5CCNAME", format!("FILE:{}", self.cc.display()))
            .env("USER", &self.user.name)
            .env("HOME", "/");
        std::os::unix::process::CommandExt::uid(&mut c, self.user.uid);
        std::os::unix::process::CommandExt::gid(&mut c, self.user.gid);
        c.args(extra).args(["-R", "loop"]);
        Bg::spawn(c, &self.dir.path().join(log))
    }
}

#[test]
fn once_on_fresh_ticket_exits_0_and_changes_nothing() {
    let j = job("15m");
    let conf = j.conf("fresh.conf", 60, 10, "");
    let before = fs::read(&j.cc).unwrap();
    let snap = dir_snapshot(j.cc.parent().unwrap());
    // Without -v the renewer LogFile (not writable by the user) is used:
    // that must not break anything.
    let o = j.auks(&conf, &["-R", "once"]);
    assert_ok(&o);
    let o = j.auks(&conf, &["-v", "-R", "once"]);
    assert_ok(&o);
    assert!(stderr_of(&o).contains("nothing to do"), "{}", out(&o));
    // (never print ccache bytes: they hold a session key)
    assert!(fs::read(&j.cc).unwrap() == before, "ccache content changed");
    assert_eq!(
        dir_snapshot(j.cc.parent().unwrap()),
        snap,
        "user directory changed"
    );
    // nothing was asked from auksd
    assert!(!j.auksd.log().contains("get request"), "{}", j.auksd.log());
}

#[test]
fn once_renews_a_due_ticket_at_the_kdc() {
    let j = job("15m");
    // MinLifeTime above the 60 s lifetime: the fresh ticket is due at once
    let conf = j.conf("due.conf", 60, 120, "");
    // auksd holds the very same credential: it is not fresher (§11.17)
    assert_ok(&j.auks(&conf, &["-a"]));
    let t0 = cc_times(&j.cc);
    let k0 = klist_tgt_line(&j.realm, &j.cc);
    sleep(Duration::from_secs(2));
    let o = j.auks(&conf, &["-v", "-R", "once"]);
    assert_ok(&o);
    let err = stderr_of(&o);
    assert!(err.contains("not fresher"), "{}", out(&o));
    assert!(err.contains("renewed by renewal at the KDC"), "{}", out(&o));
    let t1 = cc_times(&j.cc);
    assert!(
        t1.endtime >= t0.endtime + 2,
        "endtime {} -> {}",
        t0.endtime,
        t1.endtime
    );
    assert_eq!(t1.renew_till, t0.renew_till);
    assert!(klist_s(&j.realm, &j.cc));
    let k1 = klist_tgt_line(&j.realm, &j.cc);
    assert_ne!(k0, k1, "klist shows the same expiry");
    assert_eq!(mode_owner(&j.cc), (0o600, j.user.uid));
    assert_eq!(j.realm.ccache_principal(&j.cc), "alice@TEST.REALM");
    assert_no_leftovers(j.cc.parent().unwrap());
    assert!(
        j.auksd.log().contains("get request uid=3001 succeed"),
        "{}",
        j.auksd.log()
    );
}

#[test]
fn once_prefers_a_fresher_credential_from_auksd() {
    let j = job("15m");
    let conf = j.conf("fresher.conf", 60, 50, "");
    // wait until our ticket is within the 50 s threshold
    sleep(Duration::from_secs(12));
    let newer = j.kinit("newer");
    assert_ok(&j.auks_on(&conf, &newer, &["-a"]));
    let tn = cc_times(&newer);
    let t0 = cc_times(&j.cc);
    assert!(tn.endtime > t0.endtime);
    let o = j.auks(&conf, &["-v", "-R", "once"]);
    assert_ok(&o);
    assert!(
        stderr_of(&o).contains("renewed by a fresher credential from auksd"),
        "{}",
        out(&o)
    );
    assert_eq!(cc_times(&j.cc), tn);
    assert_eq!(mode_owner(&j.cc), (0o600, j.user.uid));
}

#[test]
fn once_on_a_due_ticket_that_cannot_be_renewed_exits_11() {
    let realm = short_realm("15m");
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    let dir = temp_dir("auks-renew-test-");
    let conf = dir.path().join("due.conf");
    client_conf(&auksd, &conf, 60, 120, "");
    let run = |user: &LocalUser, cc: &Path| {
        AuksRun::new(&realm, &conf)
            .ccache(cc)
            .user(user)
            .args(&["-R", "once"])
            .run()
    };
    // not renewable at all
    let bob = bob();
    realm.ensure_principal(&bob.name, BOB_PW);
    realm.kadmin(&format!(
        "modprinc -allow_renewable {}",
        realm.princ(&bob.name)
    ));
    let cc = realm.user_ccache(&bob, BOB_PW);
    assert_eq!(
        cc_times(&cc).renew_till,
        0,
        "ticket should not be renewable"
    );
    let before = cc_times(&cc);
    assert_fail_with(&run(&bob, &cc), 11, "not renewable");
    // (authenticating the GET to auksd may add a service ticket to it)
    assert_eq!(cc_times(&cc), before);
    // renewable period already over (renew_till = start time)
    let carol = carol();
    realm.ensure_principal(&carol.name, "carol-Pw-3");
    realm.kadmin(&format!(
        "modprinc -maxrenewlife 0 {}",
        realm.princ(&carol.name)
    ));
    let cc = realm.user_ccache(&carol, "carol-Pw-3");
    let t = cc_times(&cc);
    assert!(t.renew_till > 0 && t.renew_till < t.endtime, "{t:?}");
    assert_fail_with(&run(&carol, &cc), 11, "cannot extend");
    // a missing ccache is a local ccache problem (7) in once mode
    assert_fail(&run(&bob, &dir.path().join("nope")), 7);
}

// ---------------------------------------------------------------------------
// HelperScript

#[test]
fn helper_script_failure_exits_10_and_missing_helper_is_ignored() {
    let j = job("15m");
    let scripts = temp_dir("auks-helper-");
    let fail = scripts.path().join("fail.sh");
    write_file(&fail, "#!/bin/sh\nexit 3\n", 0o755);
    let seen = j.realm.user_dir(&j.user).join("helper.out");
    let good = scripts.path().join("good.sh");
    write_file(
        &good,
        format!(
            "#!/bin/sh\necho \"$# $(id -u) $KRB5CCNAME\" > {}\n",
            seen.display()
        ),
        0o755,
    );
    sleep(Duration::from_secs(1));

    // failing helper: the renewal is stored, the command exits 10
    let conf = j.conf(
        "fail.conf",
        60,
        120,
        &format!("HelperScript = \"{}\" ;", fail.display()),
    );
    let t0 = cc_times(&j.cc);
    let o = j.auks(&conf, &["-R", "once"]);
    assert_fail_with(&o, 10, "status 3");
    assert!(cc_times(&j.cc).endtime > t0.endtime, "renewal not stored");

    // missing helper: logged and ignored
    sleep(Duration::from_secs(1));
    let conf = j.conf(
        "missing.conf",
        60,
        120,
        &format!("HelperScript = \"{}/nope.sh\" ;", scripts.path().display()),
    );
    let o = j.auks(&conf, &["-v", "-R", "once"]);
    assert_ok(&o);
    assert!(stderr_of(&o).contains("ignored"), "{}", out(&o));

    // working helper: no arguments, run as the user, KRB5CCNAME set
    sleep(Duration::from_secs(1));
    let conf = j.conf(
        "good.conf",
        60,
        120,
        &format!("HelperScript = \"{}\" ;", good.display()),
    );
    assert_ok(&j.auks(&conf, &["-R", "once"]));
    assert_eq!(
        fs::read_to_string(&seen).unwrap().trim(),
        format!("0 {} FILE:{}", j.user.uid, j.cc.display())
    );

    // a helper is not run when nothing was renewed
    fs::remove_file(&seen).unwrap();
    let conf = j.conf(
        "fresh.conf",
        60,
        5,
        &format!("HelperScript = \"{}\" ;", good.display()),
    );
    assert_ok(&j.auks(&conf, &["-R", "once"]));
    assert!(!seen.exists());
}

// ---------------------------------------------------------------------------
// auks -R loop

#[test]
fn loop_renews_then_exits_when_the_ccache_is_removed() {
    let j = job("15m");
    let conf = j.conf("loop.conf", 3, 50, "");
    let t0 = cc_times(&j.cc);
    let mut r = j.spawn_loop(&conf, &["-v"], "loop.log");
    // due after ~10 s
    let start = Instant::now();
    while cc_times(&j.cc).endtime <= t0.endtime {
        assert!(r.running(), "renewer exited\n{}", r.log());
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "not renewed\n{}",
            r.log()
        );
        sleep(Duration::from_millis(500));
    }
    assert!(klist_s(&j.realm, &j.cc));
    assert_eq!(mode_owner(&j.cc), (0o600, j.user.uid));
    assert!(r.running(), "renewer exited\n{}", r.log());
    // the job ends: its ccache is destroyed
    fs::remove_file(&j.cc).unwrap();
    let st = r.wait(Duration::from_secs(10));
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(0),
        "renewer did not exit cleanly\n{}",
        r.log()
    );
    assert!(r.log().contains("no longer exists"), "{}", r.log());
    assert_no_leftovers(j.cc.parent().unwrap());

    // SIGTERM (what the SPANK plugin sends) stops it cleanly too
    let cc = j.kinit("cc");
    assert_eq!(cc, j.cc);
    let mut r = j.spawn_loop(&conf, &["-v"], "loop2.log");
    sleep(Duration::from_secs(1));
    assert!(r.running(), "{}", r.log());
    r.signal(nix::sys::signal::Signal::SIGTERM);
    let st = r.wait(Duration::from_secs(5));
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{}", r.log());
    assert!(r.log().contains("stopped by a signal"), "{}", r.log());
}
