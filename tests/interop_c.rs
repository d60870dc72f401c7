//! Interoperability with the C AUKS: a C client against our auksd, and our
//! client against a C auksd, on a real throw-away KDC.
//!
//! The C AUKS is not part of this project (it is never built, vendored or
//! committed here), so these tests are `#[ignore]`d and report as ignored.
//! To run them, build the C AUKS by hand from its public source, install it
//! under a prefix, then:
//!
//! ```sh
//! AUKS_C_PREFIX=/path/to/prefix cargo test --test interop_c -- --ignored
//! ```
//!
//! The large case (issue 12): a C auksd holding 5 000 credentials of 5 000
//! accounts (nss_wrapper, never the machine's /etc/passwd) pads every DUMP
//! record to 32 KiB, a 160 MiB reply; our client lists every one of them.

mod common;

use common::load::{dump_rows, Accounts};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

fn c_prefix() -> PathBuf {
    PathBuf::from(
        std::env::var("AUKS_C_PREFIX").expect(
            "set AUKS_C_PREFIX to the install prefix of a C AUKS build (bin/auks, sbin/auksd)",
        ),
    )
}

/// Run the C `auks` client as `user` (or root) with `ccache`.
fn c_auks(
    realm: &Realm,
    conf: &Path,
    cc: &Path,
    user: Option<&LocalUser>,
    args: &[&str],
) -> Output {
    let mut cmd = realm.command(c_prefix().join("bin/auks"));
    cmd.env("KRB5CCNAME", format!("FILE:{}", cc.display()))
        .env("AUKS_CONF", conf)
        .args(args);
    if let Some(u) = user {
        use std::os::unix::process::CommandExt;
        cmd.uid(u.uid).gid(u.gid);
    }
    run_cmd(&mut cmd, None, Duration::from_secs(60))
}

struct CDaemon(Child);

impl Drop for CDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Fx = AliceFx;

fn setup() -> Fx {
    setup_with(AuksdOpts::default())
}

fn setup_with(opts: AuksdOpts) -> Fx {
    alice_fx(opts)
}

#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn c_client_against_rust_auksd() {
    let f = setup();
    let conf = f.auksd.conf_path();
    let c = |cc: &Path, user: Option<&LocalUser>, args: &[&str]| {
        c_auks(&f.realm, &conf, cc, user, args)
    };
    assert_ok(&c(&f.alice_cc, Some(&f.alice), &["-p"]));
    assert_ok(&c(&f.alice_cc, Some(&f.alice), &["-a"]));
    assert!(f.auksd.cache_file(f.alice.uid).exists());
    let dump = c(&f.admin_cc, None, &["-D"]);
    assert_ok(&dump);
    assert!(
        stdout_of(&dump).contains("alice@TEST.REALM"),
        "{}",
        out(&dump)
    );
    let got = f.realm.path().join("c-got.cc");
    let uid = f.alice.uid.to_string();
    assert_ok(&c(
        &f.admin_cc,
        None,
        &["-g", "-u", &uid, "-C", &got.display().to_string()],
    ));
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
    assert_ok(&c(&f.alice_cc, Some(&f.alice), &["-r", "-u", &uid]));
    assert!(!f.auksd.cache_file(f.alice.uid).exists());
    // GET of a removed cred fails on the C side too (its own exit code).
    let o = c(
        &f.admin_cc,
        None,
        &["-g", "-u", &uid, "-C", &got.display().to_string()],
    );
    assert!(!o.status.success(), "{}", out(&o));
    let log = f.auksd.log();
    assert!(log.contains("add request succeed"), "{log}");
    assert!(log.contains("dump request succeed"), "{log}");
}

