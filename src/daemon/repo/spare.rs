//! Cache files rewritten over recycled inodes. Every ADD that changes a
//! credential replaces `aukscc_<uid>` atomically: the new contents go to a
//! hidden private file `.auks-<random>`, which then takes the name. Renamed
//! over the old file, that is a new inode each time and the old one freed:
//! an auksdrenewer pass over 100 000 credentials allocates and frees
//! 100 000 inodes in a minute, about a fifth of auksd's work for an ADD,
//! and on an ext4 without a journal the allocator then skips every
//! recently freed inode, reading their tables (a pass measured at twice
//! auksd's CPU).
//!
//! Instead the new file is *exchanged* with the old one
//! (`renameat2(RENAME_EXCHANGE)`): the name now holds the new contents,
//! the hidden name the old inode, which is emptied at once (the old
//! credential leaves the file before the ADD is answered) and kept in a
//! small pool as the next ADD's spare. Readers see the old file or the new
//! one, never a partial one, as with a rename. A spare is only reused while
//! it is an empty regular file of ours, mode 0600, with one link; anything
//! else is unlinked. Where the file system cannot exchange names, or the
//! cache file does not exist yet, the spare is renamed as before.
//!
//! The write-out of the new contents starts before they get the name
//! (`posix_fadvise`, see [`fill`]), as ext4 does on its own for a rename
//! over an existing file (`auto_da_alloc`): after a power loss a
//! journalling file system holds the old credential or the new one under
//! the name, not an empty file.
//!
//! Up to [`KEEP`] empty spares stay in the cache directory while auksd
//! runs (one per ADD in flight); they are removed when the repository is
//! dropped, and with any other `.auks-*` leftover at the next start.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use nix::fcntl::RenameFlags;

/// Empty spares kept at most.
pub const KEEP: usize = 64;

/// The pool of empty spare files of one cache directory.
pub(super) struct Spares {
    dir: PathBuf,
    pool: Mutex<Vec<PathBuf>>,
}

/// A regular file of ours with one link.
fn ours(m: &Metadata) -> bool {
    m.file_type().is_file() && m.nlink() == 1 && m.uid() == nix::unistd::geteuid().as_raw()
}

/// [`ours`], and private (mode 0600).
fn private(m: &Metadata) -> bool {
    ours(m) && m.mode() & 0o7777 == 0o600
}

