//! Compute side (slurmstepd, S_CTX_REMOTE): fetch the job user's
//! credential from auksd, store it in a per-job ccache owned by the user,
//! run the renewer, and leave nothing behind (spec §10.3–10.5, with the
//! fixes listed in §11 items 19–20).
//!
//! This file holds the step's state and the hooks; [`credential`] gets and
//! stores (and at the end destroys) the credential, [`renewer`] starts
//! (through the timer of [`deferred`]), signals, stops and reaps the
//! `auks -R loop` process. The GET and the ccache are made by
//! [`fetcher`], in the helper process of [`prefetch`], in the node's fetch
//! agent ([`agent`], a thread of aukspriv), or in slurmstepd itself.

pub mod agent;
pub mod credential;
pub mod deferred;
pub mod fetcher;
pub mod prefetch;
pub mod renewer;

pub use renewer::{signal_renewer, start_renewer, stop_renewer};

use super::args::{self, Mode, PluginArgs, SyncMode};
use super::glue::{log_error, log_info, log_verbose};
use super::ids::{Switch, Target};
use std::time::{Duration, Instant};

/// The job's identity on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub uid: u32,
    pub gid: u32,
    pub jobid: u32,
}

impl Job {
    fn as_user(&self) -> std::io::Result<Switch> {
        Switch::to(Target {
            uid: self.uid,
            gid: self.gid,
            real: true,
            drop_groups: true,
        })
    }

    /// [`Job::as_user`] for the end-of-step work; a failure is logged
    /// ("cannot switch to uid N to <purpose>").
    fn as_user_to(&self, purpose: &str) -> Option<Switch> {
        self.as_user()
            .map_err(|e| {
                log_error(&format!(
                    "auks: cannot switch to uid {} to {purpose}: {e}",
                    self.uid
                ))
            })
            .ok()
    }
}

/// The ccache the tasks use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCcache {
    /// Value given to `KRB5CCNAME`.
    pub name: String,
    /// Created by us (destroyed at the end) or the user's own, kept.
    pub ours: bool,
}

/// Where a step's time went (for `scripts/bench-plugin.sh`): one line in
/// slurmd.log at the end of each step that did something.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Phases {
    done: Vec<(String, Duration)>,
}

impl Phases {
    /// Time `f` as phase `name`.
    pub fn time<R>(&mut self, name: &'static str, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.done.push((name.into(), t.elapsed()));
        r
    }

    /// Record a phase timed by the caller.
    pub fn done_push(&mut self, name: impl Into<String>, d: Duration) {
        self.done.push((name.into(), d));
    }

