//! Renewal against a real KDC whose tickets live 60 s: `auks -R once|loop`
//! (spec §8.3), `HelperScript` (§8.4), `auksdrenewer` (§6) and `aukspriv`
//! (§7). Every test has its own realm, auksd and ports, so they run in
//! parallel; the long ones (auksdrenewer, aukspriv) last about 2.5 and
//! 1.5 minutes.

mod common;

use auks::renew::Times;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";
const BOB_PW: &str = "bob-Pw-2";

fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "auksdrenewer" => env!("CARGO_BIN_EXE_auksdrenewer"),
        "aukspriv" => env!("CARGO_BIN_EXE_aukspriv"),
        "auks" => env!("CARGO_BIN_EXE_auks"),
        _ => panic!("unknown binary {name}"),
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A background process, killed on drop; its stdout and stderr go to `log`.
struct Bg {
    child: Option<Child>,
    log: PathBuf,
}

impl Bg {
    fn spawn(mut cmd: Command, log: &Path) -> Bg {
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Bg {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Wait up to `t` for the process to exit.
    fn wait(&mut self, t: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Some(st);
            }
            if start.elapsed() > t {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_now(&mut c);
        }
    }
}

impl Bg {
    fn signal_now(&self, c: &mut Child) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Times of the TGT in a FILE ccache, read with the library.
fn cc_times(cc: &Path) -> Times {
    let ctx = auks::krb5::Context::new().unwrap();
    let data = auks::cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", cc.display())))
        .unwrap_or_else(|e| panic!("read {}: {e}", cc.display()));
    let m = auks::cred::meta(&ctx, &data).unwrap();
    Times::from(&m)
}

/// Default principal of a ccache, read with the library.
fn cc_principal(cc: &Path) -> String {
    let ctx = auks::krb5::Context::new().unwrap();
    let data = auks::cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", cc.display())))
        .unwrap_or_else(|e| panic!("read {}: {e}", cc.display()));
    auks::cred::meta(&ctx, &data).unwrap().principal
}

fn klist_s(realm: &Realm, cc: &Path) -> bool {
    let mut c = realm.command("klist");
    c.arg("-s").arg("-c").arg(format!("FILE:{}", cc.display()));
    run_cmd(&mut c, None, CMD_TIMEOUT).status.success()
}

/// The `klist` line of the local TGT (start, expiry, service).
fn klist_tgt_line(realm: &Realm, cc: &Path) -> String {
    let o = realm.klist(cc);
    assert!(o.status.success(), "klist failed\n{}", out(&o));
    stdout_of(&o)
        .lines()
        .find(|l| l.contains("krbtgt/TEST.REALM@TEST.REALM"))
        .unwrap_or_else(|| panic!("no TGT in klist output\n{}", out(&o)))
        .to_string()
}

/// No temporary `.auks-*` directory left next to a stored ccache.
#[track_caller]
fn assert_no_leftovers(dir: &Path) {
    let left: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".auks-"))
        .collect();
    assert!(
        left.is_empty(),
        "temporary files left in {}: {left:?}",
        dir.display()
    );
}

/// A realm with 60 s tickets renewable for `max_renew`.
fn short_realm(max_renew: &'static str) -> Realm {
    Realm::start_with(RealmOpts {
        max_life: "60s",
        max_renew,
        ..RealmOpts::default()
    })
}

/// Write a client auks.conf for `auksd` with the given renewer Delay and
/// MinLifeTime (renewer LogLevel 2) and extra `api` lines.
fn client_conf(auksd: &Auksd, path: &Path, delay: u64, min_life: u64, extra_api: &str) {
    let base = auksd.conf_text(auksd.port(), auksd.secondary_port());
    let renewer = "LogLevel = 1 ; Delay = 60 ; MinLifeTime = 300 ;";
    assert!(
        base.contains(renewer),
        "harness renewer block changed:\n{base}"
    );
    let mut text = base.replace(
        renewer,
        &format!("LogLevel = 2 ; Delay = {delay} ; MinLifeTime = {min_life} ;"),
    );
    if !extra_api.is_empty() {
        assert!(text.contains("api {\n"));
        text = text.replace("api {\n", &format!("api {{\n  {extra_api}\n"));
    }
    write_file(path, text, 0o644);
}

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

// ---------------------------------------------------------------------------
// auks -R once

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

