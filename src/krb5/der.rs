//! A small strict DER reader and writer for the messages read without
//! libkrb5: KRB-PRIV and its EncKrbPrivPart ([`super::priv_in_place`]),
//! and the credential parts of a KRB-CRED ([`super::krb_cred_parts`],
//! read only) (single-byte tags, definite lengths up to 4 GiB). The
//! reader never panics and never reads outside its buffer; the writer
//! emits minimal lengths and integers, sized up front.

use std::ops::Range;

use super::error::{Error, Result};

/// A strict DER reader over `buf` (single-byte tags, definite lengths).
pub(super) struct Der<'b> {
    buf: &'b [u8],
    pos: usize,
}

/// A malformed message (`what` names the part).
pub(super) fn bad(what: &str) -> Error {
    Error::local("KRB-PRIV", format!("malformed message: {what}"))
}

impl<'b> Der<'b> {
    pub(super) fn new(buf: &'b [u8], range: Range<usize>) -> Self {
        // A reader over buf[range]; positions stay absolute in `buf`.
        Der {
            buf: buf.get(..range.end).unwrap_or(buf),
            pos: range.start,
        }
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Read one element with tag `tag`; returns its content range.
    pub(super) fn element(&mut self, tag: u8, what: &str) -> Result<Range<usize>> {
        if self.peek() != Some(tag) {
            return Err(bad(what));
        }
        let first = *self.buf.get(self.pos + 1).ok_or_else(|| bad(what))?;
        let mut at = self.pos + 2;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(bad(what));
            }
            let bytes = self.buf.get(at..at + n).ok_or_else(|| bad(what))?;
            at += n;
            bytes.iter().fold(0usize, |l, b| (l << 8) | usize::from(*b))
        };
        let end = at.checked_add(len).ok_or_else(|| bad(what))?;
        if end > self.buf.len() {
            return Err(bad(what));
        }
        self.pos = end;
        Ok(at..end)
    }

    /// A context tag `[n]` wrapping one element of tag `inner`.
    pub(super) fn field(&mut self, n: u8, inner: u8, what: &str) -> Result<Range<usize>> {
        let outer = self.element(0xa0 | n, what)?;
        let mut d = Der::new(self.buf, outer);
        let r = d.element(inner, what)?;
        if !d.at_end() {
            return Err(bad(what));
        }
        Ok(r)
    }

    /// Whether the next element is the context tag `[n]`.
    pub(super) fn has(&self, n: u8) -> bool {
        self.peek() == Some(0xa0 | n)
    }

    /// A context-tagged INTEGER of at most 5 content bytes (UInt32 values
    /// may take 5), as i64.
    pub(super) fn int_field(&mut self, n: u8, what: &str) -> Result<i64> {
        let r = self.field(n, 0x02, what)?;
        let bytes = self.buf.get(r).ok_or_else(|| bad(what))?;
        if bytes.is_empty() || bytes.len() > 5 {
            return Err(bad(what));
        }
        let neg = bytes[0] & 0x80 != 0;
        let init = if neg { -1i64 } else { 0 };
        Ok(bytes.iter().fold(init, |v, b| (v << 8) | i64::from(*b)))
    }

    /// A HostAddress `SEQUENCE { [0] INTEGER type, [1] OCTET STRING }`.
    pub(super) fn address(&mut self, n: u8, what: &str) -> Result<(i64, Range<usize>)> {
        let seq = self.field(n, 0x30, what)?;
        let mut d = Der::new(self.buf, seq);
        let t = d.int_field(0, what)?;
        let a = d.field(1, 0x04, what)?;
        if !d.at_end() {
            return Err(bad(what));
        }
        Ok((t, a))
    }
}

// ---------------------------------------------------------------------------
// Writing

/// Size of a DER element header (tag and length) for `len` content bytes.
pub(super) fn header_len(len: usize) -> usize {
    match len {
        0..=0x7f => 2,
        0x80..=0xff => 3,
        0x100..=0xffff => 4,
        0x1_0000..=0xff_ffff => 5,
        _ => 6,
    }
}

/// Size of a whole DER element of `len` content bytes.
pub(super) fn tlv_len(len: usize) -> usize {
    header_len(len).saturating_add(len)
}

/// Append a DER element header.
pub(super) fn put_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    let b = (len as u64).to_be_bytes();
    match header_len(len) {
        2 => out.push(len as u8),
        n => {
            out.push(0x80 | (n - 2) as u8);
            out.extend_from_slice(&b[8 - (n - 2)..]);
        }
    }
}

/// Minimal two's-complement content of a non-negative INTEGER.
pub(super) fn int_bytes(v: u32) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count().min(3);
    let mut out = b[skip..].to_vec();
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    out
}

/// `[n] INTEGER v`.
pub(super) fn put_int_field(out: &mut Vec<u8>, n: u8, v: &[u8]) {
    put_header(out, 0xa0 | n, tlv_len(v.len()));
    put_header(out, 0x02, v.len());
    out.extend_from_slice(v);
}

pub(super) fn int_field_len(v: &[u8]) -> usize {
    tlv_len(tlv_len(v.len()))
}

/// `[n] HostAddress { [0] type, [1] OCTET STRING }`, and its size.
pub(super) fn address_len(t: &[u8], a: &[u8]) -> usize {
    tlv_len(tlv_len(int_field_len(t) + tlv_len(tlv_len(a.len()))))
}

pub(super) fn put_address(out: &mut Vec<u8>, n: u8, t: &[u8], a: &[u8]) {
    let seq = int_field_len(t) + tlv_len(tlv_len(a.len()));
    put_header(out, 0xa0 | n, tlv_len(seq));
    put_header(out, 0x30, seq);
    put_int_field(out, 0, t);
    put_header(out, 0xa1, tlv_len(a.len()));
    put_header(out, 0x04, a.len());
    out.extend_from_slice(a);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_headers_and_integers_are_minimal() {
        for len in [
            0usize,
            1,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0x100_0000,
            0xffff_ffff,
        ] {
            let mut v = Vec::new();
            put_header(&mut v, 0x04, len);
            assert_eq!(v.len(), header_len(len), "{len}");
            let content = vec![0u8; len.min(0x1_0001)];
            if content.len() == len {
                v.extend_from_slice(&content);
                let mut d = Der::new(&v, 0..v.len());
                assert_eq!(d.element(0x04, "x").unwrap().len(), len);
            }
        }
        assert_eq!(int_bytes(0), vec![0]);
        assert_eq!(int_bytes(5), vec![5]);
        assert_eq!(int_bytes(0x80), vec![0, 0x80]);
        assert_eq!(int_bytes(0x1234), vec![0x12, 0x34]);
        assert_eq!(int_bytes(0xffff_ffff), vec![0, 0xff, 0xff, 0xff, 0xff]);
        let mut v = Vec::new();
        put_address(&mut v, 4, &int_bytes(2), &[127, 0, 0, 1]);
        assert_eq!(v.len(), address_len(&int_bytes(2), &[127, 0, 0, 1]));
        let mut d = Der::new(&v, 0..v.len());
        let (t, a) = d.address(4, "a").unwrap();
        assert_eq!((t, &v[a]), (2, &[127u8, 0, 0, 1][..]));
    }
}
