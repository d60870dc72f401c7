//! A KRB-PRIV decrypted where it was received, or sealed where it is
//! built: every message of a session whose key is AES-SHA1 (encrypted by
//! [`auks_kcrypto`], see [`super::priv_rust`]), and for other enctypes the
//! large ones only (a DUMP reply: 3.3 GB from a C auksd holding 100 000
//! credentials), encrypted by libkrb5's in-place calls.
//!
//! `krb5_rd_priv` holds four copies of such a message at its peak (the
//! caller's, the decoded ciphertext, the decrypted scratch buffer and the
//! user data decoded out of it). Here the ciphertext is decrypted inside
//! the received buffer and the user data is a range of that same buffer:
//! one copy. The checks of `krb5_rd_priv` for an AUKS session
//! (DO_SEQUENCE only, addresses set, no port, no cipher state) are made
//! here: message type and version, enctype of the receiving key,
//! integrity (by the decryption), sequence number equal to the expected
//! one, sender address equal to the remote address, receiver address
//! (when present) equal to the local one.
//!
//! Sending, `krb5_mk_priv` likewise holds the encoded plaintext, the
//! ciphertext and the encoded message besides the caller's plaintext;
//! [`AuthContext::mk_priv_in_place`] copies the plaintext once into the
//! buffer of the final message and encrypts it there (what `krb5_mk_priv`
//! writes: sequence number, sender and receiver addresses, no timestamp).
//!
//! The auth context's sequence numbers cannot be advanced through
//! libkrb5's API. Messages encrypted by `auks_kcrypto` are counted
//! ([`super::priv_rust`]) and the session goes on; a context that read
//! (sent) a message with libkrb5's in-place calls refuses any further
//! receive (send): that is for the last message a session receives
//! (sends).

use std::ops::Range;
use std::ptr;

use super::auth_context::{AuthContext, Key};
use super::der::{
    address_len, bad, int_bytes, int_field_len, put_address, put_header, put_int_field, tlv_len,
    Der,
};
use super::error::{Error, Result};
use super::ffi;
use auks_kcrypto::CryptoError;
use zeroize::Zeroizing;

const OP: &str = "KRB-PRIV in place";

/// What a failure of [`auks_kcrypto`] means to the reader of a log.
fn crypto_failure(e: CryptoError) -> &'static str {
    match e {
        CryptoError::TooShort => "ciphertext shorter than its confounder and checksum",
        CryptoError::Integrity => "integrity check failed (wrong key, or altered on the way)",
        CryptoError::Random => "no random bytes for the confounder",
    }
}

/// Where the parts of a KRB-PRIV are: its enctype and ciphertext.
pub(super) fn parse_krb_priv(msg: &[u8]) -> Result<(i64, Range<usize>)> {
    let mut top = Der::new(msg, 0..msg.len());
    let app = top.element(0x75, "not a KRB-PRIV")?;
    if !top.at_end() {
        return Err(bad("bytes after the KRB-PRIV"));
    }
    let seq = Der::new(msg, app).element(0x30, "KRB-PRIV sequence")?;
    let mut d = Der::new(msg, seq);
    if d.int_field(0, "pvno")? != 5 || d.int_field(1, "msg-type")? != 21 {
        return Err(bad("not a version 5 KRB-PRIV"));
    }
    let enc = d.field(3, 0x30, "enc-part")?;
    if !d.at_end() {
        return Err(bad("KRB-PRIV fields"));
    }
    let mut e = Der::new(msg, enc);
    let etype = e.int_field(0, "etype")?;
    if e.has(1) {
        e.int_field(1, "kvno")?;
    }
    let cipher = e.field(2, 0x04, "cipher")?;
    if !e.at_end() {
        return Err(bad("EncryptedData fields"));
    }
    Ok((etype, cipher))
}

/// The fields of a decrypted EncKrbPrivPart that are checked.
pub(super) struct EncPart {
    pub(super) user_data: Range<usize>,
    pub(super) seq: Option<i64>,
    pub(super) sender: (i64, Range<usize>),
    pub(super) receiver: Option<(i64, Range<usize>)>,
}

