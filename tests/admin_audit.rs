//! The audit trail and the metrics file of a real auksd (issue 10), after
//! real requests against a throw-away KDC:
//! - one audit line per ADD / GET / REMOVE / DUMP, with the principal, the
//!   address, the uid and the outcome, in logfmt;
//! - no ticket bytes anywhere in the log (searched as hex and base64);
//! - `MetricsFile` is written (mode 0644, no temporary file left), parses
//!   (`promtool check metrics` when installed, else the strict line checks
//!   below) and counts the requests by type and outcome.

mod common;

use base64::Engine as _;
use common::*;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";

/// `name{labels}` → value of every sample, checking each line strictly:
/// comments are `# HELP` / `# TYPE`, samples `name[{k="v",...}] number`.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for l in text.lines() {
        if let Some(c) = l.strip_prefix("# ") {
            assert!(
                c.starts_with("HELP auks_") || c.starts_with("TYPE auks_"),
                "bad comment {l:?}"
            );
            continue;
        }
        let (key, val) = l
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {l:?}"));
        let name_end = key.find('{').unwrap_or(key.len());
        let name = &key[..name_end];
        assert!(
            name.starts_with("auks_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name {l:?}"
        );
        if name_end < key.len() {
            assert!(key.ends_with('}'), "bad labels {l:?}");
        }
        let v = match val {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value {l:?}")),
        };
        assert!(out.insert(key.to_string(), v).is_none(), "duplicate {l:?}");
    }
    out
}

/// Panics when any 24-byte window of `secret` that is not plain text
/// appears in `log` as lower/upper hex or as base64 (any alignment).
fn assert_no_bytes_of(secret: &[u8], log: &str) {
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut checked = 0;
    for w in secret.windows(24) {
        if w.iter().filter(|b| !b.is_ascii_graphic()).count() < 8 {
            continue;
        }
        checked += 1;
        let hex: String = w.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!log.contains(&hex), "ticket bytes (hex) in the log");
        assert!(
            !log.contains(&hex.to_uppercase()),
            "ticket bytes (HEX) in the log"
        );
        // 24 bytes encode to 32 characters; the first 28 do not depend on
        // what follows the window.
        let e = b64.encode(w);
        assert!(!log.contains(&e[..28]), "ticket bytes (base64) in the log");
    }
    assert!(
        checked > 50,
        "the ccache has too little binary data ({checked})"
    );
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
}

