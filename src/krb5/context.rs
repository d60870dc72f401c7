//! [`Context`]: the libkrb5 library handle. Every other krb5 object borrows
//! one, so the borrow checker guarantees the context outlives them. It also
//! turns libkrb5 error codes into [`Error`]s carrying the library's message.

use std::ffi::CStr;
use std::ptr;

use super::data::ts;
use super::error::{Error, Result};
use super::ffi;

/// The `op` of the error of a [`Context::new`] that could not load libkrb5.
pub(super) const DLOPEN_OP: &str = "dlopen";

/// libkrb5's clock skew when krb5.conf sets none (MIT's default).
const DEFAULT_SKEW: i64 = 300;
/// The clock skew assumed when krb5.conf's cannot be read as seconds.
pub const SKEW_UNREADABLE: i64 = 3600;

/// A libkrb5 context. Not `Sync`: one per thread or per connection.
pub struct Context {
    pub(super) raw: ffi::krb5_context,
}

// SAFETY: an MIT krb5_context may be used from any thread as long as it is
// not used from two threads at once; `Context` is not `Sync`, so moving it
// is all `Send` allows.
unsafe impl Send for Context {}

impl Context {
    /// Create a context from the system (or `KRB5_CONFIG`) configuration.
    /// The first context of a process loads libkrb5 (see `ffi`).
    pub fn new() -> Result<Self> {
        let lib = ffi::load().map_err(|message| Error {
            op: DLOPEN_OP,
            code: libc::ELIBACC,
            message,
        })?;
        let mut raw: ffi::krb5_context = ptr::null_mut();
        // SAFETY: krb5_init_context writes a new context into `raw` and
        // returns 0, or returns an error code and leaves it unusable.
        let code = unsafe { lib.krb5_init_context(&mut raw) };
        if code != 0 {
            return Err(Error {
                op: "krb5_init_context",
                code,
                message: format!(
                    "cannot initialise Kerberos (error {code}); check krb5.conf / KRB5_CONFIG"
                ),
            });
        }
        Ok(Context { raw })
    }

    /// The [`Error`] for a failed call: `op`, `code` and libkrb5's message.
    pub(super) fn error(&self, op: &'static str, code: ffi::krb5_error_code) -> Error {
        // SAFETY: the context is valid; krb5_get_error_message returns a
        // newly allocated NUL-terminated string (never NULL in MIT) that we
        // copy and release with krb5_free_error_message.
        let message = unsafe {
            let m = ffi::lib().krb5_get_error_message(self.raw, code);
            if m.is_null() {
                format!("error {code}")
            } else {
                let s = CStr::from_ptr(m).to_string_lossy().into_owned();
                ffi::lib().krb5_free_error_message(self.raw, m);
                s
            }
        };
        Error { op, code, message }
    }

    /// `Ok` for code 0, else the [`Error`] for the failed call.
    pub(super) fn check(&self, op: &'static str, code: ffi::krb5_error_code) -> Result<()> {
        if code == 0 {
            Ok(())
        } else {
            Err(self.error(op, code))
        }
    }