pub(super) fn parse_enc_part(buf: &[u8], range: Range<usize>) -> Result<EncPart> {
    let mut top = Der::new(buf, range);
    let app = top.element(0x7c, "not an EncKrbPrivPart")?;
    if !top.at_end() {
        return Err(bad("bytes after the EncKrbPrivPart"));
    }
    let seq = Der::new(buf, app).element(0x30, "EncKrbPrivPart sequence")?;
    let mut d = Der::new(buf, seq);
    let user_data = d.field(0, 0x04, "user-data")?;
    if d.has(1) {
        d.field(1, 0x18, "timestamp")?;
    }
    if d.has(2) {
        d.int_field(2, "usec")?;
    }
    let seq = if d.has(3) {
        Some(d.int_field(3, "seq-number")?)
    } else {
        None
    };
    let sender = d.address(4, "s-address")?;
    let receiver = if d.has(5) {
        Some(d.address(5, "r-address")?)
    } else {
        None
    };
    if !d.at_end() {
        return Err(bad("EncKrbPrivPart fields"));
    }
    Ok(EncPart {
        user_data,
        seq,
        sender,
        receiver,
    })
}

impl<'a> AuthContext<'a> {
    /// The key KRB-PRIV messages are received with: the receiving subkey,
    /// else the session key (as `krb5_rd_priv`).
    pub(super) fn recv_key(&self) -> Result<Key<'a>> {
        self.subkey_or_session_key(
            "krb5_auth_con_getrecvsubkey_k",
            ffi::lib().krb5_auth_con_getrecvsubkey_k,
        )
    }

    /// `subkey` (one of libkrb5's `krb5_auth_con_get*subkey_k`, named
    /// `what`) of this auth context, else its session key.
    fn subkey_or_session_key(
        &self,
        what: &'static str,
        subkey: unsafe extern "C" fn(
            ffi::krb5_context,
            ffi::krb5_auth_context,
            *mut ffi::krb5_key,
        ) -> ffi::krb5_error_code,
    ) -> Result<Key<'a>> {
        let mut raw: ffi::krb5_key = ptr::null_mut();
        // SAFETY: `subkey` is one of libkrb5's getters of this signature;
        // valid auth context; raw receives a new reference or NULL.
        let rc = unsafe { subkey(self.ctx.raw, self.raw, &mut raw) };
        self.ctx.check(what, rc)?;
        if raw.is_null() {
            // SAFETY: as above, for the session key.
            self.ctx.check("krb5_auth_con_getkey_k", unsafe {
                ffi::lib().krb5_auth_con_getkey_k(self.ctx.raw, self.raw, &mut raw)
            })?;
        }
        if raw.is_null() {
            return Err(Error::local(OP, "no session key"));
        }
        Ok(Key { ctx: self.ctx, raw })
    }

    /// Decrypt and verify the KRB-PRIV in `msg` in place; returns the
    /// range of `msg` holding its user data (the rest of `msg` is left
    /// as decrypted or encrypted bytes: wipe it after use). When libkrb5
    /// decrypted it (an enctype other than AES-SHA1), this context
    /// receives nothing more afterwards (see the module doc).
    pub fn rd_priv_in_place(&mut self, msg: &mut [u8]) -> Result<Range<usize>> {
        self.require_receive(OP)?;
        let (etype, cipher) = parse_krb_priv(msg)?;
        let key = self.recv_key()?;
        // SAFETY: valid key reference.
        let key_etype = unsafe { ffi::lib().krb5_k_key_enctype(self.ctx.raw, key.raw) };
        if i64::from(key_etype) != etype {
            return Err(Error::local(
                OP,
                "message enctype differs from the session key's",
            ));
        }
        let stream = msg.get_mut(cipher.clone()).ok_or_else(|| bad("cipher"))?;
        if self.rust_sent.is_some() {
            return Err(Error::local(OP, "message received before the AP-REP"));
        }
        let in_rust = self.rust_priv_key(key)?;
        if !in_rust && self.rust.remote_base.is_some() {
            return Err(Error::local(OP, "handshake made without libkrb5"));
        }
        let plain = if in_rust {
            let keys = &self.rust.key.as_ref().ok_or_else(|| bad("key"))?.keys;
            let r = keys
                .open(stream)
                .map_err(|e| Error::local(OP, crypto_failure(e)))?;
            cipher.start + r.start..cipher.start + r.end
        } else {
            // libkrb5 does not advance its sequence number for this
            // receive: whatever happens now, it is the last one.
            self.recv_spent = true;
            let key = self.recv_key()?;
            self.lib_decrypt_in_place(&key, stream, cipher.start)?
        };
        let part = parse_enc_part(msg, plain)?;
        let offset = if in_rust { self.rust.received } else { 0 };
        self.check_seq(part.seq, offset)?;
        let addr = |(t, r): &(i64, Range<usize>)| (*t, msg.get(r.clone()).unwrap_or_default());
        // As krb5_rd_priv: the remote address is required and must be the
        // sender's; a receiver address, when sent, must be ours (an AUKS
        // session always sets its local address).
        let same = |got: &(i64, Range<usize>), want: &Option<(i32, Vec<u8>)>| {
            want.as_ref()
                .is_some_and(|(t, a)| addr(got) == (i64::from(*t), a.as_slice()))
        };
        if !same(&part.sender, &self.remote_addr) {
            return Err(Error::local(OP, "sender address does not match the peer's"));
        }
        if let Some(r) = &part.receiver {
            if !same(r, &self.local_addr) {
                return Err(Error::local(OP, "receiver address is not ours"));
            }
        }
        if in_rust {
            self.rust.received = self.rust.received.wrapping_add(1);
        }
        Ok(part.user_data)
    }

    /// libkrb5's decryption of `stream` (the ciphertext, at `at` in its
    /// message) in place; the range of the message holding the plaintext.
    fn lib_decrypt_in_place(
        &self,
        key: &Key<'_>,
        stream: &mut [u8],
        at: usize,
    ) -> Result<Range<usize>> {
        let base = stream.as_ptr() as usize;
        let len = u32::try_from(stream.len()).map_err(|_| bad("cipher longer than 4 GiB"))?;
        let mut iov = [
            ffi::krb5_crypto_iov {
                flags: ffi::KRB5_CRYPTO_TYPE_STREAM as ffi::krb5_cryptotype,
                data: ffi::krb5_data {
                    magic: 0,
                    length: len,
                    data: stream.as_mut_ptr().cast(),
                },
            },
            ffi::krb5_crypto_iov {
                flags: ffi::KRB5_CRYPTO_TYPE_DATA as ffi::krb5_cryptotype,
                data: ffi::krb5_data::default(),
            },
        ];
        // SAFETY: the STREAM iov covers `stream`, borrowed mutably for the
        // call; libkrb5 decrypts it in place and points the DATA iov at
        // the plaintext inside it. No cipher state (AUKS sets none).
        self.ctx.check("krb5_k_decrypt_iov", unsafe {
            ffi::lib().krb5_k_decrypt_iov(
                self.ctx.raw,
                key.raw,
                ffi::KRB5_KEYUSAGE_KRB_PRIV_ENCPART as ffi::krb5_keyusage,
                ptr::null(),
                iov.as_mut_ptr(),
                iov.len(),
            )
        })?;
        let data = &iov[1].data;
        let start = (data.data as usize)
            .checked_sub(base)
            .ok_or_else(|| bad("plaintext outside the message"))?;
        let end = start
            .checked_add(data.length as usize)
            .filter(|&e| e <= len as usize)
            .ok_or_else(|| bad("plaintext outside the message"))?;
        Ok(at + start..at + end)
    }

    /// The sequence number messages are counted from in one direction:
    /// `base` when the handshake was made in Rust, else libkrb5's, read
    /// with `getter` (one of `krb5_auth_con_get*seqnumber`, named `what`).
    fn first_seq(
        &self,
        base: Option<u32>,
        what: &'static str,
        getter: unsafe extern "C" fn(
            ffi::krb5_context,
            ffi::krb5_auth_context,
            *mut ffi::krb5_int32,
        ) -> ffi::krb5_error_code,
    ) -> Result<u32> {
        if let Some(b) = base {
            return Ok(b);
        }
        let mut n: ffi::krb5_int32 = 0;
        // SAFETY: `getter` is one of libkrb5's getters of this signature;
        // valid auth context; n receives a number.
        let code = unsafe { getter(self.ctx.raw, self.raw, &mut n) };
        self.ctx.check(what, code)?;
        Ok(n as u32)
    }

    /// The sequence number must be the one expected next: libkrb5's,
    /// plus `offset` messages received without it.
    fn check_seq(&self, seq: Option<i64>, offset: u32) -> Result<()> {
        let want = self.first_seq(
            self.rust.remote_base,
            "krb5_auth_con_getremoteseqnumber",
            ffi::lib().krb5_auth_con_getremoteseqnumber,
        )?;
        // An absent number is 0 (MIT's encoder omits a zero one); compared
        // as unsigned 32-bit numbers (UInt32 on the wire).
        if seq.unwrap_or(0) as u32 == want.wrapping_add(offset) {
            Ok(())
        } else {
            Err(Error::local(OP, "sequence number out of order"))
        }
    }
}

