//! Fetching and storing the job's credential: GET it from auksd as this
//! node (default ccache, `ccache=` or `keytab=`), keep a valid ccache the
//! job already names in `KRB5CCNAME`, otherwise create a per-job ccache as
//! the job user and store it there, run the `HelperScript`; at the end of
//! the step, destroy that ccache.

use super::fetcher::{self, Fetched, Note};
use super::prefetch::{self, HelperFailed, Prefetch};
use super::{current_mode, Job, JobCcache, StepEnv, StepState};
use crate::config::ClientConfig;
use crate::krb5::{Ccache, Context};
use crate::renew::{run_helper_with, HelperOutcome, RunAs};
use crate::spank::args::{Mode, PluginArgs};
use crate::spank::glue::{log_error, log_info, log_verbose};
use crate::spank::probe::{self, Ignored};
use crate::spank::spawn::{self, Identity};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Get the credential and store it for the step (`st.job`, `st.ccache`,
/// `KRB5CCNAME`). The error is the message for the user. With `defer`
/// (the plugstack arguments), the GET and the ccache are left to the
/// node's fetch agent (`fetchagent=`, [`super::agent`]) when it takes the
/// request, else to the helper process of [`prefetch`] when it can be
/// started (`st.pending`, collected by [`collect`]).
pub(super) fn fetch_and_store(
    env: &dyn StepEnv,
    a: &PluginArgs,
    option: Option<Mode>,
    st: &mut StepState,
    defer: Option<&[String]>,
) -> Result<(), String> {
    match current_mode(env, a, option) {
        Mode::Disabled => {
            log_verbose("auks: disabled for this step");
            return Ok(());
        }
        Mode::Enabled | Mode::Done => {}
    }
    let job = match (env.job_uid(), env.job_gid(), env.job_id()) {
        (Ok(uid), Ok(gid), Ok(jobid)) => Job { uid, gid, jobid },
        (u, g, j) => {
            return Err(format!(
                "auks: cannot identify the job (uid: {u:?}, gid: {g:?}, job id: {j:?})"
            ))
        }
    };
    st.job = Some(job);

    // An existing, valid ccache named by the job's KRB5CCNAME is kept.
    if let Some(name) = env.getenv("KRB5CCNAME", 4096).filter(|n| !n.is_empty()) {
        let checked = st
            .phases
            .time("check_user_ccache", || user_ccache(&job, &name));
        match checked.map_err(|e| format!("auks: {e}"))? {
            UserCcache::Valid => {
                log_info(&format!(
                    "auks: job {} uid {}: keeping the valid credential cache {name} named by KRB5CCNAME",
                    job.jobid, job.uid
                ));
                if a.spankstackcred {
                    std::env::set_var("KRB5CCNAME", &name);
                }
                st.ccache = Some(JobCcache { name, ours: false });
                return Ok(());
            }
            UserCcache::NotValid(why) => log_verbose(&format!(
                "auks: job {} uid {}: KRB5CCNAME not kept: {why}",
                job.jobid, job.uid
            )),
            UserCcache::Refused(why) => {
                let msg = format!(
                    "auks: KRB5CCNAME={why}: ignored, the step uses a credential cache of its own"
                );
                log_info(&format!("{msg} (job {} uid {})", job.jobid, job.uid));
                st.notice = Some(msg);
            }
        }
    }

    let conf = ClientConfig::load(a.conf.as_deref()).map_err(|e| {
        format!(
            "auks: configuration problem on this node ({e}); the job step has no Kerberos credential"
        )
    })?;
    let helper = conf.api.helper_script.clone();
    if let Some(argv) = defer {
        let budget = prefetch::budget(&conf);
        let ways = [
            a.fetch_agent.as_deref().map(Way::Agent),
            a.helper_program().map(Way::Helper),
        ];
        for way in ways.into_iter().flatten() {
            let t = Instant::now();
            match way.start(argv, &job, budget) {
                Ok(prefetch) => {
                    st.phases.done_push(way.phase(), t.elapsed());
                    st.pending = Some(PendingFetch {
                        prefetch,
                        job,
                        helper,
                        by: way.to_string(),
                    });
                    return Ok(());
                }
                Err(e) => log_verbose(&format!("auks: cannot use the {way} ({e})")),
            }
        }
    }
    let fetched = fetcher::fetch_and_create(&job, a);
    apply(env, a, st, &job, helper.as_deref(), fetched)
}

/// Where a deferred fetch runs, in the order they are tried.
#[derive(Clone, Copy)]
enum Way<'a> {
    /// The node's fetch agent at this socket (`fetchagent=`).
    Agent(&'a Path),
    /// A helper process of this program (`helper=`).
    Helper(&'a Path),
}

impl Way<'_> {
    fn start(self, argv: &[String], job: &Job, budget: Duration) -> std::io::Result<Prefetch> {
        match self {
            Way::Agent(socket) => Prefetch::ask_agent(socket, argv, job, budget),
            Way::Helper(program) => Prefetch::start(program, argv, job, budget),
        }
    }

    /// The name of the step phase its start is timed as.
    fn phase(self) -> &'static str {
        match self {
            Way::Agent(_) => "agent_ask",
            Way::Helper(_) => "prefetch_start",
        }
    }
}