    /// Name of the default credential cache (`KRB5CCNAME` or krb5.conf).
    pub fn default_ccache_name(&self) -> Result<String> {
        // SAFETY: returns a pointer owned by the context (valid until the
        // next call that changes the default name); copied at once.
        let p = unsafe { ffi::lib().krb5_cc_default_name(self.raw) };
        if p.is_null() {
            return Err(Error::local(
                "krb5_cc_default_name",
                "no default ccache name",
            ));
        }
        // SAFETY: non-NULL, NUL-terminated string owned by the context.
        Ok(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// Run `f` with this thread's kept context, created on first use and
    /// freed when the thread ends: a thread making many requests (the
    /// renewer's, a load generator's) reads krb5.conf and sets up libkrb5
    /// once instead of once per request. The default ccache name is
    /// forgotten before each use, so `KRB5CCNAME` is read again as a new
    /// context would; what libkrb5 sets up when it creates a context (the
    /// default realm, the clock skew, the KDC time offset taken from the
    /// first ccache it reads) stays for the thread's life. Calls may nest:
    /// they share the context.
    pub fn with_kept<T, E: From<Error>>(
        f: impl FnOnce(&Context) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        thread_local! {
            static KEPT: std::cell::OnceCell<Context> = const { std::cell::OnceCell::new() };
        }
        KEPT.with(|kept| {
            let ctx = match kept.get() {
                Some(c) => c,
                None => {
                    let c = Context::new()?;
                    kept.get_or_init(|| c)
                }
            };
            // SAFETY: valid context; NULL resets the default name, which
            // libkrb5 recomputes from the environment on its next use.
            ctx.check("krb5_cc_set_default_name", unsafe {
                ffi::lib().krb5_cc_set_default_name(ctx.raw, ptr::null())
            })?;
            f(ctx)
        })
    }

    /// The clock skew libkrb5 accepts (`[libdefaults] clockskew`, default
    /// 300 s): an authenticator is accepted within this many seconds of
    /// the local clock. A value libkrb5's profile cannot read as an
    /// integer gives [`SKEW_UNREADABLE`], more than any usual setting.
    pub fn clock_skew(&self) -> i64 {
        let mut profile: *mut ffi::_profile_t = ptr::null_mut();
        // SAFETY: valid context; profile receives a handle released below.
        if unsafe { ffi::lib().krb5_get_profile(self.raw, &mut profile) } != 0 || profile.is_null()
        {
            return SKEW_UNREADABLE;
        }
        let mut skew: std::os::raw::c_int = 0;
        // SAFETY: valid profile handle, static NUL-terminated names, one
        // int written; the handle is released once.
        let code = unsafe {
            let code = ffi::lib().profile_get_integer(
                profile,
                c"libdefaults".as_ptr(),
                c"clockskew".as_ptr(),
                ptr::null(),
                DEFAULT_SKEW as std::os::raw::c_int,
                &mut skew,
            );
            ffi::lib().profile_release(profile);
            code
        };
        if code != 0 || skew < 0 {
            SKEW_UNREADABLE
        } else {
            i64::from(skew)
        }
    }

    /// Current time according to libkrb5 (honours clock offsets).
    pub fn now(&self) -> i64 {
        let mut t: ffi::krb5_timestamp = 0;
        // SAFETY: writes one timestamp.
        let code = unsafe { ffi::lib().krb5_timeofday(self.raw, &mut t) };
        if code != 0 {
            return chrono::Utc::now().timestamp();
        }
        ts(t)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: raw was created by krb5_init_context and is freed once;
        // every object borrowing the context has been dropped (lifetimes).
        unsafe { ffi::lib().krb5_free_context(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_created_and_dropped_independently() {
        let a = Context::new().unwrap();
        let b = Context::new().unwrap();
        assert_ne!(a.raw, b.raw);
        drop(a);
        // b still works after a is gone.
        assert!(b.now() > 1_600_000_000);
    }

    #[test]
    fn now_follows_the_system_clock() {
        let ctx = Context::new().unwrap();
        let sys = chrono::Utc::now().timestamp();
        assert!((ctx.now() - sys).abs() <= 5, "{} vs {sys}", ctx.now());
    }

    #[test]
    fn errors_carry_libkrb5_message() {
        let ctx = Context::new().unwrap();
        let e = ctx.error("krb5_cc_resolve", ffi::KRB5_FCC_NOFILE);
        assert_eq!(e.op, "krb5_cc_resolve");
        assert_eq!(e.code, ffi::KRB5_FCC_NOFILE);
        // MIT's com_err text for KRB5_FCC_NOFILE.
        assert!(e.message.contains("No credentials cache found"), "{e}");
        assert!(ctx.check("op", 0).is_ok());
        assert_eq!(
            ctx.check("op", ffi::KRB5_CC_END).unwrap_err().code,
            ffi::KRB5_CC_END
        );
    }

    #[test]
    fn the_kept_context_is_one_per_thread_and_forgets_its_default_ccache_name() {
        let raw = |c: &Context| Ok::<_, Error>(c.raw as usize);
        let a = Context::with_kept(raw).unwrap();
        assert_eq!(Context::with_kept(raw).unwrap(), a, "kept");
        let nested =
            Context::with_kept(|c| Ok::<_, Error>((c.raw as usize, Context::with_kept(raw)?)));
        assert_eq!(nested.unwrap(), (a, a), "nested calls share it");
        let other = std::thread::spawn(move || Context::with_kept(raw).unwrap())
            .join()
            .unwrap();
        assert_ne!(other, a, "one per thread");
        // A default name set on the kept context (as a KRB5CCNAME read
        // earlier would be) is forgotten: the next use sees what a new
        // context sees.
        let fresh = Context::new().unwrap().default_ccache_name().unwrap();
        Context::with_kept(|c| {
            // SAFETY: valid context and NUL-terminated name (copied).
            c.check("krb5_cc_set_default_name", unsafe {
                ffi::lib().krb5_cc_set_default_name(c.raw, c"FILE:/nonexistent/kept".as_ptr())
            })?;
            assert_eq!(c.default_ccache_name()?, "FILE:/nonexistent/kept");
            Ok::<_, Error>(())
        })
        .unwrap();
        let again = Context::with_kept(|c| c.default_ccache_name()).unwrap();
        assert_eq!(again, fresh);
    }

    #[test]
    fn clock_skew_is_libkrb5s_default_when_krb5_conf_sets_none() {
        let conf = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".into());
        let text = std::fs::read_to_string(conf).unwrap_or_default();
        let skew = Context::new().unwrap().clock_skew();
        if text.contains("clockskew") {
            assert!((1..=SKEW_UNREADABLE).contains(&skew), "{skew}");
        } else {
            assert_eq!(skew, DEFAULT_SKEW);
        }
    }

    #[test]
    fn default_ccache_name_is_not_empty() {
        let ctx = Context::new().unwrap();
        assert!(!ctx.default_ccache_name().unwrap().is_empty());
    }
}
