//! The renewal pass once per cluster: when the configuration file of
//! `auksdrenewer` has an auksd block with `EtcdEndpoints` (the same
//! `auks.conf` as the daemons'), every renewer takes the `renewer` lease lock
//! before a pass and only the holder runs it; the others skip it. Without
//! etcd keys every renewer runs every pass, as before.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::etcd::Etcd;
use super::leader::Leader;
use crate::config::{parse_file, DaemonConfig};

/// Lease of the renewer lock: a dead renewer is replaced after this long.
pub const PASS_LOCK_TTL: i64 = 30;

/// The lock (and the stop flag of its keep-alive thread), or nothing to
/// lock.
pub struct PassLock(Option<(Arc<Leader>, Arc<AtomicBool>)>);

impl Drop for PassLock {
    fn drop(&mut self) {
        if let Some((_, stop)) = &self.0 {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// What [`PassLock::may_run`] decided.
pub enum Decision {
    Run,
    /// Another renewer holds the lock (its name).
    Skip(String),
}

impl PassLock {
    /// Reads the etcd keys of the auksd block of `conf`, if any. The holder
    /// refreshes its lease in the background, however long a pass takes; a
    /// dead holder is replaced within [`PASS_LOCK_TTL`] seconds plus one
    /// `Delay`.
    pub fn from_conf_file(conf: &Path) -> Result<PassLock, String> {
        let Ok(file) = parse_file(conf) else {
            return Ok(PassLock(None));
        };
        // A client-only file has no auksd block: nothing to coordinate.
        let Ok(dc) = DaemonConfig::from_conf(&file) else {
            return Ok(PassLock(None));
        };
        let Some(ec) = dc.auksd.etcd else {
            return Ok(PassLock(None));
        };
        let etcd = Etcd::new(&ec).map_err(|e| e.to_string())?;
        let key = format!("{}lock/renewer", ec.prefix).into_bytes();
        let leader = Arc::new(Leader::new(Arc::new(etcd), key, PASS_LOCK_TTL));
        let stop = Arc::new(AtomicBool::new(false));
        leader
            .keep_alive_in_background(Arc::clone(&stop))
            .map_err(|e| format!("cannot start the etcd lease thread: {e}"))?;
        Ok(PassLock(Some((leader, stop))))
    }

    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Whether this renewer runs the next pass.
    pub fn may_run(&self) -> Decision {
        let Some((l, _)) = &self.0 else {
            return Decision::Run;
        };
        match l.try_lead() {
            Ok(true) => Decision::Run,
            Ok(false) => Decision::Skip(match l.holder() {
                Ok(Some(h)) => format!("renewer {h} holds the pass lock"),
                _ => "another renewer holds the pass lock".into(),
            }),
            // No quorum: ADDs would be refused anyway.
            Err(e) => Decision::Skip(format!("pass lock unavailable: {e}")),
        }
    }

    /// Gives the lock up (on stop or reload).
    pub fn resign(&self) {
        if let Some((l, _)) = &self.0 {
            l.resign();
        }
    }
}
