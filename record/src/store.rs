//! Records on disk: written atomically by the plugin (root, in
//! slurmstepd), read by `pam_auks_adopt` (root, in sshd) with every trust check:
//! the directory and its parent are root's and writable by nobody else,
//! a record is a regular file (never followed through a symlink) owned by
//! root, mode 0600, one link, at most [`MAX_RECORD`] bytes, and names the
//! job and user that was asked for.

use super::{file_name, step_of_name, Record, RecordError, Step, MAX_RECORD};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A directory we trust: a real directory (not a symlink), owned by root,
/// not writable by group or others.
fn check_dir(path: &Path) -> Result<(), RecordError> {
    let m = fs::symlink_metadata(path).map_err(|e| RecordError::io(path, e))?;
    let who = || path.display().to_string();
    if !m.file_type().is_dir() {
        return Err(RecordError::Untrusted(who(), "not a directory".into()));
    }
    if m.uid() != 0 {
        return Err(RecordError::Untrusted(
            who(),
            format!("owned by uid {}, not root", m.uid()),
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(RecordError::Untrusted(
            who(),
            format!(
                "mode {:o} is writable by group or others",
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// The record directory and its parent are trusted.
fn check_dirs(dir: &Path) -> Result<(), RecordError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        check_dir(parent)?;
    }
    check_dir(dir)
}

/// Create the record directory (and its parent) if needed, mode 0755,
/// and check it.
pub fn ensure_dir(dir: &Path) -> Result<(), RecordError> {
    if fs::symlink_metadata(dir).is_err() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| RecordError::io(dir, e))?;
    }
    check_dirs(dir)
}

/// Write `rec` atomically (private temporary file, then rename) as
/// `<dir>/<jobid>.<uid>.<step>`, mode 0600, and return its path.
pub fn write(dir: &Path, rec: &Record) -> Result<PathBuf, RecordError> {
    ensure_dir(dir)?;
    let name = file_name(rec.jobid, rec.uid, &rec.step);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(rec.encode().as_bytes())?;
        // No fsync: a record only describes a running job step and is
        // meaningless after a crash, and an fsync costs every job step
        // about a millisecond where /run is not a tmpfs.
        fs::rename(&tmp, &path)
    })();
    match result {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(RecordError::io(&path, e))
        }
    }
}

/// Remove a record (gone already is fine).
pub fn remove(path: &Path) -> Result<(), RecordError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RecordError::io(path, e)),
    }
}

/// Read one record file with the trust checks, and check that it is for
/// `jobid`, `uid` and `step`.
pub fn read_trusted(path: &Path, jobid: u32, uid: u32, step: &Step) -> Result<Record, RecordError> {
    let who = || path.display().to_string();
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                RecordError::Untrusted(who(), "a symbolic link".into())
            } else {
                RecordError::io(path, e)
            }
        })?;
    let m = f.metadata().map_err(|e| RecordError::io(path, e))?;
    if !m.file_type().is_file() {
        return Err(RecordError::Untrusted(who(), "not a regular file".into()));
    }
    if m.uid() != 0 {
        return Err(RecordError::Untrusted(
            who(),
            format!("owned by uid {}, not root", m.uid()),
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(RecordError::Untrusted(
            who(),
            format!("mode {:o}, expected 0600", m.mode() & 0o7777),
        ));
    }
    if m.nlink() != 1 {
        return Err(RecordError::Untrusted(
            who(),
            format!("{} hard links", m.nlink()),
        ));
    }
    if m.len() > MAX_RECORD {
        return Err(RecordError::Untrusted(who(), "too large".into()));
    }
    let mut text = String::new();
    f.take(MAX_RECORD + 1)
        .read_to_string(&mut text)
        .map_err(|e| RecordError::io(path, e))?;
    let rec = Record::decode(&text)?;
    let mismatch = |what, found: String, expected: String| RecordError::Mismatch {
        what,
        found,
        expected,
    };
    if rec.uid != uid {
        return Err(mismatch("uid", rec.uid.to_string(), uid.to_string()));
    }
    if rec.jobid != jobid {
        return Err(mismatch("job", rec.jobid.to_string(), jobid.to_string()));
    }
    if &rec.step != step {
        return Err(mismatch("step", rec.step.name(), step.name()));
    }
    Ok(rec)
}

/// What [`find`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// The preferred trusted record (extern, then batch, then the lowest
    /// step number).
    pub record: Option<Record>,
    /// Record files of this job and user that were refused, with why.
    pub refused: Vec<RecordError>,
}

