//! Submit side (srun in S_CTX_LOCAL, sbatch/salloc in S_CTX_ALLOCATOR),
//! `slurm_spank_init_post_opt`: push the user's TGT to auksd and tell the
//! job about it through `SLURM_SPANK_AUKS` (spec §10.3); srun collects the
//! ADD of its helper process in `local_user_init` ([`collect`]).

use super::args::{self, Mode, PluginArgs, ENV_MODE};
use super::glue::{log_error, log_info, log_verbose};
use super::helper::{self, HelperFailed, Note};
use super::messages::{self, SubmitFailure};
use super::preadd::PreAdd;
use super::probe::{self, Ignored};
use super::quickadd::{self, QuickAdd};
use crate::client::Client;
use crate::config::ClientConfig;

/// Verbose messages of `init_post_opt` that srun shows only from
/// `local_user_init` (its `-v` takes effect in between).
static LATE_VERBOSE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A verbose message now (sbatch, salloc) and again for srun's
/// `local_user_init` ([`take_late_verbose`]).
fn verbose_now_and_later(msg: String) {
    log_verbose(&msg);
    LATE_VERBOSE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(msg);
}

/// The messages kept by [`verbose_now_and_later`].
pub fn take_late_verbose() -> Vec<String> {
    std::mem::take(&mut *LATE_VERBOSE.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Set a variable of this process (srun/sbatch/salloc pass their
/// environment to the job) unless it already exists.
fn export_no_overwrite(name: &str, value: &str) {
    if std::env::var_os(name).is_none() {
        // The submit commands are single-threaded while plugins run their
        // init_post_opt hook (C does the same setenv here).
        std::env::set_var(name, value);
    }
}

/// Called from the `--auks` option callback with `--auks=done` on the
/// submit side (C exports the variable there too).
pub fn option_done() {
    export_no_overwrite(ENV_MODE, "done");
}

/// Mode on the submit side: the uid for `minimum_uid` is the caller's
/// effective uid and the variable comes from this process' environment.
pub fn current_mode(a: &PluginArgs, option: Option<Mode>) -> Mode {
    let env = std::env::var(ENV_MODE).ok();
    let euid = nix::unistd::geteuid().as_raw();
    args::resolve_mode(
        a.minimum_uid,
        Some(euid),
        args::env_mode(env.as_deref(), false),
        option,
        a.default_mode,
    )
}

/// The submit-side work at `init_post_opt`. Returns the hook status.
/// In srun (`in_srun`) the ADD goes to a helper process ([`preadd`]) that
/// runs while srun gets its allocation, collected by [`collect`] from
/// `local_user_init`; sbatch and salloc (which have no later hook before
/// the job starts) and an `enforced` plugin add here.
pub fn submit(a: &PluginArgs, option: Option<Mode>, argv: &[String], in_srun: bool) -> i32 {
    match current_mode(a, option) {
        Mode::Disabled => return 0,
        Mode::Done => {
            log_verbose("auks: credential forwarding already done");
            return 0;
        }
        Mode::Enabled => {}
    }
    // `enforced`: a job without a credential must not be submitted at all,
    // so the outcome is needed now.
    if let (true, false, Some(program)) = (in_srun, a.enforced, a.helper_program()) {
        let conf = match ClientConfig::load(a.conf.as_deref()) {
            Ok(c) => c,
            Err(e) => return apply(&config_problem(&e.to_string()), false),
        };
        match quickadd::prepare(&conf).map(QuickAdd::start) {
            Ok(Ok(q)) => {
                *PENDING.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Pending::Thread(q), a.clone()));
                return 0;
            }
            Ok(Err(e)) => verbose_now_and_later(format!("auks: cannot start a thread ({e})")),
            Err(why) => verbose_now_and_later(format!("auks: ADD by the helper process: {why}")),
        }
        match PreAdd::start(program, argv, helper::budget(&conf)) {
            Ok(p) => {
                *PENDING.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Pending::Helper(p), a.clone()));
                return 0;
            }
            Err(e) => log_verbose(&format!(
                "auks: cannot start the helper {} ({e}): adding in srun",
                program.display()
            )),
        }
    }
    apply(&add(a), true)
}

/// Where srun's ADD runs until `local_user_init`.
enum Pending {
    /// On a thread of srun ([`quickadd`]).
    Thread(QuickAdd),
    /// In the helper process ([`super::preadd`]).
    Helper(PreAdd),
}

/// The ADD started by [`submit`], until `local_user_init`.
static PENDING: std::sync::Mutex<Option<(Pending, PluginArgs)>> = std::sync::Mutex::new(None);

/// srun's `local_user_init`: the outcome of the ADD started by [`submit`],
/// applied (its messages shown, `SLURM_SPANK_AUKS` exported before the
/// step is launched). Returns the hook status.
pub fn collect() -> i32 {
    let Some((pending, a)) = PENDING.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return 0;
    };
    let p = match pending {
        Pending::Thread(q) => {
            return match q.collect() {
                Ok(o) => apply(&o, false),
                Err(why) => {
                    log_verbose(&format!(
                        "auks: the ADD on srun's thread did not succeed ({why}): adding in srun"
                    ));
                    apply(&add(&a), false)
                }
            }
        }
        Pending::Helper(p) => p,
    };
    match p.collect() {
        Ok(o) => apply(&o, false),
        // Not our `auks` (a site's own script, the C client) or it
        // crashed: the ADD is done here after all.
        Err(HelperFailed::NoReport(why)) => {
            log_verbose(&format!(
                "auks: the helper {} gave no report ({why}): adding in srun",
                a.helper_program().unwrap_or(&a.renewer).display()
            ));
            apply(&add(&a), false)
        }
        Err(HelperFailed::TimedOut(_)) => {
            log_error(
                "auks: cannot forward your Kerberos credential: auksd did not answer in time",
            );
            -1
        }
    }
}

