//! KRB-CRED: the unencrypted (etype 0) credential transfer message AUKS
//! stores and forwards ([`encode_krb_cred`], [`decode_krb_cred`]); the
//! session keys inside are wiped from libkrb5's buffers once copied.

use std::ptr;

use zeroize::Zeroizing;

use super::auth_context::AuthContext;
use super::context::Context;
use super::creds::Creds;
use super::data::{data_for, take_data};
use super::error::{Error, Result};
use super::ffi;

/// Serialise credentials as an unencrypted KRB-CRED (RFC 6448, etype 0),
/// with a keyless, flag-less auth context, as AUKS does (§4.1).
pub fn encode_krb_cred(ctx: &Context, creds: &mut [&mut Creds<'_>]) -> Result<Zeroizing<Vec<u8>>> {
    if creds.is_empty() {
        return Err(Error::local("krb5_mk_ncred", "no credential to encode"));
    }
    let ac = AuthContext::with_flags(ctx, 0)?;
    let mut ptrs: Vec<*mut ffi::krb5_creds> = creds.iter_mut().map(|c| c.as_mut_ptr()).collect();
    ptrs.push(ptr::null_mut());
    let mut der: *mut ffi::krb5_data = ptr::null_mut();
    // SAFETY: ptrs is a NULL-terminated array of valid creds; der receives
    // an allocated krb5_data freed below.
    ctx.check("krb5_mk_ncred", unsafe {
        ffi::lib().krb5_mk_ncred(
            ctx.raw,
            ac.raw,
            ptrs.as_mut_ptr(),
            &mut der,
            ptr::null_mut(),
        )
    })?;
    // SAFETY: der is valid; its contents hold session keys in clear, so
    // take_data wipes them; the outer struct is freed with free().
    let out = unsafe {
        let v = take_data(ctx, &mut *der, true);
        libc::free(der.cast());
        v
    };
    Ok(out)
}

/// Decode an unencrypted KRB-CRED (keyless auth context, so only etype-0
/// KRB-CREDs are accepted). Tickets come back in message order.
pub fn decode_krb_cred<'a>(ctx: &'a Context, der: &[u8]) -> Result<Vec<Creds<'a>>> {
    let ac = AuthContext::with_flags(ctx, 0)?;
    let mut buf = Zeroizing::new(der.to_vec());
    let mut input = data_for(&mut buf);
    let mut arr: *mut *mut ffi::krb5_creds = ptr::null_mut();
    // SAFETY: input points to a live buffer; arr receives a NULL-terminated
    // array of allocated creds that we take over one by one.
    ctx.check("krb5_rd_cred", unsafe {
        ffi::lib().krb5_rd_cred(ctx.raw, ac.raw, &mut input, &mut arr, ptr::null_mut())
    })?;
    let mut out = Vec::new();
    if !arr.is_null() {
        // SAFETY: arr is NULL-terminated; each element is an allocated
        // krb5_creds we take ownership of; then the array itself is freed.
        unsafe {
            let mut i = 0;
            loop {
                let p = *arr.add(i);
                if p.is_null() {
                    break;
                }
                out.push(Creds::from_lib(ctx, p));
                i += 1;
            }
            libc::free(arr.cast());
        }
    }
    if out.is_empty() {
        return Err(Error::local("krb5_rd_cred", "KRB-CRED holds no ticket"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_krb_cred_is_an_error_not_a_crash() {
        let ctx = Context::new().unwrap();
        assert!(decode_krb_cred(&ctx, b"").is_err());
        assert!(decode_krb_cred(&ctx, &[0x76, 0x82, 0xff, 0xff, 1, 2, 3]).is_err());
        let e = decode_krb_cred(&ctx, &[0x30, 0x00]).err().unwrap();
        assert_eq!(e.op, "krb5_rd_cred");
        assert_ne!(e.code, 0);
    }

    #[test]
    fn nothing_to_encode_is_refused() {
        let ctx = Context::new().unwrap();
        let e = encode_krb_cred(&ctx, &mut []).err().unwrap();
        assert_eq!((e.op, e.code), ("krb5_mk_ncred", 0));
    }
}
