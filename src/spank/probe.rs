//! Bounded probing of a user-chosen credential cache name (`KRB5CCNAME`
//! in srun's, sbatch's or the job's environment) before libkrb5 opens it.
//!
//! libkrb5 opens a FILE ccache (and a DIR collection's `primary` file)
//! with a plain blocking `open()`: a FIFO there blocks the caller until
//! someone writes to it, a device may do anything. In slurmstepd that
//! holds the task launch, in srun it hangs srun itself. So a file-backed
//! name is checked first, without ever blocking:
//!
//! - `lstat`-free `stat` of the path: it must be a regular file (a directory
//!   for a DIR collection), owned by the expected user;
//! - then `open(O_RDONLY | O_NONBLOCK | O_NOCTTY)` and `fstat` of the open
//!   descriptor, which must still be that regular file (the path may have
//!   been swapped meanwhile);
//! - its content (at most [`CCACHE_MAX`] bytes) is copied into a private
//!   memory file (`memfd`), which libkrb5 reads through
//!   `/proc/thread-self/fd/N`: never what the path names later, and no
//!   lock the user holds on the file can block libkrb5's shared lock.
//!
//! Not covered: a path on a file system the user serves (FUSE) can still
//! stall a `stat` or a read; such mounts are not reachable from slurmstepd
//! on an ordinary node (`allow_other` off).
//!
//! Names not backed by a file (KEYRING, KCM, MEMORY, ...) are returned as
//! they are: opening them cannot block on something the user created.

use super::args::ccache_type_of;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest DIR `primary` file read (it holds one file name).
const PRIMARY_MAX: u64 = 4096;
/// Largest ccache file copied (a TGT and a few service tickets: ~10 KB).
pub const CCACHE_MAX: u64 = 1 << 20;

/// Why a ccache name is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// Nothing there (the usual case of a stale or default name).
    Missing(String),
    /// Something unusable or someone else's: the message says what.
    Refused(String),
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ignored::Missing(m) | Ignored::Refused(m) => f.write_str(m),
        }
    }
}

/// A ccache name that is safe to hand to libkrb5.
#[derive(Debug)]
pub enum Probed {
    /// A regular file of the expected owner, copied into a private memory
    /// file: read it through [`Probed::krb5_name`] while this value lives.
    File { copy: File, path: PathBuf },
    /// Not file-backed: used as is.
    Other(String),
}

impl Probed {
    /// The name libkrb5 must use to read what was checked.
    pub fn krb5_name(&self) -> String {
        match self {
            Probed::File { copy, .. } => {
                format!("FILE:/proc/thread-self/fd/{}", copy.as_raw_fd())
            }
            Probed::Other(n) => n.clone(),
        }
    }

    /// The file checked, for messages.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Probed::File { path, .. } => Some(path),
            Probed::Other(_) => None,
        }
    }
}

/// What kind of file `m` is, for messages.
fn kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Check `path` is a regular file owned by `owner` and open it without
/// blocking.
fn open_regular(name: &str, path: &Path, owner: u32) -> Result<File, Ignored> {
    let shown = path.display();
    let m = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Ignored::Missing(format!("{name}: {shown} does not exist"))
        } else {
            Ignored::Refused(format!("{name}: {shown} cannot be read ({e})"))
        }
    })?;
    let check = |m: &std::fs::Metadata| -> Result<(), Ignored> {
        if !m.is_file() {
            return Err(Ignored::Refused(format!(
                "{name}: {shown} is {}, not a regular file",
                kind(m)
            )));
        }
        if m.uid() != owner {
            return Err(Ignored::Refused(format!(
                "{name}: {shown} belongs to uid {}, not to uid {owner}",
                m.uid()
            )));
        }
        Ok(())
    };
    check(&m)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Ignored::Refused(format!("{name}: {shown} cannot be opened ({e})")))?;
    let m = file
        .metadata()
        .map_err(|e| Ignored::Refused(format!("{name}: {shown}: {e}")))?;
    check(&m)?;
    Ok(file)
}

