//! [`Keytab`]: a keytab handle: list the principals it holds and get a TGT
//! from it (the AS exchange used by aukspriv and the plugin's host TGT).

use std::ptr;

use super::ap_server::ServiceCache;
use super::context::Context;
use super::creds::Creds;
use super::data::cstring;
use super::error::Result;
use super::ffi;
use super::principal::{unparse, Principal};

/// A keytab handle.
pub struct Keytab<'a> {
    pub(super) ctx: &'a Context,
    pub(super) raw: ffi::krb5_keytab,
    /// What AP-REQs verified without libkrb5 need ([`super::ap_server`]).
    pub(super) service: ServiceCache,
}

impl<'a> Keytab<'a> {
    /// Resolve a keytab by name (a plain path is a FILE keytab).
    pub fn resolve(ctx: &'a Context, name: &str) -> Result<Self> {
        let c = cstring("krb5_kt_resolve", name)?;
        let mut raw: ffi::krb5_keytab = ptr::null_mut();
        // SAFETY: valid context and string; raw receives an owned handle.
        ctx.check("krb5_kt_resolve", unsafe {
            ffi::lib().krb5_kt_resolve(ctx.raw, c.as_ptr(), &mut raw)
        })?;
        Ok(Keytab {
            ctx,
            raw,
            service: ServiceCache::default(),
        })
    }

