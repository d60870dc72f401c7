//! The pieces both halves of the sendauth handshake in Rust
//! ([`super::ap_client`], [`super::ap_server`]) build and read: DER
//! encoders that build a message bottom-up (a few hundred bytes, in
//! buffers wiped when dropped, as they may hold keys), the readers of the
//! shared structures (`[APPLICATION n] SEQUENCE`, `EncryptedData`,
//! `EncryptionKey`, `KerberosTime`), the sealing and opening of an
//! encrypted part, and a first sequence number as libkrb5 draws it.

use std::ops::Range;

use zeroize::Zeroizing;

use super::der::{int_bytes, put_header, tlv_len, Der};
use super::error::{Error, Result};
use auks_kcrypto::{UsageKey, AES128_SHA1, AES256_SHA1, HEADER, TRAILER};

/// DER bytes that may hold a key (wiped when dropped).
pub(super) type DerBuf = Zeroizing<Vec<u8>>;

/// One DER element: tag, length, contents (a secret if `contents` is).
pub(super) fn tlv(tag: u8, contents: &[u8]) -> DerBuf {
    let mut out = Zeroizing::new(Vec::with_capacity(tlv_len(contents.len())));
    put_header(&mut out, tag, contents.len());
    out.extend_from_slice(contents);
    out
}

/// A SEQUENCE (or application tag `tag`) of the concatenated `parts`.
pub(super) fn cons(tag: u8, parts: &[&[u8]]) -> DerBuf {
    let body: DerBuf = Zeroizing::new(parts.concat());
    tlv(tag, &body)
}

/// Context-tagged field `[n]` holding `inner`.
pub(super) fn field(n: u8, inner: &[u8]) -> DerBuf {
    tlv(0xa0 | n, inner)
}

/// An INTEGER field of an unsigned value.
pub(super) fn int_field(n: u8, v: u32) -> DerBuf {
    field(n, &tlv(0x02, &int_bytes(v)))
}

/// An INTEGER field of a signed value (a principal's name type).
pub(super) fn signed_field(n: u8, v: i32) -> DerBuf {
    let b = v.to_be_bytes();
    let mut skip = 0;
    while skip < 3 {
        let (x, next) = (b[skip], b[skip + 1]);
        if (x == 0 && next & 0x80 == 0) || (x == 0xff && next & 0x80 != 0) {
            skip += 1;
        } else {
            break;
        }
    }
    field(n, &tlv(0x02, &b[skip..]))
}

/// `plain` sealed under the `usage` keys of `key` (of `etype`), as the
/// `EncryptedData` (no kvno) that carries it.
pub(super) fn encrypted_data(
    op: &'static str,
    etype: i32,
    key: &[u8],
    usage: u32,
    plain: &[u8],
) -> Result<DerBuf> {
    let mut sealed = Zeroizing::new(vec![0u8; HEADER + plain.len() + TRAILER]);
    sealed[HEADER..HEADER + plain.len()].copy_from_slice(plain);
    UsageKey::new(etype, key, usage)
        .ok_or_else(|| Error::local(op, "session key of the wrong length"))?
        .seal(&mut sealed)
        .map_err(|_| Error::local(op, "no random bytes for the confounder"))?;
    Ok(cons(
        0x30,
        &[&int_field(0, etype as u32), &field(2, &tlv(0x04, &sealed))],
    ))
}

/// Decrypt `cipher` of `buf` under `keys`; the plaintext buffer and where
/// its contents are.
pub(super) fn open(
    keys: &UsageKey,
    buf: &[u8],
    cipher: Range<usize>,
) -> Option<(Zeroizing<Vec<u8>>, Range<usize>)> {
    let mut plain = Zeroizing::new(buf.get(cipher)?.to_vec());
    let r = keys.open(&mut plain).ok()?;
    Some((plain, r))
}

