//! auks-gateway against a real KDC and a real auksd, over real HTTPS (a
//! throw-away CA; `curl` as the laptop's client), without Slurm: logins
//! (wrong password, unknown user, rate limiting, a spoofed KDC), backend
//! failures (auksd down, slurmrestd down), malformed requests, start-up
//! refusals and the health check. Where slurmrestd would be, a listener
//! counts connections, to prove that nothing reached Slurm. The Slurm half
//! (jobs that run with their owner's ticket) is scripts/gateway-tests.sh.

mod common;
mod gateway_support;

use common::*;
use gateway_support::*;
use std::time::Duration;

const ALICE_PW: &str = "alice-Gw-pw1";
const JOB: &[u8] = b"{\"script\":\"#!/bin/sh\\nklist\\n\",\"name\":\"t\"}";

struct Fx {
    realm: Realm,
    auksd: Auksd,
    alice: LocalUser,
    sentinel: Sentinel,
    gw: Gateway,
}

fn opts(realm: &Realm, auksd: &Auksd, rest: String, extra: &str) -> GwOpts {
    GwOpts {
        slurmrestd: rest,
        auks_conf: auksd.conf_path(),
        keytab: realm.service_keytab(GW_PRINCIPAL),
        extra: extra.to_string(),
    }
}

fn fixture() -> Fx {
    let realm = Realm::start();
    let alice = alice();
    realm.add_principal("alice", ALICE_PW);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    let sentinel = Sentinel::start();
    let rest = format!("http://127.0.0.1:{}", sentinel.port);
    let gw = Gateway::prepare(&opts(&realm, &auksd, rest, "")).start(&realm);
    Fx {
        realm,
        auksd,
        alice,
        sentinel,
        gw,
    }
}

fn stored(fx: &Fx) -> bool {
    fx.auksd.cache_file(fx.alice.uid).exists()
}

#[test]
fn bad_logins_are_401_alike_then_429() {
    let fx = fixture();
    let hits = fx.sentinel.hits();
    let wrong = fx
        .gw
        .curl("POST", "/v1/jobs", Some(("alice", "not-the-pw")), Some(JOB));
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(wrong.error_code(), "unauthorized");
    assert!(wrong.header("www-authenticate").is_some(), "{wrong:?}");
    let unknown = fx
        .gw
        .curl("POST", "/v1/jobs", Some(("mallory", "whatever")), Some(JOB));
    assert_eq!(unknown.status, 401, "{unknown:?}");
    assert_eq!(
        unknown.body, wrong.body,
        "unknown user and wrong password must look alike"
    );
    let none = fx.gw.curl("GET", "/v1/jobs", None, None);
    assert_eq!(none.status, 401, "{none:?}");
    // third failure from this address: locked out, even with the right password
    let third = fx
        .gw
        .curl("GET", "/v1/jobs", Some(("alice", "again-wrong")), None);
    assert_eq!(third.status, 401, "{third:?}");
    let locked = fx
        .gw
        .curl("POST", "/v1/jobs", Some(("alice", ALICE_PW)), Some(JOB));
    assert_eq!(locked.status, 429, "{locked:?}");
    assert_eq!(locked.error_code(), "rate_limited");
    let ra: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&ra), "Retry-After {ra}");
    assert!(!stored(&fx), "nothing may reach auksd");
    assert_eq!(fx.sentinel.hits(), hits, "nothing may reach slurmrestd");
    let log = fx.gw.log();
    assert!(
        log.contains("action=submit") && log.contains("outcome=\"429 rate_limited\""),
        "{log}"
    );
    for secret in [ALICE_PW, "not-the-pw", "again-wrong"] {
        assert!(!log.contains(secret), "a password reached the log\n{log}");
    }
}