// ---------------------------------------------------------------------------
// auksdrenewer

/// A keytab with a `host/` principal (admin in the default ACL) and an
/// aukspriv keeping its TGT fresh in `<dir>/renewer.cc`.
fn renewer_identity(realm: &Realm, dir: &Path) -> (PathBuf, Bg) {
    let princ = "host/renewer.test@TEST.REALM";
    let kt = dir.join("renewer.keytab");
    realm.add_randkey_to_keytab(princ, &kt);
    let cc = dir.join("renewer.cc");
    let mut c = realm.command(bin("aukspriv"));
    c.arg("-v")
        .env("AUKS_PRIV_KEYTAB", &kt)
        .env("AUKS_PRIV_PRINC", princ)
        .env("AUKS_PRIV_CCACHE", format!("FILE:{}", cc.display()))
        .env("AUKS_PRIV_LIFETIME", "60")
        .env("AUKS_PRIV_RENEW_INT", "20")
        .env("AUKS_PRIV_ERROR_INT", "2");
    let mut bg = Bg::spawn(c, &dir.join("aukspriv.log"));
    let start = Instant::now();
    while !cc.exists() {
        assert!(bg.running(), "aukspriv exited\n{}", bg.log());
        assert!(start.elapsed() < Duration::from_secs(20), "{}", bg.log());
        sleep(Duration::from_millis(100));
    }
    (cc, bg)
}

/// (uid, endtime, renew_till) rows of `auks -D`.
fn dump(realm: &Realm, conf: &Path, admin_cc: &Path) -> Vec<(u32, i64, i64)> {
    let o = auks(realm, conf, admin_cc, None, &["-D"]);
    assert_ok(&o);
    let t = |s: &str| {
        chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
            .unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
            .timestamp()
    };
    stdout_of(&o)
        .lines()
        .skip(1)
        .filter(|l| !l.contains("Auks API request succeed") && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "bad dump row {l:?}");
            (f[0].parse().unwrap(), t(f[3]), t(f[4]))
        })
        .collect()
}

#[test]
fn auksdrenewer_keeps_credentials_valid_until_renew_till() {
    let realm = short_realm("150s");
    let user = alice();
    let cc = realm.user_ccache(&user, ALICE_PW);
    let t0 = cc_times(&cc);
    assert!(
        t0.renew_till - t0.starttime <= 150 && t0.renew_till - t0.starttime >= 140,
        "{t0:?}"
    );
    let mut auksd = Auksd::start(&realm, AuksdOpts::default());
    // a short CleanDelay: rewrite the daemon configuration and restart it
    let text = fs::read_to_string(auksd.conf_path()).unwrap();
    assert!(text.contains("CleanDelay = 300"));
    write_file(
        &auksd.conf_path(),
        text.replace("CleanDelay = 300", "CleanDelay = 3"),
        0o644,
    );
    auksd.restart();

    let dir = temp_dir("auks-renewer-test-");
    let conf = dir.path().join("renewer.conf");
    client_conf(&auksd, &conf, 5, 40, "");
    let (admin_cc, _priv) = renewer_identity(&realm, dir.path());
    assert_ok(&auks(&realm, &conf, &cc, Some(&user), &["-a"]));

    let mut c = realm.command(bin("auksdrenewer"));
    c.arg("-F")
        .arg("-f")
        .arg(&conf)
        .env("KRB5CCNAME", format!("FILE:{}", admin_cc.display()));
    let mut r = Bg::spawn(c, &dir.path().join("renewer.stderr"));

    // Check every 5 s until the credential is gone from auksd.
    let mut ends: Vec<i64> = Vec::new();
    let mut hup_sent = false;
    loop {
        let n = now();
        assert!(r.running(), "auksdrenewer exited\n{}", r.log());
        let rows = dump(&realm, &conf, &admin_cc);
        match rows.iter().find(|(u, _, _)| *u == user.uid) {
            Some(&(_, end, till)) => {
                assert_eq!(till, t0.renew_till);
                // valid at every check until renew_till (after it, it
                // waits for auksd's cleaner)
                assert!(
                    end >= n || n >= t0.renew_till,
                    "stored credential expired at {end} (now {n})\n{}\n{}",
                    r.log(),
                    auksd.log()
                );
                if ends.last() != Some(&end) {
                    ends.push(end);
                }
            }
            None => {
                assert!(
                    n >= t0.renew_till,
                    "credential removed before its renewable period ended\n{}",
                    auksd.log()
                );
                break;
            }
        }
        assert!(
            n < t0.renew_till + 30,
            "credential not cleaned after renew_till\n{}",
            auksd.log()
        );
        if !hup_sent && n > t0.starttime + 50 {
            r.signal(nix::sys::signal::Signal::SIGHUP);
            hup_sent = true;
        }
        sleep(Duration::from_secs(5));
    }
    // valid across more than two ticket lifetimes, endtime moved forward
    // several times, the last renewal capped at renew_till
    assert!(ends.len() >= 4, "endtimes seen: {ends:?}\n{}", r.log());
    assert!(ends.windows(2).all(|w| w[1] > w[0]), "{ends:?}");
    assert_eq!(
        *ends.last().unwrap(),
        t0.renew_till,
        "{ends:?}\n{}",
        r.log()
    );
    assert!(t0.renew_till - t0.endtime > 60);

    let rlog = r.log();
    assert!(rlog.contains("renewed: end"), "{rlog}");
    assert!(rlog.contains("renewable period ends"), "{rlog}");
    assert!(rlog.contains("configuration reloaded"), "{rlog}");
    let alog = auksd.log();
    let adds = alog
        .lines()
        .filter(|l| {
            l.contains("host/renewer.test@TEST.REALM")
                && l.contains("add request succeed")
                && l.contains("replaced the stored one")
        })
        .count();
    assert!(
        adds >= 3,
        "auksd log shows {adds} ADDs by the renewer\n{alog}"
    );
    assert!(alog.contains("clean stage : uid 3001"), "{alog}");

    r.signal(nix::sys::signal::Signal::SIGTERM);
    let st = r.wait(Duration::from_secs(10));
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{}", r.log());
    assert!(r.log().contains("auksdrenewer : stopped"), "{}", r.log());
}

