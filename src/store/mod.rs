//! The replicated repository of auksd in etcd (issue 11): every auksd
//! instance of a site serves every credential, stored sealed in an etcd
//! cluster, so losing a server loses nothing.
//!
//! Layers, bottom to top:
//! - [`http`]: HTTP/1.1 to etcd's JSON API (plain or TLS), bounded, with
//!   deadlines;
//! - [`etcd`]: the etcd v3 calls AUKS needs (range, compare-and-swap put and
//!   delete, leases), with fail-over between members;
//! - [`seal`]: AES-256-GCM sealing of each credential with keys only the
//!   auksd instances hold;
//! - [`watch`]: one thread per instance following etcd's watch stream;
//! - [`view`]: the repository itself ([`EtcdRepo`]): an in-memory view
//!   kept current by the watch, ADD and REMOVE written to etcd first;
//! - [`leader`]: a lease in etcd electing the one instance that runs the
//!   clean stage (and the one renewer that runs a renewal pass);
//! - [`pass_lock`]: one auksdrenewer pass per cluster;
//! - [`migrate`]: import of a `CacheDir` (ours or C's) and export back.

pub mod etcd;
pub mod http;
pub mod leader;
pub mod migrate;
pub mod pass_lock;
pub mod seal;
pub mod view;
pub mod watch;

pub use leader::Leader;
pub use seal::KeyRing;
pub use view::EtcdRepo;

/// Why an operation on the etcd store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Bad configuration: endpoint, TLS files, sealing keys.
    #[error("{0}")]
    Config(String),
    /// No etcd member could serve the request in time (members down, no
    /// quorum): the daemon keeps serving GETs from its last view.
    #[error("etcd unavailable: {0}")]
    Unavailable(String),
    /// etcd answered with an error.
    #[error("etcd error: {0}")]
    Etcd(String),
    /// An answer that is not etcd's JSON API.
    #[error("etcd protocol error: {0}")]
    Protocol(String),
    /// A stored value that does not open (wrong key, altered, not ours).
    #[error("sealed credential: {0}")]
    Seal(String),
}
