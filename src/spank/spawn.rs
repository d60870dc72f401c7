//! How the plugin starts a process for the job user from slurmstepd (the
//! credential renewer `auks -R loop` and the `HelperScript`): a clean
//! start whatever state slurmstepd is in.
//!
//! The child gets
//! - the user's full identity: real, effective and saved uid and gid, and
//!   the supplementary groups `initgroups` would give (the job's list from
//!   Slurm, else `getgrouplist`);
//! - no descriptor but stdio (everything from 3 up is closed at exec);
//! - an empty signal mask and every signal at its default disposition
//!   (slurmstepd blocks SIGTERM, SIGINT and others);
//! - its own session (`setsid`), so it is also its own process group, which
//!   the plugin signals as a whole;
//! - a parent-death signal, set after the identity change (the kernel clears
//!   it when the ids change), and raised at once if slurmstepd already died;
//! - stdio on /dev/null and `/` as working directory (set by the caller
//!   through std's [`Command`]).
//!
//! Choice: the set-up runs in the child between `fork` and `exec`, rather
//! than in a start-up step inside the renewer binary. Everything the child
//! does there is a raw system call on data prepared before the fork (no
//! allocation, no lock: slurmstepd is multi-threaded), and the same code
//! serves the `HelperScript`, which is not our binary. Two ways in:
//! - [`prepare`]: std's process API with one `pre_exec` step (the helper,
//!   whose result the step waits for anyway). The ids are not set with
//!   `Command::uid`/`gid` (std would drop every supplementary group before
//!   the `pre_exec` step could set them).
//! - [`spawn`]: a bare `fork` that does not wait for the `exec` (the
//!   renewer: std's `spawn` blocks the caller until the child has exec'd,
//!   about a millisecond). The program is checked before the fork; a failed
//!   `exec` ends the child with status [`EXEC_FAILED`], which the plugin
//!   reports when it reaps it.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Exit status of a [`spawn`]ed child whose set-up or `exec` failed.
pub const EXEC_FAILED: i32 = 127;

/// Who the child becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary gid is added when missing).
    pub groups: Vec<u32>,
}

/// Largest supplementary group list accepted (the kernel's NGROUPS_MAX).
const NGROUPS_MAX: usize = 65536;

impl Identity {
    /// The identity of `uid`/`gid` with `groups` as the supplementary list
    /// (the job's, from Slurm) or, when `None`, what `getgrouplist` gives
    /// for the account's name (the primary gid alone when unknown).
    pub fn new(uid: u32, gid: u32, groups: Option<Vec<u32>>) -> Identity {
        let mut list = groups.unwrap_or_else(|| lookup_groups(uid, gid));
        if !list.contains(&gid) {
            list.insert(0, gid);
        }
        list.truncate(NGROUPS_MAX);
        Identity {
            uid,
            gid,
            groups: list,
        }
    }
}

/// `getgrouplist` for the account `uid` (with `gid` as its primary group).
pub fn lookup_groups(uid: u32, gid: u32) -> Vec<u32> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let Some(user) = user else {
        return vec![gid];
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return vec![gid];
    };
    match nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid)) {
        Ok(list) => list.into_iter().map(|g| g.as_raw()).collect(),
        Err(_) => vec![gid],
    }
}

/// Set up `cmd` to start as `id` with the hygiene described in the module
/// documentation; `death` is the signal the child gets when slurmstepd
/// dies. The caller sets stdio, environment and working directory, and
/// must not call `uid`, `gid` or `process_group` on `cmd`.
pub fn prepare(cmd: &mut Command, id: &Identity, death: libc::c_int) {
    let groups: Vec<libc::gid_t> = id.groups.clone();
    let (uid, gid) = (id.uid, id.gid);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child, which has one thread;
    // it only makes raw system calls (async-signal-safe) on values owned
    // by the closure and prepared before the fork: no allocation, no lock,
    // no panic path (every result is checked by comparison only).
    unsafe {
        cmd.pre_exec(move || child_setup(Some((&groups, uid, gid)), parent, death));
    }
}

