//! auksd: the credential repository daemon (spec §5).
//!
//! Threads and files:
//! - the dispatcher (`dispatch.rs`, main thread) accepts connections and runs
//!   the unauthenticated handshake on non-blocking sockets, each client
//!   address getting a bounded share of that stage;
//! - worker threads (`worker.rs`) take connections from the unbounded queue
//!   of the elastic [`pool`], authenticate them and serve their requests,
//!   every decision taken by the pure [`authz`] module against the
//!   [`repo`]sitory, local or in etcd ([`backend`]);
//! - the loader reads the repository after the port is open; the cleaner
//!   drops expired credentials every `CleanDelay` seconds;
//! - `lifecycle.rs` starts all of them, handles signals and reloads;
//!   [`droplog`] aggregates what is logged about dropped connections.

pub mod authz;
pub mod backend;
mod dispatch;
pub mod droplog;
mod lifecycle;
pub mod pool;
pub mod repo;
mod worker;

use crate::acl::Acl;
use crate::config::{ConfigError, DaemonConfig, Endpoint};
use backend::Backend;
pub use dispatch::HANDSHAKE_TIMEOUT;
pub use lifecycle::{check, run};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, PoisonError, RwLock};
pub use worker::{IO_TIMEOUT, MAX_REQUESTS_PER_SESSION, NO_ROLE_DRAIN, SESSION_DEADLINE};

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("current host ({host}) is not an auks server: it is neither PrimaryHost ({primary}) nor SecondaryHost ({secondary})")]
    NotAServer {
        host: String,
        primary: String,
        secondary: String,
    },
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("Kerberos set-up failed: {0}")]
    Krb5(#[from] crate::krb5::Error),
    #[error("{0}")]
    Other(String),
}

/// Command-line options of auksd.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub conf: Option<PathBuf>,
    /// Stay in the foreground, log to stderr.
    pub foreground: bool,
    /// `-v` count, added to the configured level.
    pub verbose: i64,
    /// `-d` count, added to the configured level.
    pub debug: i64,
    /// `-t`: check the configuration and the ACL, then exit.
    pub test: bool,
}

/// Which configured endpoint this host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRole {
    Primary,
    Secondary,
}

/// Role detection (§5.1): `gethostname()` equal to PrimaryHost, else to
/// SecondaryHost, else primary when either host is the literal `localhost`.
pub fn detect_role(hostname: &str, primary: &str, secondary: &str) -> Option<ServerRole> {
    if hostname == primary {
        Some(ServerRole::Primary)
    } else if hostname == secondary {
        Some(ServerRole::Secondary)
    } else if primary == "localhost" || secondary == "localhost" {
        Some(ServerRole::Primary)
    } else {
        None
    }
}

/// What a reload replaces: configuration, ACL, Kerberos identity and
/// repository (the same one when `CacheDir` did not change).
struct State {
    role: ServerRole,
    conf: DaemonConfig,
    acl: Acl,
    endpoint: Endpoint,
    server_principal: String,
    keytab: String,
    repo: Arc<Backend>,
}

/// Everything the threads share.
struct Shared {
    state: RwLock<Arc<State>>,
    pool: pool::Pool<worker::Conn>,
    drops: droplog::DropLog,
    stop: AtomicBool,
    served: AtomicU64,
    /// Counted whether or not `MetricsFile` is set (cheap), written only
    /// when it is.
    metrics: crate::metrics::AuksdMetrics,
    /// The replay cache of `ReplayCache = yes`, made when first needed and
    /// kept across reloads.
    replay: std::sync::OnceLock<crate::session::ReplayCache>,
    /// The port the daemon listens on: it names the replay journal, so
    /// that two daemons of one host keep apart.
    port: u16,
}

impl Shared {
    /// The current state (a reload swaps it; a session keeps the one it
    /// started with).
    fn state(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A connection dropped or failed before its first request: counted in
    /// the metrics and in the aggregated drop log.
    fn dropped(&self, peer: Option<std::net::IpAddr>, why: droplog::DropReason, detail: &str) {
        if let Some(r) = why.rejected() {
            self.metrics.rejected(r);
        }
        droplog::emit(self.drops.record(peer, why, detail));
    }

    /// The replay check `ReplayCache` asks for.
    fn replay_check(&self, st: &State) -> crate::session::ReplayCheck<'_> {
        use crate::session::ReplayCheck;
        if !st.conf.auksd.replay_cache {
            return ReplayCheck::Off;
        }
        ReplayCheck::Own(self.replay.get_or_init(|| open_replay_cache(self.port)))
    }

    fn set_state(&self, st: State) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(st);
    }
}

/// The replay cache of a daemon listening on `port`, its journal read
/// (and what it found logged).
fn open_replay_cache(port: u16) -> crate::session::ReplayCache {
    // Beside libkrb5's own file (its default directory on Debian and Red
    // Hat alike).
    let dir =
        std::env::var_os("KRB5RCACHEDIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    let skew = crate::krb5::Context::new().map_or(crate::krb5::SKEW_UNREADABLE, |c| c.clock_skew());
    let name = format!("auksd_{}_{port}", rustix::process::geteuid().as_raw());
    let (cache, note) =
        crate::session::ReplayCache::open(Some(&dir), &name, skew, chrono::Utc::now().timestamp());
    crate::log!(1, "auksd : {note}");
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_detection_follows_c() {
        assert_eq!(detect_role("a", "a", "b"), Some(ServerRole::Primary));
        assert_eq!(detect_role("b", "a", "b"), Some(ServerRole::Secondary));
        assert_eq!(
            detect_role("c", "localhost", "b"),
            Some(ServerRole::Primary)
        );
        assert_eq!(
            detect_role("c", "a", "localhost"),
            Some(ServerRole::Primary)
        );
        assert_eq!(detect_role("c", "a", "b"), None);
    }
}
