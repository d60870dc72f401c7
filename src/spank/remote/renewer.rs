//! The job's credential renewer process: `<renewer> -R loop` started as
//! the job user when the plugin created the ccache (once the step has run
//! a little while, [`deferred`]), signalled when the last local task
//! exits, and stopped (SIGKILL after a grace period) and reaped at the end
//! of the step, with anything left in its process group.

use super::deferred::{self, Deferred, Launch, Outcome};
use super::{sync_once, StepState};
use crate::spank::args::{self, PluginArgs};
use crate::spank::glue::{log_error, log_info, log_verbose};
use crate::spank::spawn;
use crate::spank::spawn::{Child, Exit};
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// How long the renewer gets to exit after SIGTERM before SIGKILL.
const RENEWER_GRACE: Duration = Duration::from_secs(2);

/// `slurm_spank_user_init`: start `<renewer> -R loop` as the job user
/// (full identity with supplementary groups), in its own session and
/// process group, stdio on /dev/null, no other descriptor, clean signals,
/// SIGTERM when slurmstepd dies ([`crate::spank::spawn`]), once the step
/// has run [`deferred::DELAY`] (a shorter step has no renewer). Only when
/// we created the ccache.
pub fn start_renewer(a: &PluginArgs, st: &mut StepState) -> i32 {
    let (Some(cc), Some(id)) = (st.ccache.as_ref(), st.identity.as_ref()) else {
        return 0;
    };
    if !cc.ours || st.renewer.is_some() || st.deferred.is_some() {
        return 0;
    }
    let mut env: Vec<(String, OsString)> = vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("KRB5CCNAME".into(), cc.name.clone().into()),
    ];
    if let Some(conf) = &a.conf {
        env.push(("AUKS_CONF".into(), conf.clone().into_os_string()));
    }
    if let Some(k) = std::env::var_os("KRB5_CONFIG") {
        env.push(("KRB5_CONFIG".into(), k));
    }
    let launch = Launch {
        program: a.renewer.clone(),
        args: vec!["-R".into(), "loop".into()],
        env,
        identity: id.clone(),
    };
    let t0 = Instant::now();
    match Deferred::start(launch) {
        Ok(d) => st.deferred = Some(d),
        Err(e) => log_error(&format!(
            "auks: cannot start the timer of the credential renewer {} ({e}); the credential will not be renewed",
            a.renewer.display()
        )),
    }
    st.phases.done_push("renewer_start", t0.elapsed());
    0
}

/// Take what the renewer's timer did: the renewer it started (logged
/// here, from the hook), or nothing when the step ended first.
fn collect(a: &PluginArgs, st: &mut StepState) {
    let Some(d) = st.deferred.as_mut() else {
        return;
    };
    let Some(job) = st.job else { return };
    match d.take() {
        Outcome::Started(child, fork) => {
            st.phases.done_push("renewer_fork", fork);
            log_info(&format!(
                "auks: job {} uid {}: credential renewer {} started (pid {})",
                job.jobid,
                job.uid,
                a.renewer.display(),
                child.id()
            ));
            st.renewer = Some(child);
        }
        Outcome::Failed(e) => log_error(&format!(
            "auks: cannot start the credential renewer {}: {e}; the credential was not renewed",
            a.renewer.display()
        )),
        Outcome::NotStarted => log_verbose(&format!(
            "auks: job {}: the step ended within {} ms: no credential renewer was needed",
            job.jobid,
            deferred::DELAY.as_millis()
        )),
    }
}

/// Whether the renewer has ended (and is reaped); one that could not
/// start at all ([`spawn::EXEC_FAILED`]) is reported.
fn reaped(child: &mut Child) -> bool {
    match child.try_wait() {
        None => false,
        Some(Exit::Code(spawn::EXEC_FAILED)) => {
            log_error(&format!(
                "auks: the credential renewer (pid {}) could not be started (exit status {}): the credential was not renewed",
                child.id(),
                spawn::EXEC_FAILED
            ));
            true
        }
        Some(_) => true,
    }
}

/// Poll for the child's exit until `limit`: every 0.5 ms at first (a
/// renewer answers SIGTERM within a millisecond or two and every step
/// waits for it), backing off to 10 ms.
fn wait_until(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(500);
    loop {
        if reaped(child) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Whether SIGTERM would reach process `pid` (not blocked, not ignored),
/// from `/proc/<pid>/status`. Unknown = yes.
fn sigterm_deliverable(pid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    args::signal_deliverable(&text, libc::SIGTERM)
}

/// Tell the renewer to stop, without waiting for it: SIGTERM to its
/// process group (SIGKILL when SIGTERM could not reach it). Signals are
/// sent with the job user's real and effective uid, so only the user's
/// processes can ever be hit. Called when the last local task exits, so
/// the end of the step does not wait while the renewer exits;
/// [`stop_renewer`] reaps it.
pub fn signal_renewer(a: &PluginArgs, st: &mut StepState) {
    collect(a, st);
    if st.renewer_signalled.is_some() {
        return;
    }
    let Some(child) = st.renewer.as_mut() else {
        return;
    };
    let pid = child.id() as i32;
    if reaped(child) {
        log_verbose(&format!(
            "auks: credential renewer (pid {pid}) had already exited"
        ));
        st.renewer = None;
        return;
    }
    sync_once(a, st);
    let Some(job) = st.job else { return };
    let Some(user) = job.as_user_to("stop the renewer") else {
        return;
    };
    use nix::sys::signal::{kill, Signal};
    // std's Command keeps the forking thread's signal mask, and slurmstepd
    // blocks SIGTERM: a renewer that does not unblock it would only wait
    // out the grace period, so it gets SIGKILL at once.
    let sig = if sigterm_deliverable(pid) {
        Signal::SIGTERM
    } else {
        Signal::SIGKILL
    };
    let _ = kill(nix::unistd::Pid::from_raw(-pid), sig);
    drop(user);
    st.renewer_signalled = Some((Instant::now(), sig == Signal::SIGKILL));
}

/// Stop the renewer: signal it if not done yet ([`signal_renewer`]),
/// SIGKILL when it has not exited a grace period after SIGTERM, reap it,
/// and kill whatever it left in its process group.
pub fn stop_renewer(a: &PluginArgs, st: &mut StepState) {
    stop_and_reap(a, st);
    // The renewer is gone (or never started): its timer thread may end.
    if let Some(d) = st.deferred.take() {
        d.finish();
    }
}

fn stop_and_reap(a: &PluginArgs, st: &mut StepState) {
    signal_renewer(a, st);
    let Some(mut child) = st.renewer.take() else {
        return;
    };
    let Some((since, mut killed)) = st.renewer_signalled else {
        // Could not switch ids to signal it: leave it (it stops by itself
        // once the ccache is destroyed).
        return;
    };
    let pid = child.id() as i32;
    let Some(job) = st.job else { return };
    let Some(user) = job.as_user_to("stop the renewer") else {
        return;
    };
    let group = nix::unistd::Pid::from_raw(-pid);
    use nix::sys::signal::{kill, Signal};
    let left = RENEWER_GRACE.saturating_sub(since.elapsed());
    if !wait_until(&mut child, left) {
        let _ = kill(group, Signal::SIGKILL);
        killed = true;
        wait_until(&mut child, Duration::from_secs(5));
    }
    // Anything the renewer started in its group goes too.
    let _ = kill(group, Signal::SIGKILL);
    drop(user);
    log_info(&format!(
        "auks: job {}: credential renewer (pid {pid}) stopped{}",
        job.jobid,
        if killed { " with SIGKILL" } else { "" }
    ));
}
