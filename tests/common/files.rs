//! Files and directories of the tests: temporary directories test users can traverse,
//! modes and owners, directory snapshots, and the host name.

use super::accounts::LocalUser;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A temp dir (removed on drop) with mode 0755, so test users can traverse it.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir");
    set_mode(d.path(), 0o755);
    d
}

pub fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, p.display()));
}

pub fn write_file(p: &Path, content: impl AsRef<[u8]>, mode: u32) {
    fs::write(p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    set_mode(p, mode);
}

/// `chown user:group path`.
pub fn chown(path: &Path, user: &LocalUser) {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .unwrap_or_else(|e| panic!("chown {} to {}: {e}", path.display(), user.name));
}

/// (mode & 0o7777, owner uid) of a file.
pub fn mode_owner(path: &Path) -> (u32, u32) {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid())
}

/// The machine's host name (as `gethostname()`).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .expect("gethostname failed")
        .to_string_lossy()
        .into_owned()
}

/// Names + sizes + mtimes of the entries of a directory (to check it did not change).
pub fn dir_snapshot(dir: &Path) -> Vec<(String, u64, i64, i64)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
            )
        })
        .collect();
    v.sort();
    v
}