/// What the submit-side ADD did (in srun, sbatch, salloc, or the helper).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub notes: Vec<Note>,
    /// Value for `SLURM_SPANK_AUKS` (unless already set).
    pub export: Option<&'static str>,
    /// The hook status.
    pub rc: i32,
}

/// Log the outcome's notes and export its value; its status. `late`:
/// verbose notes are also kept for srun's `local_user_init` (srun's `-v`
/// takes effect after `init_post_opt`).
fn apply(o: &Outcome, late: bool) -> i32 {
    for n in &o.notes {
        match n {
            Note::Error(t) => log_error(t),
            Note::Info(t) => log_info(t),
            Note::Verbose(t) if late => verbose_now_and_later(t.clone()),
            Note::Verbose(t) => log_verbose(t),
        }
    }
    if let Some(v) = o.export {
        export_no_overwrite(ENV_MODE, v);
    }
    o.rc
}

fn config_problem(e: &str) -> Outcome {
    Outcome {
        notes: vec![Note::Error(format!(
            "auks: cannot forward your Kerberos credential: configuration problem: {e}"
        ))],
        export: None,
        rc: -1,
    }
}

/// The ADD of the caller's TGT (mode already resolved to enabled).
pub fn add(a: &PluginArgs) -> Outcome {
    let client = match Client::from_config_file(a.conf.as_deref()) {
        Ok(c) => c,
        Err(e) => return config_problem(&e.to_string()),
    };
    // srun and sbatch must never block on what KRB5CCNAME names (a FIFO
    // there would hang them, and they block SIGINT and SIGTERM).
    let name = match own_ccache_name() {
        Ok(n) => n,
        Err(NameError::Broken(e)) => {
            return Outcome {
                notes: vec![Note::Error(format!(
                    "auks: cannot forward your Kerberos credential: {e}"
                ))],
                export: None,
                rc: -1,
            }
        }
        Err(NameError::Ignored(Ignored::Missing(why))) => return no_ccache(a, &why, Vec::new()),
        Err(NameError::Ignored(Ignored::Refused(why))) => {
            let notes = vec![Note::Info(format!("auks: KRB5CCNAME={why}: ignored"))];
            return no_ccache(a, &why, notes);
        }
    };
    // The user's own regular file (or a KEYRING/KCM cache): libkrb5 may
    // open it by name (and keep the auksd service ticket there).
    let client = client.with_auth_ccache(Some(name.clone()));
    let t0 = std::time::Instant::now();
    match client.add_from_ccache(Some(&name)) {
        Ok(()) => Outcome {
            notes: vec![Note::Verbose(format!(
                "auks: Kerberos credential forwarded to auksd (add={:.3}ms)",
                t0.elapsed().as_secs_f64() * 1000.0
            ))],
            export: Some("done"),
            rc: 0,
        },
        Err(e) => match messages::submit_failure(&e) {
            SubmitFailure::NoCcache => no_ccache(a, &e.to_string(), Vec::new()),
            SubmitFailure::Other(msg) => Outcome {
                notes: vec![Note::Error(msg)],
                export: None,
                rc: -1,
            },
        },
    }
}

/// The caller's ccache name (`KRB5CCNAME`, else libkrb5's default),
/// checked without blocking: a file-backed one must be a regular file
/// (or a DIR collection of them) of the caller's.
fn own_ccache_name() -> Result<String, NameError> {
    let name = match std::env::var("KRB5CCNAME").ok().filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => match crate::krb5::Context::new().and_then(|c| c.default_ccache_name()) {
            Ok(n) => n,
            // A broken installation, not a user without a ticket.
            Err(e) if e.is_library_missing() => return Err(NameError::Broken(e.to_string())),
            Err(e) => {
                return Err(NameError::Ignored(Ignored::Missing(format!(
                    "no default credential cache: {e}"
                ))))
            }
        },
    };
    let uid = nix::unistd::geteuid().as_raw();
    probe::probe(&name, uid)
        .map(|_| name)
        .map_err(NameError::Ignored)
}

/// Why [`own_ccache_name`] has no name.
enum NameError {
    /// Nothing usable there: the user has no ticket to forward.
    Ignored(Ignored),
    /// libkrb5 could not be loaded.
    Broken(String),
}

/// No usable ccache on the submit side: a notice (or an error when the
/// plugin is `enforced`), after `notes`.
fn no_ccache(a: &PluginArgs, why: &str, mut notes: Vec<Note>) -> Outcome {
    notes.push(Note::Verbose(format!("auks: {why}")));
    if !a.enforced {
        notes.push(Note::Info(messages::NO_CCACHE_NOTICE.into()));
        Outcome {
            notes,
            export: Some("no"),
            rc: 0,
        }
    } else {
        notes.push(Note::Error(messages::ENFORCED_NO_CCACHE.into()));
        // As C: the steps may still find an older credential in auksd if
        // Slurm lets the job run (optional plugin).
        Outcome {
            notes,
            export: Some("done"),
            rc: -1,
        }
    }
}
