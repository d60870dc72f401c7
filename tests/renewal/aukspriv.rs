//! `aukspriv` (spec §7): a TGT from a keytab kept fresh for root.

use super::*;

#[test]
fn aukspriv_keeps_a_keytab_tgt_fresh() {
    let realm = short_realm("15m");
    let dir = temp_dir("aukspriv-test-");
    let kt = dir.path().join("host.keytab");
    // the host principal is not the first entry: it must be chosen anyway
    realm.add_randkey_to_keytab("aaa/first.entry@TEST.REALM", &kt);
    let host = format!("host/{}@TEST.REALM", hostname());
    realm.add_randkey_to_keytab(&host, &kt);
    realm.add_randkey_to_keytab("zzz/last.entry@TEST.REALM", &kt);
    let cc = dir.path().join("root.cc");
    let mut c = realm.command(bin("aukspriv"));
    c.arg("-v")
        .env("AUKS_PRIV_KEYTAB", &kt)
        .env("AUKS_PRIV_CCACHE", format!("FILE:{}", cc.display()))
        .env("AUKS_PRIV_LIFETIME", "60")
        .env("AUKS_PRIV_RENEW_INT", "20")
        .env("AUKS_PRIV_ERROR_INT", "2");
    let mut p = Bg::spawn(c, &dir.path().join("root.log"));

    // another account: its ccache must be owned by it, mode 0600
    let user = bob();
    let ucc = realm.user_dir(&user).join("priv.cc");
    let mut c = realm.command(bin("aukspriv"));
    c.arg("-v")
        .env("AUKS_PRIV_USER", &user.name)
        .env("AUKS_PRIV_KEYTAB", &kt)
        .env("AUKS_PRIV_CCACHE", format!("FILE:{}", ucc.display()))
        .env("AUKS_PRIV_LIFETIME", "60")
        .env("AUKS_PRIV_RENEW_INT", "20");
    let mut pu = Bg::spawn(c, &dir.path().join("user.log"));

    let start = Instant::now();
    let mut ends: Vec<i64> = Vec::new();
    // three refresh periods of 20 s, and more than one 60 s ticket lifetime
    while start.elapsed() < Duration::from_secs(72) {
        assert!(p.running(), "aukspriv exited\n{}", p.log());
        if cc.exists() {
            assert!(klist_s(&realm, &cc), "TGT not valid\n{}", p.log());
            let t = cc_times(&cc);
            assert!(t.endtime > now());
            if ends.last() != Some(&t.endtime) {
                ends.push(t.endtime);
            }
        } else {
            assert!(start.elapsed() < Duration::from_secs(10), "{}", p.log());
        }
        sleep(Duration::from_secs(2));
    }
    assert!(ends.len() >= 4, "refreshes seen: {ends:?}\n{}", p.log());
    assert_eq!(cc_principal(&cc), host);
    assert_eq!(mode_owner(&cc), (0o600, 0));
    let log = p.log();
    assert!(
        log.matches(&format!("{host} valid until")).count() >= ends.len(),
        "{log}"
    );
    assert_no_leftovers(dir.path());

    assert!(pu.running(), "{}", pu.log());
    assert!(ucc.exists(), "{}", pu.log());
    assert_eq!(mode_owner(&ucc), (0o600, user.uid), "{}", pu.log());
    assert!(klist_s(&realm, &ucc));
    assert_eq!(cc_principal(&ucc), host);
    assert_no_leftovers(ucc.parent().unwrap());

    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        p.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
    assert!(p.log().contains("stopped"), "{}", p.log());
}
