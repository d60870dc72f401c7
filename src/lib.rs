//! auks-rs: a memory-safe, wire-compatible implementation of AUKS, the
//! Kerberos credential forwarding service for Slurm.
//!
//! Layers, bottom to top:
//! - [`krb5`]: RAII wrappers over MIT libkrb5 (context, principal, ccache,
//!   creds, keytab, auth context) and the Kerberos operations AUKS needs.
//! - [`proto`]: the AUKS application messages, a pure codec without I/O.
//! - [`config`] and [`acl`]: `auks.conf` / `auks.acl` parsing.
//! - [`session`]: one authenticated, KRB-PRIV protected TCP session
//!   (handshake + framing with bounded lengths and socket timeouts).
//! - [`cred`]: credential metadata (principal, uid, times) from a KRB-CRED,
//!   and atomic ccache storage.
//! - [`private_file`]: how every new file holding a secret is created
//!   (`O_EXCL`, `O_NOFOLLOW`, mode 0600).
//! - [`client`]: the request API with primary/secondary fail-over.
//! - [`daemon`]: auksd (ACL, repository, workers, clean stage).
//! - [`logging`]: the logging facade (the `log` crate) and its backends;
//!   [`mod@log`] is the legacy `crate::log!` shim over it.
//! - [`store`]: the replicated repository in etcd (auksd high availability).
//! - [`renew`]: renewal (`auks -R`, auksdrenewer, HelperScript) and
//!   [`aukspriv`]: the keytab-based TGT refresher.
//!
//! `unsafe` code is confined by the compiler: the crate denies it, and only
//! the two FFI modules, [`krb5`] (libkrb5) and [`spank`] (the Slurm plugin
//! ABI), are allowed to contain it.

#![deny(unsafe_code)]

pub mod acl;
pub mod aukspriv;
pub mod ccache_file;
pub mod client;
pub mod config;
pub mod cred;
pub mod daemon;
#[allow(unsafe_code)]
pub mod krb5;
pub mod log;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod private_file;
pub mod proto;
pub mod renew;
pub mod session;
#[allow(unsafe_code)]
pub mod spank;
pub mod store;
pub mod suggest;
pub mod timefmt;
pub mod version;
