//! Submit side (srun in S_CTX_LOCAL, sbatch/salloc in S_CTX_ALLOCATOR),
//! `slurm_spank_init_post_opt`: push the user's TGT to auksd and tell the
//! job about it through `SLURM_SPANK_AUKS` (spec §10.3).

use super::args::{self, Mode, PluginArgs, ENV_MODE};
use super::glue::{log_error, log_info, log_verbose};
use super::messages::{self, SubmitFailure};
use crate::client::Client;

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
    match client.add_from_ccache(None) {
        Ok(()) => {
            log_verbose("auks: Kerberos credential forwarded to auksd");
            export_no_overwrite(ENV_MODE, "done");
            0
        }
        Err(e) => match messages::submit_failure(&e) {
            SubmitFailure::NoCcache if !a.enforced => {
                log_verbose(&format!("auks: {e}"));
                log_info(messages::NO_CCACHE_NOTICE);
                export_no_overwrite(ENV_MODE, "no");
                0
            }
            SubmitFailure::NoCcache => {
                log_verbose(&format!("auks: {e}"));
                log_error(messages::ENFORCED_NO_CCACHE);
                // As C: the steps may still find an older credential in
                // auksd if Slurm lets the job run (optional plugin).
                export_no_overwrite(ENV_MODE, "done");
                -1
            }
            SubmitFailure::Other(msg) => {
                log_error(&msg);
                -1
            }
        },
    }
}
