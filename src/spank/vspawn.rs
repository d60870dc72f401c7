//! How the plugin starts its helpers ([`crate::spank::helper`]) when no
//! change of identity is needed: `posix_spawn`, which the C library makes
//! with a `vfork`-like clone. A `fork` of srun or slurmstepd copies their
//! page tables and leaves the parent copy-on-write faults to take on the
//! pages it writes next; both helpers of a `--auks=yes` step were started
//! that way.
//!
//! The child gets what [`crate::spank::spawn`] gives a process, set by the
//! C library between its clone and `exec` rather than by our code:
//! - its own session (`POSIX_SPAWN_SETSID`);
//! - every signal at its default disposition and an empty mask (but for
//!   the C library's two internal signals, 32 and 33, which it keeps as
//!   the parent had them: ignored if the parent ignores them; the helper
//!   uses neither);
//! - stdin and stderr on /dev/null, stdout on the report's pipe, every
//!   other descriptor closed (`posix_spawn_file_actions_addclosefrom_np`);
//! - `/` as working directory;
//! - [`PARENT_VAR`] in its environment: the parent's pid, with which the
//!   helper sets its own parent-death signal ([`adopt_parent`]: a spawned
//!   child cannot be given one).
//!
//! The identity is the caller's: the plugin uses this only where the
//! helper runs as its caller (srun's ADD as the user; slurmstepd's fetch
//! when all of its ids are root's), and [`crate::spank::spawn`] otherwise.

use std::io;
use std::os::fd::RawFd;
use std::path::Path;

use super::spawn::{c_command, c_string, Child};

/// The environment variable that names the helper's parent.
pub const PARENT_VAR: &str = "AUKS_HELPER_PARENT";

