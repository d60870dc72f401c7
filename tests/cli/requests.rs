//! The requests of the CLI against auksd: ping, the credential life cycle of a user,
//! an admin acting on behalf of users, and what a user may not do.

use super::*;

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
    let (fx, carol, carol_cc) = setup_carol("admin");
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
    fx.assert_add_refused(&o);
}

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