    /// Leave every AP-REQ verified with this keytab to `krb5_rd_req`, and
    /// the AP-REP to `krb5_mk_rep`, as a C auksd does (tests of our
    /// client against libkrb5's server side).
    pub fn libkrb5_only(&self) {
        self.service
            .off
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The distinct principal names in the keytab, in file order.
    pub fn principals(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        self.for_each_entry(|entry| {
            let n = unparse(self.ctx, entry.principal)?;
            if !out.contains(&n) {
                out.push(n);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// A copy of the entries of this keytab for principal `only` (every
    /// entry when `None`) in a MEMORY keytab of its own. libkrb5 reads a
    /// FILE keytab again at every AP-REQ it verifies (an open, a lock,
    /// several reads and a close); the copy answers from memory, and holds
    /// no other principal's keys. libkrb5 wipes the copied keys when the
    /// last handle to the MEMORY keytab is closed.
    pub fn copy_to_memory(&self, only: Option<&str>) -> Result<Keytab<'a>> {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let copy = Keytab::resolve(
            self.ctx,
            &format!("MEMORY:auks-rs-copy-{}-{n}", std::process::id()),
        )?;
        self.for_each_entry(|entry| {
            if let Some(p) = only {
                if unparse(self.ctx, entry.principal)? != p {
                    return Ok(());
                }
            }
            // SAFETY: valid handles; `entry` is a complete entry read by
            // krb5_kt_next_entry, only borrowed: the MEMORY keytab stores
            // its own copy of the principal and the key.
            copy.ctx.check("krb5_kt_add_entry", unsafe {
                ffi::lib().krb5_kt_add_entry(copy.ctx.raw, copy.raw, entry)
            })
        })?;
        Ok(copy)
    }

    /// Call `f` on every entry, in file order; each entry is freed (its
    /// key wiped by libkrb5) right after `f` returns.
    fn for_each_entry(
        &self,
        mut f: impl FnMut(&mut ffi::krb5_keytab_entry) -> Result<()>,
    ) -> Result<()> {
        let mut cursor: ffi::krb5_kt_cursor = ptr::null_mut();
        // SAFETY: valid handle; ended below.
        self.ctx.check("krb5_kt_start_seq_get", unsafe {
            ffi::lib().krb5_kt_start_seq_get(self.ctx.raw, self.raw, &mut cursor)
        })?;
        let result = loop {
            let mut entry = ffi::krb5_keytab_entry::default();
            // SAFETY: valid handle/cursor; entry receives owned contents,
            // freed right after use.
            let code = unsafe {
                ffi::lib().krb5_kt_next_entry(self.ctx.raw, self.raw, &mut entry, &mut cursor)
            };
            if code == ffi::KRB5_KT_END {
                break Ok(());
            }
            if code != 0 {
                break Err(self.ctx.error("krb5_kt_next_entry", code));
            }
            let r = f(&mut entry);
            // SAFETY: frees the entry contents once (libkrb5 zeroes the key).
            unsafe { ffi::lib().krb5_free_keytab_entry_contents(self.ctx.raw, &mut entry) };
            if let Err(e) = r {
                break Err(e);
            }
        };
        // SAFETY: ends the sequence started above.
        unsafe { ffi::lib().krb5_kt_end_seq_get(self.ctx.raw, self.raw, &mut cursor) };
        result
    }

    /// Get a TGT for `client` from this keytab (AS exchange).
    pub fn get_tgt(
        &self,
        client: &Principal<'_>,
        lifetime: Option<i32>,
        renew_lifetime: Option<i32>,
    ) -> Result<Creds<'a>> {
        let mut opt: *mut ffi::krb5_get_init_creds_opt = ptr::null_mut();
        // SAFETY: allocates an options struct freed below.
        self.ctx.check("krb5_get_init_creds_opt_alloc", unsafe {
            ffi::lib().krb5_get_init_creds_opt_alloc(self.ctx.raw, &mut opt)
        })?;
        // SAFETY: opt is valid until freed below; the setters only store
        // values in it. No address list is set: libkrb5 then follows
        // krb5.conf `noaddresses` (default true, an addressless ticket).
        unsafe {
            if let Some(l) = lifetime {
                ffi::lib().krb5_get_init_creds_opt_set_tkt_life(opt, l);
            }
            if let Some(r) = renew_lifetime {
                ffi::lib().krb5_get_init_creds_opt_set_renew_life(opt, r);
            }
        }
        let mut raw = Box::<ffi::krb5_creds>::default();
        // SAFETY: valid context, creds storage, principal, keytab, options;
        // on success raw owns the new credential contents.
        let code = unsafe {
            ffi::lib().krb5_get_init_creds_keytab(
                self.ctx.raw,
                &mut *raw,
                client.raw,
                self.raw,
                0,
                ptr::null(),
                opt,
            )
        };
        // SAFETY: frees the options allocated above.
        unsafe { ffi::lib().krb5_get_init_creds_opt_free(self.ctx.raw, opt) };
        self.ctx.check("krb5_get_init_creds_keytab", code)?;
        Ok(Creds { ctx: self.ctx, raw })
    }
}

impl Drop for Keytab<'_> {
    fn drop(&mut self) {
        // SAFETY: closes the handle once.
        unsafe {
            ffi::lib().krb5_kt_close(self.ctx.raw, self.raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Add one (dummy-keyed) entry for `name` with key version `vno`.
    fn add(kt: &Keytab<'_>, name: &str, vno: u32) {
        let p = Principal::parse(kt.ctx, name).unwrap();
        let mut key = [7u8; 16];
        let mut entry = ffi::krb5_keytab_entry {
            principal: p.raw,
            vno,
            ..Default::default()
        };
        entry.key.enctype = 17; // aes128-cts-hmac-sha1-96
        entry.key.length = key.len() as u32;
        entry.key.contents = key.as_mut_ptr();
        // SAFETY: entry borrows the principal and key buffer, both alive
        // for the call; the keytab stores its own copy.
        let code = unsafe { ffi::lib().krb5_kt_add_entry(kt.ctx.raw, kt.raw, &mut entry) };
        kt.ctx.check("krb5_kt_add_entry", code).unwrap();
    }

    #[test]
    fn memory_keytab_lists_each_principal_once_in_order() {
        let ctx = Context::new().unwrap();
        let name = format!("MEMORY:auks-rs-test-{}", std::process::id());
        let kt = Keytab::resolve(&ctx, &name).unwrap();
        assert!(kt.principals().unwrap().is_empty());
        add(&kt, "host/node1@EXAMPLE.ORG", 1);
        add(&kt, "auks/server@EXAMPLE.ORG", 1);
        add(&kt, "host/node1@EXAMPLE.ORG", 2);
        assert_eq!(
            kt.principals().unwrap(),
            vec!["host/node1@EXAMPLE.ORG", "auks/server@EXAMPLE.ORG"]
        );
    }

    #[test]
    fn memory_copy_holds_every_entry_and_goes_with_its_last_handle() {
        let ctx = Context::new().unwrap();
        let name = format!("MEMORY:auks-rs-test-copy-{}", std::process::id());
        let kt = Keytab::resolve(&ctx, &name).unwrap();
        add(&kt, "auks/server@EXAMPLE.ORG", 1);
        add(&kt, "auks/server@EXAMPLE.ORG", 2);
        add(&kt, "host/node1@EXAMPLE.ORG", 1);
        let copy = kt.copy_to_memory(None).unwrap();
        let only = kt.copy_to_memory(Some("auks/server@EXAMPLE.ORG")).unwrap();
        drop(kt);
        assert_eq!(only.principals().unwrap(), vec!["auks/server@EXAMPLE.ORG"]);
        let mut kept = 0;
        only.for_each_entry(|_| {
            kept += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(kept, 2, "both kvnos of the principal");
        assert_eq!(
            copy.principals().unwrap(),
            vec!["auks/server@EXAMPLE.ORG", "host/node1@EXAMPLE.ORG"]
        );
        let mut entries = 0;
        copy.for_each_entry(|_| {
            entries += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(entries, 3);
        // The original went with its last handle: the name is empty again.
        let again = Keytab::resolve(&ctx, &name).unwrap();
        assert!(again.principals().unwrap().is_empty());
    }

    #[test]
    fn missing_keytab_file_is_an_error() {
        let ctx = Context::new().unwrap();
        let kt = Keytab::resolve(&ctx, "FILE:/nonexistent/dir/krb5.keytab").unwrap();
        let e = kt.principals().expect_err("a missing keytab must fail");
        assert_eq!(e.op, "krb5_kt_start_seq_get");
        assert_ne!(e.code, 0);
        assert!(!e.message.is_empty());
        assert!(Keytab::resolve(&ctx, "FILE:/a\0b").is_err());
    }
}