/// Result of a posix_spawn family call.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Start `program args...` with environment `env` plus [`PARENT_VAR`], its
/// standard output on `stdout` (the write end of a pipe the caller reads
/// and closes after the call), as described above. A failed `exec` is an
/// error here (the C library reports it).
pub fn spawn_helper(
    program: &Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
    stdout: RawFd,
) -> io::Result<Child> {
    let env: Vec<(&str, &std::ffi::OsStr)> = env
        .iter()
        .copied()
        .filter(|(k, _)| *k != PARENT_VAR)
        .collect();
    let (path, argv_owned, mut env_owned) = c_command(program, args, &env)?;
    env_owned.push(c_string(
        format!("{PARENT_VAR}={}", std::process::id()).as_bytes(),
        "the parent",
    )?);
    let argv: Vec<*mut libc::c_char> = argv_owned
        .iter()
        .map(|c| c.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp: Vec<*mut libc::c_char> = env_owned
        .iter()
        .map(|c| c.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let mut pid: libc::pid_t = 0;
    // SAFETY: the attribute and file-action objects are initialised before
    // use and destroyed once on every path; every pointer passed (paths,
    // argv, envp: NUL-terminated strings and NULL-terminated arrays owned
    // by this frame, the sigsets, `pid`) outlives the calls; the C library
    // runs the child's set-up itself, on its own stack, and reports a
    // failed `exec` as the return value.
    unsafe {
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        check(libc::posix_spawnattr_init(&mut attr))?;
        let mut acts: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        if let Err(e) = check(libc::posix_spawn_file_actions_init(&mut acts)) {
            libc::posix_spawnattr_destroy(&mut attr);
            return Err(e);
        }
        let r = (|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            check(libc::posix_spawnattr_setsigmask(&mut attr, &none))?;
            check(libc::posix_spawnattr_setsigdefault(&mut attr, &all))?;
            let flags = libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF
                | libc::c_int::from(libc::POSIX_SPAWN_SETSID);
            check(libc::posix_spawnattr_setflags(
                &mut attr,
                flags as libc::c_short,
            ))?;
            let null = c"/dev/null";
            check(libc::posix_spawn_file_actions_addopen(
                &mut acts,
                0,
                null.as_ptr(),
                libc::O_RDONLY,
                0,
            ))?;
            if stdout != 1 {
                check(libc::posix_spawn_file_actions_adddup2(&mut acts, stdout, 1))?;
            }
            check(libc::posix_spawn_file_actions_addopen(
                &mut acts,
                2,
                null.as_ptr(),
                libc::O_WRONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_addclosefrom_np(&mut acts, 3))?;
            check(libc::posix_spawn_file_actions_addchdir_np(
                &mut acts,
                c"/".as_ptr(),
            ))?;
            check(libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &acts,
                &attr,
                argv.as_ptr(),
                envp.as_ptr(),
            ))
        })();
        libc::posix_spawn_file_actions_destroy(&mut acts);
        libc::posix_spawnattr_destroy(&mut attr);
        r?;
    }
    Ok(Child::from_pid(pid))
}

/// The helper's side, first thing in its `main`: when started by
/// [`spawn_helper`] (its parent named in [`PARENT_VAR`]), get `death` when
/// the parent dies, and end at once if it already has (the parent is no
/// longer the one named). Without the variable (started otherwise), does
/// nothing.
pub fn adopt_parent(death: nix::sys::signal::Signal) {
    let Some(parent) = std::env::var(PARENT_VAR)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return;
    };
    let _ = nix::sys::prctl::set_pdeathsig(death);
    if nix::unistd::getppid().as_raw() != parent {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// Run `sh -c SCRIPT` through spawn_helper and return its output.
    fn run(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> String {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut child =
            spawn_helper(Path::new("/bin/sh"), &["-c", script], env, wr.as_raw_fd()).unwrap();
        drop(wr);
        let mut out = String::new();
        std::fs::File::from(rd).read_to_string(&mut out).unwrap();
        for _ in 0..500 {
            if child.try_wait().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        out
    }

    #[test]
    fn the_child_starts_clean() {
        // A descriptor of ours without close-on-exec must not reach it, nor
        // a signal this thread blocks (the test harness ignores SIGPIPE:
        // that must not reach it either).
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
        let mut usr1 = SigSet::empty();
        usr1.add(Signal::SIGUSR1);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).unwrap();
        let leak = std::fs::File::open("/dev/null").unwrap();
        let fd = leak.as_raw_fd();
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .unwrap();
        let out = run(
            &format!(
                "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; \
                 [ -e /proc/self/fd/{fd} ] && echo LEAK; pwd; \
                 grep -E '^(SigBlk|SigIgn):' /proc/self/status; \
                 cut -d' ' -f6 /proc/$$/stat; echo $$; echo \"$AUKS_HELPER_PARENT\" \"$KEPT\"; \
                 readlink /proc/self/fd/0 /proc/self/fd/2"
            ),
            &[("KEPT", std::ffi::OsStr::new("yes"))],
        );
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&usr1), None).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(!out.contains("LEAK"), "{out}");
        assert_eq!(lines[0].trim(), "0 1 2 3", "stdio and ls's own: {out}");
        assert_eq!(lines[1], "/", "{out}");
        assert_eq!(lines[2], "SigBlk:\t0000000000000000", "{out}");
        // Nothing ignored but, perhaps, the C library's own two signals
        // (32 and 33), which posix_spawn leaves as the parent has them.
        let ign = u64::from_str_radix(lines[3].trim_start_matches("SigIgn:\t"), 16).unwrap();
        assert_eq!(ign & !0x1_8000_0000, 0, "{out}");
        assert_eq!(lines[4], lines[5], "its own session: {out}");
        assert_eq!(lines[6], format!("{} yes", std::process::id()), "{out}");
        assert_eq!(lines[7], "/dev/null", "{out}");
        assert_eq!(lines[8], "/dev/null", "{out}");
        drop(leak);
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error() {
        let (_rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        assert!(spawn_helper(Path::new("/nonexistent/auks"), &[], &[], wr.as_raw_fd()).is_err());
        assert!(spawn_helper(Path::new("/etc/passwd"), &[], &[], wr.as_raw_fd()).is_err());
    }
}
