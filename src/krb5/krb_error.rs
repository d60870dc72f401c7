//! KRB-ERROR: the error message a server sends instead of an AP-REP when
//! it rejects an AP-REQ ([`mk_error`], as `krb5_recvauth` does), and its
//! decoding on the client ([`rd_error`]).

use std::ffi::CString;
use std::os::raw::c_char;
use std::ptr;

use super::context::Context;
use super::data::{data_for, data_string, take_data};
use super::error::{Error, Result};
use super::ffi;
use super::principal::Principal;

/// Build a KRB-ERROR for a failed AP-REQ (what `krb5_recvauth` sends).
pub fn mk_error(ctx: &Context, server: &Principal<'_>, err: &Error) -> Result<Vec<u8>> {
    let text = CString::new(err.message.replace('\0', " ")).unwrap_or_default();
    let bytes = text.as_bytes_with_nul();
    let mut e = ffi::krb5_error::default();
    let mut usec: i32 = 0;
    // SAFETY: writes two integers.
    unsafe { ffi::lib().krb5_us_timeofday(ctx.raw, &mut e.stime, &mut usec) };
    e.susec = usec;
    e.server = server.raw;
    let base = i64::from(ffi::ERROR_TABLE_BASE_krb5);
    let num = i64::from(err.code) - base;
    e.error = if (0..=127).contains(&num) {
        num as u32
    } else {
        (i64::from(ffi::KRB5KRB_ERR_GENERIC) - base) as u32
    };
    e.text = ffi::krb5_data {
        magic: 0,
        length: bytes.len() as u32,
        data: bytes.as_ptr() as *mut c_char,
    };
    let mut out = ffi::krb5_data::default();
    // SAFETY: e borrows the server principal and text (not freed here).
    ctx.check("krb5_mk_error", unsafe {
        ffi::lib().krb5_mk_error(ctx.raw, &e, &mut out)
    })?;
    Ok(take_data(ctx, &mut out, false).to_vec())
}

/// Decode a KRB-ERROR received instead of the sendauth "ok"; returns the
/// error text (or code).
pub fn rd_error(ctx: &Context, msg: &[u8]) -> String {
    let mut buf = msg.to_vec();
    let input = data_for(&mut buf);
    let mut e: *mut ffi::krb5_error = ptr::null_mut();
    // SAFETY: input points to a live buffer; e is freed below.
    let code = unsafe { ffi::lib().krb5_rd_error(ctx.raw, &input, &mut e) };
    if code != 0 || e.is_null() {
        return "server sent an undecodable KRB-ERROR".to_string();
    }
    // SAFETY: e is a valid decoded error until freed.
    let s = unsafe {
        let text = data_string(&(*e).text);
        let text = text.trim_end_matches('\0').to_string();
        let n = (*e).error;
        ffi::lib().krb5_free_error(ctx.raw, e);
        if text.is_empty() {
            let full = ctx.error("krb5_rd_error", ffi::ERROR_TABLE_BASE_krb5 + n as i32);
            full.message
        } else {
            text
        }
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_survives_the_round_trip() {
        let ctx = Context::new().unwrap();
        let server = Principal::parse(&ctx, "auks/server@EXAMPLE.ORG").unwrap();
        let err = Error {
            op: "krb5_rd_req",
            code: ffi::KRB5KRB_AP_ERR_TKT_EXPIRED,
            message: "Ticket expired".into(),
        };
        let der = mk_error(&ctx, &server, &err).unwrap();
        assert_eq!(der.first(), Some(&0x7e), "KRB-ERROR is [APPLICATION 30]");
        assert_eq!(rd_error(&ctx, &der), "Ticket expired");

        // A local error (code 0) and a NUL in the text still encode.
        let local = Error::local("krb5_rd_req", "bad\0thing");
        let der = mk_error(&ctx, &server, &local).unwrap();
        assert_eq!(rd_error(&ctx, &der), "bad thing");
    }

    #[test]
    fn garbage_is_reported_not_decoded() {
        let ctx = Context::new().unwrap();
        assert_eq!(rd_error(&ctx, b""), "server sent an undecodable KRB-ERROR");
        assert_eq!(
            rd_error(&ctx, &[0x7e, 0x82, 0xff, 0xff, 0]),
            "server sent an undecodable KRB-ERROR"
        );
    }
}
