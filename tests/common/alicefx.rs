//! A realm, an auksd and two ccaches: alice's (a password TGT) and the
//! node's admin principal's (`host/<hostname>`, from a keytab).

use super::accounts::{alice, LocalUser};
use super::auksd::{Auksd, AuksdOpts};
use super::files::hostname;
use super::realm::Realm;
use std::path::PathBuf;

/// alice's password in every realm of these fixtures.
pub const ALICE_PW: &str = "alice-Pw-1";

pub struct AliceFx {
    pub realm: Realm,
    pub auksd: Auksd,
    pub alice: LocalUser,
    pub alice_cc: PathBuf,
    pub admin_cc: PathBuf,
}

/// Start the realm and an auksd with `opts`; kinit alice and the admin.
pub fn alice_fx(opts: AuksdOpts) -> AliceFx {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    let admin = format!("host/{}@TEST.REALM", hostname());
    let kt = realm.path().join("host.keytab");
    realm.add_randkey_to_keytab(&admin, &kt);
    let admin_cc = realm.path().join("admin.cc");
    realm.kinit_keytab(&admin, &kt, &admin_cc);
    let auksd = Auksd::start(&realm, opts);
    AliceFx {
        realm,
        auksd,
        alice,
        alice_cc,
        admin_cc,
    }
}
