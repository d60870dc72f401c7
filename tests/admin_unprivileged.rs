//! auksd as the systemd unit runs it: as an unprivileged service account
//! (`User=auks`), with only group read access to its keytab and its own
//! CacheDir. With a real KDC: alice adds her TGT, the admin (a host
//! principal) gets it back; the repository file belongs to the service
//! account, the daemon is not dumpable (PR_SET_DUMPABLE: its /proc files
//! belong to root), and its log holds no ticket-like data (no long base64
//! or hex run).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn conf(d: &Path, port: u16) -> String {
    let d = d.display();
    format!(
        r#"common {{
  PrimaryHost = "localhost" ; PrimaryAddress = "127.0.0.1" ; PrimaryPort = "{port}" ;
  PrimaryPrincipal = "{AUKSD_PRINCIPAL}" ;
  SecondaryHost = "localhost" ; SecondaryAddress = "127.0.0.1" ; SecondaryPort = "{port}" ;
  SecondaryPrincipal = "{AUKSD_PRINCIPAL}" ;
  Retries = 1 ; Timeout = 5 ; Delay = 1 ;
}}
api {{ LogLevel = 0 ; }}
auksd {{
  PrimaryKeytab = "{d}/auks.keytab" ; SecondaryKeytab = "{d}/auks.keytab" ;
  CacheDir = "{d}/cache" ; ACLFile = "{d}/auks.acl" ;
  LogFile = "{d}/auksd.log" ; LogLevel = 3 ; DebugLevel = 0 ;
  Workers = 2 ; ReplayCache = yes ;
}}
"#
    )
}

#[test]
fn auksd_serves_as_an_unprivileged_account() {
    let realm = Realm::start();
    let svc = ensure_user("auks-svc", 3901);
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let admin_princ = format!("host/{}@TEST.REALM", hostname());
    let admin_keytab = realm.path().join("host.keytab");
    realm.add_randkey_to_keytab(&admin_princ, &admin_keytab);
    let admin_cc = realm.path().join("admin.cc");
    realm.kinit_keytab(&admin_princ, &admin_keytab, &admin_cc);

    // The service's files, as the packaging sets them up.
    let dir = temp_dir("auksd-unpriv-");
    let d = dir.path();
    set_mode(d, 0o755);
    let keytab = d.join("auks.keytab");
    fs::copy(realm.service_keytab(AUKSD_PRINCIPAL), &keytab).unwrap();
    nix::unistd::chown(&keytab, Some(0.into()), Some(svc.gid.into())).unwrap();
    set_mode(&keytab, 0o640);
    fs::create_dir(d.join("cache")).unwrap();
    chown(&d.join("cache"), &svc);
    set_mode(&d.join("cache"), 0o700);
    write_file(&d.join("auks.acl"), DEFAULT_ACL, 0o644);
    write_file(&d.join("auksd.log"), "", 0o640);
    chown(&d.join("auksd.log"), &svc);
    // Port 0: the OS chooses, auksd logs the port it got.
    write_file(&d.join("auks.conf"), conf(d, 0), 0o644);

    let stderr = fs::File::create(d.join("auksd.stderr")).unwrap();
    let mut c = realm.command(env!("CARGO_BIN_EXE_auksd"));
    c.args(["-F", "-f"])
        .arg(d.join("auks.conf"))
        .uid(svc.uid)
        .gid(svc.gid)
        .stdin(Stdio::null())
        .stdout(stderr.try_clone().unwrap())
        .stderr(stderr);
    let mut daemon = Daemon(c.spawn().unwrap());
    let pid = daemon.0.id();
    let log = || {
        format!(
            "{}{}",
            fs::read_to_string(d.join("auksd.stderr")).unwrap_or_default(),
            fs::read_to_string(d.join("auksd.log")).unwrap_or_default()
        )
    };
    let start = Instant::now();
    let port = loop {
        if let Some(p) = last_listening_port(&log()) {
            break p;
        }
        if let Ok(Some(st)) = daemon.0.try_wait() {
            panic!("auksd exited ({st}) as uid {}:\n{}", svc.uid, log());
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "auksd never said where it listens\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    write_file(&d.join("auks.conf"), conf(d, port), 0o644);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = daemon.0.try_wait() {
            panic!("auksd exited ({st}) as uid {}:\n{}", svc.uid, log());
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no port\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Running as the account, and not dumpable: the files of /proc/<pid>
    // then belong to root instead of the process's uid.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == svc.uid.to_string()),
        "{uid_line}"
    );
    assert_eq!(
        fs::metadata(format!("/proc/{pid}/environ")).unwrap().uid(),
        0,
        "auksd is dumpable"
    );

    let run = |cc: &Path, user: Option<&LocalUser>, args: &[&str]| {
        let mut c = realm.command(env!("CARGO_BIN_EXE_auks"));
        c.arg("-f")
            .arg(d.join("auks.conf"))
            .args(args)
            .env("KRB5CCNAME", format!("FILE:{}", cc.display()));
        if let Some(u) = user {
            c.uid(u.uid).gid(u.gid);
        }
        run_cmd(&mut c, None, Duration::from_secs(30))
    };
    let o = run(&alice_cc, Some(&alice), &["-a"]);
    assert_ok(&o);
    let stored = d.join("cache").join(format!("aukscc_{}", alice.uid));
    let m = fs::metadata(&stored).unwrap_or_else(|e| panic!("{e}\n{}", log()));
    assert_eq!((m.uid(), m.mode() & 0o777), (svc.uid, 0o600));

    let got = d.join("got.cc");
    let o = run(
        &admin_cc,
        None,
        &[
            "-g",
            "-u",
            &alice.uid.to_string(),
            "-C",
            &format!("FILE:{}", got.display()),
        ],
    );
    assert_ok(&o);
    assert_eq!(realm.ccache_principal(&got), "alice@TEST.REALM");

    // No ticket-like data in what the daemon wrote.
    drop(daemon);
    let text = log();
    assert!(text.contains("auksd"), "empty log: {text}");
    let b64 = regex::Regex::new(r"[A-Za-z0-9+/]{48,}").unwrap();
    let hex = regex::Regex::new(r"[0-9a-fA-F]{32,}").unwrap();
    assert!(!b64.is_match(&text), "base64-like data in the log:\n{text}");
    assert!(!hex.is_match(&text), "hex data in the log:\n{text}");
}
