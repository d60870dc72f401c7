//! auksd's repository under stress (issue 12), with the real daemon and a
//! real KDC; 16 accounts from the test's own passwd/group files (through
//! nss_wrapper):
//! - kill -9 during a storm of ADDs from 16 clients (each ADD a fresher
//!   TGT, so each one rewrites a cache file): after the restart every file
//!   in CacheDir is a valid ccache, no temporary file is left, and every
//!   ADD acknowledged before the kill is served;
//! - CacheDir on a full file system (a small tmpfs): the ADD fails with a
//!   clear error, the daemon keeps serving, no truncated file is left, and
//!   what was stored before is unchanged.
//!
//! One test in this binary: it points the process-wide `KRB5_CONFIG` at
//! the throw-away realm (libkrb5 reads it in-process).

mod common;

use auks::client::Client;
use auks::cred;
use auks::krb5::Context;
use common::load::*;
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USERS: u32 = 16;
const BASE_UID: u32 = 300_000;

fn client(conf: &Path, cc: &Path) -> Client {
    Client::from_config_file(Some(conf))
        .expect("client configuration")
        .with_auth_ccache(Some(format!("FILE:{}", cc.display())))
}

/// A fresh TGT of account `i` in its ccache; returns (KRB-CRED, endtime,
/// renew_till).
fn fresh_tgt(
    realm: &Realm,
    acc: &Accounts,
    keytabs: &Path,
    ccs: &Path,
    i: u32,
) -> (zeroize::Zeroizing<Vec<u8>>, i64, i64) {
    let name = acc.name(i);
    let cc = ccs.join(format!("{name}.cc"));
    realm.kinit_keytab_with(
        &name,
        &keytabs.join(format!("{name}.keytab")),
        &cc,
        &["-r", "7d"],
    );
    let ctx = Context::new().unwrap();
    let data = cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", cc.display()))).unwrap();
    let m = cred::meta(&ctx, &data).unwrap();
    (data, m.endtime, m.renew_till)
}

struct Setup {
    realm: Realm,
    acc: Accounts,
    dir: tempfile::TempDir,
    base: Auksd,
}

impl Setup {
    fn keytabs(&self) -> PathBuf {
        self.dir.path().join("keytabs")
    }
    fn ccs(&self) -> PathBuf {
        self.dir.path().join("ccs")
    }
    fn cc(&self, i: u32) -> PathBuf {
        self.ccs().join(format!("{}.cc", self.acc.name(i)))
    }
}

fn storm(s: &Setup) {
    let conf = s.base.conf_path();
    let (mut d, _) = Daemon::start(
        &s.realm,
        &conf,
        s.base.port(),
        &s.dir.path().join("storm.log"),
        &s.acc.env(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<HashMap<u32, (i64, i64)>>> = Arc::default();
    let count = Arc::new(Mutex::new(0usize));
    let first_err: Arc<Mutex<Option<String>>> = Arc::default();
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        for i in 0..USERS {
            let (stop, acked, count, first_err) = (
                Arc::clone(&stop),
                Arc::clone(&acked),
                Arc::clone(&count),
                Arc::clone(&first_err),
            );
            let conf = conf.clone();
            sc.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (data, end, till) = fresh_tgt(&s.realm, &s.acc, &s.keytabs(), &s.ccs(), i);
                    match client(&conf, &s.cc(i)).add(data) {
                        Ok(()) => {
                            acked.lock().unwrap().insert(s.acc.uid(i), (end, till));
                            *count.lock().unwrap() += 1;
                        }
                        Err(e) => {
                            first_err.lock().unwrap().get_or_insert(e.to_string());
                        }
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs(4));
        d.kill9();
        stop.store(true, Ordering::SeqCst);
    });
    let n = *count.lock().unwrap();
    eprintln!(
        "figure: {n} ADDs acknowledged by 16 clients in {:.1} s before kill -9",
        t0.elapsed().as_secs_f64() - 0.0
    );
    assert!(
        n >= USERS as usize,
        "the storm did not run: {n} ADDs; first failure: {:?}\n{}",
        first_err.lock().unwrap(),
        tail(&d.log(), 20)
    );

    let from = d.log().len();
    let to_listen = d.restart();
    d.wait_log_after(from, "repository loaded", Duration::from_secs(60));
    eprintln!("figure: restart after kill -9: port open in {to_listen:?}");
    let cache = s.base.cache_dir();
    let ctx = Context::new().unwrap();
    for e in std::fs::read_dir(&cache).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".auks-"),
            "temporary {name} left after the restart"
        );
        let data = cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", e.path().display())))
            .unwrap_or_else(|err| panic!("{name} is not a valid ccache: {err}"));
        let m = cred::meta(&ctx, &data).unwrap();
        let uid: u32 = name.strip_prefix("aukscc_").unwrap().parse().unwrap();
        assert_eq!(m.principal, s.realm.princ(&s.acc.name(uid - BASE_UID)));
    }
    for (uid, (end, till)) in acked.lock().unwrap().iter() {
        let i = uid - BASE_UID;
        let r = client(&conf, &s.cc(i)).get(*uid).unwrap_or_else(|e| {
            panic!(
                "acknowledged ADD of uid {uid} lost: {e}\n{}",
                tail(&d.log(), 20)
            )
        });
        assert!(
            r.renew_till >= *till && r.endtime >= *end,
            "uid {uid}: served ({}, {}) older than acknowledged ({end}, {till})",
            r.endtime,
            r.renew_till
        );
    }
}

