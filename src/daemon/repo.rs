//! The credential repository of auksd (spec §5.4–§5.6): one credential per
//! local uid, in memory and as `<CacheDir>/aukscc_<uid>` FILE ccaches
//! written atomically (private temp file + rename, mode 0600).
//!
//! Concurrency: the in-memory map is behind a read-write lock that is only
//! ever held for a map operation, never across file I/O. Writers of one uid
//! (ADD, REMOVE, the cleaner, the loader) are serialised by one of
//! [`STRIPES`] per-uid mutexes, held across the decision, the file write and
//! the map update, so the file and the map never disagree. Every lock is
//! taken poison-tolerantly: the map is only changed by single `insert` /
//! `remove` calls, so a panic elsewhere cannot leave it half-updated, and a
//! panic in one request never turns into an outage.
//!
//! Start-up: [`Repo::open`] returns at once; [`Repo::load_all`] (run by a
//! background thread) reads the files in parallel, taking the uid from the
//! file name (no account lookup: the mapping was checked when the file was
//! stored). Until it is done, a request for a uid not loaded yet loads that
//! one file itself, and DUMP waits for the load to finish.

use super::authz::Refusal;
use crate::cred::{self, Placement};
use crate::krb5::Context;
use crate::proto::CredRecord;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

/// The C replacement policy: the new credential wins if its renewable
/// period ends later, or ends at the same time and it expires no sooner.
pub fn newer_or_equal(new: &CredRecord, old: &CredRecord) -> bool {
    new.renew_till > old.renew_till
        || (new.renew_till == old.renew_till && new.endtime >= old.endtime)
}

/// Whether the cleaner must drop a credential at `now` (§5.6).
pub fn is_stale(rec: &CredRecord, now: i64) -> bool {
    rec.endtime < now || (rec.renew_till > 0 && rec.renew_till < now)
}

/// The uid of a cache file name `aukscc_<uid>` (canonical decimal only).
pub fn uid_of_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("aukscc_")?;
    let uid: u32 = digits.parse().ok()?;
    (uid.to_string() == digits).then_some(uid)
}

/// What [`Repo::load_all`] did, for the one summary log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    pub loaded: usize,
    pub failed: usize,
    pub ignored: usize,
    pub leftovers_removed: usize,
    pub took: Duration,
    /// Per-file details, logged at debug level only.
    pub details: Vec<String>,
}

