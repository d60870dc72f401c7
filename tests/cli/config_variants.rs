//! Configuration variants: unreachable cross-realm, the HelperScript (run by
//! `auks -R once` and observed through a marker file), unknown users, the guest role.

use super::*;

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
    fx.assert_add_refused(&o);
}

/// Guest role (rule present in the newer C suite's ACL): may add, may not get/remove/dump.
#[test]
fn guest_can_add_but_not_get() {
    let (fx, carol, cc) = setup_carol("guest");
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
