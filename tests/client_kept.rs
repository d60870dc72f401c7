//! ADDs over a kept session (`Client::add_kept`, used by `auksdrenewer`):
//! several requests share one authenticated connection (spec §2.7), a
//! session is replaced after its quota of requests, and a session the
//! daemon closed (here: auksd restarted) is replaced without the caller
//! seeing an error. Every ADD is stored.
//!
//! One test in this binary: it points the process-wide `KRB5_CONFIG` at
//! the throw-away realm (libkrb5 reads it in-process).

mod common;

use auks::client::{Client, KeptSession, KEPT_REQUESTS};
use auks::cred;
use auks::krb5::Context;
use common::*;

const ALICE_PW: &str = "alice-Pw-1";

#[test]
fn adds_share_sessions_and_a_closed_one_is_replaced() {
    let realm = Realm::start();
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    let alice = alice();
    let cc = realm.user_ccache(&alice, ALICE_PW);
    let mut auksd = Auksd::start(&realm, AuksdOpts::default());
    let conf = auksd.conf_path();
    let client = Client::from_config_file(Some(&conf))
        .expect("client configuration")
        .with_auth_ccache(Some(format!("FILE:{}", cc.display())));
    let ctx = Context::new().unwrap();
    let tgt = || cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", cc.display()))).unwrap();
    // The same TGT extracted twice: different bytes (libkrb5 stamps each
    // KRB-CRED with its time), the same credentials, recognised without
    // decoding (what auksd does with an ADD of the credential it stores).
    let (a, b) = (tgt(), tgt());
    assert_eq!(auks::krb5::compare_credentials(&a, &b), Some(true));
    assert!(cred::same_tickets(&ctx, &a, &b));

    let n = 2 * KEPT_REQUESTS + 3;
    let before = connections_to(auksd.port());
    {
        // Kept long enough to outlive the restart below.
        let mut kept = KeptSession::new(&ctx).keep_for(std::time::Duration::from_secs(120));
        for i in 0..n {
            client
                .add_kept(&mut kept, tgt())
                .unwrap_or_else(|e| panic!("ADD {i}: {e}"));
        }
        let sessions = n.div_ceil(KEPT_REQUESTS);
        assert_eq!(
            kept.opened(),
            sessions,
            "{n} ADDs over sessions of {KEPT_REQUESTS}"
        );
        // And on the wire: no more connections than that (fewer may be
        // seen: loopback reuses the port of a connection in TIME_WAIT).
        let used = connections_to(auksd.port()).difference(&before).count();
        assert!(
            (1..=sessions).contains(&used),
            "{used} connections for {n} ADDs"
        );

        // The daemon goes away under the kept session and comes back on
        // the same port: the next ADD opens a new session by itself.
        auksd.restart();
        client
            .add_kept(&mut kept, tgt())
            .expect("ADD after the daemon closed the kept session");
    }
    let log = auksd.log();
    assert!(log.contains("add request succeed"), "{log}");
    // The credential is there.
    let got = realm.user_dir(&alice).join("got.cc");
    let uid = alice.uid.to_string();
    assert_ok(&auks(
        &realm,
        &conf,
        &cc,
        Some(&alice),
        &["-g", "-u", &uid, "-C", &format!("FILE:{}", got.display())],
    ));
    assert_eq!(realm.ccache_principal(&got), "alice@TEST.REALM");
}