/// Unmounts on drop.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn full_file_system(s: &Setup) {
    let mnt = s.dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount");
    assert!(st.success(), "cannot mount a tmpfs (the tests run as root)");
    let _guard = Tmpfs(mnt.clone());
    let text = std::fs::read_to_string(s.base.conf_path()).unwrap();
    let conf = s.dir.path().join("small.conf");
    let old = format!("CacheDir = \"{}\"", s.base.cache_dir().display());
    assert!(text.contains(&old));
    write_file(
        &conf,
        text.replace(&old, &format!("CacheDir = \"{}\"", mnt.display())),
        0o644,
    );
    let (mut d, _) = Daemon::start(
        &s.realm,
        &conf,
        s.base.port(),
        &s.dir.path().join("full.log"),
        &s.acc.env(),
    );

    let (data, _, _) = fresh_tgt(&s.realm, &s.acc, &s.keytabs(), &s.ccs(), 0);
    client(&conf, &s.cc(0))
        .add(data)
        .expect("ADD before the disk is full");
    let before = std::fs::read(mnt.join(format!("aukscc_{}", s.acc.uid(0)))).unwrap();
    // Fill the file system.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(mnt.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.flush();
    }
    let (data, _, _) = fresh_tgt(&s.realm, &s.acc, &s.keytabs(), &s.ccs(), 1);
    let err = client(&conf, &s.cc(1))
        .add(data)
        .expect_err("ADD on a full disk");
    let text = err.to_string();
    eprintln!("figure: ADD on a full CacheDir: {text}");
    assert!(
        text.contains("cannot store") && text.contains("file system of CacheDir is full"),
        "a clear error: {text}"
    );
    assert!(d.alive(), "auksd died on a full disk\n{}", d.log());
    client(&conf, &s.cc(0)).ping().expect("still serving");
    let got = client(&conf, &s.cc(0))
        .get(s.acc.uid(0))
        .expect("GET of what was stored");
    assert!(!got.data.is_empty());
    assert!(
        !mnt.join(format!("aukscc_{}", s.acc.uid(1))).exists(),
        "no truncated file"
    );
    for e in std::fs::read_dir(&mnt).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".auks-"), "temporary {name} left behind");
    }
    assert_eq!(
        std::fs::read(mnt.join(format!("aukscc_{}", s.acc.uid(0)))).unwrap(),
        before,
        "stored credential changed"
    );
    d.kill9();
}

#[test]
fn kill_during_an_add_storm_and_a_full_disk_lose_nothing() {
    let realm = Realm::start();
    let acc = Accounts::create("st", BASE_UID, USERS);
    let dir = temp_dir("auks-storm-");
    std::fs::create_dir(dir.path().join("keytabs")).unwrap();
    std::fs::create_dir(dir.path().join("ccs")).unwrap();
    let names: Vec<String> = (0..USERS).map(|i| acc.name(i)).collect();
    add_principals(&realm, &names, &dir.path().join("keytabs"));
    let mut base = Auksd::start(
        &realm,
        AuksdOpts {
            workers: 4,
            timeout: 20,
            ..AuksdOpts::default()
        },
    );
    base.stop();
    // One test in this binary: nothing else reads the environment
    // concurrently, and no libkrb5 context exists yet.
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    std::env::set_var("KRB5RCACHEDIR", realm.rcache_dir());
    let s = Setup {
        realm,
        acc,
        dir,
        base,
    };
    storm(&s);
    full_file_system(&s);
}
