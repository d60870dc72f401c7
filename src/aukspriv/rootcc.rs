//! Root's AUKS ccache, out of the world-writable `/tmp`: the root-owned
//! directory it lives in, and the ownership check applied to a target
//! ccache (by aukspriv and by the SPANK plugin for its host ccache).

use std::path::Path;

/// Root-owned directory of root's AUKS ccache (and of the plugin's job
/// records, `/run/auks/jobs`).
pub const ROOT_CCACHE_DIR: &str = "/run/auks";
/// Root's AUKS ccache: aukspriv's default target for root, the SPANK
/// plugin's default host ccache.
pub const ROOT_CCACHE: &str = "FILE:/run/auks/krb5cc_0";

/// Create [`ROOT_CCACHE_DIR`] (root, 0700) when missing, and check it is a
/// real directory of root's that nobody else can write (0700 or 0755).
pub fn ensure_root_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let shown = dir.display();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {shown}: {e}"))?;
        }
        Err(e) => return Err(format!("{shown}: {e}")),
        Ok(_) => {}
    }
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("{shown}: {e}"))?;
    if !m.file_type().is_dir() {
        return Err(format!("{shown} is not a directory: refused"));
    }
    if m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(format!(
            "{shown} must be root's and writable by root only (it is uid {}, mode {:o}): refused",
            m.uid(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// A FILE ccache `name` that exists must be a regular file owned by
/// `uid` (checked without following a symbolic link). Other types pass.
pub fn check_owned_ccache(name: &str, uid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let path = match name.split_once(':') {
        _ if name.starts_with('/') => name,
        Some(("FILE", p)) => p,
        _ => return Ok(()),
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("credential cache {path}: {e}")),
        Ok(m) if !m.file_type().is_file() => Err(format!(
            "credential cache {path} is not a regular file: refused (remove it)"
        )),
        Ok(m) if m.uid() != uid => Err(format!(
            "credential cache {path} belongs to uid {}, not to uid {uid}: refused (remove it)",
            m.uid()
        )),
        Ok(_) => Ok(()),
    }
}