impl std::fmt::Display for Way<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Way::Agent(socket) => write!(f, "fetch agent {}", socket.display()),
            Way::Helper(program) => write!(f, "fetch helper {}", program.display()),
        }
    }
}

/// A fetch running in the helper process of [`prefetch`] (or in the
/// node's fetch agent).
pub struct PendingFetch {
    prefetch: Prefetch,
    job: Job,
    helper: Option<PathBuf>,
    /// What fetches, for the log.
    by: String,
}

/// Why [`collect`] is called.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// `user_init`: the step goes on with the credential.
    Step,
    /// The end of a step that never reached `user_init`: only what must
    /// be cleaned up is kept.
    Cleanup,
}

/// The report of the helper started by [`fetch_and_store`], if any,
/// applied as a fetch in slurmstepd would have been (a failure goes to
/// `st.failure`). Needs effective root for the `HelperScript`.
pub fn collect(env: &dyn StepEnv, a: &PluginArgs, st: &mut StepState, why: Collect) {
    let Some(p) = st.pending.take() else {
        return;
    };
    let t = Instant::now();
    let fetched = p.prefetch.collect();
    st.phases.done_push("prefetch_wait", t.elapsed());
    let r = match (fetched, why) {
        (Ok(f), Collect::Step) => apply(env, a, st, &p.job, p.helper.as_deref(), f),
        (Ok(f), Collect::Cleanup) => {
            if let Some(Ok(cc)) = f.result {
                st.ccache = Some(cc);
            }
            Ok(())
        }
        // Not our `auks` (a site that kept the C client there), or it
        // crashed: the fetch is done here after all.
        (Err(HelperFailed::NoReport(why)), Collect::Step) => {
            log_info(&format!(
                "auks: the {} gave no report ({why}): fetching in slurmstepd",
                p.by
            ));
            let f = fetcher::fetch_and_create(&p.job, a);
            apply(env, a, st, &p.job, p.helper.as_deref(), f)
        }
        (Err(HelperFailed::NoReport(_)), Collect::Cleanup) => Ok(()),
        (Err(HelperFailed::TimedOut(m)), _) => Err(m),
    };
    if let Err(msg) = r {
        st.failure = Some(msg);
    }
}