/// In-memory map + cache directory.
pub struct Repo {
    dir: PathBuf,
    map: RwLock<HashMap<u32, Arc<CredRecord>>>,
    stripes: Vec<Mutex<()>>,
    loaded: Mutex<bool>,
    loaded_cv: Condvar,
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
            loaded: Mutex::new(true),
            loaded_cv: Condvar::new(),
        }
    }

    /// A repository backed by `dir` whose files are still to be loaded by
    /// [`Repo::load_all`].
    pub fn open(dir: &Path) -> Self {
        let r = Repo::new(dir);
        *lock(&r.loaded) = false;
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
        *lock(&self.loaded)
    }

    /// Wait (at most `max`) until the start-up load is complete.
    pub fn wait_loaded(&self, max: Duration) -> bool {
        let until = Instant::now() + max;
        let mut done = lock(&self.loaded);
        while !*done {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = self
                .loaded_cv
                .wait_timeout(done, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Read one cache file (the caller holds the uid's stripe).
    fn read_file(&self, ctx: &Context, uid: u32) -> Result<Option<CredRecord>, String> {
        let path = self.file_of(uid);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
            Ok(m) if !m.is_file() => return Err(format!("{}: not a file", path.display())),
            Ok(_) => {}
        }
        let name = format!("FILE:{}", path.display());
        cred::record_from_ccache(ctx, &name, uid)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// While the start-up load runs, load `uid` now if it is not in memory
    /// yet (the caller holds the uid's stripe).
    fn settle(&self, ctx: &Context, uid: u32) {
        if self.is_loaded() || self.read_map().contains_key(&uid) {
            return;
        }
        match self.read_file(ctx, uid) {
            Ok(Some(rec)) => {
                self.write_map().insert(uid, Arc::new(rec));
            }
            Ok(None) => {}
            Err(e) => crate::log!(3, "auksd : cannot load {e}"),
        }
    }

    /// Load every `aukscc_<uid>` cache of the directory (§5.5) on `threads`
    /// threads, remove leftover temporary directories, then mark the
    /// repository loaded. Unreadable files are reported and left in place.
    pub fn load_all(&self, threads: usize) -> LoadSummary {
        let start = Instant::now();
        let mut sum = LoadSummary::default();
        let mut uids = Vec::new();
        match std::fs::read_dir(&self.dir) {
            Err(e) => sum.details.push(format!(
                "cache dir {} not readable ({e}): starting with an empty repository",
                self.dir.display()
            )),
            Ok(entries) => {
                for e in entries.filter_map(|e| e.ok()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let ft = e.file_type().ok();
                    if name.starts_with(".auks-") && ft.is_some_and(|t| t.is_dir()) {
                        match std::fs::remove_dir_all(e.path()) {
                            Ok(()) => sum.leftovers_removed += 1,
                            Err(err) => sum
                                .details
                                .push(format!("cannot remove leftover {name}: {err}")),
                        }
                    } else if let Some(uid) = uid_of_file_name(&name) {
                        uids.push(uid);
                    } else if name.starts_with("aukscc_") {
                        sum.ignored += 1;
                        sum.details
                            .push(format!("ignored {name}: not aukscc_<uid>"));
                    }
                }
            }
        }
        let threads = threads.clamp(1, 16).min(uids.len().max(1));
        let chunk = uids.len().div_ceil(threads).max(1);
        let results: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = uids
                .chunks(chunk)
                .map(|part| s.spawn(move || self.load_some(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or((0, 0, vec!["loader thread panicked".into()]))
                })
                .collect()
        });
        for (ok, failed, details) in results {
            sum.loaded += ok;
            sum.failed += failed;
            sum.details.extend(details);
        }
        *lock(&self.loaded) = true;
        self.loaded_cv.notify_all();
        sum.took = start.elapsed();
        sum
    }

    fn load_some(&self, uids: &[u32]) -> (usize, usize, Vec<String>) {
        let ctx = match Context::new() {
            Ok(c) => c,
            Err(e) => return (0, uids.len(), vec![format!("no Kerberos context: {e}")]),
        };
        let (mut ok, mut failed, mut details) = (0, 0, Vec::new());
        for &uid in uids {
            let _w = self.stripe(uid);
            if self.read_map().contains_key(&uid) {
                continue; // already loaded on demand, or added since
            }
            match self.read_file(&ctx, uid) {
                Ok(Some(rec)) => {
                    details.push(format!("loaded uid {uid} principal {}", rec.principal));
                    self.write_map().insert(uid, Arc::new(rec));
                    ok += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    details.push(format!("cannot load {e}"));
                    failed += 1;
                }
            }
        }
        (ok, failed, details)
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

    /// Store `rec` under its uid following the replacement policy, after
    /// `check` (given the received and the stored record) allowed it; the
    /// cache file is rewritten atomically when the memory entry changes.
    pub fn add<T>(
        &self,
        ctx: &Context,
        rec: CredRecord,
        check: impl FnOnce(&CredRecord, Option<&CredRecord>) -> Result<T, Refusal>,
    ) -> Result<(AddOutcome, T), RepoError> {
        let uid = rec.uid;
        let _w = self.stripe(uid);
        self.settle(ctx, uid);
        let old = self.read_map().get(&uid).cloned();
        let allowed = check(&rec, old.as_deref()).map_err(RepoError::Refused)?;
        let path = self.file_of(uid);
        let outcome = match old.as_deref() {
            None => AddOutcome::Stored,
            Some(old)
                if old.principal == rec.principal
                    && cred::same_tickets(ctx, &old.data, &rec.data)
                    && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) =>
            {
                return Ok((AddOutcome::Unchanged, allowed))
            }
            Some(old) if newer_or_equal(&rec, old) => AddOutcome::Replaced,
            Some(_) => return Ok((AddOutcome::KeptStored, allowed)),
        };
        cred::store_krb_cred(
            ctx,
            &rec.data,
            Some(&format!("FILE:{}", path.display())),
            Placement::Replace,
        )
        .map_err(|e| RepoError::Write {
            path: path.display().to_string(),
            reason: format!("{e}{}", self.space_hint()),
        })?;
        self.write_map().insert(uid, Arc::new(rec));
        Ok((outcome, allowed))
    }

    /// " (the file system of CacheDir is full)" when it is (libkrb5 only
    /// says "I/O operation failed").
    fn space_hint(&self) -> &'static str {
        match nix::sys::statvfs::statvfs(&self.dir) {
            Ok(v) if v.blocks_available() == 0 || v.files_available() == 0 => {
                " (the file system of CacheDir is full)"
            }
            _ => "",
        }
    }

    /// Remove the credential of `uid` once `check` (given the stored
    /// record) allowed it: the file first, then memory, so a failure leaves
    /// both in place (fixing §11.11).
    pub fn remove(
        &self,
        ctx: &Context,
        uid: u32,
        check: impl FnOnce(Option<&CredRecord>) -> Result<(), Refusal>,
    ) -> Result<Arc<CredRecord>, RepoError> {
        let _w = self.stripe(uid);
        self.settle(ctx, uid);
        let old = self.read_map().get(&uid).cloned();
        check(old.as_deref()).map_err(RepoError::Refused)?;
        if old.is_none() {
            return Err(RepoError::NotFound);
        }
        self.unlink_locked(uid)
    }

    /// Unlink then forget `uid` (the caller holds its stripe).
    fn unlink_locked(&self, uid: u32) -> Result<Arc<CredRecord>, RepoError> {
        let path = self.file_of(uid);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RepoError::Unlink {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        }
        self.write_map().remove(&uid).ok_or(RepoError::NotFound)
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

    /// Clean stage: drop expired credentials (memory and file). Returns the
    /// (uid, principal, reason) of each one removed.
    pub fn clean(&self, now: i64) -> Vec<(u32, String, String)> {
        let stale: Vec<u32> = self
            .read_map()
            .values()
            .filter(|r| is_stale(r, now))
            .map(|r| r.uid)
            .collect();
        let mut out = Vec::new();
        for uid in stale {
            let _w = self.stripe(uid);
            // Re-check under the stripe: an ADD may have refreshed it.
            let still = self.read_map().get(&uid).is_some_and(|r| is_stale(r, now));
            if !still {
                continue;
            }
            match self.unlink_locked(uid) {
                Ok(r) => {
                    let why = if r.endtime < now {
                        format!("expired at {}", r.endtime)
                    } else {
                        format!("renewable period ended at {}", r.renew_till)
                    };
                    out.push((uid, r.principal.clone(), why));
                }
                Err(e) => out.push((uid, String::new(), format!("not removed: {e}"))),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn rec(uid: u32, end: i64, till: i64) -> CredRecord {
        CredRecord {
            principal: format!("u{uid}@R"),
            uid,
            starttime: 0,
            endtime: end,
            renew_till: till,
            addressless: true,
            crossrealm: false,
            data: Zeroizing::new(vec![1, 2, 3]),
            status: 0,
        }
    }

    fn put(r: &Repo, c: CredRecord) {
        r.write_map().insert(c.uid, Arc::new(c));
    }

    #[test]
    fn replacement_policy() {
        let old = rec(1, 100, 1000);
        assert!(
            newer_or_equal(&rec(1, 50, 1001), &old),
            "later renew_till wins"
        );
        assert!(newer_or_equal(&rec(1, 100, 1000), &old), "equal wins");
        assert!(newer_or_equal(&rec(1, 101, 1000), &old), "later end wins");
        assert!(
            !newer_or_equal(&rec(1, 99, 1000), &old),
            "earlier end loses"
        );
        assert!(
            !newer_or_equal(&rec(1, 500, 999), &old),
            "earlier renew_till loses"
        );
    }

    #[test]
    fn staleness() {
        assert!(is_stale(&rec(1, 99, 0), 100));
        assert!(!is_stale(&rec(1, 100, 0), 100));
        assert!(is_stale(&rec(1, 200, 150), 160));
        assert!(
            !is_stale(&rec(1, 200, 0), 160),
            "not renewable, still valid"
        );
    }

    #[test]
    fn file_names() {
        assert_eq!(uid_of_file_name("aukscc_1000"), Some(1000));
        assert_eq!(uid_of_file_name("aukscc_0"), Some(0));
        assert_eq!(uid_of_file_name("aukscc_01"), None);
        assert_eq!(uid_of_file_name("aukscc_1000.bak"), None);
        assert_eq!(uid_of_file_name("aukscc_"), None);
        assert_eq!(uid_of_file_name("aukscc_4294967296"), None);
        assert_eq!(uid_of_file_name("krb5cc_1000"), None);
    }

    #[test]
    fn dump_order_is_c_order() {
        let r = Repo::new(Path::new("/nonexistent"));
        for uid in [500, 2, 1000] {
            put(&r, rec(uid, 1, 1));
        }
        let uids: Vec<u32> = r
            .dump(Duration::ZERO)
            .unwrap()
            .iter()
            .map(|c| c.uid)
            .collect();
        assert_eq!(uids, vec![1000, 2, 500]);
    }

    #[test]
    fn dump_waits_for_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let r = Repo::open(dir.path());
        assert!(r.dump(Duration::from_millis(10)).is_none());
        let s = r.load_all(2);
        assert_eq!((s.loaded, s.failed), (0, 0));
        assert_eq!(r.dump(Duration::ZERO).unwrap().len(), 0);
    }

    #[test]
    fn load_reports_bad_files_and_removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aukscc_7"), b"not a ccache").unwrap();
        std::fs::write(dir.path().join("aukscc_x"), b"x").unwrap();
        std::fs::create_dir(dir.path().join(".auks-abc")).unwrap();
        std::fs::write(dir.path().join(".auks-abc/ccache"), b"half").unwrap();
        let r = Repo::open(dir.path());
        let s = r.load_all(4);
        assert_eq!((s.loaded, s.failed, s.ignored), (0, 1, 1), "{s:?}");
        assert_eq!(s.leftovers_removed, 1);
        assert!(!dir.path().join(".auks-abc").exists());
        assert!(dir.path().join("aukscc_7").exists(), "bad files stay");
        assert!(r.is_loaded());
    }

    #[test]
    fn undecodable_data_is_never_taken_for_the_stored_credential() {
        // (the real "same credential again" case, which needs tickets from
        // a KDC, is tested in tests/cli.rs)
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::new().unwrap();
        let r = Repo::new(dir.path());
        put(&r, rec(7, 1000, 2000));
        std::fs::write(r.file_of(7), b"on disk").unwrap();
        assert!(matches!(
            r.add(&ctx, rec(7, 1000, 2000), |_, _| Ok(())),
            Err(RepoError::Write { .. })
        ));
        assert!(!cred::same_tickets(&ctx, &[1, 2, 3], &[1, 2, 3]));
        assert_eq!(std::fs::read(r.file_of(7)).unwrap(), b"on disk");
    }

    #[test]
    fn refused_changes_touch_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::new().unwrap();
        let r = Repo::new(dir.path());
        put(&r, rec(7, 1000, 2000));
        std::fs::write(r.file_of(7), b"kept").unwrap();
        let no = || Refusal::new(1, "no", "no");
        assert!(matches!(
            r.add(&ctx, rec(7, 5000, 6000), |_, _| Err::<(), _>(no())),
            Err(RepoError::Refused(_))
        ));
        assert!(matches!(
            r.remove(&ctx, 7, |_| Err(no())),
            Err(RepoError::Refused(_))
        ));
        assert_eq!(std::fs::read(r.file_of(7)).unwrap(), b"kept");
        assert_eq!(r.get(&ctx, 7).unwrap().endtime, 1000);
    }

    #[test]
    fn a_panic_while_holding_a_lock_does_not_poison_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::new().unwrap();
        let r = Repo::new(dir.path());
        put(&r, rec(8, 1000, 0));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _m = r.write_map();
            let _s = r.stripe(8);
            panic!("boom");
        }));
        assert!(r.get(&ctx, 8).is_some());
        assert!(r.remove(&ctx, 8, |_| Ok(())).is_ok());
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn remove_missing_is_not_found_and_clean_removes_files() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::new().unwrap();
        let r = Repo::new(dir.path());
        assert!(matches!(
            r.remove(&ctx, 7, |_| Ok(())),
            Err(RepoError::NotFound)
        ));
        std::fs::write(r.file_of(7), b"x").unwrap();
        put(&r, rec(7, 10, 0));
        put(&r, rec(8, 1000, 0));
        let gone = r.clean(100);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, 7);
        assert!(!r.file_of(7).exists());
        assert!(r.get(&ctx, 8).is_some());
    }
}
