//! The replay cache's journal: two files `<dir>/<name>.replay.{0,1}`, one
//! appended to at a time, the other dropped when everything in it has
//! expired; read back (and compacted into file 0) when the daemon starts.

use super::{Tag, RECORD};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Records read from one file at most (192 MB); past it the rest of the
/// file is not trusted to be complete.
const MAX_RECORDS_READ: usize = 8_000_000;

pub(super) struct Journal {
    dir: PathBuf,
    stem: String,
    file: File,
    current: u8,
    opened_at: i64,
}

impl Journal {
    fn path(&self, n: u8) -> PathBuf {
        self.dir.join(format!("{}.{n}", self.stem))
    }

    /// Append one record; the files rotate every `rotate_every` seconds.
    pub(super) fn append(
        &mut self,
        tag: &Tag,
        expiry: i64,
        now: i64,
        rotate_every: i64,
    ) -> Result<(), String> {
        if now >= self.opened_at + rotate_every {
            // Everything in the other file has expired: its records were
            // written at least `rotate_every` seconds ago.
            let other = self.path(1 - self.current);
            self.file =
                create_new(&other, true).map_err(|e| format!("{}: {e}", other.display()))?;
            self.current = 1 - self.current;
            self.opened_at = now;
        }
        // One write on an O_APPEND file: whole records, never interleaved.
        let written = self.file.write_all(&encode(tag, expiry));
        written.map_err(|e| format!("{}: {e}", self.path(self.current).display()))
    }
}

/// One record: the tag, then the expiry (Unix seconds, little-endian).
fn encode(tag: &Tag, expiry: i64) -> [u8; RECORD] {
    let mut rec = [0u8; RECORD];
    rec[..16].copy_from_slice(tag);
    rec[16..].copy_from_slice(&expiry.to_le_bytes());
    rec
}

/// The tag and expiry of one record ([`encode`]).
fn decode(rec: &[u8; RECORD]) -> (Tag, i64) {
    let (mut tag, mut expiry) = ([0u8; 16], [0u8; 8]);
    tag.copy_from_slice(&rec[..16]);
    expiry.copy_from_slice(&rec[16..]);
    (tag, i64::from_le_bytes(expiry))
}

/// Create `path` afresh for appending, mode 0600, never through a link
/// (`O_EXCL`); `replace`: a previous file of that name is removed first.
fn create_new(path: &Path, replace: bool) -> io::Result<File> {
    if replace {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    crate::private_file::create(path, true)
}

/// What [`load`] found.
pub(super) struct Loaded {
    /// Fresh records (tag, expiry).
    pub(super) fresh: Vec<(Tag, i64)>,
    /// The journal, open for appending; None when it could not be written
    /// back (`problems` says why).
    pub(super) journal: Option<Journal>,
    /// What could not be read, trusted or written: libkrb5's cache must
    /// then be used (the daemon's memory holds what was read).
    pub(super) problems: Vec<String>,
}

/// Whether others could remove or replace files in `dir`: writable by
/// others without the sticky bit.
fn dir_problem(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Err(e) => Some(format!("{}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => Some(format!("{}: not a directory", dir.display())),
        Ok(m) if m.permissions().mode() & 0o022 != 0 && m.permissions().mode() & 0o1000 == 0 => {
            Some(format!(
                "{}: writable by other users and not sticky",
                dir.display()
            ))
        }
        Ok(_) => None,
    }
}

/// Read the fresh records of one journal file into `fresh`; Err: why the
/// file cannot be used (what was read before stays).
fn read_file(
    path: &Path,
    euid: u32,
    since: i64,
    fresh: &mut Vec<(Tag, i64)>,
) -> Result<(), String> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let m = f
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() || m.uid() != euid || m.mode() & 0o022 != 0 {
        return Err(format!(
            "{}: not a regular file of uid {euid} writable by it alone",
            path.display()
        ));
    }
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut rec = [0u8; RECORD];
    // A record cut short by a crash ends the file.
    for _ in 0..MAX_RECORDS_READ {
        if r.read_exact(&mut rec).is_err() {
            return Ok(());
        }
        let (tag, expiry) = decode(&rec);
        if expiry > since {
            fresh.push((tag, expiry));
        }
    }
    Err(format!(
        "{}: more than {MAX_RECORDS_READ} records",
        path.display()
    ))
}

/// Read the journal `<dir>/<stem>.{0,1}` (records expiring after `since`),
/// write them back as file 0 (file 1 removed) and open it for appending.
pub(super) fn load(dir: &Path, stem: &str, since: i64, now: i64) -> Loaded {
    let euid = rustix::process::geteuid().as_raw();
    let mut fresh = Vec::new();
    let mut problems: Vec<String> = dir_problem(dir).into_iter().collect();
    for n in 0..2u8 {
        if let Err(e) = read_file(&dir.join(format!("{stem}.{n}")), euid, since, &mut fresh) {
            problems.push(e);
        }
    }
    let journal = if problems.is_empty() {
        match write_back(dir, stem, &fresh, now) {
            Ok(j) => Some(j),
            Err(e) => {
                problems.push(e);
                None
            }
        }
    } else {
        None
    };
    Loaded {
        fresh,
        journal,
        problems,
    }
}

/// Write `fresh` as the new file 0 (through a temporary file of a random
/// name, renamed) and remove file 1.
fn write_back(dir: &Path, stem: &str, fresh: &[(Tag, i64)], now: i64) -> Result<Journal, String> {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| format!("random name: {e}"))?;
    let tmp = dir.join(format!("{stem}.new-{:016x}", u64::from_le_bytes(rnd)));
    let fail = |p: &Path, e: io::Error| format!("{}: {e}", p.display());
    let mut out = create_new(&tmp, false).map_err(|e| fail(&tmp, e))?;
    let written = (|| {
        let mut buf = Vec::with_capacity(fresh.len().min(1 << 16) * RECORD);
        for (tag, expiry) in fresh {
            buf.extend_from_slice(&encode(tag, *expiry));
            if buf.len() >= (1 << 16) * RECORD {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    })();
    let zero = dir.join(format!("{stem}.0"));
    let renamed = written.and_then(|()| std::fs::rename(&tmp, &zero));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&zero, e));
    }
    let one = dir.join(format!("{stem}.1"));
    match std::fs::remove_file(&one) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(fail(&one, e)),
        _ => {}
    }
    Ok(Journal {
        dir: dir.to_path_buf(),
        stem: stem.to_string(),
        file: out,
        current: 0,
        opened_at: now,
    })
}

/// When libkrb5's own file cache in `dir` (MIT >= 1.18:
/// `krb5_<euid>.rcache2`) last stored an authenticator, if it did.
pub(super) fn library_file_modified(dir: &Path) -> Option<i64> {
    let euid = rustix::process::geteuid().as_raw();
    let m = std::fs::symlink_metadata(dir.join(format!("krb5_{euid}.rcache2"))).ok()?;
    Some(m.mtime())
}
