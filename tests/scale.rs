//! auksd at site scale (issue 12): 10 000 stored credentials of 10 000
//! accounts (from the test's own passwd/group files through nss_wrapper,
//! never the machine's /etc/passwd), restored into `CacheDir` as a backup
//! would be. The port opens at once, the repository loads in the
//! background with one summary line, `auks -D` lists every credential and
//! one `auksdrenewer` pass renews every one of them; nothing is lost.
//!
//! Prints its figures (lines starting with "figure:"; see them with
//! `cargo test --test scale -- --nocapture`).

mod common;

use common::load::*;
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const N: u32 = 10_000;
const BASE_UID: u32 = 200_000;
const ADMIN: &str = "host/admin.scale";
const ADMIN_PW: &str = "Admin-Pw-1";

/// uid -> (principal, end time) of an `auks -D`.
fn dump(
    realm: &Realm,
    conf: &std::path::Path,
    cc: &std::path::Path,
) -> BTreeMap<u32, (String, String)> {
    let t = Instant::now();
    let o = AuksRun::new(realm, conf)
        .ccache(cc)
        .args(&["-D"])
        .timeout(Duration::from_secs(300))
        .run();
    assert_ok(&o);
    eprintln!(
        "figure: auks -D of {N} credentials took {:.2} s",
        t.elapsed().as_secs_f64()
    );
    dump_rows(&stdout_of(&o))
        .into_iter()
        .map(|(uid, p, end)| (uid, (p, end)))
        .collect()
}

#[test]
fn ten_thousand_credentials_are_loaded_dumped_and_renewed() {
    let realm = Realm::start();
    let acc = Accounts::create("ld", BASE_UID, N);
    let names: Vec<String> = (0..N).map(|i| acc.name(i)).collect();
    let dir = temp_dir("auks-scale-");
    let keytabs = dir.path().join("keytabs");
    std::fs::create_dir(&keytabs).unwrap();
    let t = Instant::now();
    add_principals(&realm, &names, &keytabs);
    realm.add_principal(ADMIN, ADMIN_PW);
    eprintln!(
        "figure: {N} principals created in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let admin_cc = dir.path().join("admin.cc");
    realm.kinit_password(ADMIN, ADMIN_PW, &admin_cc, &["-r", "7d"]);

    // The harness writes configuration, keytab and ACL; its daemon is
    // stopped and ours runs with the accounts' environment instead.
    let mut base = Auksd::start(
        &realm,
        AuksdOpts {
            extra_renewer: "MinLifeTime = 360000 ;".into(),
            timeout: 30,
            ..AuksdOpts::default()
        },
    );
    base.stop();
    let jobs: Vec<(String, std::path::PathBuf)> = (0..N)
        .map(|i| (acc.name(i), base.cache_file(acc.uid(i))))
        .collect();
    let t = Instant::now();
    kinit_many(&realm, &jobs, &keytabs, 4);
    eprintln!(
        "figure: {N} TGTs written into CacheDir in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t_start = Instant::now();
    let (d, to_listen) = Daemon::start(
        &realm,
        &base.conf_path(),
        base.port(),
        &dir.path().join("auksd.log"),
        &acc.env(),
    );
    // Served during the load: a request loads its own uid if need be.
    let last = acc.uid(N - 1).to_string();
    let o = AuksRun::new(&realm, &base.conf_path())
        .ccache(&admin_cc)
        .args(&["-g", "-u", &last, "-C", "MEMORY:early"])
        .run();
    assert_ok(&o);
    eprintln!(
        "figure: GET served {} the load was complete",
        if d.log().contains("repository loaded") {
            "after"
        } else {
            "before"
        }
    );
    d.wait_log(
        &format!("repository loaded: {N} credentials in"),
        Duration::from_secs(300),
    );
    eprintln!(
        "figure: port open after {:.0} ms, {N} credentials loaded after {:.2} s (debug build)",
        to_listen.as_secs_f64() * 1000.0,
        t_start.elapsed().as_secs_f64()
    );
    assert!(
        to_listen < Duration::from_secs(1),
        "the port must open before the repository is loaded: {to_listen:?}"
    );
    let log = d.log();
    // (the harness runs auksd at LogLevel 3: per-file lines are level 3)
    assert!(
        log.lines()
            .filter(|l| l.contains("[INFO1]") && l.contains("uid "))
            .count()
            < 10,
        "no line per credential at the default level:\n{}",
        tail(&log, 20)
    );

    // DUMP lists every credential, each under its own uid and principal.
    let before = dump(&realm, &base.conf_path(), &admin_cc);
    assert_eq!(before.len(), N as usize, "DUMP must list every credential");
    for i in 0..N {
        let (p, _) = before
            .get(&acc.uid(i))
            .unwrap_or_else(|| panic!("uid {} missing from DUMP", acc.uid(i)));
        assert_eq!(p, &realm.princ(&acc.name(i)));
    }

    // One auksdrenewer pass renews them all (MinLifeTime > ticket life).
    std::thread::sleep(Duration::from_secs(1)); // renewed end times differ
    let rlog = dir.path().join("renewer.log");
    let errf = std::fs::File::create(&rlog).unwrap();
    let mut c = realm.command(env!("CARGO_BIN_EXE_auksdrenewer"));
    c.arg("-F")
        .arg("-f")
        .arg(base.conf_path())
        .env("KRB5CCNAME", format!("FILE:{}", admin_cc.display()))
        .stdin(std::process::Stdio::null())
        .stdout(errf.try_clone().unwrap())
        .stderr(errf);
    let mut renewer = c.spawn().expect("start auksdrenewer");
    let t = Instant::now();
    let done = loop {
        let text = std::fs::read_to_string(&rlog).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("pass done")) {
            break l.to_string();
        }
        if let Ok(Some(st)) = renewer.try_wait() {
            panic!("auksdrenewer exited ({st})\n{}", tail(&text, 20));
        }
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "no renewer pass after 900 s\n{}",
            tail(&text, 20)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = renewer.kill();
    let _ = renewer.wait();
    eprintln!(
        "figure: auksdrenewer pass over {N} credentials took {:.1} s: {done}",
        t.elapsed().as_secs_f64()
    );
    assert!(
        done.contains(&format!("{N} stored, {N} renewed, 0 skipped, 0 failed")),
        "{done}"
    );

    // Nothing lost, every credential renewed (a later end time), same owner.
    let after = dump(&realm, &base.conf_path(), &admin_cc);
    assert_eq!(after.len(), N as usize);
    for (uid, (p, end)) in &before {
        let (p2, end2) = after.get(uid).expect("credential lost");
        assert_eq!(p2, p);
        assert!(end2 > end, "uid {uid} not renewed: {end} -> {end2}");
    }
    drop(d);
}