/// The end of a fetch (in slurmstepd or in the helper): its notes logged,
/// the ccache in `st` and in the job's `KRB5CCNAME`, the `HelperScript`.
fn apply(
    env: &dyn StepEnv,
    a: &PluginArgs,
    st: &mut StepState,
    job: &Job,
    helper: Option<&Path>,
    fetched: Fetched,
) -> Result<(), String> {
    for n in fetched.notes {
        match n {
            Note::Error(t) => log_error(&t),
            Note::Info(t) => log_info(&t),
            Note::Verbose(t) => log_verbose(&t),
        }
    }
    for (name, d) in fetched.phases {
        st.phases.done_push(name, d);
    }
    let cc = fetched
        .result
        .unwrap_or_else(|| Err("auks: the credential fetch had no result".into()))?;
    st.ccache = Some(cc.clone());
    let identity = Identity::new(job.uid, job.gid, env.job_groups());

    if let Err(e) = env.setenv("KRB5CCNAME", &cc.name) {
        log_error(&format!(
            "auks: cannot set KRB5CCNAME in the job environment: {e}"
        ));
    }
    if a.spankstackcred {
        std::env::set_var("KRB5CCNAME", &cc.name);
        log_info(&format!(
            "auks: spankstackcred: KRB5CCNAME={} in slurmstepd's environment for the next plugins",
            std::env::var("KRB5CCNAME").unwrap_or_default()
        ));
    }
    if let Some(h) = helper {
        st.phases
            .time("helper", || run_job_helper(&identity, h, &cc.name));
    }
    st.identity = Some(identity);
    Ok(())
}

/// What the job's own `KRB5CCNAME` names.
enum UserCcache {
    /// The user's, with a TGT that has not expired: kept.
    Valid,
    /// Missing, empty or expired (not worth a message to the user).
    NotValid(String),
    /// Something that must not be used (a FIFO, someone else's file, ...).
    Refused(String),
}

/// As the job user: does `name` hold a TGT of the user's that has not
/// expired? The name is checked without ever blocking ([`probe`]).
fn user_ccache(job: &Job, name: &str) -> Result<UserCcache, String> {
    let _user = job
        .as_user()
        .map_err(|e| format!("cannot switch to uid {}: {e}", job.uid))?;
    let probed = match probe::probe(name, job.uid) {
        Ok(p) => p,
        Err(Ignored::Missing(why)) => return Ok(UserCcache::NotValid(why)),
        Err(Ignored::Refused(why)) => return Ok(UserCcache::Refused(why)),
    };
    // FILE (and DIR) caches: the private copy, read without libkrb5 (a
    // step inside an allocation then never loads it); other types through
    // libkrb5. Either way: the TGT's end time, and "now" on the KDC's
    // clock (libkrb5 applies the cache's time offset once it has read it).
    let checked = match &probed {
        probe::Probed::File { copy, .. } => {
            crate::ccache_file::tgt_endtime(copy, probe::CCACHE_MAX)
                .map(|t| (t.endtime, t.kdc_now(chrono::Utc::now().timestamp())))
                .map_err(|e| e.to_string())
        }
        probe::Probed::Other(_) => {
            let ctx = match Context::new() {
                Ok(c) => c,
                Err(e) => return Ok(UserCcache::NotValid(e.to_string())),
            };
            tgt_endtime(&ctx, &probed.krb5_name())
                .map(|end| (end, ctx.now()))
                .map_err(|e| e.to_string())
        }
    };
    Ok(match checked {
        Ok((Some(end), now)) if end > now => UserCcache::Valid,
        Ok((Some(_), _)) => UserCcache::NotValid(format!("{name}: the TGT has expired")),
        Ok((None, _)) => UserCcache::NotValid(format!("{name}: no TGT of its principal's realm")),
        Err(e) => UserCcache::NotValid(format!("{name}: {e}")),
    })
}

