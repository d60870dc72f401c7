//! New private files: a name that must not exist yet (`O_EXCL`), never
//! reached through a symbolic link (`O_NOFOLLOW`), mode 0600 whatever the
//! umask, owned by the caller. What auksd's cache files and spares, the
//! replay-cache journal and the etcd sealing keys are created with.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Create `path` for writing (appending with `append`), as a new private
/// file. A file the umask left with fewer permissions is set to 0600; if
/// that cannot be checked or done, the file is removed again.
pub fn create(path: &Path, append: bool) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .append(append)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let private = match f.metadata() {
        Ok(m) if m.permissions().mode() & 0o777 == 0o600 => Ok(()),
        _ => f.set_permissions(std::fs::Permissions::from_mode(0o600)),
    };
    if let Err(e) = private {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn new_private_files_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let mut f = create(&p, false).unwrap();
        f.write_all(b"one").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(m.uid(), nix::unistd::geteuid().as_raw());
        // never an existing name, nor a link to elsewhere
        assert_eq!(
            create(&p, false).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let target = d.path().join("target");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create(&link, true).is_err());
        assert!(!target.exists());
        // appending
        let a = d.path().join("a");
        create(&a, true).unwrap().write_all(b"x").unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .unwrap()
            .write_all(b"y")
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"xy");
    }
}
