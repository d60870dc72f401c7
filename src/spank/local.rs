//! Submit side (srun in S_CTX_LOCAL, sbatch/salloc in S_CTX_ALLOCATOR),
//! `slurm_spank_init_post_opt`: push the user's TGT to auksd and tell the
//! job about it through `SLURM_SPANK_AUKS` (spec §10.3).

use super::args::{self, Mode, PluginArgs, ENV_MODE};
use super::glue::{log_error, log_info, log_verbose};
use super::messages::{self, SubmitFailure};
use super::probe::{self, Ignored};
use crate::client::Client;

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

/// The submit-side work. Returns the hook status.
pub fn submit(a: &PluginArgs, option: Option<Mode>) -> i32 {
    match current_mode(a, option) {
        Mode::Disabled => return 0,
        Mode::Done => {
            log_verbose("auks: credential forwarding already done");
            return 0;
        }
        Mode::Enabled => {}
    }
    let client = match Client::from_config_file(a.conf.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            log_error(&format!(
                "auks: cannot forward your Kerberos credential: configuration problem: {e}"
            ));
            return -1;
        }
    };
    // srun and sbatch must never block on what KRB5CCNAME names (a FIFO
    // there would hang them, and they block SIGINT and SIGTERM).
    let name = match own_ccache_name() {
        Ok(n) => n,
        Err(NameError::Broken(e)) => {
            log_error(&format!(
                "auks: cannot forward your Kerberos credential: {e}"
            ));
            return -1;
        }
        Err(NameError::Ignored(Ignored::Missing(why))) => return no_ccache(a, &why),
        Err(NameError::Ignored(Ignored::Refused(why))) => {
            log_info(&format!("auks: KRB5CCNAME={why}: ignored"));
            return no_ccache(a, &why);
        }
    };
    // The user's own regular file (or a KEYRING/KCM cache): libkrb5 may
    // open it by name (and keep the auksd service ticket there).
    let client = client.with_auth_ccache(Some(name.clone()));
    let t0 = std::time::Instant::now();
    match client.add_from_ccache(Some(&name)) {
        Ok(()) => {
            verbose_now_and_later(format!(
                "auks: Kerberos credential forwarded to auksd (add={:.3}ms)",
                t0.elapsed().as_secs_f64() * 1000.0
            ));
            export_no_overwrite(ENV_MODE, "done");
            0
        }
        Err(e) => match messages::submit_failure(&e) {
            SubmitFailure::NoCcache => no_ccache(a, &e.to_string()),
            SubmitFailure::Other(msg) => {
                log_error(&msg);
                -1
            }
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
/// plugin is `enforced`).
fn no_ccache(a: &PluginArgs, why: &str) -> i32 {
    log_verbose(&format!("auks: {why}"));
    if !a.enforced {
        log_info(messages::NO_CCACHE_NOTICE);
        export_no_overwrite(ENV_MODE, "no");
        0
    } else {
        log_error(messages::ENFORCED_NO_CCACHE);
        // As C: the steps may still find an older credential in auksd if
        // Slurm lets the job run (optional plugin).
        export_no_overwrite(ENV_MODE, "done");
        -1
    }
}
