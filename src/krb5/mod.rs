//! Safe wrapper over the subset of MIT libkrb5 that AUKS needs.
//!
//! This module and [`crate::spank`] are the only places allowed to contain
//! `unsafe` code (the crate root denies it everywhere else). Every libkrb5
//! object is owned by an RAII type that frees it exactly once; borrowed
//! objects carry the lifetime of the [`Context`] they belong to. Every
//! failing call becomes an [`Error`] carrying libkrb5's own message.
//!
//! Secrets: credential contents are freed with `krb5_free_cred_contents`,
//! which wipes the session key; KRB-CRED plaintext buffers are copied into
//! [`zeroize::Zeroizing`] vectors and the library's copies are wiped before
//! they are freed; KRB-PRIV messages and their plaintext stay in the
//! library's buffer ([`LibData`], wiped when dropped) or, decrypted in
//! place, in the received frame ([`Plaintext::InPlace`], a
//! [`zeroize::Zeroizing`] vector), never copied. Keys derived in Rust for
//! the AES-SHA1 enctypes (`priv_rust`) are wiped when dropped, as are
//! the copies of the session key they are derived from.
//!
//! No I/O happens here: the handshake is split into its Kerberos steps
//! (`mk_req`/`rd_rep` on the client, `rd_req`/`mk_rep`/`mk_error` on the
//! server) so that [`crate::session`] can frame and bound every read itself.
//!
//! One file per concept, bottom to top:
//! - `ffi`: the bindgen declarations (private to this module);
//! - `error`: [`Error`] and [`Result`];
//! - `context`: [`Context`], the library handle every object borrows;
//! - `data`: conversions of strings, `krb5_data` buffers and timestamps;
//! - `principal`: [`Principal`];
//! - `creds`: [`Creds`], one ticket with its session key;
//! - `ccache`: [`Ccache`], a credential cache handle;
//! - `keytab`: [`Keytab`] and the AS exchange from a keytab;
//! - `address`: [`KrbAddr`], the KRB-PRIV sender/receiver addresses;
//! - `libdata`: [`LibData`], a KRB-PRIV buffer left where libkrb5 put it;
//! - `der`: the DER reader/writer of `priv_in_place` and `krb_cred_parts`;
//! - `priv_rust`: the session key held by the auth context for
//!   [`auks_kcrypto`], the AES-SHA1 enctypes' encryption on the CPU's AES
//!   and SHA instructions (a crate of its own, safe code);
//! - `priv_in_place`: a KRB-PRIV sealed and opened in its own buffer (by
//!   `auks_kcrypto`, else by libkrb5's in-place calls);
//! - `auth_context`: [`AuthContext`], the handshake steps and KRB-PRIV;
//! - `krb_error`: [`mk_error`] / [`rd_error`] (KRB-ERROR);
//! - `ccache_bytes`: [`file_ccache_bytes`], a FILE ccache as libkrb5
//!   writes it, made in Rust;
//! - `krb_cred`: [`encode_krb_cred`] / [`decode_krb_cred`] (KRB-CRED);
//! - `krb_cred_parts`: [`compare_credentials`] (two KRB-CREDs compared)
//!   and [`without_addresses`], read without libkrb5;
//! - `tgs`: [`addressless_tgt`], [`cross_realm_tgt`], [`renew_tgt`];
//! - `plain_client`: [`PlainClient`], a client session's Kerberos steps
//!   without libkrb5 (srun's ADD on a thread, AES-SHA1 only).
//!
//! Every `unsafe` block must say why it is sound in a `// SAFETY:` comment;
//! clippy enforces it for this whole module.

#![deny(clippy::undocumented_unsafe_blocks)]

mod address;
mod ap_client;
mod ap_parts;
pub mod ap_req;
mod ap_server;
#[cfg(test)]
mod ap_tests;
mod auth_context;
mod ccache;
mod ccache_bytes;
mod context;
mod creds;
mod data;
mod der;
mod error;
mod ffi;
mod keytab;
mod krb_cred;
mod krb_cred_parts;
mod krb_error;
mod libdata;
pub mod password;
mod plain_client;
mod principal;
mod priv_in_place;
mod priv_rust;
mod tgs;

/// Have libkrb5 (when this process loads it) bind its own calls into its
/// libraries as they are first made (`RTLD_LAZY`) instead of all at once
/// (`RTLD_NOW`, the default): libkrb5 and libk5crypto make about 800 such
/// calls, of which a short-lived process uses a few dozen. That is half a
/// millisecond of CPU less for each start of the plugin's helpers (two
/// per `--auks=yes` step) and of the CLI. For a program of our own only:
/// a library loaded into another program (libauks.so in srun and
/// slurmstepd) keeps `RTLD_NOW`, so that an inconsistent Kerberos
/// installation is reported when the library is loaded, not by the death
/// of the host at its first call. Call before anything uses Kerberos.
pub fn bind_lazily() {
    ffi::LAZY.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub use address::KrbAddr;
pub use ap_client::ClientName;
pub use auth_context::AuthContext;
pub use ccache::Ccache;
pub use ccache_bytes::file_ccache_bytes;
pub use context::{Context, SKEW_UNREADABLE};
pub use creds::Creds;
pub use error::{Error, Result};
pub use keytab::Keytab;
pub use krb_cred::{decode_krb_cred, encode_krb_cred};
#[cfg(test)]
pub(crate) use krb_cred_parts::build as krb_cred_build;
pub use krb_cred_parts::{compare_credentials, without_addresses};
pub use krb_error::{mk_error, rd_error};
pub use libdata::{LibData, Plaintext};
pub use plain_client::{PlainClient, PlainTicket};
pub use principal::Principal;
pub use tgs::{addressless_tgt, cross_realm_tgt, renew_tgt};