/// A first sequence number as libkrb5 draws it: random, 30 bits, never
/// read as negative by any peer.
pub(super) fn seq_number(op: &'static str) -> Result<u32> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_err(|_| Error::local(op, "no random bytes"))?;
    Ok(u32::from_be_bytes(b) & 0x3fff_ffff)
}

/// KerberosTime: GeneralizedTime `YYYYMMDDHHMMSSZ`.
pub(super) fn kerberos_time(secs: i64) -> Result<[u8; 15]> {
    let bad = || Error::local("krb5_mk_req", "clock out of range");
    let t = chrono::DateTime::from_timestamp(secs, 0).ok_or_else(bad)?;
    t.format("%Y%m%d%H%M%SZ")
        .to_string()
        .as_bytes()
        .try_into()
        .map_err(|_| bad())
}

/// `KerberosTime` (`YYYYMMDDHHMMSSZ`) in seconds since the epoch.
pub(super) fn time(bytes: &[u8]) -> Option<i64> {
    if bytes.len() != 15 || bytes[14] != b'Z' || !bytes[..14].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s = std::str::from_utf8(bytes).ok()?;
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// The `[APPLICATION n] SEQUENCE` at `r`, nothing after it: the range of
/// its fields.
pub(super) fn app_seq(buf: &[u8], r: Range<usize>, tag: u8) -> Option<Range<usize>> {
    let mut top = Der::new(buf, r);
    let app = top.element(tag, "").ok()?;
    if !top.at_end() {
        return None;
    }
    let mut a = Der::new(buf, app);
    let seq = a.element(0x30, "").ok()?;
    a.at_end().then_some(seq)
}

/// `EncryptedData`: (etype, kvno, cipher).
pub(super) fn encrypted(buf: &[u8], r: Range<usize>) -> Option<(i32, Option<u32>, Range<usize>)> {
    let mut d = Der::new(buf, r);
    let etype = i32::try_from(d.int_field(0, "").ok()?).ok()?;
    let kvno = if d.has(1) {
        Some(u32::try_from(d.int_field(1, "").ok()?).ok()?)
    } else {
        None
    };
    let cipher = d.field(2, 0x04, "").ok()?;
    d.at_end().then_some((etype, kvno, cipher))
}

/// `EncryptionKey`: (keytype, keyvalue) when `auks_kcrypto` handles it.
pub(super) fn key(buf: &[u8], r: Range<usize>) -> Option<(i32, Zeroizing<Vec<u8>>)> {
    let mut d = Der::new(buf, r);
    let t = i32::try_from(d.int_field(0, "").ok()?).ok()?;
    let v = d.field(1, 0x04, "").ok()?;
    let v = Zeroizing::new(buf.get(v)?.to_vec());
    let want = match t {
        AES128_SHA1 => 16,
        AES256_SHA1 => 32,
        _ => return None,
    };
    (d.at_end() && v.len() == want).then_some((t, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kerberos_time_is_generalized_time() {
        assert_eq!(&kerberos_time(0).unwrap(), b"19700101000000Z");
        assert_eq!(&kerberos_time(1_764_585_600).unwrap(), b"20251201104000Z");
    }

    #[test]
    fn kerberos_times_are_read_strictly() {
        assert_eq!(time(b"19700101000000Z"), Some(0));
        assert_eq!(time(b"20251201104000Z"), Some(1_764_585_600));
        for bad in [
            &b"20251201104000"[..],
            b"2025120110400Z0",
            b"20251301104000Z",
            b"2025120110400+Z",
            b"",
        ] {
            assert_eq!(time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn signed_name_types_are_minimal() {
        assert_eq!(&signed_field(0, 1)[..], &[0xa0, 3, 2, 1, 1]);
        assert_eq!(&signed_field(0, -128)[..], &[0xa0, 3, 2, 1, 0x80]);
        assert_eq!(&signed_field(0, 128)[..], &[0xa0, 4, 2, 2, 0, 0x80]);
        assert_eq!(&signed_field(0, -129)[..], &[0xa0, 4, 2, 2, 0xff, 0x7f]);
    }
}
