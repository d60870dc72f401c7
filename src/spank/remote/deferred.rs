//! The renewer starts late: a `srun true` step is over long before its
//! credential could need renewing, and forking and running the renewer
//! (exec, libkrb5, the configuration, a first look at the ccache: about
//! 1.5 ms of CPU) in every such step competes with the step itself. So
//! `user_init` only starts a timer thread; if the step still runs
//! [`DELAY`] later, that thread forks the renewer ([`spawn::spawn`]).
//! A step that ends earlier cancels the timer and never has a renewer.
//!
//! The thread then stays (asleep) until the renewer is stopped: a child's
//! parent-death signal follows the *thread* that forked it, so the
//! renewer must not outlive its thread unless slurmstepd itself dies.
//! The thread makes no SPANK and no logging call (the hooks report what
//! it did) and reads no environment variable; it forks with this thread's
//! effective uid raised to 0 (its saved uid is 0 in slurmstepd).

use crate::spank::ids::Switch;
use crate::spank::spawn::{self, Child, Identity};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a step runs before its renewer is started.
pub const DELAY: Duration = Duration::from_millis(200);

/// What the thread runs: `program args...` as `identity` with `env`.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, OsString)>,
    pub identity: Identity,
}

/// Where the timer stands.
enum State {
    Waiting,
    /// The step ended first: no renewer.
    Cancelled,
    /// Forked (in that time), not yet taken by [`Deferred::take`].
    Started(Child, Duration),
    /// Taken: the thread waits for [`Deferred::finish`].
    Running,
    Failed(String),
    /// The thread may end.
    Over,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The timer thread of one step.
pub struct Deferred {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

/// What [`Deferred::take`] found.
pub enum Outcome {
    /// Not started: the step ended before [`DELAY`] (or it was taken).
    NotStarted,
    /// Started, with the time the fork took.
    Started(Child, Duration),
    Failed(String),
}

impl Deferred {
    /// Start the timer for `launch`.
    pub fn start(launch: Launch) -> std::io::Result<Deferred> {
        let shared: Shared = Arc::new((Mutex::new(State::Waiting), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("auks-renewer".into())
            .spawn(move || run(&theirs, &launch))?;
        Ok(Deferred {
            shared,
            thread: Some(thread),
        })
    }

    /// Cancel the timer if it has not fired, else take the renewer it
    /// started (its thread then waits for [`Deferred::finish`]).
    pub fn take(&mut self) -> Outcome {
        let (lock, cv) = &*self.shared;
        let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (next, out) = match std::mem::replace(&mut *g, State::Over) {
            State::Waiting => (State::Cancelled, Outcome::NotStarted),
            State::Started(c, d) => (State::Running, Outcome::Started(c, d)),
            State::Failed(e) => (State::Over, Outcome::Failed(e)),
            other => (other, Outcome::NotStarted),
        };
        *g = next;
        cv.notify_all();
        out
    }

    /// Let the thread end (once the renewer is stopped, or when there is
    /// none) and wait for it.
    pub fn finish(mut self) {
        {
            let (lock, cv) = &*self.shared;
            let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
            if let State::Started(..) | State::Running | State::Waiting = *g {
                *g = State::Over;
            }
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: wait for [`DELAY`] unless cancelled, fork the renewer,
/// then wait until it is taken and stopped.
fn run(shared: &Shared, launch: &Launch) {
    let (lock, cv) = &**shared;
    let deadline = Instant::now() + DELAY;
    let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
    while matches!(*g, State::Waiting) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        g = cv
            .wait_timeout(g, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    if !matches!(*g, State::Waiting) {
        return;
    }
    let t0 = Instant::now();
    match fork_renewer(launch) {
        Ok(child) => *g = State::Started(child, t0.elapsed()),
        Err(e) => {
            *g = State::Failed(e.to_string());
            return;
        }
    }
    // The renewer's parent-death signal follows this thread: stay.
    while !matches!(*g, State::Over) {
        g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
    }
}

/// Fork the renewer with this thread's effective uid raised to 0 (the
/// child sets its groups and ids from root).
fn fork_renewer(l: &Launch) -> std::io::Result<Child> {
    let args: Vec<&str> = l.args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &std::ffi::OsStr)> = l
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_os_str()))
        .collect();
    let root = Switch::to_effective_root()?;
    let r = spawn::spawn(&l.program, &args, &env, &l.identity, libc::SIGTERM);
    // A failure to restore leaves this thread (which only waits from now
    // on) with euid 0; nothing else runs on it.
    let _ = root.restore();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(marker: &std::path::Path) -> Launch {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        Launch {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), format!("echo started > {}", marker.display())],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            identity: Identity::new(uid, gid, None),
        }
    }

    /// A step shorter than DELAY: nothing is started, the thread ends.
    #[test]
    fn cancelled_before_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("m");
        let mut d = Deferred::start(launch(&marker)).unwrap();
        assert!(matches!(d.take(), Outcome::NotStarted));
        d.finish();
        std::thread::sleep(DELAY + Duration::from_millis(100));
        assert!(!marker.exists(), "a cancelled timer started the program");
    }

    /// A longer step: started once DELAY has passed, taken, reaped.
    #[test]
    fn started_after_the_delay() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (the child sets its ids from root)"
        );
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("m");
        let t0 = Instant::now();
        let mut d = Deferred::start(launch(&marker)).unwrap();
        std::thread::sleep(DELAY + Duration::from_millis(200));
        let Outcome::Started(mut child, _) = d.take() else {
            panic!("not started after {:?}", t0.elapsed());
        };
        let mut exit = None;
        for _ in 0..200 {
            exit = child.try_wait();
            if exit.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(exit, Some(spawn::Exit::Code(0)));
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "started\n");
        // taken once only
        assert!(matches!(d.take(), Outcome::NotStarted));
        d.finish();
    }
}
