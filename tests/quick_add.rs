//! srun's ADD without libkrb5 (`auks::spank::quickadd`) against a real
//! auksd on a throw-away realm: refused while the user's ccache holds no
//! service ticket for auksd; once the CLI has put one there, the ADD
//! made from the file's bytes alone stores the user's TGT in auksd (a GET
//! returns it), with `NAT = yes` too; a daemon that is gone is an error
//! (srun then adds the usual way), never a hang past its deadline.
//!
//! The calls run in this (root) process on alice's ccache bytes; the
//! probing of `KRB5CCNAME` and the thread are covered by the Slurm suite.

mod common;

use auks::config::ClientConfig;
use auks::spank::quickadd;
use common::*;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

type Fx = AliceFx;

fn bytes(path: &std::path::Path) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(std::fs::read(path).unwrap())
}

/// `auks ARGS -u <alice's uid>` as the admin.
fn admin_on_alice(f: &Fx, args: &[&str]) -> std::process::Output {
    let uid = f.alice.uid.to_string();
    let mut all = args.to_vec();
    all.extend(["-u", uid.as_str()]);
    auks(&f.realm, &f.auksd.conf_path(), &f.admin_cc, None, &all)
}

/// The principal of the credential auksd holds for alice (a GET as the
/// admin), or the failed output.
fn stored(f: &Fx) -> Result<String, String> {
    let got = f.realm.path().join("got.cc");
    let _ = std::fs::remove_file(&got);
    let o = admin_on_alice(f, &["-g", "-C", &got.display().to_string()]);
    if !o.status.success() {
        return Err(out(&o));
    }
    Ok(f.realm.ccache_principal(&got))
}

fn remove(f: &Fx) {
    assert_ok(&admin_on_alice(f, &["-r"]));
}

fn quick_add_case(opts: AuksdOpts) {
    let mut f = alice_fx(opts);
    let conf = ClientConfig::load(Some(&f.auksd.conf_path())).unwrap();
    // A fresh ticket: no service ticket for auksd in the ccache yet.
    match quickadd::prepared(&conf, bytes(&f.alice_cc)) {
        Ok(_) => panic!("prepared without a service ticket"),
        Err(why) => assert!(why.contains("no service ticket"), "{why}"),
    }
    // The CLI (libkrb5) stores one there; its ADD is then removed.
    assert_ok(&auks(
        &f.realm,
        &f.auksd.conf_path(),
        &f.alice_cc,
        Some(&f.alice),
        &["-a"],
    ));
    remove(&f);
    assert!(stored(&f).is_err(), "removed");
    let p = quickadd::prepared(&conf, bytes(&f.alice_cc)).unwrap();
    p.run().unwrap();
    assert_eq!(stored(&f).unwrap(), "alice@TEST.REALM");
    let log = f.auksd.log();
    assert!(log.contains("add request succeed"), "{log}");
    // Twice on the same bytes: a second session, a second ADD.
    remove(&f);
    p.run().unwrap();
    assert_eq!(stored(&f).unwrap(), "alice@TEST.REALM");
    // The daemon gone: an error within the deadline.
    f.auksd.stop();
    let t0 = Instant::now();
    let e = p.run().unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(!e.is_empty());
}

#[test]
fn quick_add_stores_the_tgt() {
    quick_add_case(AuksdOpts::default());
}

#[test]
fn quick_add_with_nat() {
    quick_add_case(AuksdOpts {
        extra_common: "NAT = yes ;\n".into(),
        ..AuksdOpts::default()
    });
}
