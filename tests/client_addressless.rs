//! An ADD of a TGT bound to addresses (`kinit -a`): the client exchanges it
//! at the KDC for an addressless one before sending it (spec §4.3), and
//! auksd stores that one. The client tells the two kinds apart without
//! libkrb5 (`krb5::without_addresses`); this proves it on real tickets.
//!
//! One test in this binary: it points the process-wide `KRB5_CONFIG` at
//! the throw-away realm (libkrb5 reads it in-process).

mod common;

use auks::client::Client;
use auks::cred;
use auks::krb5::{self, Context};
use common::*;

const ALICE_PW: &str = "alice-Pw-1";

#[test]
fn an_address_bound_tgt_is_made_addressless_before_the_add() {
    let realm = Realm::start();
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    let alice = alice();
    let auth = realm.user_ccache(&alice, ALICE_PW);

    // `kinit -a` with 127.0.0.1 among the ticket's addresses: the KDC,
    // on loopback, accepts the TGS request of the exchange only then.
    let conf = std::fs::read_to_string(realm.krb5_conf()).expect("krb5.conf");
    assert!(conf.contains("noaddresses = true"), "{conf}");
    let conf = conf.replace(
        "noaddresses = true",
        "noaddresses = false\n  extra_addresses = 127.0.0.1",
    );
    let alt = auth.with_file_name("krb5-with-addresses.conf");
    std::fs::write(&alt, conf).expect("write krb5.conf");
    let bound = auth.with_file_name("cc-bound");
    let mut kinit = realm.command("kinit");
    kinit
        .env("KRB5_CONFIG", &alt)
        .arg("-c")
        .arg(format!("FILE:{}", bound.display()))
        .args(["-f", "-a"])
        .arg(realm.princ(&alice.name))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = kinit.spawn().expect("kinit");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{ALICE_PW}").expect("password");
    }
    assert!(child.wait().expect("kinit").success(), "kinit -a failed");

    let ctx = Context::new().unwrap();
    let name = format!("FILE:{}", bound.display());
    let tgt = cred::extract_from_ccache(&ctx, Some(&name)).unwrap();
    assert_eq!(krb5::without_addresses(&tgt), Some(false));
    assert!(krb5::decode_krb_cred(&ctx, &tgt).unwrap()[0].has_addresses());

    let auksd = Auksd::start(&realm, AuksdOpts::default());
    let client = Client::from_config_file(Some(&auksd.conf_path()))
        .expect("client configuration")
        .with_auth_ccache(Some(format!("FILE:{}", auth.display())));
    let sent = client.prepare_for_add(tgt).expect("exchange at the KDC");
    assert_eq!(krb5::without_addresses(&sent), Some(true));
    client
        .add_from_ccache(Some(&name))
        .expect("ADD of the bound TGT");
    let stored = client.get(alice.uid).expect("GET");
    assert_eq!(stored.principal, realm.princ(&alice.name));
    assert!(stored.addressless);
    assert_eq!(krb5::without_addresses(&stored.data), Some(true));
    let creds = krb5::decode_krb_cred(&ctx, &stored.data).unwrap();
    assert!(!creds[0].has_addresses());
    // The addressless TGT of the user's own ccache goes through as it is.
    let plain = cred::extract_from_ccache(&ctx, Some(&format!("FILE:{}", auth.display()))).unwrap();
    assert_eq!(krb5::without_addresses(&plain), Some(true));
    assert_eq!(*client.prepare_for_add(plain.clone()).unwrap(), *plain);
}
