//! The decision for one session: which job the calling process was
//! adopted into, that job's record, and whether its ccache is really the
//! user's. Everything that is not a clear "yes" is a reason to ignore.

use crate::args::Args;
use crate::cgroup::{self, Membership};
use auks_record::{store, Step};
use std::os::unix::fs::MetadataExt;

/// What to do with the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Put `KRB5CCNAME=<ccache>` in the session environment.
    Set {
        ccache: String,
        jobid: u32,
        step: Step,
    },
    /// Leave the session alone, for this reason.
    Ignore(String),
}

/// The decision, plus notices worth a log line (refused records).
pub fn decide(uid: u32, cgroup_text: &str, args: &Args) -> (Outcome, Vec<String>) {
    let ignore = |why: String| (Outcome::Ignore(why), Vec::new());
    if uid == 0 && args.ignore_root {
        return ignore("root session (ignore_root)".into());
    }
    let js = match cgroup::parse(cgroup_text) {
        Membership::In(js) => js,
        Membership::None => {
            return ignore("session not adopted into a Slurm job (not in a job's cgroup)".into())
        }
        Membership::Ambiguous(v) => {
            let jobs: Vec<String> = v.iter().map(|j| j.jobid.to_string()).collect();
            return ignore(format!(
                "session is in the cgroups of several jobs ({}): not guessing",
                jobs.join(", ")
            ));
        }
    };
    if let Some(owner) = js.uid.filter(|&o| o != uid) {
        return ignore(format!(
            "session is in job {} of uid {owner}, not of uid {uid}",
            js.jobid
        ));
    }
    let found = match store::find(&args.record_dir, js.jobid, uid) {
        Ok(f) => f,
        Err(e) => return ignore(format!("job {}: no usable job record: {e}", js.jobid)),
    };
    let notices: Vec<String> = found
        .refused
        .iter()
        .map(|e| format!("job {}: refused a record: {e}", js.jobid))
        .collect();
    let Some(rec) = found.record else {
        return (
            Outcome::Ignore(format!(
                "job {} has no auks credential cache on this node",
                js.jobid
            )),
            notices,
        );
    };
    if let Err(why) = check_ccache(&rec.ccache, uid) {
        return (
            Outcome::Ignore(format!("job {}: {}: {why}", js.jobid, rec.ccache)),
            notices,
        );
    }
    (
        Outcome::Set {
            ccache: rec.ccache,
            jobid: js.jobid,
            step: rec.step,
        },
        notices,
    )
}

/// The ccache type of a name (`FILE` for a plain path).
pub fn ccache_type(name: &str) -> &str {
    match name.split_once(':') {
        Some((t, _)) if !name.starts_with('/') => t,
        _ => "FILE",
    }
}

