//! Per-thread identity switching for slurmstepd.
//!
//! slurmstepd is multi-threaded; the libc `set*id` wrappers change the ids
//! of every thread of the process (glibc broadcasts them), which would
//! briefly give the whole daemon the job user's identity. The raw system
//! calls change only the calling thread, as the C plugin does. A [`Switch`]
//! records the thread's previous ids and restores them in `Drop`, so every
//! path out of a block (error, early return, panic unwinding) gets them back.

use std::io;

/// The three uids or gids of the calling thread: (real, effective, saved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Triple {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

fn check(rc: libc::c_long, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

/// Current uids of this thread.
pub fn uids() -> io::Result<Triple> {
    let (mut r, mut e, mut s): (libc::uid_t, libc::uid_t, libc::uid_t) = (0, 0, 0);
    // SAFETY: getresuid writes three uid_t through valid pointers.
    let rc = unsafe { libc::syscall(libc::SYS_getresuid, &mut r, &mut e, &mut s) };
    check(rc, "getresuid")?;
    Ok(Triple {
        real: r,
        effective: e,
        saved: s,
    })
}

/// Current gids of this thread.
pub fn gids() -> io::Result<Triple> {
    let (mut r, mut e, mut s): (libc::gid_t, libc::gid_t, libc::gid_t) = (0, 0, 0);
    // SAFETY: getresgid writes three gid_t through valid pointers.
    let rc = unsafe { libc::syscall(libc::SYS_getresgid, &mut r, &mut e, &mut s) };
    check(rc, "getresgid")?;
    Ok(Triple {
        real: r,
        effective: e,
        saved: s,
    })
}

/// `u32::MAX` (i.e. -1) leaves an id unchanged.
const KEEP: u32 = u32::MAX;

fn setresuid(r: u32, e: u32, s: u32) -> io::Result<()> {
    // SAFETY: raw syscall with integer arguments; affects this thread only.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, r, e, s) };
    check(rc, "setresuid")
}

fn setresgid(r: u32, e: u32, s: u32) -> io::Result<()> {
    // SAFETY: raw syscall with integer arguments; affects this thread only.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, r, e, s) };
    check(rc, "setresgid")
}

fn groups() -> io::Result<Vec<libc::gid_t>> {
    // SAFETY: size 0 only asks for the count.
    let n = unsafe { libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<libc::gid_t>()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut v: Vec<libc::gid_t> = vec![0; n as usize];
    // SAFETY: the buffer holds n entries.
    let m = unsafe { libc::syscall(libc::SYS_getgroups, n, v.as_mut_ptr()) };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    v.truncate(m as usize);
    Ok(v)
}

fn setgroups(list: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: raw syscall reading `len` gids from a live slice; affects
    // this thread only.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, list.len(), list.as_ptr()) };
    check(rc, "setgroups")
}

/// Who the thread becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub uid: u32,
    pub gid: u32,
    /// Also set the real uid/gid (KEYRING/KCM owners, `%{uid}` in
    /// ccache names, and `kill()` permission come from it). The saved ids
    /// are kept (root), so the switch can be undone.
    pub real: bool,
    /// Also set the supplementary group list to just `gid` (needs
    /// privilege: only when switching from root).
    pub drop_groups: bool,
}

/// An identity switch of the calling thread, undone on drop.
#[must_use = "the previous ids are restored when this is dropped"]
pub struct Switch {
    uids: Triple,
    gids: Triple,
    groups: Option<Vec<libc::gid_t>>,
    restored: bool,
}

impl Switch {
    /// Become `t` on this thread. On failure nothing is left changed.
    pub fn to(t: Target) -> io::Result<Switch> {
        let mut sw = Switch {
            uids: uids()?,
            gids: gids()?,
            groups: None,
            restored: false,
        };
        // Order: groups and gids while still privileged, uid last.
        if t.drop_groups {
            let old = groups()?;
            setgroups(&[t.gid])?;
            sw.groups = Some(old);
        }
        let rg = if t.real { t.gid } else { KEEP };
        let ru = if t.real { t.uid } else { KEEP };
        // From here on, `sw` restores whatever was changed if a step fails.
        setresgid(rg, t.gid, KEEP)?;
        setresuid(ru, t.uid, KEEP)?;
        Ok(sw)
    }

    /// Only raise the effective uid to root on this thread (possible when
    /// the saved uid is 0, e.g. in `user_init`). Restored on drop.
    pub fn to_effective_root() -> io::Result<Switch> {
        let sw = Switch {
            uids: uids()?,
            gids: gids()?,
            groups: None,
            restored: false,
        };
        setresuid(KEEP, 0, KEEP)?;
        Ok(sw)
    }

    /// Restore the previous ids now and report a failure (drop only logs
    /// nothing: it cannot).
    pub fn restore(mut self) -> io::Result<()> {
        self.do_restore()
    }

    fn do_restore(&mut self) -> io::Result<()> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        let p = self.uids;
        let g = self.gids;
        // Regain privilege first (the saved uid allows it), then groups and
        // gids, then drop to the previous uids if they were unprivileged.
        let r1 = setresuid(p.real, 0, p.saved).or_else(|_| setresuid(p.real, p.effective, p.saved));
        let r2 = setresgid(g.real, g.effective, g.saved);
        let r3 = match &self.groups {
            Some(list) => setgroups(list),
            None => Ok(()),
        };
        let r4 = setresuid(p.real, p.effective, p.saved);
        r1.and(r2).and(r3).and(r4)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Err(e) = self.do_restore() {
            // Cannot recover: a slurmstepd thread with the wrong identity
            // must not go on. This only happens if the kernel refuses to give
            // back ids it handed out a moment ago.
            super::glue::log_error(&format!(
                "auks: cannot restore thread ids ({e}); aborting slurmstepd to stay safe"
            ));
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_ids_works() {
        let u = uids().unwrap();
        let g = gids().unwrap();
        // SAFETY: plain getters.
        assert_eq!(u.effective, unsafe { libc::geteuid() });
        assert_eq!(g.effective, unsafe { libc::getegid() });
        assert!(groups().is_ok());
    }

    /// As root: switch a thread to uid/gid 65534 and back, checking that
    /// other threads are not affected.
    #[test]
    fn switch_is_per_thread_and_restored() {
        if uids().unwrap().effective != 0 {
            return; // needs root
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ok, back) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            let before = (uids().unwrap(), gids().unwrap(), groups().unwrap());
            {
                let _s = Switch::to(Target {
                    uid: 65534,
                    gid: 65534,
                    real: true,
                    drop_groups: true,
                })
                .unwrap();
                let u = uids().unwrap();
                assert_eq!(
                    (u.real, u.effective, u.saved),
                    (65534, 65534, before.0.saved)
                );
                assert_eq!(gids().unwrap().effective, 65534);
                assert_eq!(groups().unwrap(), vec![65534]);
                // the spawning test thread is still root
                tx.send(()).unwrap();
                back.recv().unwrap();
            }
            assert_eq!(
                (uids().unwrap(), gids().unwrap(), groups().unwrap()),
                before
            );
            // effective-only switch, then raise back to root as in user_init
            {
                let _s = Switch::to(Target {
                    uid: 65534,
                    gid: 65534,
                    real: false,
                    drop_groups: false,
                })
                .unwrap();
                assert_eq!(uids().unwrap().real, 0);
                let r = Switch::to_effective_root().unwrap();
                assert_eq!(uids().unwrap().effective, 0);
                r.restore().unwrap();
                assert_eq!(uids().unwrap().effective, 65534);
            }
            assert_eq!(
                (uids().unwrap(), gids().unwrap(), groups().unwrap()),
                before
            );
        });
        rx.recv().unwrap();
        assert_eq!(uids().unwrap().effective, 0);
        assert_eq!(gids().unwrap().effective, 0);
        ok.send(()).unwrap();
        h.join().unwrap();
        // SAFETY: plain getter.
        assert_eq!(unsafe { libc::geteuid() }, 0);
    }
}
