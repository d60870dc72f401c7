//! Acceptance tests of the `auks` CLI against the real `auksd`, with a real throw-away KDC.
//!
//! Port of the C project's bats suite (cea-hpc/auks `tests/simple.bats` and its newer
//! version `tests/bats/simple.bats`), adapted to this testbed:
//! * the admin identity is `host/<hostname>@TEST.REALM` from a keytab (it maps to no local
//!   account, so scenarios where the C suite stored the *admin's own* cred use a user's
//!   cred, or an extra ACL rule making `carol` an admin);
//! * users alice (3001) and bob (3002) have password principals and `kinit -f -r 1d`
//!   ccaches chowned to them; `auks` runs as them (uid/gid dropped);
//! * assertions follow the CLI contract: success = exit 0 + `Auks API request succeed` on
//!   stdout; failure = stderr `Auks API request failed : <reason>` and a documented exit
//!   code (1 usage, 2 config, 3 unreachable, 4 authentication, 5 permission denied,
//!   6 no credential stored, 7 local ccache problem, 8 cred rejected, 9 protocol).
//!
//! `auks -R once` (renewal, the C suite's `/tmp/renewed` checks) is covered in
//! tests/renewal/; here it only serves to run the HelperScript.
//!
//! This file holds the fixture; the tests are grouped by topic in `requests`,
//! `send_receive`, `config_variants` and `usage`.

#[path = "../common/mod.rs"]
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

const ALICE_PW: &str = "alice-Pw-1";
const BOB_PW: &str = "bob-Pw-2";
const CAROL_PW: &str = "carol-Pw-3";

/// Who runs `auks`.
#[derive(Clone, Copy)]
enum Who {
    Admin,
    Alice,
    Bob,
}

struct Fx {
    auksd: Auksd,
    realm: Realm,
    alice: LocalUser,
    alice_cc: PathBuf,
    bob: LocalUser,
    bob_cc: PathBuf,
    admin_princ: String,
    admin_keytab: PathBuf,
    admin_cc: PathBuf,
}

fn setup() -> Fx {
    setup_with(AuksdOpts::default())
}

fn setup_with(opts: AuksdOpts) -> Fx {
    let realm = Realm::start();
    let alice = alice();
    let bob = bob();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let bob_cc = realm.user_ccache(&bob, BOB_PW);
    let admin_princ = format!("host/{}@TEST.REALM", hostname());
    let admin_keytab = realm.path().join("host.keytab");
    realm.add_randkey_to_keytab(&admin_princ, &admin_keytab);
    let admin_cc = realm.path().join("admin.cc");
    realm.kinit_keytab(&admin_princ, &admin_keytab, &admin_cc);
    let auksd = Auksd::start(&realm, opts);
    Fx {
        auksd,
        realm,
        alice,
        alice_cc,
        bob,
        bob_cc,
        admin_princ,
        admin_keytab,
        admin_cc,
    }
}

/// A fixture where an extra ACL rule (before the default ones) gives carol `role`;
/// returns it with carol and her ccache.
fn setup_carol(role: &str) -> (Fx, LocalUser, PathBuf) {
    let acl = format!(
        "rule {{ principal = ^carol@TEST.REALM$ ; host = * ; role = {role} ; }}\n{DEFAULT_ACL}"
    );
    let fx = setup_with(AuksdOpts {
        acl,
        ..Default::default()
    });
    let carol = carol();
    let cc = fx.realm.user_ccache(&carol, CAROL_PW);
    (fx, carol, cc)
}

impl Fx {
    fn conf(&self) -> String {
        self.auksd.conf_path().display().to_string()
    }

    /// Run auks as `who` with its own ccache. `-f <conf>` is prepended unless the args
    /// already name a configuration (`-f` / `--config`).
    fn run(&self, who: Who, args: &[&str]) -> Output {
        let conf = self.conf();
        let mut full: Vec<&str> = Vec::new();
        if !args.iter().any(|a| *a == "-f" || *a == "--config") {
            full.extend(["-f", conf.as_str()]);
        }
        full.extend_from_slice(args);
        let (cc, user) = match who {
            Who::Admin => (&self.admin_cc, None),
            Who::Alice => (&self.alice_cc, Some(&self.alice)),
            Who::Bob => (&self.bob_cc, Some(&self.bob)),
        };
        auks(&self.realm, &self.auksd.conf_path(), cc, user, &full)
    }

    fn admin(&self, args: &[&str]) -> Output {
        self.run(Who::Admin, args)
    }
    fn alice(&self, args: &[&str]) -> Output {
        self.run(Who::Alice, args)
    }
    fn bob(&self, args: &[&str]) -> Output {
        self.run(Who::Bob, args)
    }

    /// Assert the stored ccache file of `uid` exists with mode 0600.
    #[track_caller]
    fn assert_stored(&self, uid: u32) {
        let f = self.auksd.cache_file(uid);
        assert!(
            f.exists(),
            "{} should exist\n{}",
            f.display(),
            self.auksd.log()
        );
        let (mode, _) = mode_owner(&f);
        assert_eq!(mode, 0o600, "mode of {}", f.display());
    }

    #[track_caller]
    fn assert_not_stored(&self, uid: u32) {
        let f = self.auksd.cache_file(uid);
        assert!(
            !f.exists(),
            "{} should not exist\n{}",
            f.display(),
            self.auksd.log()
        );
    }

    /// An ADD of a principal without a local account: refused (exit 7 or 8) with the
    /// failure line, and nothing stored.
    #[track_caller]
    fn assert_add_refused(&self, o: &Output) {
        // 7 or 8 both fit; any other status fails assert_fail's check against 8
        let code = o.status.code().filter(|c| matches!(c, 7 | 8)).unwrap_or(8);
        assert_fail(o, code);
        assert!(
            fs::read_dir(self.auksd.cache_dir())
                .unwrap()
                .next()
                .is_none(),
            "cache dir must stay empty"
        );
    }

    /// Admin dump, parsed into (uid, principal) rows.
    #[track_caller]
    fn dump_rows(&self) -> Vec<(u32, String)> {
        let o = self.admin(&["-D"]);
        assert_ok(&o);
        parse_dump(&o)
    }
}

/// Parse `auks -D` output: check the header and return (uid, principal) per row.
#[track_caller]
fn parse_dump(o: &Output) -> Vec<(u32, String)> {
    let s = stdout_of(o);
    let header = s
        .lines()
        .position(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w == ["UID", "PRINCIPAL", "START_TIME", "END_TIME", "RENEW_UNTIL"]
        })
        .unwrap_or_else(|| panic!("dump header not found\n{}", out(o)));
    let mut rows = Vec::new();
    for l in s.lines().skip(header + 1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.is_empty() || l.contains("Auks API request succeed") {
            continue;
        }
        if let Ok(uid) = w[0].parse::<u32>() {
            assert_eq!(
                w.len(),
                5,
                "dump row should have uid, principal and 3 times: {l:?}\n{}",
                out(o)
            );
            rows.push((uid, w[1].to_string()));
        }
    }
    rows.sort();
    rows
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

mod config_variants;
mod requests;
mod send_receive;
mod usage;
