//! Renewal against a real KDC whose tickets live 60 s: `auks -R once|loop`
//! (spec §8.3), `HelperScript` (§8.4), `auksdrenewer` (§6) and `aukspriv`
//! (§7). Every test has its own realm, auksd and ports, so they run in
//! parallel; the long ones (auksdrenewer, aukspriv) last about 2.5 and
//! 1.5 minutes.
//!
//! This file holds the shared fixture (binaries, ccache readers, the short
//! realm, client configurations, the renewer's identity); the tests are in
//! `cli` (`auks -R` and the HelperScript), `auksdrenewer`, `aukspriv` and
//! `cross_realm`; `bg` runs a program in the background.

#[path = "../common/mod.rs"]
mod common;

mod auksdrenewer;
mod aukspriv;
mod bg;
mod cli;
mod cross_realm;

use auks::renew::Times;
use bg::Bg;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
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
