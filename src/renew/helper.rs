//! The `HelperScript` runner (spec §8.4), the only one: used by the per-job
//! renewer after each renewal and by the SPANK plugin after it stored the
//! job's credential. The script gets no arguments, `KRB5CCNAME` naming the
//! ccache, stdin from /dev/null, and at most [`HELPER_TIMEOUT`] to finish.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a helper script may run before it is killed (SIGKILL).
///
/// One limit for both callers. A helper refreshes something derived from
/// the ticket (an AFS token, a copy of the ccache): seconds of work. In the
/// plugin it runs before the job's tasks start, so every second it takes
/// delays the step; in the renewer it must be done well before the next
/// renewal is due (`MinLifeTime`, default 600 s). 30 s leaves room for a
/// slow network service and bounds how long a hung script can hold a step.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// PATH given to a helper run for a job user (its environment is cleared).
const JOB_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Result of running the helper script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperOutcome {
    /// It ran and exited 0.
    Ran,
    /// It was not run (missing or not executable), with the reason.
    Skipped(String),
}

/// Whom the helper runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// The caller (`auks -R`): its environment and stdout/stderr, with the
    /// real ids set to the effective ones when they differ.
    Caller,
    /// A job user, from a privileged process (the plugin in slurmstepd):
    /// all ids set to `uid`/`gid` (supplementary groups dropped), the
    /// environment reduced to `PATH` and `KRB5CCNAME`, stdout and stderr on
    /// /dev/null, working directory `/`.
    JobUser { uid: u32, gid: u32 },
    /// As `JobUser` (environment, stdio, working directory), the ids and
    /// the rest of the process start-up being set by the `setup` given to
    /// [`run_helper_with`] (the plugin: the user's full identity with
    /// supplementary groups, closed descriptors, clean signals).
    JobUserSetUp,
}

/// Run `script` as `who` with `KRB5CCNAME=ccache` when given. A missing or
/// non-executable script is skipped (as C ignores it at configuration
/// load). A non-zero exit, a death by signal (C counted that as success)
/// or a run longer than [`HELPER_TIMEOUT`] is an error.
pub fn run_helper(
    script: &Path,
    ccache: Option<&str>,
    who: RunAs,
) -> Result<HelperOutcome, String> {
    run_helper_with(script, ccache, who, |_| {})
}

/// [`run_helper`], with `setup` applied to the command before it starts.
pub fn run_helper_with(
    script: &Path,
    ccache: Option<&str>,
    who: RunAs,
    setup: impl FnOnce(&mut Command),
) -> Result<HelperOutcome, String> {
    let shown = script.display();
    match std::fs::metadata(script) {
        Err(e) => {
            return Ok(HelperOutcome::Skipped(format!(
                "HelperScript {shown} cannot be used ({e}): ignored"
            )))
        }
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
            return Ok(HelperOutcome::Skipped(format!(
                "HelperScript {shown} is not an executable file: ignored"
            )))
        }
        Ok(_) => {}
    }
    let mut cmd = command(script, ccache, who);
    setup(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Ok(HelperOutcome::Skipped(format!(
                "HelperScript {shown} cannot be run ({e}): ignored"
            )))
        }
        Err(e) => return Err(format!("cannot run {shown}: {e}")),
    };
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not finish within {} s and was killed",
                    HELPER_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    if status.success() {
        Ok(HelperOutcome::Ran)
    } else if let Some(code) = status.code() {
        Err(format!("{shown} exited with status {code}"))
    } else {
        Err(format!(
            "{shown} was killed by signal {}",
            status.signal().unwrap_or(0)
        ))
    }
}

/// Environment, stdio and working directory of a helper run for a job.
fn job_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", JOB_PATH)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
}

/// The command line and process attributes for `who`.
fn command(script: &Path, ccache: Option<&str>, who: RunAs) -> Command {
    let mut cmd = Command::new(script);
    cmd.stdin(Stdio::null());
    match who {
        RunAs::Caller => {
            let (uid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
            let (gid, egid) = (nix::unistd::getgid(), nix::unistd::getegid());
            if uid != euid || gid != egid {
                cmd.uid(euid.as_raw()).gid(egid.as_raw());
            }
        }
        RunAs::JobUser { uid, gid } => {
            job_env(&mut cmd).uid(uid).gid(gid);
        }
        RunAs::JobUserSetUp => {
            job_env(&mut cmd);
        }
    }
    if let Some(cc) = ccache {
        cmd.env("KRB5CCNAME", cc);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn helper_missing_is_skipped_and_failure_reported() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        assert!(matches!(
            run_helper(&missing, None, RunAs::Caller),
            Ok(HelperOutcome::Skipped(_))
        ));
        let not_exec = script(d.path(), "plain", "#!/bin/sh\nexit 0\n", 0o644);
        assert!(matches!(
            run_helper(&not_exec, None, RunAs::Caller),
            Ok(HelperOutcome::Skipped(_))
        ));
        let out = d.path().join("seen");
        let ok = script(
            d.path(),
            "ok",
            &format!(
                "#!/bin/sh\n[ $# -eq 0 ] && echo \"$KRB5CCNAME\" > {}\n",
                out.display()
            ),
            0o755,
        );
        assert_eq!(
            run_helper(&ok, Some("FILE:/tmp/x"), RunAs::Caller),
            Ok(HelperOutcome::Ran)
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "FILE:/tmp/x");
        let bad = script(d.path(), "bad", "#!/bin/sh\nexit 3\n", 0o755);
        let e = run_helper(&bad, None, RunAs::Caller).unwrap_err();
        assert!(e.contains("status 3"), "{e}");
        let killed = script(d.path(), "killed", "#!/bin/sh\nkill -9 $$\n", 0o755);
        let e = run_helper(&killed, None, RunAs::Caller).unwrap_err();
        assert!(e.contains("signal 9"), "{e}");
    }

    /// As a job user (CI runs as root, so this runs there): the ids are
    /// dropped, the environment is only PATH and KRB5CCNAME, cwd is `/`.
    #[test]
    fn job_user_helper_runs_with_dropped_ids_and_clean_env() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it runs a helper as uid 65534)"
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let out = d.path().join("seen");
        let s = script(
            d.path(),
            "who",
            &format!(
                "#!/bin/sh\n{{ id -u; id -g; id -G; pwd; env | sort; }} > {}\n",
                out.display()
            ),
            0o755,
        );
        std::env::set_var("AUKS_HELPER_TEST_LEAK", "1");
        let r = run_helper(
            &s,
            Some("FILE:/tmp/y"),
            RunAs::JobUser {
                uid: 65534,
                gid: 65534,
            },
        );
        assert_eq!(r, Ok(HelperOutcome::Ran));
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..4], &["65534", "65534", "65534", "/"], "{text}");
        assert!(lines.contains(&"KRB5CCNAME=FILE:/tmp/y"), "{text}");
        assert!(
            lines.contains(&"PATH=/usr/local/bin:/usr/bin:/bin"),
            "{text}"
        );
        assert!(!text.contains("AUKS_HELPER_TEST_LEAK"), "{text}");
    }
}