/// Stop our auksd of `f` and start the C auksd on its configuration (same
/// port, keytab, ACL and CacheDir) with the extra environment `env`; returns
/// once the C daemon accepts connections (it loads CacheDir first), with
/// the path of its log (with `-F` the C auksd logs to stderr).
fn start_c_auksd(f: &mut Fx, env: &[(String, String)], max: Duration) -> (CDaemon, PathBuf) {
    let conf = f.auksd.conf_path();
    let port = f.auksd.port();
    f.auksd.stop();
    let log = f.realm.path().join("c-auksd.log");
    let logf = std::fs::File::create(&log).expect("create the C auksd log");
    let mut c = CDaemon(
        f.realm
            .command(c_prefix().join("sbin/auksd"))
            .envs(env.iter().cloned())
            .args(["-F", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup the C auksd log"))
            .stderr(logf)
            .spawn()
            .expect("start the C auksd"),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = c.0.try_wait() {
            panic!("the C auksd exited ({st})\n{}", read_log());
        }
        assert!(t.elapsed() < max, "C auksd did not listen within {max:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (c, log)
}

/// `bytes` with every occurrence of `from` replaced by `to` (same length).
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "a ccache rename keeps every length");
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn rust_client_against_c_auksd() {
    let mut f = setup();
    let conf = f.auksd.conf_path();
    let _c = start_c_auksd(&mut f, &[], Duration::from_secs(10));
    let r =
        |cc: &Path, user: Option<&LocalUser>, args: &[&str]| auks(&f.realm, &conf, cc, user, args);
    assert_ok(&r(&f.alice_cc, Some(&f.alice), &["-p"]));
    assert_ok(&r(&f.alice_cc, Some(&f.alice), &["-a"]));
    let dump = r(&f.admin_cc, None, &["-D"]);
    assert_ok(&dump);
    assert!(
        stdout_of(&dump).contains("alice@TEST.REALM"),
        "{}",
        out(&dump)
    );
    let got = f.realm.path().join("r-got.cc");
    let uid = f.alice.uid.to_string();
    assert_ok(&r(
        &f.admin_cc,
        None,
        &["-g", "-u", &uid, "-C", &got.display().to_string()],
    ));
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
    // A user may not dump; the C daemon gives no reason: exit 8, not success.
    let o = r(&f.alice_cc, Some(&f.alice), &["-D"]);
    assert_fail(&o, 8);
    assert_ok(&r(&f.alice_cc, Some(&f.alice), &["-r", "-u", &uid]));
    let o = r(
        &f.admin_cc,
        None,
        &["-g", "-u", &uid, "-C", &got.display().to_string()],
    );
    assert_fail_with(&o, 8, &format!("no credential stored for uid {uid}"));
}

/// `NAT = yes` (dummy KRB-PRIV addresses, spec §2.5) both ways: the C
/// client against our auksd, then our client, whose first request goes
/// out with the AP-REQ, against the C auksd.
#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn nat_mode_both_ways() {
    let mut f = setup_with(AuksdOpts {
        extra_common: "NAT = yes ;".into(),
        ..AuksdOpts::default()
    });
    let conf = f.auksd.conf_path();
    let uid = f.alice.uid.to_string();
    let got = f.realm.path().join("nat-got.cc");
    let got_arg = got.display().to_string();
    let c = |cc: &Path, user: Option<&LocalUser>, args: &[&str]| {
        c_auks(&f.realm, &conf, cc, user, args)
    };
    assert_ok(&c(&f.alice_cc, Some(&f.alice), &["-p"]));
    assert_ok(&c(&f.alice_cc, Some(&f.alice), &["-a"]));
    assert_ok(&c(&f.admin_cc, None, &["-g", "-u", &uid, "-C", &got_arg]));
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
    let _c = start_c_auksd(&mut f, &[], Duration::from_secs(10));
    let r =
        |cc: &Path, user: Option<&LocalUser>, args: &[&str]| auks(&f.realm, &conf, cc, user, args);
    assert_ok(&r(&f.alice_cc, Some(&f.alice), &["-p"]));
    assert_ok(&r(&f.alice_cc, Some(&f.alice), &["-a"]));
    std::fs::remove_file(&got).unwrap();
    assert_ok(&r(&f.admin_cc, None, &["-g", "-u", &uid, "-C", &got_arg]));
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
}

#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn rust_client_dumps_a_c_auksd_of_5000_credentials() {
    // Accounts cdump1000..cdump5999: 5 000 names of one length.
    const FIRST: u32 = 1000;
    const N: u32 = 5000;
    // LogLevel 4: the C auksd logs the count of credentials it loaded.
    let mut f = setup_with(AuksdOpts {
        timeout: 120,
        extra_auksd: "LogLevel = 4 ;".into(),
        ..AuksdOpts::default()
    });
    let acc = Accounts::create("cdump", 300_000, FIRST + N);
    // One real TGT, copied into CacheDir once per account with its client
    // principal renamed (the C auksd maps that principal to the uid).
    let template = "cdump0000";
    let kt = f.realm.path().join("cdump.keytab");
    f.realm.add_randkey_to_keytab(&f.realm.princ(template), &kt);
    let tcc = f.realm.path().join("cdump.cc");
    f.realm
        .kinit_keytab_with(template, &kt, &tcc, &["-r", "7d"]);
    let bytes = std::fs::read(&tcc).expect("read the template ccache");
    assert!(
        bytes
            .windows(template.len())
            .any(|w| w == template.as_bytes()),
        "the template ccache names {template}"
    );
    let dir = f.auksd.cache_dir();
    for i in FIRST..FIRST + N {
        let name = acc.name(i);
        write_file(
            &dir.join(format!("aukscc_{}", acc.uid(i))),
            replace_all(&bytes, template.as_bytes(), name.as_bytes()),
            0o600,
        );
    }
    let conf = f.auksd.conf_path();
    let (_c, c_log) = start_c_auksd(&mut f, &acc.env(), Duration::from_secs(120));
    let log = std::fs::read_to_string(&c_log).unwrap_or_default();
    assert!(
        log.contains(&format!("{N} cred(s) loaded from cachedir")),
        "the C auksd did not load all {N} files\n{}",
        &log[log.len().saturating_sub(4000)..]
    );

    let t = Instant::now();
    let o = AuksRun::new(&f.realm, &conf)
        .ccache(&f.admin_cc)
        .args(&["-D"])
        .timeout(Duration::from_secs(300))
        .run();
    assert_ok(&o);
    eprintln!(
        "figure: auks -D of {N} credentials from the C auksd took {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let rows = dump_rows(&stdout_of(&o));
    assert_eq!(rows.len(), N as usize, "DUMP must list every credential");
    for i in FIRST..FIRST + N {
        let uid = acc.uid(i);
        let want = f.realm.princ(&acc.name(i));
        assert!(
            rows.iter().any(|(u, p, _)| *u == uid && *p == want),
            "uid {uid} ({want}) missing from the DUMP"
        );
    }
    // The last one is served by GET as well, under its own principal.
    let got = f.realm.path().join("cdump-got.cc");
    let last = acc.uid(FIRST + N - 1).to_string();
    assert_ok(&auks(
        &f.realm,
        &conf,
        &f.admin_cc,
        None,
        &["-g", "-u", &last, "-C", &got.display().to_string()],
    ));
    assert_eq!(
        f.realm.ccache_principal(&got),
        f.realm.princ(&acc.name(FIRST + N - 1))
    );
}

/// The other direction of the large DUMP: our auksd encrypts a DUMP reply
/// above 1 MiB in place (`Session::send_last`); the C client decrypts it
/// with `krb5_rd_priv` and lists every one of 2 000 credentials.
#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn c_client_dumps_a_rust_auksd_of_2000_credentials() {
    const FIRST: u32 = 1000;
    const N: u32 = 2000;
    let acc = Accounts::create("rdump", 310_000, FIRST + N);
    let mut f = setup_with(AuksdOpts {
        env: acc.env(),
        ..AuksdOpts::default()
    });
    let template = "rdump0000";
    let kt = f.realm.path().join("rdump.keytab");
    f.realm.add_randkey_to_keytab(&f.realm.princ(template), &kt);
    let tcc = f.realm.path().join("rdump.cc");
    f.realm
        .kinit_keytab_with(template, &kt, &tcc, &["-r", "7d"]);
    let bytes = std::fs::read(&tcc).expect("read the template ccache");
    let dir = f.auksd.cache_dir();
    for i in FIRST..FIRST + N {
        write_file(
            &dir.join(format!("aukscc_{}", acc.uid(i))),
            replace_all(&bytes, template.as_bytes(), acc.name(i).as_bytes()),
            0o600,
        );
    }
    f.auksd.restart();
    let conf = f.auksd.conf_path();
    let dump = c_auks(&f.realm, &conf, &f.admin_cc, None, &["-D"]);
    assert_ok(&dump);
    let rows = dump_rows(&stdout_of(&dump));
    assert_eq!(
        rows.len(),
        N as usize,
        "the C client must list every credential\n{}",
        out(&dump)
    );
    for i in [FIRST, FIRST + N / 2, FIRST + N - 1] {
        let (uid, want) = (acc.uid(i), f.realm.princ(&acc.name(i)));
        assert!(
            rows.iter().any(|(u, p, _)| *u == uid && *p == want),
            "uid {uid} ({want}) missing from the C client's DUMP"
        );
    }
}

/// `auksdrenewer`'s kept sessions (several ADDs per connection, spec §2.7)
/// against the C auksd: every ADD is acknowledged and stored, over one
/// connection per `KEPT_REQUESTS` ADDs.
#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn kept_sessions_against_c_auksd() {
    use auks::client::{Client, KeptSession, KEPT_REQUESTS};
    let mut f = setup();
    let conf = f.auksd.conf_path();
    let _c = start_c_auksd(&mut f, &[], Duration::from_secs(10));
    // libkrb5 in this process reads this realm's krb5.conf (the other
    // tests of this binary give it to their commands explicitly).
    std::env::set_var("KRB5_CONFIG", f.realm.krb5_conf());
    let ctx = auks::krb5::Context::new().unwrap();
    let name = format!("FILE:{}", f.alice_cc.display());
    let client = Client::from_config_file(Some(&conf))
        .unwrap()
        .with_auth_ccache(Some(name.clone()));
    let before = connections_to(f.auksd.port());
    let n = 2 * KEPT_REQUESTS + 1;
    {
        // Kept for the whole test, however slow the machine.
        let mut kept = KeptSession::new(&ctx).keep_for(Duration::from_secs(120));
        for i in 0..n {
            let tgt = auks::cred::extract_from_ccache(&ctx, Some(&name)).unwrap();
            client
                .add_kept(&mut kept, tgt)
                .unwrap_or_else(|e| panic!("ADD {i} to the C auksd: {e}"));
        }
        assert_eq!(kept.opened(), n.div_ceil(KEPT_REQUESTS), "{n} ADDs");
    }
    // No more connections than sessions. Fewer, even none, may be seen:
    // with `tcp_tw_reuse` a connection to the same port may take the
    // source port of one in TIME_WAIT from before, whose entry looks the
    // same (after a benchmark all three did, here).
    let used = connections_to(f.auksd.port()).difference(&before).count();
    assert!(
        used <= n.div_ceil(KEPT_REQUESTS),
        "{used} connections for {n} ADDs"
    );
    let got = f.realm.path().join("kept-got.cc");
    let uid = f.alice.uid.to_string();
    assert_ok(&auks(
        &f.realm,
        &conf,
        &f.admin_cc,
        None,
        &["-g", "-u", &uid, "-C", &got.display().to_string()],
    ));
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
}

