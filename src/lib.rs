//! auks-rs: a memory-safe, wire-compatible implementation of AUKS, the
//! Kerberos credential forwarding service for Slurm.
//!
//! Layers, bottom to top:
//! - [`krb5`]: the only module (with `spank`) that contains `unsafe`; RAII
//!   wrappers over MIT libkrb5 (context, principal, ccache, creds, keytab,
//!   auth context) and the Kerberos operations AUKS needs.
//! - [`proto`]: the AUKS application messages, a pure codec without I/O.
//! - [`config`] and [`acl`]: `auks.conf` / `auks.acl` parsing.
//! - [`session`]: one authenticated, KRB-PRIV protected TCP session
//!   (handshake + framing with bounded lengths and socket timeouts).
//! - [`cred`]: credential metadata (principal, uid, times) from a KRB-CRED,
//!   and atomic ccache storage.
//! - [`client`]: the request API with primary/secondary fail-over.
//! - [`daemon`]: auksd (ACL, repository, workers, clean stage).
//! - [`log`]: the small logger shared by the programs.
//! - [`renew`]: renewal (`auks -R`, auksdrenewer, HelperScript) and
//!   [`aukspriv`]: the keytab-based TGT refresher.

pub mod acl;
pub mod aukspriv;
pub mod client;
pub mod config;
pub mod cred;
pub mod daemon;
pub mod krb5;
pub mod log;
pub mod proto;
pub mod renew;
pub mod session;
pub mod spank;
pub mod timefmt;
