//! SIGHUP under load (issue 12): a broken auks.conf, then a broken
//! auks.acl, then a fixed ACL with new rules. The daemon never stops
//! serving (a client pings all along and is never refused), a broken file
//! is reported with its file, line and reason and the previous
//! configuration kept, the fixed ACL applies, and the listening socket is
//! the same one throughout. `auksd -t` tells the good files from the bad
//! ones. The stored credential is unchanged.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

fn wait_log(auksd: &Auksd, needle: &str, nth: usize) {
    let t = Instant::now();
    while auksd.log().matches(needle).count() < nth {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no {needle:?} (#{nth}) in the log\n{}",
            auksd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `auksd -t -f conf`: exit status and stderr.
fn check(realm: &Realm, conf: &Path) -> (Option<i32>, String) {
    let mut c = realm.command(bin_path("auksd"));
    c.arg("-t").arg("-f").arg(conf);
    let o = run_cmd(&mut c, None, CMD_TIMEOUT);
    (o.status.code(), stderr_of(&o))
}

/// Inode of the socket listening on `port` (from /proc/net/tcp).
fn listener_inode(port: u16) -> Option<String> {
    let t = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let hex = format!(":{port:04X}");
    t.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1)?.ends_with(&hex) && *f.get(3)? == "0A").then(|| f[9].to_string())
    })
}

#[test]
fn sighup_with_broken_files_keeps_serving_and_new_rules_apply() {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    let conf = auksd.conf_path();
    assert_ok(&auks(&realm, &conf, &alice_cc, Some(&alice), &["-a"]));
    let file = auksd.cache_file(alice.uid);
    let before = std::fs::read(&file).unwrap();
    let good_conf = std::fs::read_to_string(&conf).unwrap();
    // The clients keep their own copy of the good file.
    let dir = temp_dir("auks-reload-");
    let cconf = dir.path().join("client.conf");
    write_file(&cconf, &good_conf, 0o644);
    let inode = listener_inode(auksd.port()).expect("listening socket");

    assert_eq!(check(&realm, &conf).0, Some(0), "auksd -t on a good file");

    // A pinger all along: every ping is answered (success or, once the new
    // ACL applies, a clear refusal), never "connection refused".
    let stop = Arc::new(AtomicBool::new(false));
    let pings = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let pinger = {
        let (stop, pings, bad) = (Arc::clone(&stop), Arc::clone(&pings), Arc::clone(&bad));
        let (realm_env, conf, cc, alice) =
            (realm.env(), cconf.clone(), alice_cc.clone(), alice.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut c = Command::new(bin_path("auks"));
                c.envs(realm_env.iter().cloned())
                    .env("AUKS_CONF", &conf)
                    .env("KRB5CCNAME", format!("FILE:{}", cc.display()))
                    .arg("-p");
                use std::os::unix::process::CommandExt;
                c.uid(alice.uid).gid(alice.gid);
                let o = run_cmd(&mut c, None, CMD_TIMEOUT);
                // 0 = served, 5 = refused by the ACL; 3 would be unreachable.
                if !matches!(o.status.code(), Some(0) | Some(5)) {
                    bad.lock().unwrap().push(out(&o));
                }
                pings.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let pid = auksd.pid();
    // Let the pinger make `more` pings (the reloads happen between them).
    let wait_pings = |more: usize| {
        let target = pings.load(Ordering::Relaxed) + more;
        let t = Instant::now();
        while pings.load(Ordering::Relaxed) < target {
            assert!(t.elapsed() < Duration::from_secs(60), "the pinger is stuck");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_pings(3);

    // 1. A broken auks.conf: reported with file and line, old one kept.
    std::fs::write(
        &conf,
        good_conf.replace("Workers = 4 ;", "Workers = 4 \n  garbage here ;"),
    )
    .unwrap();
    let (code, err) = check(&realm, &conf);
    assert_eq!(code, Some(1), "auksd -t on a broken file: {err}");
    assert!(err.contains(&conf.display().to_string()), "{err}");
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    wait_log(&auksd, "reload refused", 1);
    wait_pings(3);
    let log = auksd.log();
    let line = log.lines().find(|l| l.contains("reload refused")).unwrap();
    assert!(
        line.contains(&format!("{}:", conf.display())),
        "file and line named: {line}"
    );
    assert_ok(&auks(&realm, &cconf, &alice_cc, Some(&alice), &["-p"]));

    // 2. Good auks.conf, broken auks.acl: reported, old ACL kept.
    std::fs::write(&conf, &good_conf).unwrap();
    std::fs::write(
        auksd.acl_path(),
        "rule { principal = ^alice@TEST.REALM$ ; role = chief ; }\n",
    )
    .unwrap();
    let (code, err) = check(&realm, &conf);
    assert_eq!(code, Some(1), "auksd -t with a broken ACL: {err}");
    assert!(
        err.contains(&auksd.acl_path().display().to_string()),
        "{err}"
    );
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    wait_log(&auksd, "reload refused", 2);
    wait_pings(3);
    let log = auksd.log();
    let line = log
        .lines()
        .filter(|l| l.contains("reload refused"))
        .nth(1)
        .unwrap();
    assert!(
        line.contains(&auksd.acl_path().display().to_string()),
        "{line}"
    );
    let uid = alice.uid.to_string();
    assert_ok(&auks(
        &realm,
        &cconf,
        &alice_cc,
        Some(&alice),
        &["-g", "-u", &uid, "-C", "MEMORY:x"],
    ));

    // 3. A fixed ACL with a new rule (alice becomes a guest): it applies.
    std::fs::write(
        auksd.acl_path(),
        "rule { principal = ^alice@TEST.REALM$ ; host = * ; role = guest ; }\n",
    )
    .unwrap();
    assert_eq!(check(&realm, &conf).0, Some(0));
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    wait_log(&auksd, "reload done", 1);
    wait_pings(3);
    assert_fail_with(
        &auks(
            &realm,
            &cconf,
            &alice_cc,
            Some(&alice),
            &["-g", "-u", &uid, "-C", "MEMORY:y"],
        ),
        5,
        "guest",
    );
    assert_ok(&auks(&realm, &cconf, &alice_cc, Some(&alice), &["-p"]));

    stop.store(true, Ordering::Relaxed);
    pinger.join().unwrap();
    let bad = bad.lock().unwrap();
    let n = pings.load(Ordering::Relaxed);
    eprintln!(
        "figure: {n} pings during three reloads, {} not served",
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "pings not served during reloads:\n{}",
        bad.join("\n")
    );
    assert!(n >= 10, "too few pings: {n}");
    assert!(pid_alive(pid), "auksd must survive the reloads");
    assert_eq!(
        listener_inode(auksd.port()).as_deref(),
        Some(inode.as_str()),
        "the listening socket stays open across reloads"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "stored credential changed"
    );
}
