//! [`Principal`]: an owned Kerberos principal name, parsed by libkrb5 and
//! freed on drop, with the accessors AUKS needs (full name, realm,
//! components, local account name).

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::ptr;

use super::context::Context;
use super::data::{cstring, data_string};
use super::error::Result;
use super::ffi;

/// Escape a realm or component for use in a principal string.
pub(super) fn escape_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '/' | '@' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An owned principal.
pub struct Principal<'a> {
    pub(super) ctx: &'a Context,
    pub(super) raw: ffi::krb5_principal,
}

impl<'a> Principal<'a> {
    /// Parse a principal name (`name/inst@REALM`; the default realm is
    /// appended when none is given).
    pub fn parse(ctx: &'a Context, name: &str) -> Result<Self> {
        let c = cstring("krb5_parse_name", name)?;
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: valid context and NUL-terminated string; on success raw
        // owns a new principal.
        ctx.check("krb5_parse_name", unsafe {
            ffi::lib().krb5_parse_name(ctx.raw, c.as_ptr(), &mut raw)
        })?;
        Ok(Principal { ctx, raw })
    }

    /// `krbtgt/TARGET@ISSUER`.
    pub fn tgs(ctx: &'a Context, target_realm: &str, issuer_realm: &str) -> Result<Self> {
        Principal::parse(
            ctx,
            &format!(
                "krbtgt/{}@{}",
                escape_component(target_realm),
                escape_component(issuer_realm)
            ),
        )
    }

    /// An independent copy of a principal owned by another libkrb5 object.
    pub(super) fn copy_of(ctx: &'a Context, p: ffi::krb5_const_principal) -> Result<Self> {
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: p is a valid principal owned by a live libkrb5 object;
        // krb5_copy_principal allocates an independent copy.
        ctx.check("krb5_copy_principal", unsafe {
            ffi::lib().krb5_copy_principal(ctx.raw, p, &mut raw)
        })?;
        Ok(Principal { ctx, raw })
    }

    /// The full name, `name/inst@REALM`.
    pub fn name(&self) -> Result<String> {
        unparse(self.ctx, self.raw)
    }

    /// The realm of this principal.
    pub fn realm(&self) -> String {
        // SAFETY: raw is a valid principal; realm is a krb5_data of
        // `length` bytes (not NUL-terminated).
        unsafe { data_string(&(*self.raw).realm) }
    }

    /// The name components (without the realm).
    pub fn components(&self) -> Vec<String> {
        // SAFETY: raw is valid; data points to `length` krb5_data entries.
        unsafe {
            let p = &*self.raw;
            let n = usize::try_from(p.length).unwrap_or(0);
            (0..n).map(|i| data_string(&*p.data.add(i))).collect()
        }
    }

    /// Local account name for this principal (`auth_to_local` rules).
    pub fn local_name(&self) -> Result<String> {
        let mut buf = [0 as c_char; 512];
        // SAFETY: buf is writable for its length; libkrb5 writes a
        // NUL-terminated name of at most lnsize bytes.
        self.ctx.check("krb5_aname_to_localname", unsafe {
            ffi::lib().krb5_aname_to_localname(
                self.ctx.raw,
                self.raw,
                buf.len() as c_int,
                buf.as_mut_ptr(),
            )
        })?;
        // SAFETY: NUL-terminated by libkrb5 on success.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }
}

impl Drop for Principal<'_> {
    fn drop(&mut self) {
        // SAFETY: raw is owned by self and freed once.
        unsafe { ffi::lib().krb5_free_principal(self.ctx.raw, self.raw) }
    }
}

/// The full name (`name/inst@REALM`) of a principal owned elsewhere.
pub(super) fn unparse(ctx: &Context, p: ffi::krb5_const_principal) -> Result<String> {
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: p is a valid principal; out receives a string that we copy
    // and free with krb5_free_unparsed_name.
    ctx.check("krb5_unparse_name", unsafe {
        ffi::lib().krb5_unparse_name(ctx.raw, p, &mut out)
    })?;
    // SAFETY: out is a NUL-terminated string allocated by libkrb5.
    let s = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed once, with the matching deallocator.
    unsafe { ffi::lib().krb5_free_unparsed_name(ctx.raw, out) };
    Ok(s)
}

/// The realm and components of a libkrb5 principal, borrowed from it
/// (`None` for NULL).
///
/// # Safety
/// `p` must be NULL or a valid principal that outlives `'p`.
pub(super) unsafe fn raw_parts<'p>(
    p: ffi::krb5_const_principal,
) -> Option<(&'p [u8], Vec<&'p [u8]>)> {
    if p.is_null() {
        return None;
    }
    let bytes = |d: &ffi::krb5_data| -> &'p [u8] {
        if d.data.is_null() {
            return &[];
        }
        // SAFETY: a krb5_data of the principal points to `length` bytes
        // owned by it, alive for 'p (the caller's guarantee).
        unsafe { std::slice::from_raw_parts(d.data.cast::<u8>(), d.length as usize) }
    };
    // SAFETY: a valid principal (the caller's guarantee) whose `data`
    // holds `length` components.
    unsafe {
        let p = &*p;
        let n = usize::try_from(p.length).unwrap_or(0);
        let comps = if p.data.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(p.data, n)
                .iter()
                .map(bytes)
                .collect()
        };
        Some((bytes(&p.realm), comps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_unparse_principal() {
        let ctx = Context::new().unwrap();
        let p = Principal::parse(&ctx, "alice/admin@EXAMPLE.ORG").unwrap();
        assert_eq!(p.name().unwrap(), "alice/admin@EXAMPLE.ORG");
        assert_eq!(p.realm(), "EXAMPLE.ORG");
        assert_eq!(p.components(), vec!["alice", "admin"]);
        let single = Principal::parse(&ctx, "bob@B.ORG").unwrap();
        assert_eq!(single.components(), vec!["bob"]);
    }

    #[test]
    fn tgs_principal_escapes_its_realms() {
        let ctx = Context::new().unwrap();
        let t = Principal::tgs(&ctx, "A.ORG", "B.ORG").unwrap();
        assert_eq!(t.name().unwrap(), "krbtgt/A.ORG@B.ORG");
        assert_eq!(t.components(), vec!["krbtgt", "A.ORG"]);
        assert_eq!(t.realm(), "B.ORG");
        assert_eq!(escape_component(r"a/b@c\d"), r"a\/b\@c\\d");
        let odd = Principal::tgs(&ctx, "X/Y", "R@S").unwrap();
        assert_eq!(odd.components(), vec!["krbtgt", "X/Y"]);
        assert_eq!(odd.realm(), "R@S");
    }

    #[test]
    fn copy_is_independent_of_the_original() {
        let ctx = Context::new().unwrap();
        let p = Principal::parse(&ctx, "carol@EXAMPLE.ORG").unwrap();
        let q = Principal::copy_of(&ctx, p.raw).unwrap();
        drop(p);
        assert_eq!(q.name().unwrap(), "carol@EXAMPLE.ORG");
    }

    #[test]
    fn malformed_name_is_an_error_with_libkrb5_text() {
        let ctx = Context::new().unwrap();
        let e = Principal::parse(&ctx, "a@B@C").err().expect("must fail");
        assert_eq!(e.op, "krb5_parse_name");
        assert_ne!(e.code, 0);
        assert!(e.message.contains("Malformed"), "{e}");
        assert_eq!(Principal::parse(&ctx, "a\0b").err().unwrap().code, 0);
    }
}
