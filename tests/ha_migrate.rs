//! Migration and administration of the etcd repository (issue 11), all
//! real (three etcd members on loopback, a KDC, auksd instances):
//! `auksd-etcd` import of a 10 000-credential `CacheDir`, DUMP through each
//! instance, export back, key rotation (`reseal`), and `auksd -t` checking
//! the sealing key file.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::etcd::*;
use common::*;

#[test]
fn import_of_10000_credentials_then_dump_through_each_instance_and_export() {
    let ha = Ha::start(2, AuksdOpts::default());
    let alice = alice();
    let cc = ha.realm.user_ccache(&alice, "alice-Pw-1");
    let admin = admin_cc(&ha.realm, ha.dir.path());
    // A CacheDir as auksd (C or Rust) leaves it: aukscc_<uid> FILE ccaches.
    let cache = temp_dir("auks-import-");
    let bytes = fs::read(&cc).unwrap();
    let n = 10_000u32;
    for uid in 100_000..100_000 + n {
        let p = cache.path().join(format!("aukscc_{uid}"));
        fs::write(&p, &bytes).unwrap();
    }
    fs::write(cache.path().join("not-a-cred"), b"x").unwrap();
    let conf = ha.instances[0].conf_path();
    let t = Instant::now();
    let o = auksd_etcd(&[
        "-f",
        conf.to_str().unwrap(),
        "import",
        cache.path().to_str().unwrap(),
    ]);
    let took = t.elapsed();
    assert!(
        stdout_of(&o).contains(&format!("import: {n} written")),
        "{}",
        out(&o)
    );
    eprintln!("import of {n} credentials: {:.2} s", took.as_secs_f64());
    for i in 0..2 {
        let c = ha.conf(i, i);
        let ok = wait_until(Duration::from_secs(10), || {
            let o = auks(&ha.realm, &c, &admin, None, &["-D"]);
            o.status.success()
                && stdout_of(&o)
                    .lines()
                    .filter_map(|l| l.split_whitespace().next()?.parse::<u32>().ok())
                    .filter(|u| (100_000..100_000 + n).contains(u))
                    .count()
                    == n as usize
        });
        assert!(
            ok.is_some(),
            "DUMP through instance {i} does not list {n}\n{}",
            ha.logs()
        );
    }
    // Export back to a CacheDir: every file a valid ccache, mode 0600.
    let back = temp_dir("auks-export-");
    auksd_etcd(&[
        "-f",
        conf.to_str().unwrap(),
        "export",
        back.path().to_str().unwrap(),
    ]);
    let files: Vec<_> = fs::read_dir(back.path()).unwrap().collect();
    assert_eq!(files.len(), n as usize);
    let one = back.path().join("aukscc_100042");
    assert_eq!(mode_owner(&one).0 & 0o777, 0o600);
    assert_eq!(
        ha.realm.ccache_principal(&one),
        alice.name.clone() + "@TEST.REALM"
    );
    // Status and key rotation.
    let o = auksd_etcd(&["-f", conf.to_str().unwrap(), "status"]);
    assert!(
        stdout_of(&o).contains(&format!("credentials: {n} ")),
        "{}",
        out(&o)
    );
    let new_keys = ha.keys.path().join("new.keys");
    auksd_etcd(&["genkey", "k2", new_keys.to_str().unwrap()]);
    let both = fs::read_to_string(&new_keys).unwrap() + &fs::read_to_string(ha.keyfile()).unwrap();
    write_file(&ha.keyfile(), both, 0o600);
    let o = auksd_etcd(&["-f", conf.to_str().unwrap(), "reseal"]);
    assert!(
        stdout_of(&o).contains(&format!("reseal: {n} written")),
        "{}",
        out(&o)
    );
    let o = auksd_etcd(&["-f", conf.to_str().unwrap(), "list"]);
    assert_eq!(
        stdout_of(&o)
            .lines()
            .filter(|l| l.ends_with("key=k2"))
            .count(),
        n as usize
    );
}

#[test]
fn auksd_t_checks_the_sealing_key_file() {
    let ha = Ha::start(1, AuksdOpts::default());
    let conf = ha.instances[0].conf_path();
    let check = || {
        let mut c = ha.realm.command(env!("CARGO_BIN_EXE_auksd"));
        c.arg("-t").arg("-f").arg(&conf);
        run_cmd(&mut c, None, Duration::from_secs(30))
    };
    let o = check();
    assert!(o.status.success(), "{}", out(&o));
    set_mode(&ha.keyfile(), 0o640);
    let o = check();
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("sealing key file"), "{}", out(&o));
}