/// srun's ADD without libkrb5 (`auks::spank::quickadd`, the bytes of a
/// user's ccache holding a service ticket for auksd) against the C auksd:
/// it stores the TGT, which a GET then returns.
#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn quick_add_against_c_auksd() {
    use auks::config::ClientConfig;
    use auks::spank::quickadd;
    let mut f = setup();
    let conf = f.auksd.conf_path();
    let _c = start_c_auksd(&mut f, &[], Duration::from_secs(10));
    let r =
        |cc: &Path, user: Option<&LocalUser>, args: &[&str]| auks(&f.realm, &conf, cc, user, args);
    // The service ticket for auksd lands in alice's ccache.
    assert_ok(&r(&f.alice_cc, Some(&f.alice), &["-p"]));
    let uid = f.alice.uid.to_string();
    let got = f.realm.path().join("q-got.cc");
    let get = || {
        r(
            &f.admin_cc,
            None,
            &["-g", "-u", &uid, "-C", &got.display().to_string()],
        )
    };
    assert_fail_with(&get(), 8, &format!("no credential stored for uid {uid}"));
    let cc = zeroize::Zeroizing::new(std::fs::read(&f.alice_cc).unwrap());
    let p = quickadd::prepared(&ClientConfig::load(Some(&conf)).unwrap(), cc).unwrap();
    p.run().unwrap();
    assert_ok(&get());
    assert_eq!(f.realm.ccache_principal(&got), "alice@TEST.REALM");
}