// ---------------------------------------------------------------------------
// aukspriv

#[test]
fn aukspriv_keeps_a_keytab_tgt_fresh() {
    let realm = short_realm("15m");
    let dir = temp_dir("aukspriv-test-");
    let kt = dir.path().join("host.keytab");
    // the host principal is not the first entry: it must be chosen anyway
    realm.add_randkey_to_keytab("aaa/first.entry@TEST.REALM", &kt);
    let host = format!("host/{}@TEST.REALM", hostname());
    realm.add_randkey_to_keytab(&host, &kt);
    realm.add_randkey_to_keytab("zzz/last.entry@TEST.REALM", &kt);
    let cc = dir.path().join("root.cc");
    let mut c = realm.command(bin("aukspriv"));
    c.arg("-v")
        .env("AUKS_PRIV_KEYTAB", &kt)
        .env("AUKS_PRIV_CCACHE", format!("FILE:{}", cc.display()))
        .env("AUKS_PRIV_LIFETIME", "60")
        .env("AUKS_PRIV_RENEW_INT", "20")
        .env("AUKS_PRIV_ERROR_INT", "2");
    let mut p = Bg::spawn(c, &dir.path().join("root.log"));

    // another account: its ccache must be owned by it, mode 0600
    let user = bob();
    let ucc = realm.user_dir(&user).join("priv.cc");
    let mut c = realm.command(bin("aukspriv"));
    c.arg("-v")
        .env("AUKS_PRIV_USER", &user.name)
        .env("AUKS_PRIV_KEYTAB", &kt)
        .env("AUKS_PRIV_CCACHE", format!("FILE:{}", ucc.display()))
        .env("AUKS_PRIV_LIFETIME", "60")
        .env("AUKS_PRIV_RENEW_INT", "20");
    let mut pu = Bg::spawn(c, &dir.path().join("user.log"));

    let start = Instant::now();
    let mut ends: Vec<i64> = Vec::new();
    // three refresh periods of 20 s, and more than one 60 s ticket lifetime
    while start.elapsed() < Duration::from_secs(72) {
        assert!(p.running(), "aukspriv exited\n{}", p.log());
        if cc.exists() {
            assert!(klist_s(&realm, &cc), "TGT not valid\n{}", p.log());
            let t = cc_times(&cc);
            assert!(t.endtime > now());
            if ends.last() != Some(&t.endtime) {
                ends.push(t.endtime);
            }
        } else {
            assert!(start.elapsed() < Duration::from_secs(10), "{}", p.log());
        }
        sleep(Duration::from_secs(2));
    }
    assert!(ends.len() >= 4, "refreshes seen: {ends:?}\n{}", p.log());
    assert_eq!(cc_principal(&cc), host);
    assert_eq!(mode_owner(&cc), (0o600, 0));
    let log = p.log();
    assert!(
        log.matches(&format!("{host} valid until")).count() >= ends.len(),
        "{log}"
    );
    assert_no_leftovers(dir.path());

    assert!(pu.running(), "{}", pu.log());
    assert!(ucc.exists(), "{}", pu.log());
    assert_eq!(mode_owner(&ucc), (0o600, user.uid), "{}", pu.log());
    assert!(klist_s(&realm, &ucc));
    assert_eq!(cc_principal(&ucc), host);
    assert_no_leftovers(ucc.parent().unwrap());

    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        p.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
    assert!(p.log().contains("stopped"), "{}", p.log());
}