// ---------------------------------------------------------------------------
// Sealing

impl<'a> AuthContext<'a> {
    /// The key KRB-PRIV messages are sent with: the sending subkey, else
    /// the session key (as `krb5_mk_priv`).
    pub(super) fn send_key(&self) -> Result<Key<'a>> {
        self.subkey_or_session_key(
            "krb5_auth_con_getsendsubkey_k",
            ffi::lib().krb5_auth_con_getsendsubkey_k,
        )
    }

    /// One crypto length of `etype` (header, trailer) from libkrb5.
    fn crypto_len(&self, etype: ffi::krb5_enctype, what: u32, data: usize) -> Result<usize> {
        let mut n: u32 = 0;
        if what == ffi::KRB5_CRYPTO_TYPE_PADDING {
            let data = u32::try_from(data).map_err(|_| bad("message larger than 4 GiB"))?;
            // SAFETY: valid context; n receives a length.
            self.ctx.check("krb5_c_padding_length", unsafe {
                ffi::lib().krb5_c_padding_length(self.ctx.raw, etype, data as usize, &mut n)
            })?;
        } else {
            // SAFETY: valid context; n receives a length.
            self.ctx.check("krb5_c_crypto_length", unsafe {
                ffi::lib().krb5_c_crypto_length(
                    self.ctx.raw,
                    etype,
                    what as ffi::krb5_cryptotype,
                    &mut n,
                )
            })?;
        }
        Ok(n as usize)
    }

    /// Build the KRB-PRIV of `plain` in one buffer, the plaintext copied
    /// into it once and encrypted there. When libkrb5 encrypted it (an
    /// enctype other than AES-SHA1), this context sends nothing more
    /// afterwards (see the module doc).
    pub fn mk_priv_in_place(&mut self, plain: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.require_send(OP)?;
        let key = self.send_key()?;
        // SAFETY: valid key reference.
        let etype = unsafe { ffi::lib().krb5_k_key_enctype(self.ctx.raw, key.raw) };
        let in_rust = self.rust_priv_key(key)?;
        if !in_rust && self.rust.local_base.is_some() {
            return Err(Error::local(OP, "handshake made without libkrb5"));
        }
        let key = if in_rust {
            None
        } else {
            // libkrb5 does not advance its sequence number for this send:
            // whatever happens now, it is the last one.
            self.send_spent = true;
            Some(self.send_key()?)
        };
        let seq = self.first_seq(
            self.rust.local_base,
            "krb5_auth_con_getlocalseqnumber",
            ffi::lib().krb5_auth_con_getlocalseqnumber,
        )?;
        let offset = if in_rust { self.rust.sent } else { 0 };
        let seq = int_bytes(seq.wrapping_add(offset));
        let (lt, la) = self
            .local_addr
            .clone()
            .ok_or_else(|| Error::local(OP, "no local address"))?;
        let remote = self.remote_addr.clone();
        let (lt, rt) = (
            int_bytes(lt as u32),
            remote.as_ref().map(|(t, _)| int_bytes(*t as u32)),
        );
        // EncKrbPrivPart: [0] user-data, [3] seq-number (absent when 0, as
        // MIT encodes it), [4] s-address, [5] r-address.
        let with_seq = seq != [0];
        let body = tlv_len(tlv_len(plain.len()))
            + if with_seq { int_field_len(&seq) } else { 0 }
            + address_len(&lt, &la)
            + match (&rt, &remote) {
                (Some(t), Some((_, a))) => address_len(t, a),
                _ => 0,
            };
        let part = tlv_len(tlv_len(body));
        let (head, pad, trail) = if in_rust {
            (auks_kcrypto::HEADER, 0, auks_kcrypto::TRAILER)
        } else {
            (
                self.crypto_len(etype, ffi::KRB5_CRYPTO_TYPE_HEADER, 0)?,
                self.crypto_len(etype, ffi::KRB5_CRYPTO_TYPE_PADDING, part)?,
                self.crypto_len(etype, ffi::KRB5_CRYPTO_TYPE_TRAILER, 0)?,
            )
        };
        let cipher = head + part + pad + trail;
        let etype_b = int_bytes(etype as u32);
        let enc = int_field_len(&etype_b) + tlv_len(tlv_len(cipher));
        let msg_body = int_field_len(&[5]) + int_field_len(&[21]) + tlv_len(tlv_len(enc));
        let total = tlv_len(tlv_len(msg_body));
        if total > u32::MAX as usize {
            return Err(bad("message larger than 4 GiB"));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(total));
        put_header(&mut out, 0x75, tlv_len(msg_body));
        put_header(&mut out, 0x30, msg_body);
        put_int_field(&mut out, 0, &[5]);
        put_int_field(&mut out, 1, &[21]);
        put_header(&mut out, 0xa3, tlv_len(enc));
        put_header(&mut out, 0x30, enc);
        put_int_field(&mut out, 0, &etype_b);
        put_header(&mut out, 0xa2, tlv_len(cipher));
        put_header(&mut out, 0x04, cipher);
        let at = out.len();
        out.resize(at + head, 0);
        put_header(&mut out, 0x7c, tlv_len(body));
        put_header(&mut out, 0x30, body);
        put_header(&mut out, 0xa0, tlv_len(plain.len()));
        put_header(&mut out, 0x04, plain.len());
        out.extend_from_slice(plain);
        if with_seq {
            put_int_field(&mut out, 3, &seq);
        }
        put_address(&mut out, 4, &lt, &la);
        if let (Some(t), Some((_, a))) = (&rt, &remote) {
            put_address(&mut out, 5, t, a);
        }
        out.resize(total, 0);
        if out.len() != total || at + cipher != total {
            return Err(Error::local(OP, "internal error: message size"));
        }
        let region = out.get_mut(at..).ok_or_else(|| bad("cipher"))?;
        let Some(key) = key else {
            let keys = &self.rust.key.as_ref().ok_or_else(|| bad("key"))?.keys;
            keys.seal(region)
                .map_err(|e| Error::local(OP, crypto_failure(e)))?;
            self.rust.sent = self.rust.sent.wrapping_add(1);
            return Ok(out);
        };
        let (h, rest) = region.split_at_mut(head);
        let (d, rest) = rest.split_at_mut(part);
        let (p, t) = rest.split_at_mut(pad);
        let iov_of = |flags: u32, b: &mut [u8]| ffi::krb5_crypto_iov {
            flags: flags as ffi::krb5_cryptotype,
            data: ffi::krb5_data {
                magic: 0,
                length: b.len() as u32,
                data: b.as_mut_ptr().cast(),
            },
        };
        let mut iov = [
            iov_of(ffi::KRB5_CRYPTO_TYPE_HEADER, h),
            iov_of(ffi::KRB5_CRYPTO_TYPE_DATA, d),
            iov_of(ffi::KRB5_CRYPTO_TYPE_PADDING, p),
            iov_of(ffi::KRB5_CRYPTO_TYPE_TRAILER, t),
        ];
        // SAFETY: the iovs cover disjoint parts of `out`, borrowed mutably
        // for the call and sized by libkrb5's own lengths for this enctype;
        // libkrb5 fills header, padding and trailer and encrypts the data
        // in place, as krb5_k_encrypt lays them out. No cipher state.
        self.ctx.check("krb5_k_encrypt_iov", unsafe {
            ffi::lib().krb5_k_encrypt_iov(
                self.ctx.raw,
                key.raw,
                ffi::KRB5_KEYUSAGE_KRB_PRIV_ENCPART as ffi::krb5_keyusage,
                ptr::null(),
                iov.as_mut_ptr(),
                iov.len(),
            )
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER of one element (short or long length form).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        let n = content.len();
        if n < 0x80 {
            v.push(n as u8);
        } else {
            let b = (n as u32).to_be_bytes();
            let skip = b.iter().take_while(|&&x| x == 0).count();
            v.push(0x80 | (4 - skip) as u8);
            v.extend_from_slice(&b[skip..]);
        }
        v.extend_from_slice(content);
        v
    }

    fn int(n: u8, v: &[u8]) -> Vec<u8> {
        tlv(0xa0 | n, &tlv(0x02, v))
    }

    fn krb_priv(etype: u8, cipher: &[u8]) -> Vec<u8> {
        let enc = [int(0, &[etype]), tlv(0xa2, &tlv(0x04, cipher))].concat();
        let body = [int(0, &[5]), int(1, &[21]), tlv(0xa3, &tlv(0x30, &enc))].concat();
        tlv(0x75, &tlv(0x30, &body))
    }

    #[test]
    fn krb_priv_parts_are_found() {
        let cipher = vec![7u8; 300];
        let m = krb_priv(18, &cipher);
        let (etype, r) = parse_krb_priv(&m).unwrap();
        assert_eq!(etype, 18);
        assert_eq!(&m[r], &cipher[..]);
    }

    #[test]
    fn malformed_krb_priv_is_an_error_never_a_panic() {
        let m = krb_priv(18, &[1, 2, 3]);
        for cut in 0..m.len() {
            assert!(parse_krb_priv(&m[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = m.clone();
        trailing.push(0);
        assert!(parse_krb_priv(&trailing).is_err());
        let mut wrong_type = m.clone();
        wrong_type[0] = 0x76;
        assert!(parse_krb_priv(&wrong_type).is_err());
        // a length announcing more than there is
        assert!(parse_krb_priv(&[0x75, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_krb_priv(&[0x75, 0x85, 1, 1, 1, 1, 1]).is_err());
        for b in 0..=255u8 {
            let mut m2 = m.clone();
            m2[3] = b;
            let _ = parse_krb_priv(&m2);
        }
    }

    #[test]
    fn enc_part_fields_are_read() {
        let addr = |n: u8, a: &[u8]| {
            tlv(
                0xa0 | n,
                &tlv(0x30, &[int(0, &[2]), tlv(0xa1, &tlv(0x04, a))].concat()),
            )
        };
        let data = vec![9u8; 200];
        let body = [
            tlv(0xa0, &tlv(0x04, &data)),
            int(3, &[0x00, 0x80, 0, 0, 1]),
            addr(4, &[127, 0, 0, 1]),
            addr(5, &[127, 0, 0, 2]),
        ]
        .concat();
        let m = tlv(0x7c, &tlv(0x30, &body));
        let p = parse_enc_part(&m, 0..m.len()).unwrap();
        assert_eq!(&m[p.user_data], &data[..]);
        assert_eq!(p.seq, Some(0x8000_0001));
        assert_eq!(p.sender.0, 2);
        assert_eq!(&m[p.sender.1], &[127, 0, 0, 1]);
        assert_eq!(&m[p.receiver.unwrap().1], &[127, 0, 0, 2]);
        for cut in 0..m.len() {
            assert!(parse_enc_part(&m, 0..cut).is_err(), "cut at {cut}");
        }
    }
}
