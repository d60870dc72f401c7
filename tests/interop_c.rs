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

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";

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

struct Fx {
    realm: Realm,
    auksd: Auksd,
    alice: LocalUser,
    alice_cc: PathBuf,
    admin_cc: PathBuf,
}

fn setup() -> Fx {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let admin = format!("host/{}@TEST.REALM", hostname());
    let kt = realm.path().join("host.keytab");
    realm.add_randkey_to_keytab(&admin, &kt);
    let admin_cc = realm.path().join("admin.cc");
    realm.kinit_keytab(&admin, &kt, &admin_cc);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    Fx {
        realm,
        auksd,
        alice,
        alice_cc,
        admin_cc,
    }
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

#[test]
#[ignore = "needs a C AUKS build: AUKS_C_PREFIX=/prefix cargo test --test interop_c -- --ignored"]
fn rust_client_against_c_auksd() {
    let mut f = setup();
    let conf = f.auksd.conf_path();
    let port = f.auksd.port();
    f.auksd.stop();
    let _c = CDaemon(
        f.realm
            .command(c_prefix().join("sbin/auksd"))
            .args(["-F", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the C auksd"),
    );
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "C auksd did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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