/// A FILE or DIR ccache must exist, be the user's, private, and not be
/// reached through a symlink. Other types (KEYRING, KCM) are owned by the
/// user inside the kernel or the KCM daemon: nothing to check here.
fn check_ccache(name: &str, uid: u32) -> Result<(), String> {
    let (path, want_dir) = match ccache_type(name) {
        "FILE" => (name.strip_prefix("FILE:").unwrap_or(name), false),
        "DIR" => {
            let p = name.strip_prefix("DIR:").unwrap_or(name);
            // DIR::/dir/tktXXX names one cache of the collection
            match p.strip_prefix(':') {
                Some(file) => (file, false),
                None => (p, true),
            }
        }
        _ => return Ok(()),
    };
    if !path.starts_with('/') {
        return Err("not an absolute path".into());
    }
    let m = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    let kind_ok = if want_dir {
        m.file_type().is_dir()
    } else {
        m.file_type().is_file()
    };
    if !kind_ok {
        return Err("not a regular file or directory".into());
    }
    if m.uid() != uid {
        return Err(format!("owned by uid {}, not {uid}", m.uid()));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!("mode {:o} is not private", m.mode() & 0o7777));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use auks_record::Record;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        let p =
            std::env::temp_dir().join(format!("pam-auks-adopt-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        Tmp(p)
    }

    const UID: u32 = 2000;
    const CG: &str = "11:freezer:/slurm/uid_2000/job_42/step_extern\n";

    fn setup(tag: &str) -> (Tmp, Args, String) {
        let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap();
        assert_eq!(euid, 0, "run as root");
        let t = tmp(tag);
        let args = Args {
            record_dir: t.0.join("jobs"),
            ..Args::default()
        };
        let cc = t.0.join("krb5cc_2000_42_x");
        std::fs::write(&cc, b"not really a ccache").unwrap();
        std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&cc, Some(UID), None).unwrap();
        let name = format!("FILE:{}", cc.display());
        store::write(
            &args.record_dir,
            &Record {
                uid: UID,
                jobid: 42,
                step: Step::Extern,
                ccache: name.clone(),
            },
        )
        .unwrap();
        (t, args, name)
    }

    #[test]
    fn adopted_session_gets_the_job_ccache() {
        let (_t, args, name) = setup("ok");
        let (o, n) = decide(UID, CG, &args);
        assert_eq!(
            o,
            Outcome::Set {
                ccache: name,
                jobid: 42,
                step: Step::Extern
            }
        );
        assert!(n.is_empty());
    }

    #[test]
    fn every_doubt_is_ignored() {
        let (t, args, _name) = setup("doubt");
        let why = |uid, cg: &str, a: &Args| match decide(uid, cg, a).0 {
            Outcome::Ignore(w) => w,
            o => panic!("expected Ignore, got {o:?}"),
        };
        assert!(why(0, CG, &args).contains("root"));
        assert!(why(UID, "0::/\n", &args).contains("not adopted"));
        // another user in bob's job cgroup (impossible in practice) or bob
        // asking for another user's job: refused
        assert!(why(2001, CG, &args).contains("not of uid 2001"));
        let v2 = "0::/system.slice/slurmstepd.scope/job_42/step_extern/user\n";
        assert!(why(2001, v2, &args).contains("no auks credential"));
        assert!(why(
            UID,
            "11:freezer:/slurm/uid_2000/job_43/step_extern\n",
            &args
        )
        .contains("no auks credential"));
        // the ccache must be the user's and private
        let cc = t.0.join("krb5cc_2000_42_x");
        std::os::unix::fs::chown(&cc, Some(2001), None).unwrap();
        assert!(why(UID, CG, &args).contains("owned by uid 2001"));
        std::os::unix::fs::chown(&cc, Some(UID), None).unwrap();
        std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(why(UID, CG, &args).contains("not private"));
        std::fs::remove_file(&cc).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &cc).unwrap();
        assert!(why(UID, CG, &args).contains("not a regular file"));
        std::fs::remove_file(&cc).unwrap();
        assert!(why(UID, CG, &args).contains("No such file"));
        // a planted record (owned by the user) is refused with a notice
        let rec = args.record_dir.join("42.2000.extern");
        std::os::unix::fs::chown(&rec, Some(UID), None).unwrap();
        let (o, n) = decide(UID, CG, &args);
        assert!(matches!(o, Outcome::Ignore(w) if w.contains("no auks credential")));
        assert!(n[0].contains("not root"), "{n:?}");
        // root with ignore_root=no is looked up like anyone
        let a = Args {
            ignore_root: false,
            ..args.clone()
        };
        assert!(why(0, "0::/\n", &a).contains("not adopted"));
    }

    #[test]
    fn types() {
        assert_eq!(ccache_type("FILE:/tmp/x"), "FILE");
        assert_eq!(ccache_type("/tmp/x"), "FILE");
        assert_eq!(ccache_type("KEYRING:persistent:2000"), "KEYRING");
        assert_eq!(ccache_type("DIR::/run/user/2000/krb5cc/tkt"), "DIR");
    }
}