/// A process started by [`spawn`], reaped by [`Child::try_wait`].
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
}

/// How a [`Child`] ended (`waitpid` status decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Reaped by someone else (`ECHILD`).
    Unknown,
}

impl Child {
    /// A child started otherwise ([`super::vspawn`]).
    pub(super) fn from_pid(pid: libc::pid_t) -> Child {
        Child { pid }
    }

    /// The child's pid (also its session and process group).
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// `waitpid(WNOHANG)`: `Some` once it has ended (and is reaped).
    pub fn try_wait(&mut self) -> Option<Exit> {
        let mut status: libc::c_int = 0;
        // SAFETY: plain system call on our own child's pid and a local int.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if r == 0 {
            return None;
        }
        if r < 0 {
            // ECHILD: slurmstepd reaped it already (EINTR: ask again later).
            return (io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
                .then_some(Exit::Unknown);
        }
        Some(if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Unknown
        })
    }
}

/// The program path, argv (the path first) and `KEY=value` environment
/// of a command as C strings.
pub(super) fn c_command(
    program: &Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> io::Result<(CString, Vec<CString>, Vec<CString>)> {
    let path = c_string(program.as_os_str().as_bytes(), "the program path")?;
    let mut argv = vec![path.clone()];
    for a in args {
        argv.push(c_string(a.as_bytes(), "an argument")?);
    }
    let mut envp = Vec::with_capacity(env.len() + 1);
    for (k, v) in env {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(c_string(&kv, "an environment variable")?);
    }
    Ok((path, argv, envp))
}

/// A NUL-free C string, or an `InvalidInput` error naming `what`.
pub(super) fn c_string(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Whether `program` is a regular file with an execute bit (checked before
/// the fork: a bare-fork child cannot report a failed `exec` back).
pub(super) fn check_program(program: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(program)?;
    if !m.is_file() || m.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not an executable regular file",
        ));
    }
    Ok(())
}

/// Start `program args...` as `id` with environment `env` (nothing else),
/// stdio on /dev/null, `/` as working directory and the hygiene of the
/// module documentation, without waiting for its `exec`. `death` is the
/// signal it gets when slurmstepd dies. The calling thread must be
/// privileged enough to set the child's ids (effective uid 0).
pub fn spawn(
    program: &Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
    id: &Identity,
    death: libc::c_int,
) -> io::Result<Child> {
    spawn_to(program, args, env, Some(id), death, None)
}

/// [`spawn`] with the child's standard output on `stdout` (the write end
/// of a pipe the caller reads; the child's other descriptors are as
/// [`spawn`] leaves them; the caller closes its own copy after the call),
/// and without any change of ids when `id` is `None` (a caller that is not
/// root starting a helper of its own).
pub fn spawn_to(
    program: &Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
    id: Option<&Identity>,
    death: libc::c_int,
    stdout: Option<std::os::fd::RawFd>,
) -> io::Result<Child> {
    check_program(program)?;
    // Everything the child touches is made here, before the fork.
    let (path, argv_owned, env_owned) = c_command(program, args, env)?;
    let argv: Vec<*const libc::c_char> = argv_owned
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env_owned
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let groups: Vec<libc::gid_t> = id.map(|i| i.groups.clone()).unwrap_or_default();
    let ids = id.map(|i| (i.uid, i.gid));
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: fork in a multi-threaded process; the child below only makes
    // async-signal-safe raw system calls on memory prepared above (owned by
    // this frame, which the child never leaves) and ends in execve or
    // _exit: no allocation, no lock, no unwinding.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: as above; the pointers are valid NUL-terminated strings
        // and NULL-terminated arrays of them.
        unsafe {
            let ok = child_stdio()
                && stdout.map_or(true, |fd| libc::dup2(fd, 1) == 1)
                && child_setup(ids.map(|(u, g)| (&groups[..], u, g)), parent, death).is_ok()
                && libc::chdir(c"/".as_ptr()) == 0;
            if ok {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            }
            libc::_exit(EXEC_FAILED);
        }
    }
    Ok(Child { pid })
}