#[test]
fn real_auksd_audits_every_request_and_writes_metrics() {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let mdir = temp_dir("auks-metrics-");
    let prom = mdir.path().join("auksd.prom");
    let mut auksd = Auksd::start(
        &realm,
        AuksdOpts {
            extra_auksd: format!("MetricsFile = \"{}\" ;", prom.display()),
            ..AuksdOpts::default()
        },
    );
    // Written at start-up (by the cleaner thread), before any request.
    let t = Instant::now();
    while !prom.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "no metrics file");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = |args: &[&str]| auks(&realm, &auksd.conf_path(), &alice_cc, Some(&alice), args);
    assert_ok(&run(&["-a"]));
    assert_ok(&run(&["-g"]));
    assert_ok(&run(&["-p"]));
    let dump = run(&["-D"]);
    assert_ne!(
        dump.status.code(),
        Some(0),
        "a user may not DUMP\n{}",
        out(&dump)
    );
    assert_ok(&run(&["-r"]));
    let gone = run(&["-g"]);
    assert_ne!(gone.status.code(), Some(0), "{}", out(&gone));
    // A connection with garbage instead of the sendauth handshake: closed
    // by the daemon, counted as malformed.
    {
        use std::io::Read;
        let mut junk = std::net::TcpStream::connect(("127.0.0.1", auksd.port())).unwrap();
        junk.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = junk.write_all(&[0xff; 64]);
        let mut buf = [0u8; 256];
        while matches!(junk.read(&mut buf), Ok(n) if n > 0) {}
    }
    auksd.stop();

    // The audit trail: one line per audited request.
    let log = auksd.log();
    let uid = alice.uid;
    let who = "principal=alice@TEST.REALM addr=127.0.0.1";
    for (op, tail, n) in [
        ("ADD", format!("uid={uid} outcome=ok"), 1),
        ("GET", format!("uid={uid} outcome=ok"), 1),
        ("GET", format!("uid={uid} outcome=not_found"), 1),
        ("REMOVE", format!("uid={uid} outcome=ok"), 1),
        ("DUMP", "outcome=denied".to_string(), 1),
    ] {
        let needle = format!("audit op={op} {who} {tail}");
        let found = log.lines().filter(|l| l.contains(&needle)).count();
        assert_eq!(found, n, "{needle:?} in\n{log}");
    }
    for op in ["ADD", "GET", "REMOVE", "DUMP"] {
        let all = log
            .lines()
            .filter(|l| l.contains(&format!("audit op={op} ")))
            .count();
        let want = if op == "GET" { 2 } else { 1 };
        assert_eq!(all, want, "audit lines for {op}\n{log}");
    }
    // The C-style wording stays at the head of the same line.
    assert!(
        log.lines()
            .any(|l| l.contains("add request succeed") && l.contains("audit op=ADD")),
        "{log}"
    );
    assert!(!log.contains("audit op=PING"), "pings are not audited");
    let ccache = std::fs::read(&alice_cc).expect("read the ccache");
    assert_no_bytes_of(&ccache, &log);

    // The metrics file, rewritten at exit.
    let meta = std::fs::metadata(&prom).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    let leftovers: Vec<_> = std::fs::read_dir(mdir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "auksd.prom")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let text = std::fs::read_to_string(&prom).unwrap();
    match promtool(&text) {
        Some((ok, msg)) => assert!(ok, "promtool check metrics failed: {msg}\n{text}"),
        None => eprintln!("promtool not installed: strict line checks only"),
    }
    let m = samples(&text);
    let req = |t: &str, o: &str| {
        get(
            &m,
            &format!("auks_requests_total{{type=\"{t}\",outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(req("add", "ok"), 1.0, "{text}");
    assert_eq!(req("get", "ok"), 1.0, "{text}");
    assert_eq!(req("get", "not_found"), 1.0, "{text}");
    assert_eq!(req("remove", "ok"), 1.0, "{text}");
    assert_eq!(req("dump", "denied"), 1.0, "{text}");
    assert_eq!(req("ping", "ok"), 1.0, "{text}");
    assert_eq!(
        get(&m, "auks_request_duration_seconds_count{type=\"get\"}"),
        2.0,
        "{text}"
    );
    assert_eq!(get(&m, "auks_credentials_stored"), 0.0, "{text}");
    assert_eq!(
        get(&m, "auks_connections_rejected_total{reason=\"malformed\"}"),
        1.0,
        "{text}"
    );
    assert!(get(&m, "auks_start_time_seconds") > 1.0e9);
    assert!(!text.contains("alice"), "no principal in the metrics");
}

#[test]
fn auksdrenewer_writes_its_metrics_after_a_pass() {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    assert_ok(&auks(
        &realm,
        &auksd.conf_path(),
        &alice_cc,
        Some(&alice),
        &["-a"],
    ));
    let dir = temp_dir("auks-renewer-metrics-");
    let prom = dir.path().join("renewer.prom");
    // MinLifeTime above any ticket life: the pass renews the credential.
    let base = auksd.conf_text(auksd.port(), auksd.secondary_port());
    let renewer = "LogLevel = 1 ; Delay = 60 ; MinLifeTime = 300 ;";
    assert!(base.contains(renewer), "harness renewer block changed");
    let conf = dir.path().join("auks.conf");
    std::fs::write(
        &conf,
        base.replace(
            renewer,
            &format!(
                "LogLevel = 1 ; Delay = 60 ; MinLifeTime = 2000000 ; MetricsFile = \"{}\" ;",
                prom.display()
            ),
        ),
    )
    .unwrap();
    let princ = "host/renewer.test@TEST.REALM";
    let kt = dir.path().join("renewer.keytab");
    realm.add_randkey_to_keytab(princ, &kt);
    let admin_cc = dir.path().join("renewer.cc");
    realm.kinit_keytab(princ, &kt, &admin_cc);

    let mut c = realm.command(env!("CARGO_BIN_EXE_auksdrenewer"));
    c.arg("-F")
        .arg("-f")
        .arg(&conf)
        .env("KRB5CCNAME", format!("FILE:{}", admin_cc.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("start auksdrenewer");
    let t = Instant::now();
    let text = loop {
        if let Ok(t) = std::fs::read_to_string(&prom) {
            break t;
        }
        if t.elapsed() > Duration::from_secs(60) {
            kill_and_reap(&mut child, Duration::from_secs(5));
            panic!("no renewer metrics file after 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    kill_and_reap(&mut child, Duration::from_secs(5));
    if let Some((ok, msg)) = promtool(&text) {
        assert!(ok, "promtool check metrics failed: {msg}\n{text}");
    }
    let m = samples(&text);
    let last = |r: &str| {
        get(
            &m,
            &format!("auks_renewer_last_pass_credentials{{result=\"{r}\"}}"),
        )
    };
    assert_eq!(last("renewed"), 1.0, "{text}");
    assert_eq!(last("skipped"), 0.0, "{text}");
    assert_eq!(last("failed"), 0.0, "{text}");
    assert_eq!(
        get(&m, "auks_renewer_renewals_total{result=\"renewed\"}"),
        1.0,
        "{text}"
    );
    assert!(get(&m, "auks_renewer_last_pass_timestamp_seconds") > 1.0e9);
    assert!(get(&m, "auks_renewer_last_pass_duration_seconds") >= 0.0);
    // Still under MinLifeTime after the renewal (MinLifeTime > ticket life).
    assert_eq!(get(&m, "auks_credentials_expiring"), 1.0, "{text}");
}
