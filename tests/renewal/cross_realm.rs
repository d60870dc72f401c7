//! A cross-realm TGT (spec §11.17) is renewed like a local one.

use super::*;

/// Services of the TGTs in a FILE ccache, as `klist` lists them.
fn klist_tgts(realm: &Realm, cc: &Path) -> Vec<String> {
    let o = realm.klist(cc);
    assert!(o.status.success(), "klist failed\n{}", out(&o));
    stdout_of(&o)
        .split_whitespace()
        .filter(|w| w.starts_with("krbtgt/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn cross_realm_ticket_survives_renewal() {
    let realm = short_realm("15m");
    // a trust towards OTHER.REALM: the KDC of TEST.REALM issues its TGTs
    realm.kadmin("addprinc -randkey krbtgt/OTHER.REALM@TEST.REALM");
    let user = alice();
    let cc = realm.user_ccache(&user, ALICE_PW);
    let auksd = Auksd::start(
        &realm,
        AuksdOpts {
            extra_common: "CrossRealm = \"OTHER.REALM\" ;".into(),
            ..AuksdOpts::default()
        },
    );
    let dir = temp_dir("auks-cross-test-");
    let cross = "krbtgt/OTHER.REALM@TEST.REALM".to_string();

    // auks -R once with CrossRealm set: the renewed job ccache gets it
    let conf = dir.path().join("cross.conf");
    client_conf(&auksd, &conf, 60, 120, "");
    assert!(!klist_tgts(&realm, &cc).contains(&cross));
    sleep(Duration::from_secs(1));
    let o = auks(&realm, &conf, &cc, Some(&user), &["-v", "-R", "once"]);
    assert_ok(&o);
    assert!(klist_tgts(&realm, &cc).contains(&cross), "{}", out(&o));

    // the stored credential holds it (auks -a with CrossRealm) ...
    assert_ok(&auks(&realm, &conf, &cc, Some(&user), &["-a"]));
    let stored = auksd.cache_file(user.uid);
    assert!(klist_tgts(&realm, &stored).contains(&cross));
    let t0 = cc_times(&stored);
    // ... and keeps it when auksdrenewer renews it, even though the
    // renewer's own configuration has no CrossRealm
    let rconf = dir.path().join("renewer.conf");
    client_conf(&auksd, &rconf, 2, 120, "");
    let text = fs::read_to_string(&rconf).unwrap();
    write_file(
        &rconf,
        text.replace("CrossRealm = \"OTHER.REALM\" ;", ""),
        0o644,
    );
    let (admin_cc, _priv) = renewer_identity(&realm, dir.path());
    sleep(Duration::from_secs(1));
    let mut c = realm.command(bin("auksdrenewer"));
    c.args(["-F", "-f"])
        .arg(&rconf)
        .env("KRB5CCNAME", format!("FILE:{}", admin_cc.display()));
    let mut r = Bg::spawn(c, &dir.path().join("renewer.stderr"));
    let start = Instant::now();
    while !r.log().contains("renewed: end") {
        assert!(r.running(), "{}", r.log());
        assert!(start.elapsed() < Duration::from_secs(20), "{}", r.log());
        sleep(Duration::from_millis(200));
    }
    sleep(Duration::from_millis(500));
    assert!(cc_times(&stored).endtime > t0.endtime, "{}", r.log());
    assert!(
        klist_tgts(&realm, &stored).contains(&cross),
        "cross-realm TGT lost\n{}",
        r.log()
    );
}
