//! Migration between a `CacheDir` (ours or the C daemon's: FILE ccaches
//! named `aukscc_<uid>`) and etcd, both ways (`auksd-etcd import|export`).
//!
//! Import takes the uid from the file name, as the daemon that wrote the
//! file had mapped it (no account lookup per file), keeps a credential
//! already in etcd when it is fresher (the replacement policy of ADD), and
//! writes sealed values in transactions of [`BATCH`] puts. Export writes
//! each credential atomically, mode 0600, without following symlinks.
//! [`reseal`] completes a key rotation.

use std::path::Path;

use zeroize::Zeroizing;

use super::seal::KeyRing;
use super::view::EtcdRepo;
use super::StoreError;
use crate::cred::{self, Placement};
use crate::daemon::repo::newer_or_equal;
use crate::krb5::Context;
use crate::proto::CredRecord;

/// Puts per etcd transaction (etcd's default limit is 128 operations and
/// 1.5 MiB per request; a sealed credential is about 2 KiB of JSON).
pub const BATCH: usize = 100;

/// What an import or export did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub written: usize,
    /// Skipped because the other side holds a fresher credential.
    pub kept: usize,
    /// One line per file or key that could not be handled.
    pub failed: Vec<String>,
}

/// The uid of a `aukscc_<uid>` file name.
pub fn uid_of_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("aukscc_")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads one repository file into a record with the given uid.
fn read_file(ctx: &Context, path: &Path, uid: u32) -> Result<CredRecord, String> {
    let name = format!("FILE:{}", path.display());
    let data = cred::extract_from_ccache(ctx, Some(&name)).map_err(|e| e.to_string())?;
    let m = cred::meta(ctx, &data).map_err(|e| e.to_string())?;
    Ok(m.into_record(uid, data))
}

/// Imports every `aukscc_<uid>` file of `dir` into etcd.
pub fn import(ctx: &Context, repo: &EtcdRepo, dir: &Path) -> Result<Report, StoreError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| StoreError::Config(format!("cannot read {}: {e}", dir.display())))?;
    let mut files: Vec<(u32, std::path::PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let uid = uid_of_file_name(&e.file_name().to_string_lossy())?;
            Some((uid, e.path()))
        })
        .collect();
    files.sort();
    // What etcd holds already, to keep fresher credentials.
    repo.sync()?;
    let mut report = Report::default();
    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
    for (uid, path) in files {
        let rec = match read_file(ctx, &path, uid) {
            Ok(r) => r,
            Err(e) => {
                report.failed.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if repo.get(uid).is_some_and(|old| !newer_or_equal(&rec, &old)) {
            report.kept += 1;
            continue;
        }
        let key = repo.key_of(uid);
        let sealed = repo.keys().seal(&key, &rec)?;
        batch.push((key, sealed));
        if batch.len() == BATCH {
            repo.etcd().put_many(&batch)?;
            report.written += batch.len();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        repo.etcd().put_many(&batch)?;
        report.written += batch.len();
    }
    Ok(report)
}

/// Exports every credential in etcd to `dir` as `aukscc_<uid>` files,
/// keeping a file that holds a fresher credential.
pub fn export(ctx: &Context, repo: &EtcdRepo, dir: &Path) -> Result<Report, StoreError> {
    let (_, problems) = repo.sync()?;
    let mut report = Report {
        failed: problems,
        ..Report::default()
    };
    for rec in repo.dump() {
        let path = dir.join(format!("aukscc_{}", rec.uid));
        if let Ok(existing) = read_file(ctx, &path, rec.uid) {
            if !newer_or_equal(&rec, &existing) {
                report.kept += 1;
                continue;
            }
        }
        let data: Zeroizing<Vec<u8>> = rec.data.clone();
        match cred::store_krb_cred(
            ctx,
            &data,
            Some(&format!("FILE:{}", path.display())),
            Placement::Replace,
        ) {
            Ok(_) => report.written += 1,
            Err(e) => report.failed.push(format!("{}: {e}", path.display())),
        }
    }
    Ok(report)
}

/// Key rotation: rewrites every value sealed with another key than the
/// active one, each only if nobody rewrote it meanwhile.
pub fn reseal(repo: &EtcdRepo) -> Result<Report, StoreError> {
    let (kvs, _) = repo.etcd().range_prefix(&repo.cred_prefix())?;
    let active = repo.keys().active_id().to_string();
    let mut report = Report::default();
    for kv in kvs {
        let name = String::from_utf8_lossy(&kv.key).into_owned();
        if KeyRing::key_id_of(&kv.value) == Some(active.as_str()) {
            report.kept += 1;
            continue;
        }
        let rec = match repo.keys().open(&kv.key, &kv.value) {
            Ok(r) => r,
            Err(e) => {
                report.failed.push(format!("{name}: {e}"));
                continue;
            }
        };
        let sealed = repo.keys().seal(&kv.key, &rec)?;
        match repo.etcd().put_if(&kv.key, &sealed, kv.mod_revision, 0)? {
            Some(_) => report.written += 1,
            // Rewritten meanwhile, hence with the active key.
            None => report.kept += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(uid_of_file_name("aukscc_2000"), Some(2000));
        assert_eq!(uid_of_file_name("aukscc_"), None);
        assert_eq!(uid_of_file_name("aukscc_12a"), None);
        assert_eq!(uid_of_file_name("aukscc_99999999999"), None);
        assert_eq!(uid_of_file_name(".auks-tmp"), None);
    }
}
