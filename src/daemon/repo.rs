//! The credential repository of auksd (spec §5.4–§5.6): one credential per
//! local uid, in memory and as `<CacheDir>/aukscc_<uid>` FILE ccaches
//! written atomically (private temp file + rename, mode 0600).

use crate::cred::{self, Placement};
use crate::krb5::Context;
use crate::proto::CredRecord;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("cred with matching uid not found")]
    NotFound,
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("cannot remove {path}: {reason}")]
    Unlink { path: String, reason: String },
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

/// In-memory map + cache directory.
pub struct Repo {
    dir: PathBuf,
    creds: BTreeMap<u32, CredRecord>,
}

impl Repo {
    /// An empty repository backed by `dir`.
    pub fn new(dir: &Path) -> Self {
        Repo {
            dir: dir.to_path_buf(),
            creds: BTreeMap::new(),
        }
    }

    /// Path of the cache file of `uid`.
    pub fn file_of(&self, uid: u32) -> PathBuf {
        self.dir.join(format!("aukscc_{uid}"))
    }

    /// Load every `aukscc_*` cache of the directory (§5.5): metadata is
    /// recomputed (the uid comes from the principal, not the file name);
    /// unreadable or unmappable files are reported and left in place.
    /// Returns the log lines describing what happened.
    pub fn load(&mut self, ctx: &Context) -> Vec<String> {
        let mut log = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                log.push(format!(
                    "cache dir {} not readable ({e}): starting with an empty repository",
                    self.dir.display()
                ));
                return log;
            }
        };
        let entries: Vec<std::fs::DirEntry> = entries.filter_map(|e| e.ok()).collect();
        // Private temporary directories left by an interrupted write.
        for e in &entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".auks-") && e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                match std::fs::remove_dir_all(e.path()) {
                    Ok(()) => log.push(format!("removed leftover temporary {name}")),
                    Err(err) => log.push(format!("cannot remove leftover {name}: {err}")),
                }
            }
        }
        let mut names: Vec<PathBuf> = entries
            .into_iter()
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter(|e| e.file_name().to_string_lossy().starts_with("aukscc_"))
            .map(|e| e.path())
            .collect();
        names.sort();
        for path in names {
            let name = format!("FILE:{}", path.display());
            let rec = cred::extract_from_ccache(ctx, Some(&name))
                .and_then(|data| cred::record_from_krb_cred(ctx, data));
            match rec {
                Ok(rec) => {
                    let uid = rec.uid;
                    let principal = rec.principal.clone();
                    let kept = match self.creds.get(&uid) {
                        Some(old) => newer_or_equal(&rec, old),
                        None => true,
                    };
                    if kept {
                        self.creds.insert(uid, rec);
                    }
                    log.push(format!(
                        "loaded {} : uid {uid} principal {principal}{}",
                        path.display(),
                        if kept {
                            ""
                        } else {
                            " (older duplicate ignored)"
                        }
                    ));
                }
                Err(e) => log.push(format!("cannot load {}: {e}", path.display())),
            }
        }
        log
    }

    /// Number of stored credentials.
    pub fn len(&self) -> usize {
        self.creds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }

    /// The credential stored for `uid`.
    pub fn get(&self, uid: u32) -> Option<&CredRecord> {
        self.creds.get(&uid)
    }

    /// Store `rec` under its uid following the replacement policy; the
    /// cache file is rewritten atomically when the memory entry changes.
    pub fn add(&mut self, ctx: &Context, rec: CredRecord) -> Result<AddOutcome, RepoError> {
        let path = self.file_of(rec.uid);
        let outcome = match self.creds.get(&rec.uid) {
            None => AddOutcome::Stored,
            Some(old)
                if old.principal == rec.principal
                    && cred::same_tickets(ctx, &old.data, &rec.data)
                    && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) =>
            {
                return Ok(AddOutcome::Unchanged)
            }
            Some(old) if newer_or_equal(&rec, old) => AddOutcome::Replaced,
            Some(_) => return Ok(AddOutcome::KeptStored),
        };
        cred::store_krb_cred(
            ctx,
            &rec.data,
            Some(&format!("FILE:{}", path.display())),
            Placement::Replace,
        )
        .map_err(|e| RepoError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.creds.insert(rec.uid, rec);
        Ok(outcome)
    }

    /// Remove the credential of `uid`: the file first, then memory, so a
    /// failure leaves both in place (fixing §11.11).
    pub fn remove(&mut self, uid: u32) -> Result<CredRecord, RepoError> {
        if !self.creds.contains_key(&uid) {
            return Err(RepoError::NotFound);
        }
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
        self.creds.remove(&uid).ok_or(RepoError::NotFound)
    }

    /// All credentials in C's DUMP order: decimal uid strings compared
    /// lexicographically ("1000" < "2" < "500").
    pub fn dump(&self) -> Vec<CredRecord> {
        let mut v: Vec<&CredRecord> = self.creds.values().collect();
        v.sort_by_key(|r| r.uid.to_string());
        v.into_iter().cloned().collect()
    }

    /// Clean stage: drop expired credentials (memory and file). Returns the
    /// (uid, principal, reason) of each one removed.
    pub fn clean(&mut self, now: i64) -> Vec<(u32, String, String)> {
        let stale: Vec<u32> = self
            .creds
            .values()
            .filter(|r| is_stale(r, now))
            .map(|r| r.uid)
            .collect();
        let mut out = Vec::new();
        for uid in stale {
            match self.remove(uid) {
                Ok(r) => {
                    let why = if r.endtime < now {
                        format!("expired at {}", r.endtime)
                    } else {
                        format!("renewable period ended at {}", r.renew_till)
                    };
                    out.push((uid, r.principal, why));
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
    fn dump_order_is_c_order() {
        let mut r = Repo::new(Path::new("/nonexistent"));
        for uid in [500, 2, 1000] {
            r.creds.insert(uid, rec(uid, 1, 1));
        }
        let uids: Vec<u32> = r.dump().iter().map(|c| c.uid).collect();
        assert_eq!(uids, vec![1000, 2, 500]);
    }

    #[test]
    fn undecodable_data_is_never_taken_for_the_stored_credential() {
        // (the real "same credential again" case, which needs tickets from
        // a KDC, is tested in tests/cli.rs)
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::new().unwrap();
        let mut r = Repo::new(dir.path());
        r.creds.insert(7, rec(7, 1000, 2000));
        std::fs::write(r.file_of(7), b"on disk").unwrap();
        assert!(matches!(
            r.add(&ctx, rec(7, 1000, 2000)),
            Err(RepoError::Write { .. })
        ));
        assert!(!cred::same_tickets(&ctx, &[1, 2, 3], &[1, 2, 3]));
    }

    #[test]
    fn remove_missing_is_not_found_and_clean_removes_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Repo::new(dir.path());
        assert!(matches!(r.remove(7), Err(RepoError::NotFound)));
        std::fs::write(r.file_of(7), b"x").unwrap();
        r.creds.insert(7, rec(7, 10, 0));
        r.creds.insert(8, rec(8, 1000, 0));
        let gone = r.clean(100);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, 7);
        assert!(!r.file_of(7).exists());
        assert!(r.get(8).is_some());
    }
}
