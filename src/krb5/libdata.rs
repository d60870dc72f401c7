//! Received and sent KRB-PRIV buffers without copies: [`LibData`], a
//! buffer libkrb5 allocated (a KRB-PRIV or its decrypted user data), kept
//! where the library put it instead of being copied into a Rust vector and
//! wiped then freed when dropped; and [`Plaintext`], the user data of a
//! received message, either such a buffer or a range of the received frame
//! itself, decrypted in place. For a DUMP reply of 100 000 credentials,
//! each copy avoided is as large as the message.

use std::ops::{Deref, Range};
use std::ptr;

use zeroize::Zeroizing;

use super::context::Context;
use super::ffi;

/// Bytes owned by libkrb5 (`krb5_data` contents), read as `&[u8]`. Always
/// wiped before being released: it may hold credential plaintext.
pub struct LibData<'a> {
    ctx: &'a Context,
    raw: ffi::krb5_data,
}

impl<'a> LibData<'a> {
    /// Take over the contents of `d`, which libkrb5 filled (or left
    /// empty); `d` is left empty.
    pub(super) fn take(ctx: &'a Context, d: &mut ffi::krb5_data) -> Self {
        let raw = std::mem::take(d);
        LibData { ctx, raw }
    }
}

impl Deref for LibData<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.raw.data.is_null() || self.raw.length == 0 {
            return &[];
        }
        // SAFETY: libkrb5 filled `raw` with `length` readable bytes at
        // `data`, which stay allocated and unchanged until drop.
        unsafe { std::slice::from_raw_parts(self.raw.data as *const u8, self.raw.length as usize) }
    }
}

impl AsRef<[u8]> for LibData<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for LibData<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LibData(<{} bytes>)", self.raw.length)
    }
}

/// The plaintext of a received KRB-PRIV, wiped when dropped.
pub enum Plaintext<'a> {
    /// libkrb5's buffer (`krb5_rd_priv`).
    Lib(LibData<'a>),
    /// A range of the received frame, decrypted in place
    /// ([`super::AuthContext::rd_priv_in_place`]).
    InPlace {
        frame: Zeroizing<Vec<u8>>,
        range: Range<usize>,
    },
}

impl Deref for Plaintext<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Plaintext::Lib(d) => d,
            Plaintext::InPlace { frame, range } => frame.get(range.clone()).unwrap_or_default(),
        }
    }
}

impl AsRef<[u8]> for Plaintext<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Plaintext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext(<{} bytes>)", self.len())
    }
}

impl Drop for LibData<'_> {
    fn drop(&mut self) {
        if !self.raw.data.is_null() {
            // SAFETY: wipes the `length` bytes libkrb5 allocated at `data`
            // before they are freed (the free is an opaque call given the
            // pointer, so the write is not elided).
            unsafe { ptr::write_bytes(self.raw.data, 0, self.raw.length as usize) };
        }
        // SAFETY: frees the contents allocated by libkrb5, exactly once.
        unsafe { ffi::lib().krb5_free_data_contents(self.ctx.raw, &mut self.raw) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_data_reads_as_empty() {
        let ctx = Context::new().unwrap();
        let mut d = ffi::krb5_data::default();
        let l = LibData::take(&ctx, &mut d);
        assert!(l.is_empty());
        assert_eq!(format!("{l:?}"), "LibData(<0 bytes>)");
    }

    #[test]
    fn in_place_plaintext_is_its_range() {
        let p = Plaintext::InPlace {
            frame: Zeroizing::new(b"xxhelloyy".to_vec()),
            range: 2..7,
        };
        assert_eq!(&p[..], b"hello");
        let bad = Plaintext::InPlace {
            frame: Zeroizing::new(vec![1, 2]),
            range: 1..9,
        };
        assert!(bad.is_empty());
    }
}