impl Spares {
    pub(super) fn new(dir: &Path) -> Self {
        Spares {
            dir: dir.to_path_buf(),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Put `bytes` (a whole FILE ccache) at `target`, a name in the
    /// directory, atomically (the caller holds the name's stripe).
    pub(super) fn store(&self, target: &Path, bytes: &[u8]) -> Result<(), String> {
        let (path, file) = self.take()?;
        let placed = fill(file, bytes).and_then(|()| place(&path, target));
        match placed {
            Ok(true) => self.recycle(path),
            Ok(false) => {}
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        }
        Ok(())
    }

    /// A spare from the pool, else a new hidden file (`O_EXCL`, 0600).
    fn take(&self) -> Result<(PathBuf, File), String> {
        loop {
            let next = self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(p) = next else { break };
            let reusable = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)
                .and_then(|f| Ok((f.metadata()?, f)));
            match reusable {
                Ok((m, f)) if private(&m) && m.len() == 0 => return Ok((p, f)),
                _ => {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        let p = self
            .dir
            .join(format!(".auks-{}", crate::cred::random_name()));
        let f = crate::private_file::create(&p, false).map_err(|e| e.to_string())?;
        Ok((p, f))
    }

    /// The old file, now at `path` after an exchange: emptied and kept as
    /// a spare when it is a private file of ours with one link, else
    /// unlinked (a file also linked elsewhere keeps its other name and
    /// contents, as with a rename over it).
    fn recycle(&self, path: PathBuf) {
        let emptied = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|f| {
                let m = f.metadata()?;
                if !ours(&m) {
                    return Err(std::io::ErrorKind::Other.into());
                }
                f.set_len(0)?;
                if m.mode() & 0o7777 != 0o600 {
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(())
            });
        if emptied.is_ok() {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < KEEP {
                pool.push(path);
                return;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        let pool = self.pool.get_mut().unwrap_or_else(PoisonError::into_inner);
        for p in pool.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Write the new contents and start their write-out.
fn fill(mut f: File, bytes: &[u8]) -> Result<(), String> {
    f.write_all(bytes).map_err(|e| e.to_string())?;
    // Start the write-out now: on Linux, POSIX_FADV_DONTNEED first
    // starts writing the dirty pages back without waiting (as
    // `sync_file_range(SYNC_FILE_RANGE_WRITE)` and ext4's `auto_da_alloc`
    // do), then drops the clean ones, which auksd does not read again.
    // Best effort: where it is not supported the data is written later.
    let _ = nix::fcntl::posix_fadvise(
        f.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
    Ok(())
}

/// Give `path`'s contents the name `target`: exchanged with the old file
/// (`true`: the old file is at `path`), else renamed (`false`) when there
/// is no old file or the file system cannot exchange names.
fn place(path: &Path, target: &Path) -> Result<bool, String> {
    match nix::fcntl::renameat2(None, path, None, target, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            nix::fcntl::renameat2(None, path, None, target, RenameFlags::empty())
                .map(|()| false)
                .map_err(|e| format!("rename: {}", e.desc()))
        }
        Err(e) => Err(format!("rename: {}", e.desc())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ino(p: &Path) -> u64 {
        std::fs::symlink_metadata(p).unwrap().ino()
    }

    fn hidden(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".auks-")
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_replaced_file_becomes_the_next_spare() {
        let d = tempfile::tempdir().unwrap();
        let s = Spares::new(d.path());
        let t = d.path().join("aukscc_7");
        s.store(&t, b"first").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"first");
        assert!(hidden(d.path()).is_empty(), "a new name: renamed, no spare");
        let first = ino(&t);

        s.store(&t, b"second").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"second");
        let spares = hidden(d.path());
        assert_eq!(spares.len(), 1, "the old file is kept as a spare");
        assert_eq!(ino(&spares[0]), first, "the old inode");
        let m = std::fs::metadata(&spares[0]).unwrap();
        assert_eq!(m.len(), 0, "emptied: the old credential is gone");
        assert_eq!(m.mode() & 0o7777, 0o600);

        // The next write reuses it: no new inode.
        s.store(&t, b"third").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"third");
        assert_eq!(ino(&t), first, "written over the recycled inode");
        assert_eq!(std::fs::metadata(&t).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(hidden(d.path()).len(), 1);
        drop(s);
        assert!(hidden(d.path()).is_empty(), "spares removed on drop");
        assert_eq!(std::fs::read(&t).unwrap(), b"third");
    }

    #[test]
    fn an_old_file_linked_elsewhere_keeps_its_contents() {
        let d = tempfile::tempdir().unwrap();
        let s = Spares::new(d.path());
        let t = d.path().join("aukscc_7");
        s.store(&t, b"old").unwrap();
        let other = d.path().join("backup");
        std::fs::hard_link(&t, &other).unwrap();
        s.store(&t, b"new").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        assert_eq!(std::fs::read(&other).unwrap(), b"old");
        assert!(hidden(d.path()).is_empty(), "not kept as a spare");
    }

    #[test]
    fn a_symlink_in_place_is_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let s = Spares::new(d.path());
        let elsewhere = d.path().join("elsewhere");
        std::fs::write(&elsewhere, b"not ours").unwrap();
        let t = d.path().join("aukscc_7");
        std::os::unix::fs::symlink(&elsewhere, &t).unwrap();
        s.store(&t, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&t).unwrap().is_file());
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"not ours");
        assert!(hidden(d.path()).is_empty(), "the symlink is unlinked");
    }

    #[test]
    fn a_spare_that_is_not_empty_and_private_is_not_reused() {
        let d = tempfile::tempdir().unwrap();
        let s = Spares::new(d.path());
        let t = d.path().join("aukscc_7");
        s.store(&t, b"one").unwrap();
        s.store(&t, b"two").unwrap();
        let spare = hidden(d.path()).pop().unwrap();
        std::fs::write(&spare, b"someone wrote here").unwrap();
        s.store(&t, b"three").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"three");
        // Had it been reused, the old file would now be at its name.
        assert!(!spare.exists(), "the unusable spare was removed");
        assert_eq!(hidden(d.path()).len(), 1, "the old file is the new spare");
        // and a spare whose mode changed
        let spare = hidden(d.path()).pop().unwrap();
        std::fs::set_permissions(&spare, std::fs::Permissions::from_mode(0o644)).unwrap();
        s.store(&t, b"four").unwrap();
        assert!(!spare.exists());
        assert_eq!(std::fs::read(&t).unwrap(), b"four");
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = Spares::new(d.path());
        // the target's directory does not exist: the placement fails
        let t = d.path().join("missing").join("aukscc_7");
        assert!(s.store(&t, b"x").is_err());
        assert!(hidden(d.path()).is_empty());
    }
}
