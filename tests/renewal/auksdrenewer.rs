//! `auksdrenewer` (spec §6): the credentials stored in auksd stay valid
//! until their renew_till.

use super::*;

/// (uid, endtime, renew_till) rows of `auks -D`.
fn dump(realm: &Realm, conf: &Path, admin_cc: &Path) -> Vec<(u32, i64, i64)> {
    let o = auks(realm, conf, admin_cc, None, &["-D"]);
    assert_ok(&o);
    let t = |s: &str| {
        chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
            .unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
            .timestamp()
    };
    stdout_of(&o)
        .lines()
        .skip(1)
        .filter(|l| !l.contains("Auks API request succeed") && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "bad dump row {l:?}");
            (f[0].parse().unwrap(), t(f[3]), t(f[4]))
        })
        .collect()
}

#[test]
fn auksdrenewer_keeps_credentials_valid_until_renew_till() {
    let realm = short_realm("150s");
    let user = alice();
    let cc = realm.user_ccache(&user, ALICE_PW);
    let t0 = cc_times(&cc);
    assert!(
        t0.renew_till - t0.starttime <= 150 && t0.renew_till - t0.starttime >= 140,
        "{t0:?}"
    );
    let mut auksd = Auksd::start(&realm, AuksdOpts::default());
    // a short CleanDelay: rewrite the daemon configuration and restart it
    let text = fs::read_to_string(auksd.conf_path()).unwrap();
    assert!(text.contains("CleanDelay = 300"));
    write_file(
        &auksd.conf_path(),
        text.replace("CleanDelay = 300", "CleanDelay = 3"),
        0o644,
    );
    auksd.restart();

    let dir = temp_dir("auks-renewer-test-");
    let conf = dir.path().join("renewer.conf");
    client_conf(&auksd, &conf, 5, 40, "");
    let (admin_cc, _priv) = renewer_identity(&realm, dir.path());
    assert_ok(&auks(&realm, &conf, &cc, Some(&user), &["-a"]));

    let mut c = realm.command(bin("auksdrenewer"));
    c.arg("-F")
        .arg("-f")
        .arg(&conf)
        .env("KRB5CCNAME", format!("FILE:{}", admin_cc.display()));
    let mut r = Bg::spawn(c, &dir.path().join("renewer.stderr"));

    // Check every 5 s until the credential is gone from auksd.
    let mut ends: Vec<i64> = Vec::new();
    let mut hup_sent = false;
    loop {
        let n = now();
        assert!(r.running(), "auksdrenewer exited\n{}", r.log());
        let rows = dump(&realm, &conf, &admin_cc);
        match rows.iter().find(|(u, _, _)| *u == user.uid) {
            Some(&(_, end, till)) => {
                assert_eq!(till, t0.renew_till);
                // valid at every check until renew_till (after it, it
                // waits for auksd's cleaner)
                assert!(
                    end >= n || n >= t0.renew_till,
                    "stored credential expired at {end} (now {n})\n{}\n{}",
                    r.log(),
                    auksd.log()
                );
                if ends.last() != Some(&end) {
                    ends.push(end);
                }
            }
            None => {
                assert!(
                    n >= t0.renew_till,
                    "credential removed before its renewable period ended\n{}",
                    auksd.log()
                );
                break;
            }
        }
        assert!(
            n < t0.renew_till + 30,
            "credential not cleaned after renew_till\n{}",
            auksd.log()
        );
        if !hup_sent && n > t0.starttime + 50 {
            r.signal(nix::sys::signal::Signal::SIGHUP);
            hup_sent = true;
        }
        sleep(Duration::from_secs(5));
    }
    // valid across more than two ticket lifetimes, endtime moved forward
    // several times, the last renewal capped at renew_till
    assert!(ends.len() >= 4, "endtimes seen: {ends:?}\n{}", r.log());
    assert!(ends.windows(2).all(|w| w[1] > w[0]), "{ends:?}");
    assert_eq!(
        *ends.last().unwrap(),
        t0.renew_till,
        "{ends:?}\n{}",
        r.log()
    );
    assert!(t0.renew_till - t0.endtime > 60);

    let rlog = r.log();
    assert!(rlog.contains("renewed: end"), "{rlog}");
    assert!(rlog.contains("renewable period ends"), "{rlog}");
    assert!(rlog.contains("configuration reloaded"), "{rlog}");
    let alog = auksd.log();
    let adds = alog
        .lines()
        .filter(|l| {
            l.contains("host/renewer.test@TEST.REALM")
                && l.contains("add request succeed")
                && l.contains("replaced the stored one")
        })
        .count();
    assert!(
        adds >= 3,
        "auksd log shows {adds} ADDs by the renewer\n{alog}"
    );
    assert!(alog.contains("clean stage : uid 3001"), "{alog}");

    r.signal(nix::sys::signal::Signal::SIGTERM);
    let st = r.wait(Duration::from_secs(10));
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{}", r.log());
    assert!(r.log().contains("auksdrenewer : stopped"), "{}", r.log());
}