    /// `name=0.123ms ...`, empty when nothing was timed.
    pub fn line(&self) -> String {
        self.done
            .iter()
            .map(|(n, d)| format!("{n}={:.3}ms", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Per-step state of the compute side.
#[derive(Default)]
pub struct StepState {
    pub job: Option<Job>,
    /// The job user's full identity for the processes the plugin starts.
    pub identity: Option<super::spawn::Identity>,
    pub ccache: Option<JobCcache>,
    pub renewer: Option<super::spawn::Child>,
    /// The renewer's start timer, until the renewer is stopped.
    pub deferred: Option<deferred::Deferred>,
    /// When the renewer was sent its stop signal, and whether that was
    /// SIGKILL already.
    pub renewer_signalled: Option<(Instant, bool)>,
    pub exited_tasks: u32,
    pub synced: bool,
    /// A failure of the fetch, reported to the user from `user_init`:
    /// in `init_post_opt` slurmstepd is not yet connected to srun, so an
    /// error logged there only reaches slurmd.log.
    pub failure: Option<String>,
    /// Something the user should know (a `KRB5CCNAME` that was ignored),
    /// shown in the user's output from `user_init`.
    pub notice: Option<String>,
    /// Time spent by each phase of the plugin in this step.
    pub phases: Phases,
    /// The fetch running in a helper process, until `user_init`.
    pub pending: Option<credential::PendingFetch>,
}

/// What the step needs from Slurm (implemented over the SPANK handle).
pub trait StepEnv {
    fn job_uid(&self) -> Result<u32, String>;
    fn job_gid(&self) -> Result<u32, String>;
    fn job_id(&self) -> Result<u32, String>;
    /// The job's supplementary groups as Slurm computed them (`None`:
    /// unknown, looked up with `getgrouplist`).
    fn job_groups(&self) -> Option<Vec<u32>>;
    fn local_task_count(&self) -> Result<u32, String>;
    /// A variable of the job environment; `None` when unset or longer
    /// than `max` bytes.
    fn getenv(&self, name: &str, max: usize) -> Option<String>;
    fn setenv(&self, name: &str, value: &str) -> Result<(), String>;
}

/// Mode on the compute side: job uid for `minimum_uid`, job environment
/// for `SLURM_SPANK_AUKS` (at most 4 bytes, as C), then `--auks`/default.
pub fn current_mode(env: &dyn StepEnv, a: &PluginArgs, option: Option<Mode>) -> Mode {
    let uid = if a.minimum_uid > 0 {
        match env.job_uid() {
            Ok(u) => Some(u),
            Err(e) => {
                log_error(&format!("auks: cannot get the job uid: {e}"));
                None
            }
        }
    } else {
        None
    };
    let var = env.getenv(args::ENV_MODE, 4);
    let mode = args::resolve_mode(
        a.minimum_uid,
        uid,
        args::env_mode(var.as_deref(), true),
        option,
        a.default_mode,
    );
    if a.minimum_uid > 0 && mode == Mode::Disabled && uid.is_some_and(|u| u < a.minimum_uid) {
        log_verbose(&format!(
            "auks: uid {} is below minimum_uid={}: disabled",
            uid.unwrap_or(0),
            a.minimum_uid
        ));
    }
    mode
}

/// `slurm_spank_init_post_opt` in slurmstepd: fetch and store. A failure
/// is logged to slurmd.log now and kept for [`report_failure`] (user_init),
/// the first hook whose errors reach the user's srun.
pub fn fetch(
    env: &dyn StepEnv,
    a: &PluginArgs,
    option: Option<Mode>,
    st: &mut StepState,
    defer: Option<&[String]>,
) -> i32 {
    if let Err(msg) = credential::fetch_and_store(env, a, option, st, defer) {
        log_info(&format!("{msg} [reported to the user at task launch]"));
        st.failure = Some(msg);
    }
    0
}

/// `slurm_spank_user_init`: tell the user why the step has no credential
/// (and fail the step when the plugin is `required`).
pub fn report_failure(st: &mut StepState) -> i32 {
    if let Some(n) = st.notice.take() {
        super::glue::log_user(&n);
    }
    match st.failure.take() {
        Some(msg) => {
            log_error(&msg);
            -1
        }
        None => 0,
    }
}

/// `sync=all`: one `sync()` per step, while the ticket is still valid
/// (before the renewer is stopped or the ccache destroyed).
fn sync_once(a: &PluginArgs, st: &mut StepState) {
    if a.sync == SyncMode::All && !st.synced {
        st.synced = true;
        log_info("auks: calling sync() to flush dirty pages while the ticket is valid");
        nix::unistd::sync();
    }
}

/// `slurm_spank_task_exit`: signal the renewer to stop when the last local
/// task exits (it is reaped in [`exit`]).
pub fn task_exit(env: &dyn StepEnv, a: &PluginArgs, st: &mut StepState) -> i32 {
    st.exited_tasks += 1;
    if st.renewer.is_none() && st.deferred.is_none() {
        return 0;
    }
    match env.local_task_count() {
        Ok(n) if st.exited_tasks >= n => {
            log_verbose("auks: all local tasks exited: stopping the credential renewer");
            signal_renewer(a, st);
            0
        }
        Ok(_) => 0,
        Err(e) => {
            log_info(&format!("auks: cannot get the local task count: {e}"));
            0
        }
    }
}

/// `slurm_spank_exit`: stop the renewer if still there, sync, destroy the
/// ccache we created (as the user).
pub fn exit(env: &dyn StepEnv, a: &PluginArgs, st: &mut StepState) -> i32 {
    // A step that ended before user_init: what its helper created goes.
    credential::collect(env, a, st, credential::Collect::Cleanup);
    let mut phases = std::mem::take(&mut st.phases);
    phases.time("renewer_stop", || stop_renewer(a, st));
    let rc = match st.ccache.take() {
        Some(cc) if cc.ours => {
            sync_once(a, st);
            match st.job {
                Some(job) => phases.time("destroy", || credential::destroy(&job, &cc)),
                None => 0,
            }
        }
        _ => 0,
    };
    if st.job.is_some() {
        log_info(&format!("auks: step phases: {}", phases.line()));
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::Phases;

    #[test]
    fn phases_line() {
        let mut p = Phases::default();
        assert_eq!(p.line(), "");
        assert_eq!(p.time("get", || 7), 7);
        p.time("store", || ());
        let l = p.line();
        assert!(
            l.starts_with("get=") && l.contains(" store=") && l.ends_with("ms"),
            "{l}"
        );
    }
}
