//! Password logins and their verification: the AS exchange with a user's
//! password (`krb5_get_init_creds_password`, with explicit ticket options)
//! and `krb5_verify_init_creds` against a service keytab, which proves that
//! the KDC that answered knows that service's key — a spoofed KDC that
//! merely knows (or chose) the user's password cannot pass it.
//!
//! The password is copied once into a zeroized, NUL-terminated buffer for
//! libkrb5 and never kept anywhere else here.

use super::{ffi, Context, Creds, Error, Keytab, Principal, Result};
use std::os::raw::c_char;
use std::ptr;
use zeroize::Zeroizing;

/// Ticket options of a password login.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginOptions {
    /// Requested ticket lifetime in seconds (`None` = krb5.conf default).
    pub lifetime: Option<i32>,
    /// Requested renewable lifetime in seconds (`None` = not asked).
    pub renew_lifetime: Option<i32>,
    /// Ask for a forwardable ticket.
    pub forwardable: bool,
    /// Ask for an addressless ticket (an empty address list).
    pub addressless: bool,
}

/// Get a TGT for `client` with `password` (AS exchange, no prompter).
pub fn get_tgt_with_password<'a>(
    ctx: &'a Context,
    client: &Principal<'_>,
    password: &[u8],
    opts: LoginOptions,
) -> Result<Creds<'a>> {
    if password.contains(&0) {
        return Err(Error::local(
            "krb5_get_init_creds_password",
            "the password contains a NUL byte",
        ));
    }
    let mut pw: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(password.len() + 1));
    pw.extend_from_slice(password);
    pw.push(0);
    let mut opt: *mut ffi::krb5_get_init_creds_opt = ptr::null_mut();
    // SAFETY: allocates an options struct, freed below on every path.
    ctx.check("krb5_get_init_creds_opt_alloc", unsafe {
        ffi::lib().krb5_get_init_creds_opt_alloc(ctx.raw, &mut opt)
    })?;
    // An empty, NULL-terminated address list asks for an addressless ticket;
    // it must outlive the call below.
    let mut no_addrs: [*mut ffi::krb5_address; 1] = [ptr::null_mut()];
    // SAFETY: opt is valid; the setters only store values (the address list
    // pointer stays valid until the options are freed).
    unsafe {
        if let Some(l) = opts.lifetime {
            ffi::lib().krb5_get_init_creds_opt_set_tkt_life(opt, l);
        }
        if let Some(r) = opts.renew_lifetime {
            ffi::lib().krb5_get_init_creds_opt_set_renew_life(opt, r);
        }
        ffi::lib().krb5_get_init_creds_opt_set_forwardable(opt, i32::from(opts.forwardable));
        if opts.addressless {
            ffi::lib().krb5_get_init_creds_opt_set_address_list(opt, no_addrs.as_mut_ptr());
        }
    }
    let mut raw = Box::<ffi::krb5_creds>::default();
    // SAFETY: valid context, creds storage, principal, NUL-terminated
    // password and options; no prompter (NULL) and no data; on success raw
    // owns the new credential contents.
    let code = unsafe {
        ffi::lib().krb5_get_init_creds_password(
            ctx.raw,
            &mut *raw,
            client.raw,
            pw.as_ptr().cast::<c_char>(),
            None,
            ptr::null_mut(),
            0,
            ptr::null(),
            opt,
        )
    };
    // SAFETY: frees the options allocated above, once.
    unsafe { ffi::lib().krb5_get_init_creds_opt_free(ctx.raw, opt) };
    ctx.check("krb5_get_init_creds_password", code)?;
    Ok(Creds { ctx, raw })
}

/// Verify a freshly obtained TGT: get a ticket for `server` with it and
/// decrypt that ticket with `server`'s key from `keytab`. Verification is
/// mandatory (`ap_req_nofail`): a keytab without that key is an error, never
/// a silent pass.
pub fn verify_tgt(
    ctx: &Context,
    tgt: &mut Creds<'_>,
    server: &Principal<'_>,
    keytab: &Keytab<'_>,
) -> Result<()> {
    let mut vopt = ffi::krb5_verify_init_creds_opt::default();
    // SAFETY: vopt is a valid, writable options struct; init and the setter
    // only store values in it.
    unsafe {
        ffi::lib().krb5_verify_init_creds_opt_init(&mut vopt);
        ffi::lib().krb5_verify_init_creds_opt_set_ap_req_nofail(&mut vopt, 1);
    }
    // SAFETY: valid context, creds, server principal and keytab; the
    // ccache output pointer is NULL (we do not want the service ticket).
    ctx.check("krb5_verify_init_creds", unsafe {
        ffi::lib().krb5_verify_init_creds(
            ctx.raw,
            tgt.as_mut_ptr(),
            server.raw,
            keytab.raw,
            ptr::null_mut(),
            &mut vopt,
        )
    })
}

/// How a failed password login should be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong password, unknown or locked principal, expired password: the
    /// caller's fault, reported identically for all of them.
    BadCredentials,
    /// The KDC could not be reached (or the realm is unknown).
    KdcUnreachable,
    /// Anything else (local misconfiguration, protocol error).
    Other,
}

/// Classify the error of [`get_tgt_with_password`].
pub fn classify_login_error(e: &Error) -> LoginFailure {
    let c = e.code;
    if c == ffi::KRB5KDC_ERR_PREAUTH_FAILED
        || c == ffi::KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN
        || c == ffi::KRB5KRB_AP_ERR_BAD_INTEGRITY
        || c == ffi::KRB5KDC_ERR_KEY_EXP
        || c == ffi::KRB5KDC_ERR_CLIENT_REVOKED
        || c == ffi::KRB5KDC_ERR_NAME_EXP
        || c == ffi::KRB5KDC_ERR_POLICY
        || c == ffi::KRB5_LIBOS_PWDINTR
        || c == ffi::KRB5_LIBOS_CANTREADPWD
        || c == ffi::KRB5_PREAUTH_FAILED
        || c == ffi::KRB5KDC_ERR_PREAUTH_REQUIRED
        || (e.code == 0 && e.message.contains("NUL"))
    {
        LoginFailure::BadCredentials
    } else if c == ffi::KRB5_KDC_UNREACH || c == ffi::KRB5_REALM_CANT_RESOLVE {
        LoginFailure::KdcUnreachable
    } else {
        LoginFailure::Other
    }
}

/// True when a verification error is the gateway's own keytab file problem
/// (missing or unreadable) rather than a ticket that fails to verify. A
/// missing key or key version is *not* one: a spoofed KDC produces exactly
/// that, and it must be answered as a refused login.
pub fn is_keytab_problem(e: &Error) -> bool {
    e.code == libc::ENOENT || e.code == libc::EACCES
}
