//! Usage, configuration and local errors, and their exit codes.

use super::*;

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
