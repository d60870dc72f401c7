//! Per-thread identity switching for slurmstepd.
//!
//! slurmstepd is multi-threaded; the libc `set*id` wrappers change the ids
//! of every thread of the process (glibc broadcasts them), which would
//! briefly give the whole daemon the job user's identity. The raw system
//! calls change only the calling thread, as the C plugin does; they are
//! made through rustix's safe per-thread API (`rustix::thread`), so this
//! file has no `unsafe`. A [`Switch`]
//! records the thread's previous ids and restores them in `Drop`, so every
//! path out of a block (error, early return, panic unwinding) gets them back.

use rustix::process::{Gid, Uid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
use std::io;

/// The three uids or gids of the calling thread: (real, effective, saved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Triple {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

/// Add the name of the failed call to a system error.
fn named<T>(r: Result<T, impl Into<io::Error>>, what: &str) -> io::Result<T> {
    r.map_err(|e| {
        let e: io::Error = e.into();
        io::Error::new(e.kind(), format!("{what}: {e}"))
    })
}

/// Current uids of this thread (the getters read the calling thread's
/// credentials, whatever the other threads do).
pub fn uids() -> io::Result<Triple> {
    let r = named(nix::unistd::getresuid(), "getresuid")?;
    Ok(Triple {
        real: r.real.as_raw(),
        effective: r.effective.as_raw(),
        saved: r.saved.as_raw(),
    })
}

/// Current gids of this thread.
pub fn gids() -> io::Result<Triple> {
    let r = named(nix::unistd::getresgid(), "getresgid")?;
    Ok(Triple {
        real: r.real.as_raw(),
        effective: r.effective.as_raw(),
        saved: r.saved.as_raw(),
    })
}

/// `None` leaves an id unchanged (-1 for the system call).
const KEEP: Option<u32> = None;

/// -1 means "unchanged" to the kernel: never a uid or gid to switch to.
fn valid(raw: u32, what: &str) -> io::Result<u32> {
    if raw == u32::MAX {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: -1 is not an id"),
        ))
    } else {
        Ok(raw)
    }
}

/// `setresuid` of this thread only (the raw system call, not glibc's
/// process-wide wrapper).
fn setresuid(r: Option<u32>, e: Option<u32>, s: Option<u32>) -> io::Result<()> {
    let id = |v: Option<u32>| v.map(Uid::from_raw);
    named(set_thread_res_uid(id(r), id(e), id(s)), "setresuid")
}

/// `setresgid` of this thread only.
fn setresgid(r: Option<u32>, e: Option<u32>, s: Option<u32>) -> io::Result<()> {
    let id = |v: Option<u32>| v.map(Gid::from_raw);
    named(set_thread_res_gid(id(r), id(e), id(s)), "setresgid")
}

/// Supplementary groups of this thread.
fn groups() -> io::Result<Vec<u32>> {
    let list = named(rustix::process::getgroups(), "getgroups")?;
    Ok(list.into_iter().map(Gid::as_raw).collect())
}

/// `setgroups` of this thread only.
fn setgroups(list: &[u32]) -> io::Result<()> {
    let list: Vec<Gid> = list.iter().copied().map(Gid::from_raw).collect();
    named(set_thread_groups(&list), "setgroups")
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
    groups: Option<Vec<u32>>,
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
        valid(t.uid, "uid")?;
        valid(t.gid, "gid")?;
        // Order: groups and gids while still privileged, uid last.
        if t.drop_groups {
            let old = groups()?;
            setgroups(&[t.gid])?;
            sw.groups = Some(old);
        }
        let rg = t.real.then_some(t.gid);
        let ru = t.real.then_some(t.uid);
        // From here on, `sw` restores whatever was changed if a step fails.
        setresgid(rg, Some(t.gid), KEEP)?;
        setresuid(ru, Some(t.uid), KEEP)?;
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
        setresuid(KEEP, Some(0), KEEP)?;
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
        let all = |t: Triple| (Some(t.real), Some(t.effective), Some(t.saved));
        let (pr, pe, ps) = all(p);
        let r1 = setresuid(pr, Some(0), ps).or_else(|_| setresuid(pr, pe, ps));
        let (gr, ge, gs) = all(g);
        let r2 = setresgid(gr, ge, gs);
        let r3 = match &self.groups {
            Some(list) => setgroups(list),
            None => Ok(()),
        };
        let r4 = setresuid(pr, pe, ps);
        r1.and(r2).and(r3).and(r4)
    }
}

/// Where the last words of a failed restore go: Slurm's log in the plugin
/// ([`set_fatal_log`]), standard error elsewhere (the fetch helper).
static FATAL_LOG: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Send the message of a failed restore to `log` (once per process).
pub fn set_fatal_log(log: fn(&str)) {
    let _ = FATAL_LOG.set(log);
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Err(e) = self.do_restore() {
            // Cannot recover: a slurmstepd thread with the wrong identity
            // must not go on. This only happens if the kernel refuses to give
            // back ids it handed out a moment ago.
            let msg = format!("auks: cannot restore thread ids ({e}); aborting to stay safe");
            match FATAL_LOG.get() {
                Some(log) => log(&msg),
                None => eprintln!("{msg}"),
            }
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
        assert_eq!(u.effective, nix::unistd::geteuid().as_raw());
        assert_eq!(g.effective, nix::unistd::getegid().as_raw());
        assert!(groups().is_ok());
    }

    #[test]
    fn minus_one_is_not_an_id() {
        let before = (uids().unwrap(), gids().unwrap());
        for (uid, gid) in [(u32::MAX, 0), (0, u32::MAX)] {
            let r = Switch::to(Target {
                uid,
                gid,
                real: false,
                drop_groups: false,
            });
            assert_eq!(r.err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
        }
        assert_eq!((uids().unwrap(), gids().unwrap()), before);
    }

    /// As root: switch a thread to uid/gid 65534 and back, checking that
    /// other threads are not affected.
    #[test]
    fn switch_is_per_thread_and_restored() {
        assert_eq!(
            uids().unwrap().effective,
            0,
            "this test needs root (CI runs as root)"
        );
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
        assert!(nix::unistd::geteuid().is_root());
    }
}
