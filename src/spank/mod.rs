//! The Slurm SPANK plugin `auks` (the crate's cdylib, `libauks.so`), a
//! drop-in replacement for the C `auks.so`: same plugstack arguments, same
//! `--auks` option and `SLURM_SPANK_AUKS` protocol (spec §10), plus
//! `keytab=` and `renewer=`.
//!
//! Layout:
//! - [`args`]: plugstack arguments, option value, mode resolution (pure);
//! - [`messages`]: what the user reads when something fails (pure);
//! - [`local`]: submit side (srun, sbatch, salloc); srun's ADD runs on a
//!   thread ([`quickadd`], without libkrb5) or in a helper process
//!   ([`preadd`]);
//! - [`remote`]: compute side (slurmstepd): the hooks, fetching and storing
//!   the credential (`remote::credential`), the renewer process
//!   (`remote::renewer`);
//! - [`probe`]: bounded checks of a user-chosen `KRB5CCNAME`;
//! - [`ids`]: per-thread uid/gid switching with a restoring guard;
//! - [`spawn`]: how the renewer and the helper start (identity, fds,
//!   signals, session, parent-death signal);
//! - `record`: where the job's ccache is, for `pam_auks_adopt` (ssh sessions);
//! - `glue`: the SPANK C API and the exported hooks (this file).
//!
//! Only the hooks this plugin needs are exported. In particular there is no
//! `slurm_spank_job_prolog`/`slurm_spank_job_epilog`: defining them makes
//! slurmd fork a `slurmstepd spank prolog/epilog` for every job (~20-25 ms
//! each), which is why the `slurm-spank` crate's macro (which always
//! exports all twelve hooks) is not used.
//!
//! Every hook runs inside `catch_unwind`: a panic is logged and turned into
//! an error status, never unwound into Slurm.

pub mod args;
mod glue;
pub mod helper;
pub mod ids;
pub mod local;
pub mod messages;
pub mod preadd;
pub mod probe;
pub mod quickadd;
mod record;
pub mod remote;
pub mod spawn;
pub mod vspawn;

use args::{Mode, PluginArgs};
use std::os::raw::{c_int, c_uint};
use std::sync::Mutex;

pub use glue::Ctx;

/// Plugin identification for the Slurm plugin loader.
#[no_mangle]
pub static plugin_name: [u8; 5] = *b"auks\0";
#[no_mangle]
pub static plugin_type: [u8; 6] = *b"spank\0";
#[no_mangle]
pub static plugin_version: c_uint = glue::sys::SLURM_VERSION_NUMBER;
/// As the C plugin's `SPANK_PLUGIN(auks, 1)`.
#[no_mangle]
pub static spank_plugin_version: c_uint = 1;

/// Plugin state: one per process (srun, sbatch, salloc, slurmd, one
/// slurmstepd per step). Hooks are called one at a time by Slurm; the lock
/// only makes that explicit.
#[cfg_attr(test, allow(dead_code))]
struct State {
    args: PluginArgs,
    /// `--auks` value seen by the option callback.
    option: Option<Mode>,
    /// Plugstack arguments not understood (shown by srun/sbatch -v from
    /// init_post_opt, when -v has been parsed).
    problems: Vec<String>,
    /// The plugstack arguments as given (for the helper processes).
    argv: Vec<String>,
    step: remote::StepState,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let st = g.get_or_insert_with(|| State {
        args: PluginArgs::default(),
        option: None,
        problems: Vec::new(),
        argv: Vec::new(),
        step: remote::StepState::default(),
    });
    f(st)
}

/// Run a hook body, turning a panic into an error status.
fn guarded(hook: &str, f: impl FnOnce() -> c_int) -> c_int {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            glue::log_error(&format!("auks: internal error in {hook}: {what}"));
            -1
        }
    }
}

