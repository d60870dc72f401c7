//! [`Ccache`]: a credential cache handle (FILE, DIR, KEYRING, KCM, MEMORY):
//! resolve or create one, read its principal and credentials, initialise
//! and fill it, switch the collection's primary, destroy it.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;

use super::context::Context;
use super::creds::Creds;
use super::data::cstring;
use super::error::Result;
use super::ffi;
use super::principal::Principal;

/// A credential cache handle. Dropping it closes the handle (the cache
/// itself remains unless [`Ccache::destroy`] is called).
pub struct Ccache<'a> {
    pub(super) ctx: &'a Context,
    pub(super) raw: ffi::krb5_ccache,
}

impl<'a> Ccache<'a> {
    /// The default ccache (`KRB5CCNAME`, krb5.conf, or the library default).
    pub fn default(ctx: &'a Context) -> Result<Self> {
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: valid context; raw receives an owned handle on success.
        ctx.check("krb5_cc_default", unsafe {
            ffi::lib().krb5_cc_default(ctx.raw, &mut raw)
        })?;
        Ok(Ccache { ctx, raw })
    }

    /// Resolve a ccache by name (`TYPE:residual`; plain paths are FILE).
    pub fn resolve(ctx: &'a Context, name: &str) -> Result<Self> {
        let c = cstring("krb5_cc_resolve", name)?;
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: valid context and string; raw receives an owned handle.
        ctx.check("krb5_cc_resolve", unsafe {
            ffi::lib().krb5_cc_resolve(ctx.raw, c.as_ptr(), &mut raw)
        })?;
        Ok(Ccache { ctx, raw })
    }

    /// Create a new unique ccache of the given type (e.g. "FILE",
    /// "KEYRING", "KCM", "DIR", "MEMORY").
    pub fn new_unique(ctx: &'a Context, cc_type: &str) -> Result<Self> {
        let t = cstring("krb5_cc_new_unique", cc_type)?;
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: valid context and type string; hint may be NULL.
        ctx.check("krb5_cc_new_unique", unsafe {
            ffi::lib().krb5_cc_new_unique(ctx.raw, t.as_ptr(), ptr::null(), &mut raw)
        })?;
        Ok(Ccache { ctx, raw })
    }

    /// Full name, `TYPE:residual`.
    pub fn full_name(&self) -> Result<String> {
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: valid handle; out receives a string freed below.
        self.ctx.check("krb5_cc_get_full_name", unsafe {
            ffi::lib().krb5_cc_get_full_name(self.ctx.raw, self.raw, &mut out)
        })?;
        // SAFETY: out is a NUL-terminated string allocated by libkrb5.
        let s = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: freed once with the matching function.
        unsafe { ffi::lib().krb5_free_string(self.ctx.raw, out) };
        Ok(s)
    }