#[test]
fn spoofed_kdc_cannot_mint_access() {
    let real = Realm::start();
    let alice = alice();
    real.add_principal("alice", ALICE_PW);
    let auksd = Auksd::start(&real, AuksdOpts::default());
    let sentinel = Sentinel::start();
    // the attacker's KDC: same realm, their own password for alice and their
    // own key for the gateway's service principal
    let spoof = Realm::start();
    spoof.add_principal("alice", "attacker-chosen-pw");
    spoof.kadmin(&format!("addprinc -randkey {GW_PRINCIPAL}"));
    let rest = format!("http://127.0.0.1:{}", sentinel.port);
    // the gateway's keytab is the real one; its KDC is the attacker's
    let gw = Gateway::prepare(&opts(&real, &auksd, rest, "")).start(&spoof);
    let hits = sentinel.hits();
    let r = gw.curl(
        "POST",
        "/v1/jobs",
        Some(("alice", "attacker-chosen-pw")),
        Some(JOB),
    );
    assert_eq!(r.status, 401, "{r:?}\n{}", gw.log());
    assert!(
        spoof.kdc_log().contains("AS_REQ") && spoof.kdc_log().contains("ISSUE"),
        "the spoofed KDC should have issued a TGT\n{}",
        spoof.kdc_log()
    );
    assert!(
        gw.log()
            .contains("failed verification against the gateway keytab"),
        "{}",
        gw.log()
    );
    assert!(
        !auksd.cache_file(alice.uid).exists(),
        "nothing may reach auksd"
    );
    assert_eq!(sentinel.hits(), hits, "nothing may reach slurmrestd");
}

#[test]
fn auksd_down_means_no_job() {
    let mut fx = fixture();
    fx.auksd.stop();
    let hits = fx.sentinel.hits();
    let r = fx
        .gw
        .curl("POST", "/v1/jobs", Some(("alice", ALICE_PW)), Some(JOB));
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.error_code(), "auksd_unavailable");
    assert!(
        r.json["message"].as_str().unwrap().contains("auksd"),
        "{r:?}"
    );
    assert_eq!(fx.sentinel.hits(), hits, "no job may be submitted");
}

#[test]
fn slurmrestd_down_reports_the_stored_credential() {
    let realm = Realm::start();
    let alice = alice();
    realm.add_principal("alice", ALICE_PW);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let gw = Gateway::prepare(&opts(&realm, &auksd, closed, "")).start(&realm);
    assert!(
        gw.log()
            .contains("cannot check slurmrestd's OpenAPI version"),
        "{}",
        gw.log()
    );
    let r = gw.curl("POST", "/v1/jobs", Some(("alice", ALICE_PW)), Some(JOB));
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.error_code(), "slurmrestd_unavailable");
    // the credential was stored (as alice, under her uid) before the submit
    let cc = auksd.cache_file(alice.uid);
    assert!(cc.exists(), "credential not in auksd\n{}", auksd.log());
    let (mode, uid) = mode_owner(&cc);
    assert_eq!((mode & 0o777, uid), (0o600, 0));
    let log = gw.log();
    assert!(
        log.contains("was added to auksd but no job was submitted"),
        "{log}"
    );
    assert!(
        log.contains("user=alice action=submit job=- outcome=\"503"),
        "{log}"
    );
    let l = gw.curl("GET", "/v1/jobs", Some(("alice", ALICE_PW)), None);
    assert_eq!(l.status, 503, "{l:?}");
    assert_eq!(l.error_code(), "slurmrestd_unavailable");
    assert!(!gw.log().contains(ALICE_PW));
}