/// The record of job `jobid` for user `uid` in `dir`.
pub fn find(dir: &Path, jobid: u32, uid: u32) -> Result<Found, RecordError> {
    check_dirs(dir)?;
    let mut steps: Vec<(Step, String)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| RecordError::io(dir, e))? {
        let entry = entry.map_err(|e| RecordError::io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if let Some(step) = step_of_name(&name, jobid, uid) {
            steps.push((step, name));
        }
        // bounded: a job has few steps with a ccache on one node
        if steps.len() >= 256 {
            break;
        }
    }
    steps.sort();
    let mut found = Found::default();
    for (step, name) in steps {
        match read_trusted(&dir.join(&name), jobid, uid, &step) {
            Ok(r) => {
                found.record = Some(r);
                break;
            }
            Err(e) => found.refused.push(e),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Effective uid 0 (`/proc/self` belongs to the effective uid).
    fn is_root() -> bool {
        fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    fn rec(step: Step) -> Record {
        Record {
            uid: 2000,
            jobid: 42,
            step,
            ccache: "FILE:/tmp/krb5cc_2000_42_AbC123".into(),
        }
    }

    /// A record directory under a fresh root-owned 0755 temporary dir.
    fn dir() -> (tempdir::Dir, PathBuf) {
        let t = tempdir::Dir::new();
        let d = t.path().join("jobs");
        (t, d)
    }

    mod tempdir {
        use std::os::unix::fs::PermissionsExt;
        use std::path::{Path, PathBuf};
        pub struct Dir(PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let p = std::env::temp_dir()
                    .join(format!("auks-record-test-{}-{n}", std::process::id()));
                let _ = std::fs::remove_dir_all(&p);
                std::fs::create_dir(&p).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn write_find_remove() {
        assert!(
            is_root(),
            "these tests check root ownership: run them as root"
        );
        let (_t, d) = dir();
        let p = write(&d, &rec(Step::Number(0))).unwrap();
        let m = fs::symlink_metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
        assert_eq!(m.uid(), 0);
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o755);
        write(&d, &rec(Step::Extern)).unwrap();
        write(&d, &rec(Step::Batch)).unwrap();
        let f = find(&d, 42, 2000).unwrap();
        assert_eq!(f.record, Some(rec(Step::Extern)));
        assert!(f.refused.is_empty());
        // another job or user sees nothing
        assert_eq!(find(&d, 43, 2000).unwrap().record, None);
        assert_eq!(find(&d, 42, 2001).unwrap().record, None);
        remove(&d.join("42.2000.extern")).unwrap();
        assert_eq!(find(&d, 42, 2000).unwrap().record, Some(rec(Step::Batch)));
        remove(&d.join("42.2000.extern")).unwrap();
        // no temporary file left
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn untrusted_records_are_refused() {
        assert!(
            is_root(),
            "these tests check root ownership: run them as root"
        );
        let (t, d) = dir();
        ensure_dir(&d).unwrap();
        let good = rec(Step::Extern).encode();
        let plant = |name: &str, text: &str, mode: u32, owner: u32| {
            let p = d.join(name);
            fs::write(&p, text).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&p, Some(owner), None).unwrap();
        };
        // owned by the user
        plant("42.2000.extern", &good, 0o600, 2000);
        let f = find(&d, 42, 2000).unwrap();
        assert_eq!(f.record, None);
        assert!(
            f.refused[0].to_string().contains("not root"),
            "{:?}",
            f.refused
        );
        // readable by others
        plant("42.2000.extern", &good, 0o644, 0);
        assert!(find(&d, 42, 2000).unwrap().refused[0]
            .to_string()
            .contains("mode 644"));
        // a symlink to a good record elsewhere
        fs::remove_file(d.join("42.2000.extern")).unwrap();
        let elsewhere = t.path().join("elsewhere");
        fs::write(&elsewhere, &good).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        symlink(&elsewhere, d.join("42.2000.extern")).unwrap();
        assert!(find(&d, 42, 2000).unwrap().refused[0]
            .to_string()
            .contains("symbolic link"));
        fs::remove_file(d.join("42.2000.extern")).unwrap();
        // a hard link
        fs::hard_link(&elsewhere, d.join("42.2000.extern")).unwrap();
        assert!(find(&d, 42, 2000).unwrap().refused[0]
            .to_string()
            .contains("hard links"));
        fs::remove_file(d.join("42.2000.extern")).unwrap();
        // a record naming another user, under this user's name
        let other = Record {
            uid: 2001,
            ..rec(Step::Extern)
        };
        plant("42.2000.extern", &other.encode(), 0o600, 0);
        assert!(matches!(
            find(&d, 42, 2000).unwrap().refused[0],
            RecordError::Mismatch { what: "uid", .. }
        ));
        // a FIFO never blocks the reader
        fs::remove_file(d.join("42.2000.extern")).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg("-m0600")
            .arg(d.join("42.2000.extern"))
            .status()
            .unwrap();
        assert!(st.success());
        assert!(find(&d, 42, 2000).unwrap().refused[0]
            .to_string()
            .contains("not a regular file"));
    }

    #[test]
    fn untrusted_directories_are_refused() {
        assert!(
            is_root(),
            "these tests check root ownership: run them as root"
        );
        let (t, d) = dir();
        write(&d, &rec(Step::Extern)).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(find(&d, 42, 2000).is_err());
        assert!(write(&d, &rec(Step::Batch)).is_err());
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&d, Some(2000), None).unwrap();
        assert!(find(&d, 42, 2000).is_err());
        std::os::unix::fs::chown(&d, Some(0), None).unwrap();
        // a parent writable by others
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(find(&d, 42, 2000).is_err());
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find(&d, 42, 2000).unwrap().record, Some(rec(Step::Extern)));
        // the directory itself a symlink
        let link = t.path().join("link");
        symlink(&d, &link).unwrap();
        assert!(find(&link, 42, 2000).is_err());
    }
}