    /// The type of this ccache ("FILE", "KEYRING", ...).
    pub fn cc_type(&self) -> String {
        // SAFETY: returns a static string owned by the ccache ops table.
        let p = unsafe { ffi::lib().krb5_cc_get_type(self.ctx.raw, self.raw) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL NUL-terminated static string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// The residual part of the name (the path for FILE caches).
    pub fn residual(&self) -> String {
        // SAFETY: returns a string owned by the handle; copied at once.
        let p = unsafe { ffi::lib().krb5_cc_get_name(self.ctx.raw, self.raw) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL NUL-terminated string valid while self lives.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// Default principal of the cache.
    pub fn principal(&self) -> Result<Principal<'a>> {
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: valid handle; raw receives an owned principal.
        self.ctx.check("krb5_cc_get_principal", unsafe {
            ffi::lib().krb5_cc_get_principal(self.ctx.raw, self.raw, &mut raw)
        })?;
        Ok(Principal { ctx: self.ctx, raw })
    }

    /// Empty the cache and set its default principal.
    pub fn initialize(&self, principal: &Principal<'_>) -> Result<()> {
        // SAFETY: valid handle and principal (copied by libkrb5).
        self.ctx.check("krb5_cc_initialize", unsafe {
            ffi::lib().krb5_cc_initialize(self.ctx.raw, self.raw, principal.raw)
        })
    }

    /// Store one credential.
    pub fn store(&self, creds: &mut Creds<'_>) -> Result<()> {
        // SAFETY: valid handle and creds; libkrb5 copies what it stores.
        self.ctx.check("krb5_cc_store_cred", unsafe {
            ffi::lib().krb5_cc_store_cred(self.ctx.raw, self.raw, creds.as_mut_ptr())
        })
    }

    /// Make `dst` hold this cache's principal and credentials (configuration
    /// entries skipped), e.g. a MEMORY copy a thread reads without a file.
    pub fn copy_to(&self, dst: &Ccache<'_>) -> Result<()> {
        dst.initialize(&self.principal()?)?;
        for mut c in self.creds()? {
            dst.store(&mut c)?;
        }
        Ok(())
    }

    /// All credentials in the cache (configuration entries skipped).
    pub fn creds(&self) -> Result<Vec<Creds<'a>>> {
        let mut cursor: ffi::krb5_cc_cursor = ptr::null_mut();
        // SAFETY: valid handle; the cursor is ended below on every path.
        self.ctx.check("krb5_cc_start_seq_get", unsafe {
            ffi::lib().krb5_cc_start_seq_get(self.ctx.raw, self.raw, &mut cursor)
        })?;
        let mut out = Vec::new();
        let result = loop {
            let mut raw = Box::<ffi::krb5_creds>::default();
            // SAFETY: valid handle and cursor; raw is zeroed storage that
            // receives owned contents on success.
            let code = unsafe {
                ffi::lib().krb5_cc_next_cred(self.ctx.raw, self.raw, &mut cursor, &mut *raw)
            };
            if code == ffi::KRB5_CC_END {
                break Ok(());
            }
            if code != 0 {
                break Err(self.ctx.error("krb5_cc_next_cred", code));
            }
            let c = Creds { ctx: self.ctx, raw };
            if !c.is_config_entry() {
                out.push(c);
            }
        };
        // SAFETY: ends the sequence started above.
        unsafe { ffi::lib().krb5_cc_end_seq_get(self.ctx.raw, self.raw, &mut cursor) };
        result.map(|()| out)
    }

    /// Make this cache the primary one of its collection (errors ignored
    /// by callers that only try).
    pub fn switch_to(&self) -> Result<()> {
        // SAFETY: valid handle.
        self.ctx.check("krb5_cc_switch", unsafe {
            ffi::lib().krb5_cc_switch(self.ctx.raw, self.raw)
        })
    }

    /// Whether the cache type supports collections (`switch`).
    pub fn supports_switch(&self) -> bool {
        let t = match CString::new(self.cc_type()) {
            Ok(t) => t,
            Err(_) => return false,
        };
        // SAFETY: valid context and type string.
        unsafe { ffi::lib().krb5_cc_support_switch(self.ctx.raw, t.as_ptr()) != 0 }
    }

    /// Destroy the cache (removes the file / keyring entry).
    pub fn destroy(self) -> Result<()> {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: krb5_cc_destroy also closes the handle, so Drop must not
        // run (ManuallyDrop).
        me.ctx.check("krb5_cc_destroy", unsafe {
            ffi::lib().krb5_cc_destroy(me.ctx.raw, me.raw)
        })
    }
}

impl Drop for Ccache<'_> {
    fn drop(&mut self) {
        // SAFETY: closes the handle once.
        unsafe {
            ffi::lib().krb5_cc_close(self.ctx.raw, self.raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::creds::fake::{creds, Fake};
    use super::*;

    #[test]
    fn missing_ccache_is_reported_as_missing() {
        let ctx = Context::new().unwrap();
        let cc = Ccache::resolve(&ctx, "FILE:/nonexistent/dir/ccache").unwrap();
        assert_eq!(cc.cc_type(), "FILE");
        assert_eq!(cc.residual(), "/nonexistent/dir/ccache");
        let e = cc.principal().err().expect("missing ccache must fail");
        assert_eq!(e.op, "krb5_cc_get_principal");
        assert!(e.code != 0);
        assert!(!e.message.is_empty());
        assert!(e.is_ccache_missing(), "{e:?}");
        assert!(Ccache::resolve(&ctx, "FILE:/tmp/a\0b").is_err());
    }

    #[test]
    fn memory_ccache_round_trip_without_kdc() {
        let ctx = Context::new().unwrap();
        let cc = Ccache::new_unique(&ctx, "MEMORY").unwrap();
        let p = Principal::parse(&ctx, "bob@EXAMPLE.ORG").unwrap();
        cc.initialize(&p).unwrap();
        assert_eq!(cc.principal().unwrap().name().unwrap(), "bob@EXAMPLE.ORG");
        assert!(cc.creds().unwrap().is_empty());
        assert_eq!(cc.cc_type(), "MEMORY");
        let full = cc.full_name().unwrap();
        assert_eq!(full, format!("MEMORY:{}", cc.residual()));
        cc.destroy().unwrap();
    }

    #[test]
    fn stored_creds_are_read_back_through_another_handle() {
        let ctx = Context::new().unwrap();
        let cc = Ccache::new_unique(&ctx, "MEMORY").unwrap();
        let p = Principal::parse(&ctx, "bob@EXAMPLE.ORG").unwrap();
        cc.initialize(&p).unwrap();
        let times = [100, 0, 2_000_000_000, 0];
        let mut tgt = creds(
            &ctx,
            "bob@EXAMPLE.ORG",
            "krbtgt/EXAMPLE.ORG@EXAMPLE.ORG",
            Fake { times, flags: 0 },
        );
        let mut svc = creds(
            &ctx,
            "bob@EXAMPLE.ORG",
            "host/n1@EXAMPLE.ORG",
            Fake { times, flags: 0 },
        );
        cc.store(&mut tgt).unwrap();
        cc.store(&mut svc).unwrap();

        let again = Ccache::resolve(&ctx, &cc.full_name().unwrap()).unwrap();
        let read = again.creds().unwrap();
        assert_eq!(read.len(), 2);
        assert!(read[0].is_local_tgt());
        assert_eq!(read[0].endtime(), 2_000_000_000);
        assert_eq!(
            read[1].server_principal().unwrap().name().unwrap(),
            "host/n1@EXAMPLE.ORG"
        );
        drop(again);
        cc.destroy().unwrap();
    }

    #[test]
    fn memory_caches_have_no_collection_switch() {
        let ctx = Context::new().unwrap();
        let cc = Ccache::new_unique(&ctx, "MEMORY").unwrap();
        assert!(!cc.supports_switch());
        cc.destroy().unwrap();
    }
}
