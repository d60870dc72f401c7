//! TGS requests made with a TGT AUKS holds (spec §4.3–4.5): an addressless
//! copy of a TGT, a cross-realm TGT, and the renewal of a TGT. Each keeps
//! the forwardable/proxiable/postdate/renewable bits of the source ticket.

use std::ptr;

use super::context::Context;
use super::creds::Creds;
use super::error::Result;
use super::ffi;
use super::principal::Principal;

/// Kerberos ticket flag bits kept when asking the KDC for a derived ticket
/// (forwardable | proxiable | may-postdate | renewable), as AUKS does.
const KEPT_TICKET_FLAGS: i32 = (ffi::TKT_FLG_FORWARDABLE
    | ffi::TKT_FLG_PROXIABLE
    | ffi::TKT_FLG_MAY_POSTDATE
    | ffi::TKT_FLG_RENEWABLE) as i32;

/// A TGS request using `tgt` for `server`, with the given KDC options
/// (plus the ticket's forwardable/proxiable/postdate/renewable bits) and
/// no addresses (§4.3–4.5).
fn tgs_request<'a>(
    ctx: &'a Context,
    tgt: &mut Creds<'a>,
    server: &Principal<'_>,
    options: u32,
) -> Result<Creds<'a>> {
    let client = tgt.client_principal()?;
    let mut in_creds = ffi::krb5_creds {
        client: client.raw,
        server: server.raw,
        ..Default::default()
    };
    let kdcopt = options as i32 | (tgt.flags() & KEPT_TICKET_FLAGS);
    let mut out: *mut ffi::krb5_creds = ptr::null_mut();
    // SAFETY: tgt and in_creds are valid (in_creds borrows two principals
    // that outlive the call); NULL address list = addressless; out receives
    // an allocated credential we take over.
    ctx.check("krb5_get_cred_via_tkt", unsafe {
        ffi::lib().krb5_get_cred_via_tkt(
            ctx.raw,
            tgt.as_mut_ptr(),
            kdcopt,
            ptr::null(),
            &mut in_creds,
            &mut out,
        )
    })?;
    // SAFETY: out is a freshly allocated krb5_creds owned by us.
    Ok(unsafe { Creds::from_lib(ctx, out) })
}

/// Get an addressless copy of a TGT (FORWARDED | CANONICALIZE, §4.3).
pub fn addressless_tgt<'a>(ctx: &'a Context, tgt: &mut Creds<'a>) -> Result<Creds<'a>> {
    let server = tgt.server_principal()?;
    tgs_request(
        ctx,
        tgt,
        &server,
        ffi::KDC_OPT_FORWARDED | ffi::KDC_OPT_CANONICALIZE,
    )
}

/// Get a cross-realm TGT `krbtgt/TARGET@<realm of tgt's server>` (§4.4).
///
/// Unlike the C AUKS this is a plain TGS request (CANONICALIZE + the kept
/// ticket flags), not a FORWARDED one: an MIT KDC refuses FORWARDED for a
/// server other than the TGT's own ("server didn't match ticket"), so the
/// C recipe never obtains the ticket. The source TGT is addressless at this
/// point (ADD makes it so first), and the KDC copies its (absent) addresses.
pub fn cross_realm_tgt<'a>(
    ctx: &'a Context,
    tgt: &mut Creds<'a>,
    target: &str,
) -> Result<Creds<'a>> {
    let issuer = tgt
        .tgt_realms()
        .map(|(_, i)| i)
        .unwrap_or_else(|| tgt.client_realm());
    let server = Principal::tgs(ctx, target, &issuer)?;
    tgs_request(ctx, tgt, &server, ffi::KDC_OPT_CANONICALIZE)
}

/// Renew a TGT at the KDC (RENEW | CANONICALIZE, §4.5).
pub fn renew_tgt<'a>(ctx: &'a Context, tgt: &mut Creds<'a>) -> Result<Creds<'a>> {
    let server = tgt.server_principal()?;
    tgs_request(
        ctx,
        tgt,
        &server,
        ffi::KDC_OPT_RENEW | ffi::KDC_OPT_CANONICALIZE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_flags_are_those_of_c_auks() {
        // The mask C AUKS applies to the KDC options of a derived ticket
        // (KDC options share the ticket flags' bit positions).
        assert_eq!(KEPT_TICKET_FLAGS, 0x5480_0000);
    }
}