// ---------------------------------------------------------------------------
// cross-realm TGT (§11.17)

/// Services of the TGTs in a FILE ccache, as `klist` lists them.
fn klist_tgts(realm: &Realm, cc: &Path) -> Vec<String> {
    let o = realm.klist(cc);
    assert!(o.status.success(), "klist failed\n{}", out(&o));
    stdout_of(&o)
        .split_whitespace()
        .filter(|w| w.starts_with("krbtgt/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn cross_realm_ticket_survives_renewal() {
    let realm = short_realm("15m");
    // a trust towards OTHER.REALM: the KDC of TEST.REALM issues its TGTs
    realm.kadmin("addprinc -randkey krbtgt/OTHER.REALM@TEST.REALM");
    let user = alice();
    let cc = realm.user_ccache(&user, ALICE_PW);
    let auksd = Auksd::start(
        &realm,
        AuksdOpts {
            extra_common: "CrossRealm = \"OTHER.REALM\" ;".into(),
            ..AuksdOpts::default()
        },
    );
    let dir = temp_dir("auks-cross-test-");
    let cross = "krbtgt/OTHER.REALM@TEST.REALM".to_string();

    // auks -R once with CrossRealm set: the renewed job ccache gets it
    let conf = dir.path().join("cross.conf");
    client_conf(&auksd, &conf, 60, 120, "");
    assert!(!klist_tgts(&realm, &cc).contains(&cross));
    sleep(Duration::from_secs(1));
    let o = auks(&realm, &conf, &cc, Some(&user), &["-v", "-R", "once"]);
    assert_ok(&o);
    assert!(klist_tgts(&realm, &cc).contains(&cross), "{}", out(&o));

    // the stored credential holds it (auks -a with CrossRealm) ...
    assert_ok(&auks(&realm, &conf, &cc, Some(&user), &["-a"]));
    let stored = auksd.cache_file(user.uid);
    assert!(klist_tgts(&realm, &stored).contains(&cross));
    let t0 = cc_times(&stored);
    // ... and keeps it when auksdrenewer renews it, even though the
    // renewer's own configuration has no CrossRealm
    let rconf = dir.path().join("renewer.conf");
    client_conf(&auksd, &rconf, 2, 120, "");
    let text = fs::read_to_string(&rconf).unwrap();
    write_file(
        &rconf,
        text.replace("CrossRealm = \"OTHER.REALM\" ;", ""),
        0o644,
    );
    let (admin_cc, _priv) = renewer_identity(&realm, dir.path());
    sleep(Duration::from_secs(1));
    let mut c = realm.command(bin("auksdrenewer"));
    c.args(["-F", "-f"])
        .arg(&rconf)
        .env("KRB5CCNAME", format!("FILE:{}", admin_cc.display()));
    let mut r = Bg::spawn(c, &dir.path().join("renewer.stderr"));
    let start = Instant::now();
    while !r.log().contains("renewed: end") {
        assert!(r.running(), "{}", r.log());
        assert!(start.elapsed() < Duration::from_secs(20), "{}", r.log());
        sleep(Duration::from_millis(200));
    }
    sleep(Duration::from_millis(500));
    assert!(cc_times(&stored).endtime > t0.endtime, "{}", r.log());
    assert!(
        klist_tgts(&realm, &stored).contains(&cross),
        "cross-realm TGT lost\n{}",
        r.log()
    );
}
