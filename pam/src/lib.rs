//! `pam_auks_adopt.so`: a Linux-PAM session module. An ssh session that
//! `pam_slurm_adopt` adopted into a Slurm job gets `KRB5CCNAME` naming the
//! job's credential cache on this node, as recorded by the auks SPANK
//! plugin (see `auks_record`). Nothing is copied: the job's renewer keeps
//! the cache fresh and the job's end removes it.
//!
//! This file is the PAM FFI (the only `unsafe` of this crate): every entry
//! point runs inside `catch_unwind`, and every error, doubt or panic is
//! logged (syslog, `LOG_AUTHPRIV`) and answered with `PAM_IGNORE`: this
//! module never blocks a login.
//!
//! Layout: [`args`] (module arguments), [`cgroup`] (the calling process'
//! job step), [`decide`] (record lookup and checks), [`switch`] (primary
//! cache of a collection).

pub mod args;
pub mod cgroup;
pub mod decide;
pub mod switch;

use std::ffi::{c_char, c_int, CStr, CString};

/// Opaque `pam_handle_t`.
#[repr(C)]
pub struct PamHandle {
    _private: [u8; 0],
}

const PAM_SUCCESS: c_int = 0;
const PAM_IGNORE: c_int = 25;
const LOG_AUTHPRIV: c_int = 10 << 3;
const LOG_ERR: c_int = 3;
const LOG_NOTICE: c_int = 5;
const LOG_INFO: c_int = 6;
const LOG_DEBUG: c_int = 7;

#[link(name = "pam")]
extern "C" {
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
        -> c_int;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
    fn pam_strerror(pamh: *mut PamHandle, errnum: c_int) -> *const c_char;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// Log one line through `pam_syslog` (prefixed with the service and
/// module name by libpam).
fn log(pamh: *mut PamHandle, level: c_int, msg: &str) {
    let text = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: pamh is the handle libpam passed to the running entry point;
    // the format is a literal "%s" and its one argument a valid C string.
    unsafe { pam_syslog(pamh, LOG_AUTHPRIV | level, c"%s".as_ptr(), text.as_ptr()) };
}

fn pam_error_text(pamh: *mut PamHandle, rc: c_int) -> String {
    // SAFETY: pam_strerror returns a static string (or NULL) for any code.
    let p = unsafe { pam_strerror(pamh, rc) };
    if p.is_null() {
        format!("PAM error {rc}")
    } else {
        // SAFETY: non-NULL, NUL-terminated, static.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// The module arguments as strings.
///
/// # Safety
/// `argv` must hold `argc` valid C strings (as libpam passes them).
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    if argv.is_null() || argc <= 0 {
        return Vec::new();
    }
    (0..argc as usize)
        .filter_map(|i| {
            // SAFETY: i < argc, per the caller's contract.
            let p = unsafe { *argv.add(i) };
            // SAFETY: each non-NULL entry is a NUL-terminated string.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        })
        .take(32)
        .collect()
}

/// The PAM user's uid and gid.
fn user_ids(pamh: *mut PamHandle) -> Result<(String, u32, u32), String> {
    let mut user: *const c_char = std::ptr::null();
    // SAFETY: valid handle; user receives a pointer owned by libpam.
    let rc = unsafe { pam_get_user(pamh, &mut user, std::ptr::null()) };
    if rc != PAM_SUCCESS || user.is_null() {
        return Err(format!("cannot get the user: {}", pam_error_text(pamh, rc)));
    }
    // SAFETY: non-NULL, NUL-terminated, valid for this call.
    let name = unsafe { CStr::from_ptr(user) }.to_owned();
    // SAFETY: an all-zero passwd (integers and NULL pointers) is a valid
    // out-parameter for getpwnam_r.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as c_char; 16384];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid name, passwd struct and buffer of the given length.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    let shown = name.to_string_lossy().into_owned();
    if rc != 0 || result.is_null() {
        return Err(format!("no account for user {shown}"));
    }
    Ok((shown, pw.pw_uid, pw.pw_gid))
}

/// At most `max` bytes of a text file (empty on any error).
fn read_bounded(path: &str, max: u64) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(max).read_to_string(&mut text);
    }
    text
}

fn open_session(pamh: *mut PamHandle, argv: Vec<String>) -> c_int {
    let (args, problems) = args::parse(&argv);
    for p in problems {
        log(pamh, LOG_ERR, &p);
    }
    let (user, uid, gid) = match user_ids(pamh) {
        Ok(u) => u,
        Err(e) => {
            log(pamh, LOG_ERR, &format!("{e}: ignoring this session"));
            return PAM_IGNORE;
        }
    };
    let cgroup_text = read_bounded("/proc/self/cgroup", 64 * 1024);
    if args.debug {
        log(
            pamh,
            LOG_DEBUG,
            &format!(
                "user {user} (uid {uid}), cgroups: {}",
                cgroup_text.trim().replace('\n', " ")
            ),
        );
    }
    let (outcome, notices) = decide::decide(uid, &cgroup_text, &args);
    for n in notices {
        log(pamh, LOG_NOTICE, &n);
    }
    match outcome {
        decide::Outcome::Ignore(why) => {
            log(
                pamh,
                LOG_INFO,
                &format!("user {user}: no job credential: {why}"),
            );
            PAM_IGNORE
        }
        decide::Outcome::Set {
            ccache,
            jobid,
            step,
        } => {
            let Ok(kv) = CString::new(format!("KRB5CCNAME={ccache}")) else {
                return PAM_IGNORE;
            };
            // SAFETY: valid handle and NUL-terminated "name=value" (libpam
            // copies it).
            let rc = unsafe { pam_putenv(pamh, kv.as_ptr()) };
            if rc != PAM_SUCCESS {
                log(
                    pamh,
                    LOG_ERR,
                    &format!("cannot set KRB5CCNAME: {}", pam_error_text(pamh, rc)),
                );
                return PAM_IGNORE;
            }
            log(
                pamh,
                LOG_INFO,
                &format!(
                    "user {user}: session adopted into job {jobid}: KRB5CCNAME={ccache} (from the {} step)",
                    step.name()
                ),
            );
            if args.switch && switch::applies(decide::ccache_type(&ccache)) {
                if let Err(e) = switch::run(&ccache, uid, gid) {
                    log(pamh, LOG_NOTICE, &format!("switch to {ccache}: {e}"));
                }
            }
            PAM_SUCCESS
        }
    }
}

/// Run an entry point body; a panic is logged and becomes `PAM_IGNORE`.
fn guarded(pamh: *mut PamHandle, f: impl FnOnce() -> c_int) -> c_int {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(_) => {
            let _ = std::panic::catch_unwind(|| log(pamh, LOG_ERR, "internal error: ignoring"));
            PAM_IGNORE
        }
    }
}

/// PAM session open.
///
/// # Safety
/// Called by libpam with a valid handle and `argc` argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_open_session(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    guarded(pamh, || {
        // SAFETY: argv holds argc strings, as libpam guarantees.
        let argv = unsafe { arguments(argc, argv) };
        open_session(pamh, argv)
    })
}

/// PAM session close: nothing to undo (the job owns its ccache).
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_close_session(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// Not an auth, account or password module: always `PAM_IGNORE`.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// See [`pam_sm_authenticate`].
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// See [`pam_sm_authenticate`].
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}