/// The ticket file a DIR collection's `primary` names (`tkt` when there
/// is no `primary`), checked as a regular file of `owner`.
fn dir_primary(name: &str, dir: &Path, owner: u32) -> Result<PathBuf, Ignored> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() && m.uid() == owner => {}
        Ok(m) if m.is_dir() => {
            return Err(Ignored::Refused(format!(
                "{name}: {shown} belongs to uid {}, not to uid {owner}",
                m.uid()
            )))
        }
        Ok(m) => {
            return Err(Ignored::Refused(format!(
                "{name}: {shown} is {}, not a directory",
                kind(&m)
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Ignored::Missing(format!("{name}: {shown} does not exist")))
        }
        Err(e) => {
            return Err(Ignored::Refused(format!(
                "{name}: {shown} cannot be read ({e})"
            )))
        }
    }
    let primary = dir.join("primary");
    let ticket = match open_regular(name, &primary, owner) {
        Ok(f) => {
            let mut text = String::new();
            f.take(PRIMARY_MAX)
                .read_to_string(&mut text)
                .map_err(|e| Ignored::Refused(format!("{name}: {}: {e}", primary.display())))?;
            let t = text.lines().next().unwrap_or("").trim().to_string();
            if !t.starts_with("tkt") || t.contains('/') {
                return Err(Ignored::Refused(format!(
                    "{name}: {} does not name a ticket file of the collection",
                    primary.display()
                )));
            }
            t
        }
        Err(Ignored::Missing(_)) => "tkt".to_string(),
        Err(e) => return Err(e),
    };
    Ok(dir.join(ticket))
}

/// Check the ccache `name` for `owner` (the caller's uid on the submit
/// side, the job user's in slurmstepd, called with that identity).
pub fn probe(name: &str, owner: u32) -> Result<Probed, Ignored> {
    let ty = ccache_type_of(name);
    let residual = if name.starts_with('/') {
        name
    } else {
        name.split_once(':').map(|(_, r)| r).unwrap_or(name)
    };
    let path = match ty {
        "FILE" => PathBuf::from(residual),
        // DIR::/dir/tktXXX names one cache of the collection
        "DIR" => match residual.strip_prefix(':') {
            Some(file) => PathBuf::from(file),
            None => dir_primary(name, Path::new(residual), owner)?,
        },
        _ => return Ok(Probed::Other(name.to_string())),
    };
    if !path.is_absolute() {
        return Err(Ignored::Refused(format!(
            "{name}: {} is not an absolute path",
            path.display()
        )));
    }
    let file = open_regular(name, &path, owner)?;
    let copy = private_copy(name, &path, file)?;
    Ok(Probed::File { copy, path })
}

