//! The credential repository of auksd (spec §5.4–§5.6): one credential per
//! local uid, in memory and as `<CacheDir>/aukscc_<uid>` FILE ccaches
//! written atomically (a private hidden file, mode 0600, exchanged with
//! the old one or renamed: [`spare`]).
//!
//! Concurrency: the in-memory map is behind a read-write lock that is only
//! ever held for a map operation, never across file I/O. Writers of one uid
//! (ADD, REMOVE, the cleaner, the loader) are serialised by one of
//! [`STRIPES`] per-uid mutexes, held across the decision, the file write and
//! the map update, so the file and the map never disagree; an ADD of the
//! credential already stored changes neither and takes no stripe. Every lock is
//! taken poison-tolerantly: the map is only changed by single `insert` /
//! `remove` calls, so a panic elsewhere cannot leave it half-updated, and a
//! panic in one request never turns into an outage.
//!
//! Start-up: [`Repo::open`] returns at once; [`Repo::load_all`] (run by a
//! background thread) reads the files in parallel, taking the uid from the
//! file name (no account lookup: the mapping was checked when the file was
//! stored). Until it is done, a request for a uid not loaded yet loads that
//! one file itself, and DUMP waits for the load to finish.//!
//! - this file: the repository type, its locks and the in-memory reads;
//! - [`policy`]: the pure rules (replacement, staleness, file names);
//! - [`files`]: the changes that write or unlink cache files;
//! - [`spare`]: the atomic write of a cache file over a recycled inode;
//! - [`loader`]: the start-up load, in the background or on demand.

mod files;
mod loader;
mod policy;
mod spare;
#[cfg(test)]
mod tests;

pub use loader::LoadSummary;
pub use policy::{is_stale, newer_or_equal, uid_of_file_name};

use super::authz::Refusal;
use crate::krb5::Context;
use crate::proto::CredRecord;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Number of per-uid writer locks.
pub const STRIPES: usize = 64;

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("cred with matching uid not found")]
    NotFound,
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("cannot remove {path}: {reason}")]
    Unlink { path: String, reason: String },
    /// The caller's check against the stored record refused the change.
    #[error("{}", .0.text)]
    Refused(Refusal),
}

/// Result of an ADD against what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Nothing was stored for the uid.
    Stored,
    /// The new credential replaced an older one.
    Replaced,
    /// The stored credential is fresher and was kept.
    KeptStored,
    /// The very same credential is already stored, in memory and on disk:
    /// nothing to write (every `srun --auks=yes` ADDs the user's TGT).
    Unchanged,
}

/// In-memory map + cache directory.
pub struct Repo {
    dir: PathBuf,
    map: RwLock<HashMap<u32, Arc<CredRecord>>>,
    stripes: Vec<Mutex<()>>,
    /// Whether the start-up load is complete: read without a lock on
    /// every request; set under `load_lock`, which `loaded_cv` waits with.
    loaded: AtomicBool,
    load_lock: Mutex<()>,
    loaded_cv: Condvar,
    /// Empty files recycled by the writes of cache files.
    spares: spare::Spares,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Repo {
    /// An empty, fully loaded repository backed by `dir`.
    pub fn new(dir: &Path) -> Self {
        Repo {
            dir: dir.to_path_buf(),
            map: RwLock::new(HashMap::new()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            loaded: AtomicBool::new(true),
            load_lock: Mutex::new(()),
            loaded_cv: Condvar::new(),
            spares: spare::Spares::new(dir),
        }
    }

    /// A repository backed by `dir` whose files are still to be loaded by
    /// [`Repo::load_all`].
    pub fn open(dir: &Path) -> Self {
        let r = Repo::new(dir);
        r.loaded.store(false, Ordering::Release);
        r
    }

    /// Path of the cache file of `uid`.
    pub fn file_of(&self, uid: u32) -> PathBuf {
        self.dir.join(format!("aukscc_{uid}"))
    }

    fn stripe(&self, uid: u32) -> MutexGuard<'_, ()> {
        lock(&self.stripes[uid as usize % STRIPES])
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u32, Arc<CredRecord>>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u32, Arc<CredRecord>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether every file present at start-up has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Wait (at most `max`) until the start-up load is complete.
    pub fn wait_loaded(&self, max: Duration) -> bool {
        let until = Instant::now() + max;
        let mut guard = lock(&self.load_lock);
        while !self.is_loaded() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .loaded_cv
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Number of credentials in memory.
    pub fn len(&self) -> usize {
        self.read_map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The credential stored for `uid`.
    pub fn get(&self, ctx: &Context, uid: u32) -> Option<Arc<CredRecord>> {
        if !self.is_loaded() {
            let _w = self.stripe(uid);
            self.settle(ctx, uid);
        }
        self.read_map().get(&uid).cloned()
    }

    /// All credentials in C's DUMP order: decimal uid strings compared
    /// lexicographically ("1000" < "2" < "500"). Waits (at most `max`) for
    /// the start-up load; None if it is still not complete.
    pub fn dump(&self, max: Duration) -> Option<Vec<Arc<CredRecord>>> {
        if !self.wait_loaded(max) {
            return None;
        }
        let mut v: Vec<(String, Arc<CredRecord>)> = self
            .read_map()
            .values()
            .map(|r| (r.uid.to_string(), Arc::clone(r)))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Some(v.into_iter().map(|(_, r)| r).collect())
    }
}
