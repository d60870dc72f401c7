//! systemd notifications end to end, without systemd: aukspriv (Type=notify,
//! WatchdogSec= in its unit) is started with `NOTIFY_SOCKET` pointing at a
//! datagram socket of this test and `WATCHDOG_USEC` set, as systemd would.
//! It must send READY=1 after its first refresh attempt (here one that
//! fails: no keytab, no KDC), then WATCHDOG=1 regularly, and STOPPING=1 on
//! SIGTERM.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn aukspriv_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aukspriv"))
        .arg("-F")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env("AUKS_PRIV_SYSLOG_PRIO", "none")
        .env("AUKS_PRIV_KEYTAB", dir.path().join("no.keytab"))
        .env(
            "AUKS_PRIV_CCACHE",
            format!("FILE:{}/cc", dir.path().display()),
        )
        .env("KRB5CCNAME", format!("FILE:{}/cc", dir.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut buf = [0u8; 1024];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("no notification within 10 s");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    assert_eq!(recv(), format!("READY=1\nMAINPID={pid}"));
    assert!(recv().starts_with("STATUS=next refresh in "));
    // WATCHDOG_USEC 0.4 s: a ping about every 0.2 s.
    let t = Instant::now();
    for _ in 0..3 {
        assert_eq!(recv(), "WATCHDOG=1");
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = recv();
        if m == "STOPPING=1" {
            break;
        }
        assert_eq!(m, "WATCHDOG=1", "unexpected notification");
        assert!(Instant::now() < deadline, "no STOPPING=1");
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// auksd (Type=notify): READY=1 once its port is open, RELOADING=1 then
/// READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM.
#[test]
fn auksd_notifies_ready_reloading_and_stopping() {
    let realm = Realm::start();
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut d = Auksd::start(
        &realm,
        AuksdOpts {
            env: vec![(
                "NOTIFY_SOCKET".into(),
                sock_path.to_string_lossy().into_owned(),
            )],
            ..AuksdOpts::default()
        },
    );
    let pid = d.pid();
    let mut buf = [0u8; 1024];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("no notification within 10 s");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    assert_eq!(recv(), format!("READY=1\nMAINPID={pid}"));
    let signal = |s| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), s).unwrap();
    signal(nix::sys::signal::Signal::SIGHUP);
    assert!(recv().starts_with("RELOADING=1"), "no RELOADING=1");
    assert_eq!(recv(), format!("READY=1\nMAINPID={pid}"));
    signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(recv(), "STOPPING=1");
    let st = d.stop();
    assert!(st.is_some_and(|s| s.success()), "{st:?}\n{}", d.log());
}