/// Copy the checked file into a new memory file (close-on-exec).
fn private_copy(name: &str, path: &Path, file: File) -> Result<File, Ignored> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let shown = path.display();
    let fail = |e: &dyn std::fmt::Display| Ignored::Refused(format!("{name}: {shown}: {e}"));
    // One buffer of the file's size plus one byte, never grown: a growing
    // Vec would leave unwiped copies of the session keys where it was. A
    // file that grew meanwhile (libkrb5 of another srun appending a service
    // ticket) is read again into a new buffer; the old one is wiped.
    let mut attempt = 0;
    let data = loop {
        let size = file.metadata().map_err(|e| fail(&e))?.len();
        if size > CCACHE_MAX {
            return Err(Ignored::Refused(format!(
                "{name}: {shown} is larger than {CCACHE_MAX} bytes"
            )));
        }
        let mut data = zeroize::Zeroizing::new(vec![0u8; size as usize + 1]);
        let mut got = 0;
        while got < data.len() {
            match std::os::unix::fs::FileExt::read_at(&file, &mut data[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(&e)),
            }
        }
        if got as u64 <= size {
            data.truncate(got);
            break data;
        }
        attempt += 1;
        if attempt == 3 {
            return Err(Ignored::Refused(format!(
                "{name}: {shown} kept growing while it was read"
            )));
        }
    };
    let fd = memfd_create(c"auks-ccache", MemFdCreateFlag::MFD_CLOEXEC).map_err(|e| fail(&e))?;
    let mut copy = File::from(fd);
    std::io::Write::write_all(&mut copy, &data).map_err(|e| fail(&e))?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t = Instant::now();
        let name = format!("FILE:{}", fifo.display());
        match probe(&name, me()) {
            Err(Ignored::Refused(m)) => assert!(m.contains("a FIFO"), "{m}"),
            other => panic!("{other:?}"),
        }
        // DIR collection whose primary is a FIFO
        let dir = d.path().join("coll");
        std::fs::create_dir(&dir).unwrap();
        nix::unistd::mkfifo(
            &dir.join("primary"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        match probe(&format!("DIR:{}", dir.display()), me()) {
            Err(Ignored::Refused(m)) => assert!(m.contains("a FIFO"), "{m}"),
            other => panic!("{other:?}"),
        }
        // primary naming a FIFO ticket file
        std::fs::remove_file(dir.join("primary")).unwrap();
        std::fs::write(dir.join("primary"), "tktABC\n").unwrap();
        nix::unistd::mkfifo(
            &dir.join("tktABC"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(matches!(
            probe(&format!("DIR:{}", dir.display()), me()),
            Err(Ignored::Refused(_))
        ));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    /// The copy is the whole file whatever its size up to the limit (one
    /// buffer of the file's size), empty included; beyond it, refused.
    #[test]
    fn copies_have_the_file_size_up_to_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cc");
        for len in [0usize, 1, 70_000, CCACHE_MAX as usize] {
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&f, &content).unwrap();
            let p = probe(f.to_str().unwrap(), me()).unwrap();
            let n = p.krb5_name();
            assert_eq!(
                std::fs::read(n.strip_prefix("FILE:").unwrap()).unwrap(),
                content
            );
        }
        std::fs::write(&f, vec![0u8; CCACHE_MAX as usize + 1]).unwrap();
        match probe(f.to_str().unwrap(), me()) {
            Err(Ignored::Refused(why)) => assert!(why.contains("larger than"), "{why}"),
            other => panic!("{:?}", other.map(|p| p.krb5_name())),
        }
    }

    #[test]
    fn regular_files_pass_and_are_read_through_the_descriptor() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cc");
        std::fs::write(&f, b"x").unwrap();
        let p = probe(f.to_str().unwrap(), me()).unwrap();
        let n = p.krb5_name();
        let through = n.strip_prefix("FILE:").unwrap();
        // the descriptor path reads the checked content even once the file
        // is replaced
        std::fs::remove_file(&f).unwrap();
        std::fs::write(&f, b"other").unwrap();
        assert_eq!(std::fs::read(through).unwrap(), b"x");
        assert_eq!(p.path(), Some(f.as_path()));
        // DIR with a primary, and DIR:: naming one file
        let dir = d.path().join("coll");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("primary"), "tkt1\n").unwrap();
        std::fs::write(dir.join("tkt1"), b"t").unwrap();
        let p = probe(&format!("DIR:{}", dir.display()), me()).unwrap();
        assert_eq!(p.path(), Some(dir.join("tkt1").as_path()));
        let p = probe(&format!("DIR::{}/tkt1", dir.display()), me()).unwrap();
        assert_eq!(p.path(), Some(dir.join("tkt1").as_path()));
        // bad primary content
        std::fs::write(dir.join("primary"), "../../etc/shadow\n").unwrap();
        assert!(matches!(
            probe(&format!("DIR:{}", dir.display()), me()),
            Err(Ignored::Refused(_))
        ));
    }

    /// libkrb5 reads the checked copy through the descriptor name, and a
    /// later change of the path does not matter.
    #[test]
    fn libkrb5_reads_the_private_copy() {
        use crate::krb5::{Ccache, Context, Principal};
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cc");
        let ctx = Context::new().unwrap();
        let p = Principal::parse(&ctx, "probe@TEST.REALM").unwrap();
        let name = format!("FILE:{}", f.display());
        Ccache::resolve(&ctx, &name)
            .unwrap()
            .initialize(&p)
            .unwrap();
        let probed = probe(&name, me()).unwrap();
        std::fs::remove_file(&f).unwrap();
        let cc = Ccache::resolve(&ctx, &probed.krb5_name()).unwrap();
        let got = cc.principal().unwrap();
        assert_eq!(got.name().unwrap(), "probe@TEST.REALM");
    }

    #[test]
    fn other_owners_missing_files_and_non_file_types() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cc");
        std::fs::write(&f, b"x").unwrap();
        match probe(&format!("FILE:{}", f.display()), me() + 1) {
            Err(Ignored::Refused(m)) => assert!(m.contains("belongs to uid"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            probe(&format!("FILE:{}/nope", d.path().display()), me()),
            Err(Ignored::Missing(_))
        ));
        assert!(matches!(probe("/dev/null", me()), Err(Ignored::Refused(_))));
        assert!(matches!(
            probe("FILE:relative", me()),
            Err(Ignored::Refused(_))
        ));
        let k = probe("KEYRING:persistent:2000", me()).unwrap();
        assert_eq!(k.krb5_name(), "KEYRING:persistent:2000");
        assert_eq!(k.path(), None);
    }
}
