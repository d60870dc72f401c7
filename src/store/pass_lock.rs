//! The renewal pass once per cluster: when the configuration file of
//! `auksdrenewer` has an auksd block with `EtcdEndpoints` (the same
//! `auks.conf` as the daemons'), every renewer takes the `renewer` lease lock
//! before a pass and only the holder runs it; the others skip it. Without
//! etcd keys every renewer runs every pass, as before.

use std::path::Path;
use std::sync::Arc;

use super::etcd::Etcd;
use super::leader::Leader;
use crate::config::{parse_file, DaemonConfig};

/// The lock, or nothing to lock.
pub struct PassLock(Option<Leader>);

/// What [`PassLock::may_run`] decided.
pub enum Decision {
    Run,
    /// Another renewer holds the lock (its name).
    Skip(String),
}

impl PassLock {
    /// Reads the etcd keys of the auksd block of `conf`, if any. The lease
    /// outlives two passes: a dead holder is replaced within about
    /// `2 × delay + 30` seconds.
    pub fn from_conf_file(conf: &Path, delay_secs: u64) -> Result<PassLock, String> {
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
        let ttl = i64::try_from(delay_secs.min(86_400) * 2 + 30).unwrap_or(600);
        Ok(PassLock(Some(Leader::new(Arc::new(etcd), key, ttl))))
    }

    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Whether this renewer runs the next pass.
    pub fn may_run(&self) -> Decision {
        let Some(l) = &self.0 else {
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
        if let Some(l) = &self.0 {
            l.resign();
        }
    }
}