/// End time of the TGTs `cred::extract_from_ccache` would take from the
/// ccache `name` (the last local TGT of the default principal's realm and
/// the first cross-realm one it issued; the earlier end of the two), read
/// straight from the ticket list: a step that keeps the job's cache (an
/// `srun` inside a batch job) checks it without encoding and decoding a
/// KRB-CRED. `None` when there is no local TGT.
fn tgt_endtime(ctx: &Context, name: &str) -> Result<Option<i64>, crate::krb5::Error> {
    let cc = Ccache::resolve(ctx, name)?;
    let realm = cc.principal()?.realm();
    let (mut local, mut cross) = (None, None);
    for c in cc.creds()? {
        match c.tgt_realms() {
            Some((target, issuer)) if issuer == realm && target == realm => {
                local = Some(c.endtime())
            }
            Some((_, issuer)) if issuer == realm && cross.is_none() => cross = Some(c.endtime()),
            _ => {}
        }
    }
    Ok(local.map(|l| cross.map_or(l, |x: i64| x.min(l))))
}

/// Run the api HelperScript once as the job user, started as
/// [`spawn`] describes (result only logged). SIGKILL if slurmstepd dies.
fn run_job_helper(id: &Identity, script: &std::path::Path, ccache: &str) {
    let setup = |cmd: &mut std::process::Command| spawn::prepare(cmd, id, libc::SIGKILL);
    match run_helper_with(script, Some(ccache), RunAs::JobUserSetUp, setup) {
        Ok(HelperOutcome::Ran) => log_verbose(&format!(
            "auks: helper script {} succeeded",
            script.display()
        )),
        Ok(HelperOutcome::Skipped(why)) => log_info(&format!("auks: {why}")),
        Err(e) => log_info(&format!("auks: helper script failed: {e}")),
    }
}

/// Destroy the ccache we created, as the job user. Returns the hook's
/// status (-1 when it could not be destroyed).
pub(super) fn destroy(job: &Job, cc: &JobCcache) -> i32 {
    match remove(job, cc) {
        Ok(()) => {
            log_info(&format!("auks: job {}: destroyed {}", job.jobid, cc.name));
            0
        }
        Err(Gone::Missing) => {
            log_verbose(&format!("auks: {} was already gone", cc.name));
            0
        }
        Err(Gone::Other(e)) => {
            log_error(&format!("auks: cannot destroy {}: {e}", cc.name));
            -1
        }
    }
}

/// Remove the ccache `cc` created for `job`, as the job user (the
/// calling thread switches its ids for it), logging nothing: also for
/// the node's fetch agent, whose report did not reach the step.
pub(super) fn remove(job: &Job, cc: &JobCcache) -> Result<(), Gone> {
    let user = job
        .as_user()
        .map_err(|e| Gone::Other(format!("cannot switch to uid {}: {e}", job.uid)))?;
    // A FILE ccache is one file of ours: unlinked here (what libkrb5's
    // destroy does), so the step's end does not load libkrb5 for it.
    let result = match file_path(&cc.name) {
        Some(path) => std::fs::remove_file(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Gone::Missing,
            _ => Gone::Other(e.to_string()),
        }),
        None => Context::new()
            .and_then(|ctx| Ccache::resolve(&ctx, &cc.name).and_then(|c| c.destroy()))
            .map_err(|e| match e.is_ccache_missing() {
                true => Gone::Missing,
                false => Gone::Other(e.to_string()),
            }),
    };
    drop(user);
    result
}

/// Why a ccache could not be destroyed.
pub(super) enum Gone {
    Missing,
    Other(String),
}

/// The path of a FILE ccache name (`FILE:/p` or `/p`).
fn file_path(name: &str) -> Option<&str> {
    match name.strip_prefix("FILE:") {
        Some(p) if p.starts_with('/') => Some(p),
        Some(_) => None,
        None => name.starts_with('/').then_some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::file_path;

    #[test]
    fn file_ccache_paths() {
        assert_eq!(
            file_path("FILE:/tmp/krb5cc_1_2_x"),
            Some("/tmp/krb5cc_1_2_x")
        );
        assert_eq!(file_path("/tmp/krb5cc_1_2_x"), Some("/tmp/krb5cc_1_2_x"));
        for other in [
            "KEYRING:persistent:1",
            "DIR:/tmp/d",
            "FILE:rel",
            "MEMORY:x",
            "",
        ] {
            assert_eq!(file_path(other), None, "{other}");
        }
    }
}