#[test]
fn malformed_requests_get_clear_4xx_and_the_service_survives() {
    let mut fx = fixture();
    let a = Some(("alice", ALICE_PW));
    let big = vec![b'x'; 10_000];
    let r = fx.gw.curl("POST", "/v1/jobs", a, Some(&big));
    assert_eq!((r.status, r.error_code()), (413, "body_too_large"), "{r:?}");
    let r = fx.gw.curl("POST", "/v1/jobs", a, Some(b"{\"script\": "));
    assert_eq!((r.status, r.error_code()), (400, "bad_request"), "{r:?}");
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    let r = fx
        .gw
        .curl("POST", "/v1/jobs", a, Some(b"{\"script\":\"\"}"));
    assert_eq!((r.status, r.error_code()), (422, "invalid_job"), "{r:?}");
    assert!(r.json["message"].as_str().unwrap().contains("empty"));
    let r = fx.gw.curl(
        "POST",
        "/v1/jobs",
        a,
        Some(b"{\"script\":\"#!/bin/sh\",\"gpus\":1}"),
    );
    assert_eq!((r.status, r.error_code()), (422, "invalid_job"), "{r:?}");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `gpus`"),
        "{r:?}"
    );
    let r = fx.gw.curl("GET", "/v1/jobs/abc", a, None);
    assert_eq!((r.status, r.error_code()), (400, "bad_request"), "{r:?}");
    let r = fx.gw.curl("PUT", "/v1/jobs", a, None);
    assert_eq!(r.status, 405, "{r:?}");
    let r = fx.gw.curl("GET", "/v2/jobs", a, None);
    assert_eq!(r.status, 404, "{r:?}");
    assert!(
        fx.gw.alive(),
        "the gateway must keep running\n{}",
        fx.gw.log()
    );
    assert!(!stored(&fx), "a refused job must not store a credential");
    let h = fx.gw.curl("GET", "/v1/health", None, None);
    assert!(h.json.get("status").is_some(), "{h:?}");
}

#[test]
fn health_names_each_backend() {
    let mut fx = fixture();
    let h = fx.gw.curl("GET", "/v1/health", None, None);
    assert_eq!(h.status, 503, "{h:?}");
    assert_eq!(h.json["kdc"]["ok"], true, "{h:?}");
    assert_eq!(h.json["auksd"]["ok"], true, "{h:?}");
    assert_eq!(h.json["slurmrestd"]["ok"], false, "{h:?}");
    fx.auksd.stop();
    // reports are reused for 2 s (the probes run an AS exchange and need no
    // authentication): wait for a fresh one
    std::thread::sleep(Duration::from_millis(2500));
    let h = fx.gw.curl("GET", "/v1/health", None, None);
    assert_eq!(h.json["auksd"]["ok"], false, "{h:?}");
    assert_eq!(h.json["status"], "degraded");
    drop(fx.realm);
}

fn check(realm: &Realm, gw: &Gateway) -> std::process::Output {
    run_cmd(
        realm
            .command(gateway_bin())
            .arg("--check")
            .arg("-f")
            .arg(gw.conf_path()),
        None,
        Duration::from_secs(60),
    )
}

#[test]
fn start_refuses_unsafe_or_bad_configuration() {
    let realm = Realm::start();
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    let gw = Gateway::prepare(&opts(&realm, &auksd, "http://127.0.0.1:1".into(), ""));
    let o = check(&realm, &gw);
    assert!(o.status.success(), "{}", out(&o));
    // a JWT key other accounts could read
    set_mode(&gw.dir.path().join("jwt.key"), 0o644);
    let o = check(&realm, &gw);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        stderr_of(&o).contains("`jwt_key`") && stderr_of(&o).contains("chmod 600"),
        "{}",
        out(&o)
    );
    set_mode(&gw.dir.path().join("jwt.key"), 0o600);
    // a keytab without the verification key
    let other = gw.dir.path().join("other.keytab");
    realm.add_randkey_to_keytab("HTTP/elsewhere", &other);
    std::fs::copy(&other, gw.dir.path().join("gw.keytab")).unwrap();
    let o = check(&realm, &gw);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        stderr_of(&o).contains("`keytab`") && stderr_of(&o).contains(GW_PRINCIPAL),
        "{}",
        out(&o)
    );
    // plain HTTP on a non-loopback address, an unknown key
    let conf = std::fs::read_to_string(gw.conf_path()).unwrap();
    let plain: String = conf
        .lines()
        .filter(|l| !l.starts_with("tls_"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("listen = \"127.0.0.1:", "listen = \"0.0.0.0:");
    write_file(&gw.conf_path(), &plain, 0o644);
    let o = check(&realm, &gw);
    assert!(
        stderr_of(&o).contains("without TLS is refused"),
        "{}",
        out(&o)
    );
    write_file(
        &gw.conf_path(),
        format!("{conf}\nlisten_address = \"x\"\n"),
        0o644,
    );
    let o = check(&realm, &gw);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(stderr_of(&o).contains("listen_address"), "{}", out(&o));
}
