//! The `auksd` block, read by the daemon only.

use std::path::{Path, PathBuf};

use super::etcd::{read_etcd, EtcdConf};
use super::reader::{BlockReader, INT_MAX};
use super::{
    Block, ConfigError, DEFAULT_ACL, DEFAULT_CACHE_DIR, DEFAULT_DAEMON_LOG, DEFAULT_KEYTAB,
};

/// Largest number of workers accepted.
pub const MAX_WORKERS: i64 = 4096;

/// The `auksd` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConf {
    pub primary_keytab: PathBuf,
    pub secondary_keytab: PathBuf,
    pub cache_dir: PathBuf,
    pub acl_file: PathBuf,
    pub log_file: PathBuf,
    pub log_level: i64,
    /// The log level is the larger of `LogLevel` and `DebugLevel`.
    pub debug_level: i64,
    /// Pending connection queue size (also the listen backlog); at least 1.
    pub queue_size: usize,
    /// Worker threads (`Workers`, alias `NbWorkers`); 1 to [`MAX_WORKERS`].
    pub workers: usize,
    /// Seconds between clean stages.
    pub clean_delay: u64,
    pub replay_cache: bool,
    /// The replicated repository in etcd; `None`: the local `CacheDir`.
    pub etcd: Option<EtcdConf>,
    /// `MetricsFile`: the `*.prom` file auksd rewrites every
    /// [`METRICS_PERIOD`] for node_exporter's textfile collector; `None`:
    /// no metrics.
    pub metrics_file: Option<PathBuf>,
    /// `MinLifeTime` of the `renewer` block, if any (for the count of
    /// credentials the renewer will soon renew); C default 300 s.
    pub renewer_min_lifetime: u64,
}

/// How often auksd rewrites its metrics file (seconds).
pub const METRICS_PERIOD: u64 = 15;

/// Reads an `auksd` block; unset keys take the C defaults.
///
/// `DebugFile` (everything goes to `LogFile`) and `RepoSize` (the repository
/// grows as needed; the value must still be a non-negative integer) are
/// accepted for compatibility but not used.
pub(super) fn read_auksd(
    path: &Path,
    b: &Block,
    w: &mut Vec<String>,
) -> Result<DaemonConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = DaemonConf::default();
    let primary_keytab = r.path_value("PrimaryKeytab", DEFAULT_KEYTAB);
    let secondary_keytab = r.path_value("SecondaryKeytab", DEFAULT_KEYTAB);
    let cache_dir = r.path_value("CacheDir", DEFAULT_CACHE_DIR);
    let acl_file = r.path_value("ACLFile", DEFAULT_ACL);
    let (log_file, log_level, debug_level) = r.log_keys(DEFAULT_DAEMON_LOG, d.log_level)?;
    let queue_size = r.int("QueueSize", 50, 1, INT_MAX)?;
    r.int("RepoSize", 500, 0, INT_MAX)?;
    // The C daemon reads `Workers`; `NbWorkers` is accepted as an alias.
    let workers_key = if r.entry("Workers").is_some() {
        if let Some(alias) = r.entry("NbWorkers") {
            let msg = format!("key '{}' ignored: 'Workers' is also set", alias.key);
            r.warn(alias.line, msg);
        }
        "Workers"
    } else {
        "NbWorkers"
    };
    let workers = r.int(workers_key, 10, 1, MAX_WORKERS)?;
    let clean_delay = r.uint("CleanDelay", d.clean_delay)?;
    let replay_cache = r.boolean("ReplayCache", d.replay_cache);
    let etcd = read_etcd(&mut r)?;
    let metrics_file = super::renewer::metrics_file(&mut r)?;
    r.finish();
    Ok(DaemonConf {
        primary_keytab,
        secondary_keytab,
        cache_dir,
        acl_file,
        log_file,
        log_level,
        debug_level,
        queue_size: usize::try_from(queue_size).unwrap_or(d.queue_size),
        workers: usize::try_from(workers).unwrap_or(d.workers),
        clean_delay,
        replay_cache,
        etcd,
        metrics_file,
        renewer_min_lifetime: d.renewer_min_lifetime,
    })
}