/// Canonical (fully qualified) name of `host`, from the resolver.
pub fn canonical_hostname(host: &str) -> Option<String> {
    let c = std::ffi::CString::new(host).ok()?;
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; fields set
    // below are plain integers.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated host, NULL service, valid hints; res
    // receives a list freed below with freeaddrinfo.
    let rc = unsafe { libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list; ai_canonname of the first entry is NULL
    // or a NUL-terminated string owned by the list, copied before freeing.
    let name = unsafe {
        let p = (*res).ai_canonname;
        let n = if p.is_null() {
            None
        } else {
            Some(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        libc::freeaddrinfo(res);
        n
    };
    name.filter(|n| !n.is_empty())
}

#[cfg(not(test))]
mod hooks {
    use super::glue::{self, log_error, log_info, log_verbose, sys, Ctx, Spank, SyncOption};
    use super::ids::Switch;
    use super::{args, guarded, local, record, remote, with_state};
    use std::os::raw::{c_char, c_int};

    /// `--auks[=yes|no|done]`, argument optional (has_arg = 2) as in C.
    static OPTION: SyncOption = SyncOption(std::cell::UnsafeCell::new(sys::spank_option {
        name: c"auks".as_ptr() as *mut c_char,
        arginfo: c"[yes|no|done]".as_ptr() as *mut c_char,
        usage: c"kerberos credential forwarding using Auks".as_ptr() as *mut c_char,
        has_arg: 2,
        val: 0,
        cb: Some(option_cb),
    }));

    impl remote::StepEnv for Spank {
        fn job_uid(&self) -> Result<u32, String> {
            self.item_u32(sys::spank_item_S_JOB_UID)
                .map_err(|e| e.to_string())
        }
        fn job_gid(&self) -> Result<u32, String> {
            self.item_u32(sys::spank_item_S_JOB_GID)
                .map_err(|e| e.to_string())
        }
        fn job_id(&self) -> Result<u32, String> {
            self.item_u32(sys::spank_item_S_JOB_ID)
                .map_err(|e| e.to_string())
        }
        fn job_groups(&self) -> Option<Vec<u32>> {
            self.supplementary_gids().ok().filter(|l| !l.is_empty())
        }
        fn local_task_count(&self) -> Result<u32, String> {
            self.item_u32(sys::spank_item_S_JOB_LOCAL_TASK_COUNT)
                .map_err(|e| e.to_string())
        }
        fn getenv(&self, name: &str, max: usize) -> Option<String> {
            Spank::getenv(self, name, max).ok().flatten()
        }
        fn setenv(&self, name: &str, value: &str) -> Result<(), String> {
            Spank::setenv(self, name, value, true).map_err(|e| e.to_string())
        }
    }

    extern "C" fn option_cb(_val: c_int, optarg: *const c_char, remote: c_int) -> c_int {
        guarded("the --auks option", || {
            let value = if optarg.is_null() {
                None
            } else {
                // SAFETY: Slurm passes a NUL-terminated option argument.
                Some(
                    unsafe { std::ffi::CStr::from_ptr(optarg) }
                        .to_string_lossy()
                        .into_owned(),
                )
            };
            match args::parse_option_value(value.as_deref()) {
                Ok(mode) => {
                    with_state(|s| s.option = Some(mode));
                    if mode == args::Mode::Done && remote == 0 {
                        local::option_done();
                    }
                    0
                }
                Err(msg) => {
                    log_error(&format!("auks: {msg}"));
                    -1
                }
            }
        })
    }

    #[no_mangle]
    pub extern "C" fn slurm_spank_init(
        sp: sys::spank_t,
        ac: c_int,
        argv: *mut *mut c_char,
    ) -> c_int {
        guarded("slurm_spank_init", || {
            // SAFETY: sp and argv are the handle and arguments Slurm passes
            // to this hook (argv has ac strings).
            let (spank, argv) = unsafe {
                (
                    Spank::from_raw(sp),
                    glue::argv_strings(ac, argv as *const *const c_char),
                )
            };
            super::ids::set_fatal_log(log_error);
            let ctx = glue::context();
            let parsed = args::parse_args(&argv);
            for p in &parsed.problems {
                let line = format!("auks: {p}");
                match ctx {
                    // srun/sbatch: later, with -v (see init_post_opt)
                    Ctx::Local | Ctx::Allocator => {}
                    Ctx::Slurmd => log_error(&line),
                    _ => log_info(&line),
                }
            }
            with_state(|s| {
                s.args = parsed.args;
                s.argv = argv.clone();
                s.problems = parsed.problems;
                s.option = None;
                s.step = remote::StepState::default();
            });
            if let Err(e) = spank.register_option(&OPTION) {
                if matches!(ctx, Ctx::Local | Ctx::Allocator | Ctx::Remote) {
                    log_error(&format!("auks: cannot register the --auks option: {e}"));
                    return -1;
                }
            }
            0
        })
    }

    #[no_mangle]
    pub extern "C" fn slurm_spank_init_post_opt(
        sp: sys::spank_t,
        _ac: c_int,
        _argv: *mut *mut c_char,
    ) -> c_int {
        guarded("slurm_spank_init_post_opt", || {
            // SAFETY: the handle Slurm passes to this hook.
            let spank = unsafe { Spank::from_raw(sp) };
            match glue::context() {
                Ctx::Local | Ctx::Allocator => {
                    let ctx = glue::context();
                    let (a, opt, problems, argv) = with_state(|s| {
                        let p = if ctx == Ctx::Allocator {
                            std::mem::take(&mut s.problems)
                        } else {
                            Vec::new()
                        };
                        (s.args.clone(), s.option, p, s.argv.clone())
                    });
                    for p in problems {
                        log_verbose(&format!("auks: {p}"));
                    }
                    local::submit(&a, opt, &argv, ctx == Ctx::Local)
                }
                Ctx::Remote => with_state(|s| {
                    // The GET and the ccache go to a helper process that
                    // runs while slurmstepd sets the step up, collected in
                    // user_init; not for the extern step (it has no
                    // user_init) nor with spankstackcred (the next
                    // plugins want KRB5CCNAME now).
                    let id = step_id(&spank);
                    let defer = (!s.args.spankstackcred
                        && id
                            .as_ref()
                            .is_ok_and(|&i| i != auks_record::SLURM_EXTERN_CONT))
                    .then_some(s.argv.as_slice());
                    let rc = remote::fetch(&spank, &s.args, s.option, &mut s.step, defer);
                    write_record(id, &mut s.step);
                    rc
                }),
                _ => 0,
            }
        })
    }

    /// srun only: its `-v` takes effect after init_post_opt, so the
    /// plugstack problems are shown here.
    #[no_mangle]
    pub extern "C" fn slurm_spank_local_user_init(
        _sp: sys::spank_t,
        _ac: c_int,
        _argv: *mut *mut c_char,
    ) -> c_int {
        guarded("slurm_spank_local_user_init", || {
            for p in with_state(|s| std::mem::take(&mut s.problems)) {
                log_verbose(&format!("auks: {p}"));
            }
            for m in local::take_late_verbose() {
                log_verbose(&m);
            }
            local::collect()
        })
    }

    #[no_mangle]
    pub extern "C" fn slurm_spank_user_init(
        sp: sys::spank_t,
        _ac: c_int,
        _argv: *mut *mut c_char,
    ) -> c_int {
        guarded("slurm_spank_user_init", || {
            if glue::context() != Ctx::Remote {
                return 0;
            }
            // SAFETY: the handle Slurm passes to this hook.
            let spank = unsafe { Spank::from_raw(sp) };
            with_state(|s| {
                if s.step.pending.is_some() {
                    // slurmstepd runs this hook with the user's effective
                    // uid: the record and the HelperScript need root.
                    match Switch::to_effective_root() {
                        Ok(root) => {
                            remote::credential::collect(
                                &spank,
                                &s.args,
                                &mut s.step,
                                remote::credential::Collect::Step,
                            );
                            write_record(step_id(&spank), &mut s.step);
                            let _ = root.restore();
                        }
                        Err(e) => log_error(&format!(
                            "auks: cannot regain root to collect the credential: {e}"
                        )),
                    }
                }
                let rc = remote::start_renewer(&s.args, &mut s.step);
                match remote::report_failure(&mut s.step) {
                    0 => rc,
                    e => e,
                }
            })
        })
    }

    /// The job record for ssh sessions, once this step has a ccache of
    /// its own and no fetch is pending.
    fn write_record(id: Result<u32, String>, st: &mut remote::StepState) {
        if st.pending.is_none() && st.ccache.as_ref().is_some_and(|c| c.ours) {
            let t = std::time::Instant::now();
            record::after_fetch(id, st);
            st.phases.done_push("record", t.elapsed());
        }
    }

    fn step_id(spank: &Spank) -> Result<u32, String> {
        spank
            .item_u32(sys::spank_item_S_JOB_STEPID)
            .map_err(|e| e.to_string())
    }

    /// The extern step (`PrologFlags=contain`) runs no user_init: its
    /// renewer starts here, once its `sleep` task is forked. Other steps:
    /// nothing.
    #[no_mangle]
    pub extern "C" fn slurm_spank_task_post_fork(
        sp: sys::spank_t,
        _ac: c_int,
        _argv: *mut *mut c_char,
    ) -> c_int {
        guarded("slurm_spank_task_post_fork", || {
            if glue::context() != Ctx::Remote {
                return 0;
            }
            // SAFETY: the handle Slurm passes to this hook.
            let spank = unsafe { Spank::from_raw(sp) };
            if step_id(&spank) != Ok(auks_record::SLURM_EXTERN_CONT) {
                return 0;
            }
            with_state(|s| remote::start_renewer(&s.args, &mut s.step))
        })
    }

    #[no_mangle]
    pub extern "C" fn slurm_spank_task_exit(
        sp: sys::spank_t,
        _ac: c_int,
        _argv: *mut *mut c_char,
    ) -> c_int {
        guarded("slurm_spank_task_exit", || {
            if glue::context() != Ctx::Remote {
                return 0;
            }
            // SAFETY: the handle Slurm passes to this hook.
            let spank = unsafe { Spank::from_raw(sp) };
            with_state(|s| remote::task_exit(&spank, &s.args, &mut s.step))
        })
    }

    #[no_mangle]
    pub extern "C" fn slurm_spank_exit(
        sp: sys::spank_t,
        _ac: c_int,
        _argv: *mut *mut c_char,
    ) -> c_int {
        guarded("slurm_spank_exit", || {
            if glue::context() != Ctx::Remote {
                return 0;
            }
            record::remove();
            // SAFETY: the handle Slurm passes to this hook.
            let spank = unsafe { Spank::from_raw(sp) };
            with_state(|s| remote::exit(&spank, &s.args, &mut s.step))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_status() {
        assert_eq!(guarded("test hook", || 0), 0);
        assert_eq!(guarded("test hook", || panic!("boom")), -1);
        // the state survives a panic while it was locked
        let _ = std::panic::catch_unwind(|| with_state(|_| panic!("poison")));
        with_state(|s| s.option = Some(Mode::Done));
        assert_eq!(with_state(|s| s.option), Some(Mode::Done));
    }

    #[test]
    fn exported_identification() {
        assert_eq!(&plugin_name, b"auks\0");
        assert_eq!(&plugin_type, b"spank\0");
        // Slurm loads a plugin only when its version's major.minor matches
        // its own: the exported value must be the installed headers' one.
        let expected = installed_slurm_version();
        assert_eq!(
            plugin_version, expected,
            "plugin_version {plugin_version:#x}, installed headers {expected:#x}"
        );
        assert_ne!(expected >> 8, 0, "no major.minor in {expected:#x}");
    }

    /// `SLURM_VERSION_NUMBER` of the installed `<slurm/slurm_version.h>`,
    /// read independently of bindgen.
    fn installed_slurm_version() -> c_uint {
        const HEADER: &str = "/usr/include/slurm/slurm_version.h";
        let text = std::fs::read_to_string(HEADER)
            .unwrap_or_else(|e| panic!("cannot read {HEADER} (libslurm-dev): {e}"));
        let value = text
            .lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("#define") && w.next() == Some("SLURM_VERSION_NUMBER"))
                    .then(|| w.next())
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no SLURM_VERSION_NUMBER in {HEADER}"));
        let hex = value
            .strip_prefix("0x")
            .unwrap_or_else(|| panic!("SLURM_VERSION_NUMBER {value} is not hexadecimal"));
        c_uint::from_str_radix(hex, 16)
            .unwrap_or_else(|e| panic!("SLURM_VERSION_NUMBER {value}: {e}"))
    }

    #[test]
    fn hostname_resolution() {
        assert!(canonical_hostname("localhost").is_some());
        assert_eq!(canonical_hostname("no-such-host.invalid"), None);
    }
}