/// In the child: stdin, stdout and stderr on /dev/null. Raw calls only.
fn child_stdio() -> bool {
    // SAFETY: async-signal-safe system calls on a static path and integers.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd < 0 {
            return false;
        }
        for std_fd in 0..=2 {
            if libc::dup2(fd, std_fd) < 0 {
                return false;
            }
        }
        if fd > 2 {
            libc::close(fd);
        }
    }
    true
}

/// The child's side, between fork and exec. Raw system calls only.
/// `ids`: the supplementary groups, uid and gid to take (`None`: keep the
/// caller's).
fn child_setup(
    ids: Option<(&[libc::gid_t], u32, u32)>,
    parent: libc::pid_t,
    death: libc::c_int,
) -> io::Result<()> {
    // SAFETY (whole block): plain system calls with integer arguments or
    // pointers to memory owned by the caller for the duration of the call;
    // in the single-threaded child the per-thread raw id calls change the
    // whole process.
    unsafe {
        // Own session (and process group), no controlling terminal.
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        // Identity, groups and gids first while still privileged.
        if let Some((groups, uid, gid)) = ids {
            if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Signals: default dispositions (handlers are reset by exec, ignored
        // signals are not), then an empty mask. The raw call also reaches
        // the signals the C library reserves (32, 33), which an ignoring
        // parent may hand down. SIGKILL and SIGSTOP refuse: expected.
        let dfl = [0u64; 4]; // kernel sigaction: SIG_DFL, no flags, empty mask
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    dfl.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        // Every descriptor above stdio closed at exec (close-on-exec rather
        // than closed now: std reports a failed exec through one of them).
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            let mut lim: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as libc::c_int
            } else {
                1024
            };
            for fd in 3..max {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        // Parent-death signal: after the id change, which clears it.
        if libc::prctl(libc::PR_SET_PDEATHSIG, death as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            // slurmstepd died before the signal was armed.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn primary_gid_is_always_in_the_list() {
        let id = Identity::new(65534, 65534, Some(vec![10, 20]));
        assert_eq!(id.groups, vec![65534, 10, 20]);
        let id = Identity::new(0, 0, None);
        assert!(id.groups.contains(&0), "{:?}", id.groups);
        // an unknown account: its primary gid only
        assert_eq!(lookup_groups(4_000_000_000, 77), vec![77]);
    }

    /// As root (CI): the child has the ids, groups, mask, dispositions,
    /// session and descriptors the module promises, read from its own
    /// /proc/self/status and /proc/self/fd.
    #[test]
    fn child_starts_clean() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it starts a child as uid 65534)"
        );
        // A descriptor without close-on-exec, a blocked and an ignored signal.
        let leak = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        // every signal blocked, as in slurmstepd's threads
        let set = nix::sys::signal::SigSet::all();
        let id = Identity::new(65534, 65534, Some(vec![65534, 100]));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("cat /proc/self/status; ls /proc/self/fd | tr '\\n' ' '; echo; cut -d' ' -f6 /proc/$$/stat; echo $$")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        prepare(&mut cmd, &id, libc::SIGTERM);
        // Block and ignore in a helper thread that forks, as slurmstepd's
        // threads may.
        let out = std::thread::spawn(move || {
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&set),
                None,
            )
            .unwrap();
            cmd.output().unwrap()
        })
        .join()
        .unwrap();
        nix::unistd::close(leak).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_nobody_with_clean_signals(&text);
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        // `ls` sees 0, 1, 2 and its own directory descriptor only
        let fds: Vec<&str> = lines[n - 3].split_whitespace().collect();
        assert_eq!(fds.len(), 4, "{text}");
        // own session: the shell is the session leader
        assert_eq!(lines[n - 2].trim(), lines[n - 1].trim(), "{text}");
    }

    /// Wait (bounded) for a spawned child's end.
    /// The value of the `/proc/PID/status`-style line starting with
    /// `name` in `text`, its blanks collapsed ("" when absent).
    fn status_field(text: &str, name: &str) -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    /// The child as both tests start it: nobody with groups 100 and
    /// 65534, no blocked and no ignored signal.
    fn assert_nobody_with_clean_signals(text: &str) {
        let field = |name: &str| status_field(text, name);
        assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{text}");
        assert_eq!(field("Gid:"), "65534 65534 65534 65534", "{text}");
        assert_eq!(field("Groups:"), "100 65534", "{text}");
        assert_eq!(field("SigBlk:"), "0000000000000000", "{text}");
        assert_eq!(field("SigIgn:"), "0000000000000000", "{text}");
    }

    fn wait_exit(child: &mut Child) -> Exit {
        let t = std::time::Instant::now();
        loop {
            if let Some(e) = child.try_wait() {
                return e;
            }
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "child {} still running",
                child.id()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// As root (CI): the bare-fork start gives the same clean child as
    /// [`prepare`] (ids, groups, mask, dispositions, descriptors, session,
    /// only the given environment), without waiting for its exec.
    #[test]
    fn spawned_child_starts_clean() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it starts a child as uid 65534)"
        );
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let out = dir.path().join("out");
        let leak = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let id = Identity::new(65534, 65534, Some(vec![65534, 100]));
        let script = format!(
            "{{ cat /proc/self/status; echo fds $(ls /proc/self/fd | tr '\\n' ' '); \
             echo sid $(cut -d' ' -f6 /proc/$$/stat) pid $$; echo env $(env | cut -d= -f1 | sort | tr '\\n' ' '); \
             echo cwd $(pwd); }} > {}",
            out.display()
        );
        let set = nix::sys::signal::SigSet::all();
        // The child's parent-death signal follows the thread that forked
        // it: that thread waits for the child's end, as deferred.rs's does.
        let exit = std::thread::spawn(move || {
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&set),
                None,
            )
            .unwrap();
            let env = [("PATH", std::ffi::OsStr::new("/usr/bin:/bin"))];
            let mut child = spawn(
                Path::new("/bin/sh"),
                &["-c", &script],
                &env,
                &id,
                libc::SIGTERM,
            )
            .unwrap();
            wait_exit(&mut child)
        })
        .join()
        .unwrap();
        assert_eq!(exit, Exit::Code(0));
        nix::unistd::close(leak).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let field = |name: &str| status_field(&text, name);
        assert_nobody_with_clean_signals(&text);
        // `ls` sees 0, 1, 2, its directory, and the shell's redirection
        // of stdout (fd 1 itself): no inherited descriptor
        assert_eq!(field("fds ").split(' ').count(), 4, "{text}");
        let sid_line = field("sid ");
        let sid: Vec<&str> = sid_line.split(' ').collect();
        assert_eq!(sid.first(), sid.get(2), "own session: {text}");
        // only the given environment (plus what the shell itself sets)
        let names = field("env ");
        assert!(names.split(' ').any(|n| n == "PATH"), "{text}");
        assert!(
            names
                .split(' ')
                .all(|n| ["PATH", "PWD", "OLDPWD", "SHLVL", "_"].contains(&n)),
            "{text}"
        );
        assert_eq!(field("cwd "), "/", "{text}");
    }

    /// A program that cannot be run: refused before the fork when it is
    /// not executable, exit status EXEC_FAILED when its exec fails.
    #[test]
    fn spawn_failures() {
        let id = Identity::new(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
            None,
        );
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"\x7fELF garbage").unwrap();
        assert!(spawn(&plain, &[], &[], &id, libc::SIGTERM).is_err());
        assert!(spawn(dir.path(), &[], &[], &id, libc::SIGTERM).is_err());
        assert!(spawn(&dir.path().join("none"), &[], &[], &id, libc::SIGTERM).is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = spawn(&plain, &[], &[], &id, libc::SIGTERM).unwrap();
        assert_eq!(wait_exit(&mut child), Exit::Code(EXEC_FAILED));
    }
}
