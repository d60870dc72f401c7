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
//! Choice: std's process API with one `pre_exec` step, rather than a
//! start-up step inside the renewer binary. Everything the child does
//! between `fork` and `exec` is a raw system call on data prepared before
//! the fork (no allocation, no lock: slurmstepd is multi-threaded), and the
//! same code serves the `HelperScript`, which is not our binary. The ids
//! are not set with `Command::uid`/`gid` (std would drop every
//! supplementary group before the `pre_exec` step could set them).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

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
        cmd.pre_exec(move || child_setup(&groups, uid, gid, parent, death));
    }
}

/// The child's side, between fork and exec. Raw system calls only.
fn child_setup(
    groups: &[libc::gid_t],
    uid: u32,
    gid: u32,
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
        if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0 {
            return Err(io::Error::last_os_error());
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
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{text}");
        assert_eq!(field("Gid:"), "65534 65534 65534 65534", "{text}");
        assert_eq!(field("Groups:"), "100 65534", "{text}");
        assert_eq!(field("SigBlk:"), "0000000000000000", "{text}");
        assert_eq!(field("SigIgn:"), "0000000000000000", "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        // `ls` sees 0, 1, 2 and its own directory descriptor only
        let fds: Vec<&str> = lines[n - 3].split_whitespace().collect();
        assert_eq!(fds.len(), 4, "{text}");
        // own session: the shell is the session leader
        assert_eq!(lines[n - 2].trim(), lines[n - 1].trim(), "{text}");
    }
}
