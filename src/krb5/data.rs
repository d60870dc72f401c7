//! Conversions between Rust values and libkrb5's representations: C
//! strings, `krb5_data` buffers (borrowed for input, taken over and freed
//! for output, wiped first when they hold secrets) and 32-bit timestamps.

use std::ffi::CString;
use std::ptr;

use zeroize::Zeroizing;

use super::context::Context;
use super::error::{Error, Result};
use super::ffi;

/// Kerberos timestamps are 32-bit; interpret them as unsigned so that
/// dates after 2038 keep working (MIT does the same).
pub(super) fn ts(t: ffi::krb5_timestamp) -> i64 {
    i64::from(t as u32)
}

/// A C string for libkrb5, or an error naming `op` when `s` holds a NUL.
pub(super) fn cstring(op: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::local(op, "string contains a NUL byte"))
}

/// Copy a `krb5_data` (not NUL-terminated) into a `String`, lossily.
///
/// # Safety
/// `d.data` must point to `d.length` readable bytes (or be NULL, or
/// `d.length` be 0).
pub(super) unsafe fn data_string(d: &ffi::krb5_data) -> String {
    if d.length == 0 || d.data.is_null() {
        return String::new();
    }
    // SAFETY: the caller guarantees `length` readable bytes at `data`.
    let s = unsafe { std::slice::from_raw_parts(d.data as *const u8, d.length as usize) };
    String::from_utf8_lossy(s).into_owned()
}

/// A `krb5_data` borrowing `buf` as input to a libkrb5 call; `buf` must
/// outlive every use of the result.
pub(super) fn data_for(buf: &mut [u8]) -> ffi::krb5_data {
    ffi::krb5_data {
        magic: 0,
        length: buf.len() as u32,
        data: buf.as_mut_ptr().cast(),
    }
}

/// Copy a libkrb5-allocated `krb5_data` into a Rust buffer and free the
/// library's copy (wiping it first when `secret`).
///
/// `d` must have been filled by libkrb5 (or be empty): its contents are
/// released with `krb5_free_data_contents`.
pub(super) fn take_data(ctx: &Context, d: &mut ffi::krb5_data, secret: bool) -> Zeroizing<Vec<u8>> {
    let out = if d.data.is_null() || d.length == 0 {
        Vec::new()
    } else {
        // SAFETY: libkrb5 filled d with `length` bytes at `data`.
        unsafe { std::slice::from_raw_parts(d.data as *const u8, d.length as usize) }.to_vec()
    };
    if secret && !d.data.is_null() {
        // SAFETY: wipes the library's copy before it is freed.
        unsafe { ptr::write_bytes(d.data, 0, d.length as usize) };
    }
    // SAFETY: frees the contents allocated by libkrb5 once.
    unsafe { ffi::lib().krb5_free_data_contents(ctx.raw, d) };
    Zeroizing::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_unsigned() {
        assert_eq!(ts(0), 0);
        assert_eq!(ts(1_700_000_000), 1_700_000_000);
        // 2040-01-01 does not fit in an i32 but is a valid krb5 time.
        assert_eq!(ts(2_208_988_800_u32 as i32), 2_208_988_800);
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert_eq!(
            cstring("op", "FILE:/tmp/x").unwrap().as_bytes(),
            b"FILE:/tmp/x"
        );
        let e = cstring("krb5_cc_resolve", "a\0b").unwrap_err();
        assert_eq!(e.op, "krb5_cc_resolve");
        assert_eq!(e.code, 0);
    }

    #[test]
    fn data_borrows_the_buffer() {
        let mut buf = b"REALM.ORG".to_vec();
        let d = data_for(&mut buf);
        assert_eq!(d.length, 9);
        // SAFETY: d points into buf, alive for this call.
        assert_eq!(unsafe { data_string(&d) }, "REALM.ORG");
        // SAFETY: an empty krb5_data is read as "".
        assert_eq!(unsafe { data_string(&ffi::krb5_data::default()) }, "");
    }

    #[test]
    fn taking_empty_data_yields_nothing() {
        let ctx = Context::new().unwrap();
        let mut d = ffi::krb5_data::default();
        assert!(take_data(&ctx, &mut d, true).is_empty());
    }
}
