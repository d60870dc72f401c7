//! The repository changes that touch cache files: ADD (atomic rewrite),
//! REMOVE and the cleaner (unlink, then forget), each under the uid's
//! stripe so the file and the map never disagree.

use super::{is_stale, newer_or_equal, AddOutcome, Repo, RepoError};
use crate::cred::{self, Placement};
use crate::daemon::authz::Refusal;
use crate::krb5::Context;
use crate::proto::CredRecord;
use std::sync::Arc;

impl Repo {
    /// Read one cache file (the caller holds the uid's stripe).
    pub(super) fn read_file(&self, ctx: &Context, uid: u32) -> Result<Option<CredRecord>, String> {
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

    /// Store `rec` under its uid following the replacement policy, after
    /// `check` (given the received and the stored record) allowed it; the
    /// cache file is rewritten atomically when the memory entry changes.
    pub fn add<T>(
        &self,
        ctx: &Context,
        rec: CredRecord,
        check: impl FnOnce(&CredRecord, Option<&CredRecord>) -> Result<T, Refusal>,
    ) -> Result<(AddOutcome, T), RepoError> {
        self.add_with_file(ctx, rec, None, check)
    }

    /// [`Repo::add`], given the cache file's bytes when the caller made
    /// them (`cred::record_and_file`): the KRB-CRED is then not decoded
    /// again to write it.
    pub fn add_with_file<T>(
        &self,
        ctx: &Context,
        rec: CredRecord,
        file: Option<zeroize::Zeroizing<Vec<u8>>>,
        check: impl FnOnce(&CredRecord, Option<&CredRecord>) -> Result<T, Refusal>,
    ) -> Result<(AddOutcome, T), RepoError> {
        let uid = rec.uid;
        // Whether the stored record holds the same tickets, found before
        // taking the uid's stripe: decoding both is most of the work of an
        // ADD that changes nothing (every srun of a job array ADDs the same
        // TGT), and the ADDs of one user wait for each other on the stripe.
        let same = |old: &CredRecord| {
            old.principal == rec.principal && cred::same_tickets(ctx, &old.data, &rec.data)
        };
        let peeked = self.read_map().get(&uid).cloned();
        let same_as_peeked = peeked.as_deref().is_some_and(same);
        // The same credential stored, in memory and on disk: nothing to
        // change, decided without the stripe. Taking it made the ADDs of
        // one user (a job array) queue behind whichever of them was
        // descheduled while holding it. A writer racing this one is
        // ordered after it: the ADD changed nothing when it looked.
        if let Some(p) = peeked.as_deref().filter(|_| same_as_peeked) {
            if self.is_file(uid) {
                let allowed = check(&rec, Some(p)).map_err(RepoError::Refused)?;
                return Ok((AddOutcome::Unchanged, allowed));
            }
        }
        let _w = self.stripe(uid);
        self.settle(ctx, uid);
        let old = self.read_map().get(&uid).cloned();
        let allowed = check(&rec, old.as_deref()).map_err(RepoError::Refused)?;
        let path = self.file_of(uid);
        // The peeked answer holds if the record did not change since.
        let unchanged = |o: &Arc<CredRecord>| match &peeked {
            Some(p) if Arc::ptr_eq(p, o) => same_as_peeked,
            _ => same(o),
        };
        let outcome = match &old {
            None => AddOutcome::Stored,
            Some(o) if unchanged(o) && self.is_file(uid) => {
                return Ok((AddOutcome::Unchanged, allowed))
            }
            Some(o) if newer_or_equal(&rec, o) => AddOutcome::Replaced,
            Some(_) => return Ok((AddOutcome::KeptStored, allowed)),
        };
        self.write_file(ctx, &rec.data, file.as_deref().map(Vec::as_slice), &path)
            .map_err(|e| RepoError::Write {
                path: path.display().to_string(),
                reason: format!("{e}{}", self.space_hint()),
            })?;
        self.write_map().insert(uid, Arc::new(rec));
        Ok((outcome, allowed))
    }

    /// Write the cache file `path` for the KRB-CRED `data`: over a
    /// recycled inode ([`super::spare`]) when the bytes are made in Rust
    /// and the directory is ours, else through libkrb5.
    fn write_file(
        &self,
        ctx: &Context,
        data: &[u8],
        made: Option<&[u8]>,
        path: &std::path::Path,
    ) -> Result<(), String> {
        if cred::writable_in_place(&self.dir) {
            if let Some(bytes) = made {
                return self.spares.store(path, bytes);
            }
            if let Some(bytes) = cred::file_ccache_of(ctx, data).map_err(|e| e.to_string())? {
                return self.spares.store(path, &bytes);
            }
        }
        cred::store_krb_cred(
            ctx,
            data,
            Some(&format!("FILE:{}", path.display())),
            Placement::Replace,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// Whether the cache file of `uid` is a regular file (not followed).
    fn is_file(&self, uid: u32) -> bool {
        std::fs::symlink_metadata(self.file_of(uid)).is_ok_and(|m| m.is_file())
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
