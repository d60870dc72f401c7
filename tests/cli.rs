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
//! tests/renewal.rs; here it only serves to run the HelperScript.

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

// ---------------------------------------------------------------------------------------
// ping
// ---------------------------------------------------------------------------------------

/// bats: "Ping as host"
#[test]
fn ping_as_host() {
    let fx = setup();
    assert_ok(&fx.admin(&["-p"]));
    assert_ok(&fx.admin(&["--ping"]));
    // ping is the default action
    assert_ok(&fx.admin(&[]));
}

/// bats: "Ping as regular user" / "Ping as user"
#[test]
fn ping_as_regular_user() {
    let fx = setup();
    assert_ok(&fx.alice(&["-p"]));
    assert_ok(&fx.alice(&["--ping"]));
    assert_ok(&fx.bob(&["-p"]));
}

// ---------------------------------------------------------------------------------------
// lifecycle
// ---------------------------------------------------------------------------------------

/// bats: "Complete Ccache life cyle as regular user (short options)" (without -R once)
#[test]
fn lifecycle_as_user_short_options() {
    let fx = setup();
    assert_ok(&fx.alice(&["-p"]));
    let o = fx.alice(&["-g", "-u", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
    fx.assert_not_stored(3001);

    assert_ok(&fx.alice(&["-a"]));
    fx.assert_stored(3001);
    assert_ok(&fx.alice(&["-g", "-u", "3001"]));
    // the default ccache still holds alice's TGT after the get
    assert_eq!(fx.realm.ccache_principal(&fx.alice_cc), "alice@TEST.REALM");

    assert_ok(&fx.alice(&["-r", "-u", "3001"]));
    fx.assert_not_stored(3001);
    let o = fx.alice(&["-g", "-u", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
}

/// Every `srun --auks=yes` ADDs the user's TGT: the same TGT again leaves
/// the stored file alone; a new TGT replaces it.
#[test]
fn same_tgt_added_again_is_not_rewritten() {
    use std::os::unix::fs::MetadataExt;
    let fx = setup();
    assert_ok(&fx.alice(&["-a"]));
    let file = fx.auksd.cache_file(3001);
    let ino = std::fs::metadata(&file).unwrap().ino();
    assert_ok(&fx.alice(&["-a"]));
    assert_eq!(
        std::fs::metadata(&file).unwrap().ino(),
        ino,
        "file rewritten"
    );
    let log = fx.auksd.log();
    assert!(
        log.contains("uid=3001 principal alice@TEST.REALM: the same credential is already stored"),
        "{log}"
    );
    fx.realm.user_ccache(&fx.alice, ALICE_PW);
    assert_ok(&fx.alice(&["-a"]));
    assert_ne!(
        std::fs::metadata(&file).unwrap().ino(),
        ino,
        "new TGT not stored"
    );
    let log = fx.auksd.log();
    assert!(log.contains("replaced the stored one"), "{log}");
    let dest = fx.realm.user_dir(&fx.alice).join("again.cc");
    assert_ok(&fx.alice(&["-g", "-C", &format!("FILE:{}", s(&dest))]));
    assert_eq!(fx.realm.ccache_principal(&dest), "alice@TEST.REALM");
}

/// bats: "Complete Ccache life cyle as regular user (long options)" (without --renew once)
#[test]
fn lifecycle_as_user_long_options() {
    let fx = setup();
    let conf = fx.conf();
    assert_ok(&fx.alice(&["--config", &conf, "--ping"]));
    let o = fx.alice(&["--config", &conf, "--get", "--uid", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
    assert_ok(&fx.alice(&["--config", &conf, "--add"]));
    fx.assert_stored(3001);
    assert_ok(&fx.alice(&["--config", &conf, "--get", "--uid", "3001"]));
    assert_ok(&fx.alice(&["--config", &conf, "--remove", "--uid", "3001"]));
    fx.assert_not_stored(3001);
    let o = fx.alice(&["--config", &conf, "--get", "--uid", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
}

/// `-u` defaults to the effective uid; `-g -C FILE:<path>` writes a user-owned 0600 ccache.
#[test]
fn get_into_explicit_ccache_as_user_and_default_uid() {
    let fx = setup();
    // nothing stored: get of the own uid (no -u) fails with the own uid in the message
    let o = fx.alice(&["-g"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");

    assert_ok(&fx.alice(&["-a"]));
    fx.assert_stored(3001);

    let dest = fx.realm.user_dir(&fx.alice).join("fetched.cc");
    let o = fx.alice(&["-g", "-C", &format!("FILE:{}", s(&dest))]);
    assert_ok(&o);
    let (mode, owner) = mode_owner(&dest);
    assert_eq!(owner, fx.alice.uid, "fetched ccache must be owned by alice");
    assert_eq!(mode, 0o600, "fetched ccache mode");
    let k = fx.realm.klist(&dest);
    assert!(k.status.success(), "{}", out(&k));
    assert!(stdout_of(&k).contains("alice@TEST.REALM"), "{}", out(&k));
    assert_eq!(fx.realm.ccache_principal(&dest), "alice@TEST.REALM");

    // the plain path form of -C / --ccache works too
    let dest2 = fx.realm.user_dir(&fx.alice).join("fetched2.cc");
    assert_ok(&fx.alice(&["--get", "--ccache", &s(&dest2)]));
    assert_eq!(fx.realm.ccache_principal(&dest2), "alice@TEST.REALM");

    // remove without -u removes the own cred
    assert_ok(&fx.alice(&["-r"]));
    fx.assert_not_stored(3001);
}

// ---------------------------------------------------------------------------------------
// admin on behalf of users
// ---------------------------------------------------------------------------------------

fn admin_add_get_user_cred(long: bool) {
    let fx = setup();
    let dest = fx.realm.path().join("krb5cc_bats");
    let alice_cc = s(&fx.alice_cc);
    if long {
        assert_ok(&fx.admin(&["--ping"]));
        assert_ok(&fx.admin(&["--add", "--ccache", &alice_cc]));
    } else {
        assert_ok(&fx.admin(&["-p"]));
        assert_ok(&fx.admin(&["-a", "-C", &alice_cc]));
    }
    fx.assert_stored(3001);
    // the admin's own ccache is untouched by -C
    assert_eq!(fx.realm.ccache_principal(&fx.admin_cc), fx.admin_princ);
    let o = if long {
        fx.admin(&["--get", "--uid", "3001", "--ccache", &s(&dest)])
    } else {
        fx.admin(&["-g", "-u", "3001", "-C", &s(&dest)])
    };
    assert_ok(&o);
    assert_eq!(fx.realm.ccache_principal(&dest), "alice@TEST.REALM");
    let (mode, _) = mode_owner(&dest);
    assert_eq!(mode, 0o600);
    assert_eq!(fx.realm.ccache_principal(&fx.admin_cc), fx.admin_princ);
    let o = if long {
        fx.admin(&["--remove", "--uid", "3001"])
    } else {
        fx.admin(&["-r", "-u", "3001"])
    };
    assert_ok(&o);
    fx.assert_not_stored(3001);
}

/// bats: "Add/Get user cred as admin user (short options)"
#[test]
fn admin_adds_and_gets_user_cred_short_options() {
    admin_add_get_user_cred(false);
}

/// bats: "Add/Get user cred as admin user (long options)"
#[test]
fn admin_adds_and_gets_user_cred_long_options() {
    admin_add_get_user_cred(true);
}

/// bats: "Ping/Add/Get own cred as admin user" — with an admin principal that maps to a
/// local account (carol is made admin by an extra ACL rule).
#[test]
fn admin_with_local_account_adds_and_gets_own_cred() {
    let acl = format!(
        "rule {{ principal = ^carol@TEST.REALM$ ; host = * ; role = admin ; }}\n{DEFAULT_ACL}"
    );
    let fx = setup_with(AuksdOpts {
        acl,
        ..Default::default()
    });
    let carol = carol();
    let carol_cc = fx.realm.user_ccache(&carol, CAROL_PW);
    let conf = fx.auksd.conf_path();
    let run = |args: &[&str]| auks(&fx.realm, &conf, &carol_cc, Some(&carol), args);
    assert_ok(&run(&["-p"]));
    assert_ok(&run(&["-a"]));
    fx.assert_stored(carol.uid);
    assert_ok(&run(&["-g", "-u", &carol.uid.to_string()]));
    // as an admin carol can also dump and see her own cred
    let o = run(&["-D"]);
    assert_ok(&o);
    assert_eq!(
        parse_dump(&o),
        vec![(carol.uid, "carol@TEST.REALM".to_string())]
    );
    assert_ok(&run(&["-r", "-u", &carol.uid.to_string()]));
    fx.assert_not_stored(carol.uid);
}

/// The host/ admin principal maps to no local account: adding its own cred is refused and
/// nothing is stored (the C suite's "unknown user" case, seen from an admin).
#[test]
fn admin_cred_without_local_account_is_not_stored() {
    let fx = setup();
    let o = fx.admin(&["-a"]);
    assert!(
        matches!(o.status.code(), Some(7) | Some(8)),
        "add of an unmappable principal should fail with 7 or 8\n{}",
        out(&o)
    );
    assert!(
        stderr_of(&o).starts_with("Auks API request failed : "),
        "{}",
        out(&o)
    );
    assert!(
        fs::read_dir(fx.auksd.cache_dir()).unwrap().next().is_none(),
        "cache dir must stay empty"
    );
}

// ---------------------------------------------------------------------------------------
// user restrictions
// ---------------------------------------------------------------------------------------

/// bats: "Add/Get admin cred as user user" — a user can neither add nor get a cred that
/// is not theirs, and no file is left behind.
#[test]
fn user_cannot_add_or_get_someone_elses_cred() {
    let fx = setup();
    let home = fx.realm.user_dir(&fx.alice);

    // alice holds a copy of bob's TGT and tries to push it
    let bob_copy = home.join("bob.cc");
    fx.realm
        .kinit_password("bob", BOB_PW, &bob_copy, &["-f", "-r", "1d"]);
    chown(&bob_copy, &fx.alice);
    assert_ok(&fx.alice(&["-p"]));
    let o = fx.alice(&["-a", "-C", &s(&bob_copy)]);
    assert_fail_with(&o, 5, "permission denied");
    fx.assert_not_stored(3002);

    // ... and a copy of the admin's TGT
    let admin_copy = home.join("admin.cc");
    fx.realm
        .kinit_keytab(&fx.admin_princ, &fx.admin_keytab, &admin_copy);
    chown(&admin_copy, &fx.alice);
    let o = fx.alice(&["-a", "-C", &s(&admin_copy)]);
    assert!(
        matches!(o.status.code(), Some(5) | Some(7) | Some(8)),
        "adding the admin's cred as a user must be refused\n{}",
        out(&o)
    );
    assert!(
        fs::read_dir(fx.auksd.cache_dir()).unwrap().next().is_none(),
        "cache dir must stay empty"
    );

    // bob stores his own cred; alice cannot fetch it and no ccache file appears
    assert_ok(&fx.bob(&["-a"]));
    fx.assert_stored(3002);
    let dest = home.join("krb5cc_bats");
    let o = fx.alice(&["-g", "-u", "3002", "-C", &s(&dest)]);
    assert_fail_with(&o, 5, "permission denied");
    assert!(
        !dest.exists(),
        "no ccache may be left behind at {}",
        dest.display()
    );
    let k = fx.realm.klist(&dest);
    assert!(!k.status.success(), "{}", out(&k));
    // ... nor remove it
    let o = fx.alice(&["-r", "-u", "3002"]);
    assert_fail_with(&o, 5, "permission denied");
    fx.assert_stored(3002);
}

/// bats: "Cannot dump creds as regular user"
#[test]
fn user_cannot_dump() {
    let fx = setup();
    assert_ok(&fx.alice(&["-a"]));
    let o = fx.alice(&["-D"]);
    assert_fail_with(&o, 5, "permission denied");
    assert!(!stdout_of(&o).contains("alice@TEST.REALM"), "{}", out(&o));
    let o = fx.alice(&["--dump"]);
    assert_fail_with(&o, 5, "permission denied");
}

/// bats: "Able to dump creds as a admin user"
#[test]
fn admin_can_dump() {
    let fx = setup();
    // empty repository: header only
    let o = fx.admin(&["-D"]);
    assert_ok(&o);
    assert_eq!(parse_dump(&o), vec![]);

    assert_ok(&fx.alice(&["-a"]));
    assert_ok(&fx.bob(&["-a"]));
    let expected = vec![
        (3001, "alice@TEST.REALM".to_string()),
        (3002, "bob@TEST.REALM".to_string()),
    ];
    let o = fx.admin(&["-D"]);
    assert_ok(&o);
    assert_eq!(parse_dump(&o), expected, "{}", out(&o));
    let o = fx.admin(&["--dump"]);
    assert_ok(&o);
    assert_eq!(parse_dump(&o), expected, "{}", out(&o));
}

/// bats: "Able to remove my own credential"
#[test]
fn user_removes_own_cred() {
    let fx = setup();
    assert_ok(&fx.alice(&["-a", "-u", "3001"]));
    fx.assert_stored(3001);
    assert_ok(&fx.alice(&["-r", "-u", "3001"]));
    fx.assert_not_stored(3001);
    let o = fx.alice(&["-D"]);
    assert_fail(&o, 5);
    assert!(fx.dump_rows().iter().all(|(_, p)| p != "alice@TEST.REALM"));

    // bob's cred is untouched by alice's removal; bob removes his own with the default uid
    assert_ok(&fx.bob(&["-a"]));
    assert_ok(&fx.alice(&["-a"]));
    assert_ok(&fx.alice(&["-r"]));
    fx.assert_not_stored(3001);
    fx.assert_stored(3002);
    assert_ok(&fx.bob(&["-r"]));
    fx.assert_not_stored(3002);
    assert_eq!(fx.dump_rows(), vec![]);
}

/// bats: "Admins are able to remove all credentials"
#[test]
fn admin_removes_all_creds() {
    let fx = setup();
    assert_ok(&fx.admin(&["-a", "-u", "3001", "-C", &s(&fx.alice_cc)]));
    assert_ok(&fx.admin(&["-a", "-C", &s(&fx.bob_cc)]));
    let rows = fx.dump_rows();
    assert!(
        rows.contains(&(3001, "alice@TEST.REALM".into())),
        "{rows:?}"
    );
    assert!(rows.contains(&(3002, "bob@TEST.REALM".into())), "{rows:?}");
    assert_ok(&fx.admin(&["-r", "-u", "3001"]));
    assert_ok(&fx.admin(&["-r", "-u", "3002"]));
    assert_eq!(fx.dump_rows(), vec![]);
    fx.assert_not_stored(3001);
    fx.assert_not_stored(3002);
    // removing again: nothing stored
    let o = fx.admin(&["-r", "-u", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
}

// ---------------------------------------------------------------------------------------
// --send / --receive
// ---------------------------------------------------------------------------------------

#[track_caller]
fn check_blob(o: &Output) -> Vec<u8> {
    assert_eq!(o.status.code(), Some(0), "--send failed\n{}", out(o));
    let b = o.stdout.clone();
    assert!(
        b.len() > 12,
        "--send output too short ({} bytes)\n{}",
        b.len(),
        out(o)
    );
    let len = u64::from_le_bytes(b[..8].try_into().unwrap());
    assert_eq!(
        len,
        (b.len() - 8) as u64,
        "8-byte little-endian length prefix must equal size - 8"
    );
    assert_eq!(
        &b[8..12],
        &[0, 0, 0, 7],
        "payload starts with int32 BE 7 (CRED_DUMP_REQUEST)"
    );
    b
}

/// bats: "Auks client is able to dump a credential to a local file"
#[test]
fn send_writes_blob_to_stdout() {
    let fx = setup();
    assert_ok(&fx.alice(&["--add"]));
    // by the admin, for alice's uid
    let o = fx.admin(&["--send", "--uid", "3001"]);
    let blob = check_blob(&o);
    let file = fx.realm.path().join("auks_cred");
    fs::write(&file, &blob).unwrap();
    assert!(fs::metadata(&file).unwrap().len() > 8);
    // by alice herself, short -u and default uid
    check_blob(&fx.alice(&["--send", "-u", "3001"]));
    check_blob(&fx.alice(&["--send"]));
    assert_ok(&fx.admin(&["--remove", "--uid", "3001"]));
    // nothing stored any more: --send fails
    let o = fx.admin(&["--send", "-u", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
    assert!(o.stdout.is_empty(), "no blob on failure\n{}", out(&o));
}

/// bats: "Auks client is able to receive a credential from a pipe"
#[test]
fn send_pipe_receive() {
    let fx = setup();
    assert_ok(&fx.alice(&["--add"]));
    let blob = check_blob(&fx.alice(&["--send", "-u", "3001"]));
    let dest = fx.realm.user_dir(&fx.alice).join("auks_cred");
    assert!(!dest.exists());
    let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
        .ccache(&fx.alice_cc)
        .user(&fx.alice)
        .args(&["-f", &fx.conf(), "--receive", "-C", &s(&dest)])
        .stdin(&blob)
        .run();
    assert_ok(&o);
    let (mode, owner) = mode_owner(&dest);
    assert_eq!(mode, 0o600, "received ccache mode");
    assert_eq!(owner, fx.alice.uid, "received ccache owner");
    assert_ok(&fx.admin(&["--remove", "--uid", "3001"]));
    assert!(fx.dump_rows().iter().all(|(_, p)| p != "alice@TEST.REALM"));
    // the received ccache is independent of the repository
    let k = fx.realm.klist(&dest);
    assert!(k.status.success(), "{}", out(&k));
    assert_eq!(fx.realm.ccache_principal(&dest), "alice@TEST.REALM");
}

/// bats: "Auks client is able to receive a credential with no krb5 tkt"
#[test]
fn receive_without_own_ticket() {
    let fx = setup();
    assert_ok(&fx.alice(&["--add"]));
    let blob = check_blob(&fx.admin(&["--send", "-u", "3001"]));
    assert_ok(&fx.admin(&["--remove", "--uid", "3001"]));

    // KRB5CCNAME=/dev/null as in the C suite
    let dest = fx.realm.user_dir(&fx.alice).join("auks_cred");
    let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
        .user(&fx.alice)
        .env("KRB5CCNAME", "/dev/null")
        .args(&["-f", &fx.conf(), "--receive", "-C", &s(&dest)])
        .stdin(&blob)
        .run();
    assert_ok(&o);
    assert_eq!(fx.realm.ccache_principal(&dest), "alice@TEST.REALM");

    // a default ccache that does not exist, daemon stopped: still no daemon contact needed
    let mut fx = fx;
    fx.auksd.stop();
    let dest2 = fx.realm.user_dir(&fx.alice).join("auks_cred2");
    let missing = fx.realm.user_dir(&fx.alice).join("no-such-ccache");
    let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
        .ccache(&missing)
        .user(&fx.alice)
        .args(&["--receive", "-C", &s(&dest2)])
        .stdin(&blob)
        .run();
    assert_ok(&o);
    assert_eq!(fx.realm.ccache_principal(&dest2), "alice@TEST.REALM");
    assert!(!missing.exists());
}

/// A truncated / garbage blob on stdin is refused without creating the ccache.
#[test]
fn receive_rejects_garbage() {
    let fx = setup();
    let dest = fx.realm.user_dir(&fx.alice).join("garbage_cred");
    for input in [
        &b""[..],
        &b"\x10\0\0\0\0\0\0\0\0\0\0\x07"[..],
        &[0xffu8; 300][..],
    ] {
        let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
            .ccache(&fx.alice_cc)
            .user(&fx.alice)
            .args(&["--receive", "-C", &s(&dest)])
            .stdin(input)
            .run();
        assert!(
            !o.status.success(),
            "garbage blob must be refused\n{}",
            out(&o)
        );
        assert!(
            stderr_of(&o).starts_with("Auks API request failed : "),
            "{}",
            out(&o)
        );
        assert!(!dest.exists(), "no ccache from a garbage blob");
    }
}

// ---------------------------------------------------------------------------------------
// configuration variants
// ---------------------------------------------------------------------------------------

/// bats: "Auks does not fail when a cross-realm is not available"
#[test]
fn unreachable_cross_realm_does_not_fail_add() {
    let fx = setup_with(AuksdOpts {
        extra_common: r#"CrossRealm = "UNREACHABLE.REALM" ;"#.into(),
        ..Default::default()
    });
    assert_ok(&fx.alice(&["--add"]));
    fx.assert_stored(3001);
    assert_ok(&fx.alice(&["--get", "--uid", "3001"]));
    assert_eq!(fx.realm.ccache_principal(&fx.alice_cc), "alice@TEST.REALM");
}

/// With `api { <helper> }`: the requests still work, then `auks -v -R once` renews
/// alice's ticket (MinLifeTime above the one-hour lifetime makes it due at once), after
/// which the HelperScript runs. Returns that `-R once` run and alice's ccache.
fn helper_script_case(helper: &str) -> (Output, PathBuf) {
    let fx = setup_with(AuksdOpts {
        extra_api: helper.to_string(),
        extra_renewer: "MinLifeTime = 7200 ;".into(),
        ..Default::default()
    });
    let conf = fx.conf();
    assert_ok(&fx.alice(&["--config", &conf, "--ping"]));
    let o = fx.alice(&["--config", &conf, "--get", "--uid", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
    assert_ok(&fx.alice(&["--config", &conf, "--add"]));
    assert_ok(&fx.alice(&["--config", &conf, "--get", "--uid", "3001"]));
    assert_ok(&fx.alice(&["--config", &conf, "--remove", "--uid", "3001"]));
    let o = fx.alice(&["--config", &conf, "--get", "--uid", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");

    let renew = fx.alice(&["--config", &conf, "-v", "-R", "once"]);
    assert!(
        stderr_of(&renew).contains("renewed by renewal at the KDC"),
        "the ticket must have been renewed\n{}",
        out(&renew)
    );
    assert_eq!(fx.realm.ccache_principal(&fx.alice_cc), "alice@TEST.REALM");
    (renew, fx.alice_cc.clone())
}

/// A HelperScript (in `dir`) that writes `<KRB5CCNAME> <uid>` to a marker file and exits
/// `code`. Returns the script and the marker, in a directory alice may write to.
fn marker_script(dir: &Path, code: i32) -> (PathBuf, PathBuf) {
    let out_dir = dir.join("out");
    fs::create_dir(&out_dir).expect("mkdir out");
    chown(&out_dir, &alice());
    set_mode(&out_dir, 0o700);
    let marker = out_dir.join("helper-ran");
    let script = dir.join("helper.sh");
    write_file(
        &script,
        format!(
            "#!/bin/sh\necho \"$KRB5CCNAME $(id -u)\" > '{}'\nexit {code}\n",
            marker.display()
        ),
        0o755,
    );
    (script, marker)
}

/// The script ran as alice (3001) with KRB5CCNAME naming her renewed ccache `cc`.
#[track_caller]
fn assert_helper_ran(marker: &Path, cc: &Path, renew: &Output) {
    let got = fs::read_to_string(marker).unwrap_or_else(|e| {
        panic!(
            "the HelperScript did not run ({}: {e})\n{}",
            marker.display(),
            out(renew)
        )
    });
    assert_eq!(
        got.trim(),
        format!("FILE:{} 3001", cc.display()),
        "{}",
        out(renew)
    );
}

/// bats: "Renewal runs the HelperScript": after the renewal, as the user, with
/// KRB5CCNAME naming the renewed ccache.
#[test]
fn helper_script_runs_after_renewal() {
    let dir = temp_dir("auks-helper-");
    let (script, marker) = marker_script(dir.path(), 0);
    let (renew, cc) = helper_script_case(&format!("HelperScript = \"{}\" ;", script.display()));
    assert_ok(&renew);
    assert_helper_ran(&marker, &cc, &renew);
}

/// bats: "Fail when renewal script fails": requests still work; the renewal is done but
/// `-R once` reports the failed script (exit 10).
#[test]
fn failing_helper_script_does_not_break_requests() {
    let dir = temp_dir("auks-helper-");
    let (script, marker) = marker_script(dir.path(), 1);
    let (renew, cc) = helper_script_case(&format!("HelperScript = \"{}\" ;", script.display()));
    // (-v: the renewer's log lines come before the failure line)
    assert_eq!(renew.status.code(), Some(10), "{}", out(&renew));
    assert!(
        stderr_of(&renew)
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("Auks API request failed : HelperScript failed")),
        "{}",
        out(&renew)
    );
    assert_helper_ran(&marker, &cc, &renew);
}

/// bats: "Not fail when renewal script is not executable"
#[test]
fn missing_helper_script_does_not_break_requests() {
    let (renew, _) = helper_script_case(r#"HelperScript = "/not/existing/script" ;"#);
    assert_ok(&renew);
    let err = stderr_of(&renew);
    assert!(
        err.contains("HelperScript /not/existing/script cannot be used") && err.contains("ignored"),
        "{}",
        out(&renew)
    );
}

/// bats: "Not fail when renewal script is not set"
#[test]
fn empty_helper_script_does_not_break_requests() {
    let (renew, _) = helper_script_case(r#"HelperScript = "" ;"#);
    assert_ok(&renew);
    assert!(
        !stderr_of(&renew).contains("HelperScript"),
        "no HelperScript is configured: none may run\n{}",
        out(&renew)
    );
}

/// bats (newer suite): "Fail to add a cred when the user is not known" — a principal
/// allowed by the ACL but without a local account cannot store a cred.
#[test]
fn unknown_user_cannot_add() {
    let name = absent_user_name("auksghost");
    let name = name.as_str();
    let fx = setup();
    fx.realm.add_principal(name, "ghost-pw");
    let cc = fx.realm.path().join("ghost.cc");
    fx.realm
        .kinit_password(name, "ghost-pw", &cc, &["-f", "-r", "1d"]);
    let conf = fx.auksd.conf_path();
    assert_ok(&auks(&fx.realm, &conf, &cc, None, &["-p"]));
    let o = auks(&fx.realm, &conf, &cc, None, &["--add"]);
    assert!(
        matches!(o.status.code(), Some(7) | Some(8)),
        "expected exit 7 or 8\n{}",
        out(&o)
    );
    assert!(
        stderr_of(&o).starts_with("Auks API request failed : "),
        "{}",
        out(&o)
    );
    assert!(
        fs::read_dir(fx.auksd.cache_dir()).unwrap().next().is_none(),
        "cache dir must stay empty"
    );
}

/// Guest role (rule present in the newer C suite's ACL): may add, may not get/remove/dump.
#[test]
fn guest_can_add_but_not_get() {
    let acl = format!(
        "rule {{ principal = ^carol@TEST.REALM$ ; host = * ; role = guest ; }}\n{DEFAULT_ACL}"
    );
    let fx = setup_with(AuksdOpts {
        acl,
        ..Default::default()
    });
    let carol = carol();
    let cc = fx.realm.user_ccache(&carol, CAROL_PW);
    let conf = fx.auksd.conf_path();
    let run = |args: &[&str]| auks(&fx.realm, &conf, &cc, Some(&carol), args);
    assert_ok(&run(&["-p"]));
    assert_ok(&run(&["-a"]));
    fx.assert_stored(carol.uid);
    assert_fail_with(&run(&["-g"]), 5, "permission denied");
    assert_fail_with(&run(&["-r"]), 5, "permission denied");
    assert_fail_with(&run(&["-D"]), 5, "permission denied");
    fx.assert_stored(carol.uid);
    // the admin can still get it
    assert_ok(&fx.admin(&[
        "-g",
        "-u",
        &carol.uid.to_string(),
        "-C",
        &s(&fx.realm.path().join("c.cc")),
    ]));
}

// ---------------------------------------------------------------------------------------
// usage, configuration and local errors
// ---------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let fx = setup();
    for args in [
        &["--bogus-option"][..],
        &["-u", "abc", "-g"][..],
        &["-R", "bogus"][..],
        &["-x"][..],
    ] {
        let o = fx.alice(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "usage error for {args:?}\n{}",
            out(&o)
        );
        assert!(
            stderr_of(&o).to_lowercase().contains("usage"),
            "usage on stderr for {args:?}\n{}",
            out(&o)
        );
        assert!(
            !stdout_of(&o).contains("Auks API request succeed"),
            "{}",
            out(&o)
        );
    }
    for h in ["-h", "--help"] {
        let o = fx.alice(&[h]);
        assert_eq!(o.status.code(), Some(0), "{h}\n{}", out(&o));
        assert!(
            stdout_of(&o).to_lowercase().contains("usage"),
            "usage on stdout for {h}\n{}",
            out(&o)
        );
    }
    // nothing was sent to the daemon by any of these
    assert!(fs::read_dir(fx.auksd.cache_dir()).unwrap().next().is_none());
}

#[test]
fn configuration_errors_exit_2() {
    let fx = setup();
    let check = |o: &Output| {
        assert_eq!(o.status.code(), Some(2), "configuration error\n{}", out(o));
        let e = stderr_of(o);
        assert!(
            e.starts_with("Auks API request failed : ") || e.starts_with("Auks API init failed : "),
            "{}",
            out(o)
        );
    };
    let missing = fx.realm.path().join("no-such-auks.conf");
    check(&fx.alice(&["-f", &s(&missing), "-p"]));
    let bad = fx.realm.path().join("bad.conf");
    write_file(&bad, "common { PrimaryHost = \"unterminated ;\n", 0o644);
    check(&fx.alice(&["-f", &s(&bad), "-p"]));
    // AUKS_CONF is honoured when -f is absent
    let o = AuksRun::new(&fx.realm, &missing)
        .ccache(&fx.alice_cc)
        .user(&fx.alice)
        .args(&["-p"])
        .run();
    check(&o);
    let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
        .ccache(&fx.alice_cc)
        .user(&fx.alice)
        .args(&["-p"])
        .run();
    assert_ok(&o);
}

#[test]
fn no_ticket_of_ones_own() {
    let fx = setup();
    let missing = fx.realm.user_dir(&fx.alice).join("no-such-ccache");
    let conf = fx.auksd.conf_path();
    // talking to auksd without a ticket: authentication failure mentioning the ccache
    let o = auks(&fx.realm, &conf, &missing, Some(&fx.alice), &["-p"]);
    assert_fail(&o, 4);
    let e = stderr_of(&o).to_lowercase();
    assert!(
        e.contains("ccache") || e.contains("credential cache") || e.contains("ticket"),
        "stderr should mention the ccache/ticket\n{}",
        out(&o)
    );
    // adding from a ccache that does not exist: local ccache problem
    let o = fx.alice(&["-a", "-C", &s(&missing)]);
    assert_fail(&o, 7);
    // a ccache holding only a service ticket (no TGT)
    let no_tgt = fx.realm.user_dir(&fx.alice).join("no-tgt.cc");
    fx.realm
        .kinit_password("alice", ALICE_PW, &no_tgt, &["-S", AUKSD_PRINCIPAL]);
    chown(&no_tgt, &fx.alice);
    let k = stdout_of(&fx.realm.klist(&no_tgt));
    assert!(
        !k.contains("krbtgt/"),
        "test setup: ccache should hold no TGT\n{k}"
    );
    let o = fx.alice(&["-a", "-C", &s(&no_tgt)]);
    assert_fail(&o, 7);
    assert!(fs::read_dir(fx.auksd.cache_dir()).unwrap().next().is_none());
}
