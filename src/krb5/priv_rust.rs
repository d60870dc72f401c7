//! The session key of an auth context, held for KRB-PRIV by
//! [`auks_kcrypto`] when its enctype is one of the two AES-SHA1 ones:
//! [`AuthContext::rust_priv_key`] derives the usage-13 keys once per key
//! object and keeps them with a reference to the libkrb5 key they came
//! from, so that a key replaced in the auth context (an AP-REP carrying a
//! subkey) is noticed by identity and derived again.
//!
//! Sequence numbers: libkrb5's counters cannot be advanced from outside,
//! so the messages sealed (opened) here are counted, and the number a
//! message carries (must carry) is libkrb5's current one plus that count.
//! Once a message went this way in one direction, libkrb5's own
//! `krb5_mk_priv` (`krb5_rd_priv`) is refused in that direction
//! ([`AuthContext::mk_priv`], [`AuthContext::rd_priv`]).

use std::ptr;

use super::auth_context::{AuthContext, Key};
use super::error::{Error, Result};
use super::ffi;
use auks_kcrypto::UsageKey;

/// KRB-PRIV key usage (RFC 4120 §7.5.1).
const KRB_PRIV: u32 = ffi::KRB5_KEYUSAGE_KRB_PRIV_ENCPART;

/// Usage-13 keys derived in Rust from one libkrb5 key object.
pub(super) struct RustKey<'c> {
    /// A reference of ours to the key object they were derived from: the
    /// object cannot be freed and its address reused while it is held.
    from: Key<'c>,
    pub(super) keys: UsageKey,
}

/// What an auth context seals and opens here.
#[derive(Default)]
pub(super) struct RustPriv<'c> {
    pub(super) key: Option<RustKey<'c>>,
    /// Messages sealed here (added to libkrb5's local sequence number).
    pub(super) sent: u32,
    /// Messages opened here (added to libkrb5's remote sequence number).
    pub(super) received: u32,
    /// The first sequence numbers, when the handshake was made in Rust
    /// ([`super::ap_client`]): they replace libkrb5's, which never saw
    /// them (libkrb5 then seals and opens nothing of this context).
    pub(super) local_base: Option<u32>,
    pub(super) remote_base: Option<u32>,
    /// libkrb5 seals and opens every message of this context
    /// ([`AuthContext::libkrb5_priv_only`]).
    off: bool,
}

impl RustPriv<'_> {
    /// Whether libkrb5 seals and opens every message of this context.
    pub(super) fn is_off(&self) -> bool {
        self.off
    }

    /// Whether the handshake was made in Rust (libkrb5 does not know the
    /// sequence numbers).
    pub(super) fn has_bases(&self) -> bool {
        self.local_base.is_some() || self.remote_base.is_some()
    }
}

impl<'a> AuthContext<'a> {
    /// Leave every KRB-PRIV of this context to libkrb5, whatever its
    /// enctype (before its first message): for the tests that read one
    /// implementation's messages with the other.
    pub fn libkrb5_priv_only(&mut self) {
        // A handshake made in Rust left libkrb5 without the sequence
        // numbers: every KRB-PRIV of such a context is then refused.
        self.rust.off = true;
        self.rust.key = None;
    }

    /// Whether the next KRB-PRIV sent is sealed by [`auks_kcrypto`]
    /// ([`AuthContext::mk_priv_in_place`] then serves any size).
    pub fn seals_in_rust(&mut self) -> Result<bool> {
        self.require_send("KRB-PRIV")?;
        let key = self.send_key()?;
        self.rust_priv_key(key)
    }

    /// Whether the next KRB-PRIV received is opened by
    /// [`auks_kcrypto`] ([`AuthContext::rd_priv_in_place`]).
    pub fn opens_in_rust(&mut self) -> Result<bool> {
        self.require_receive("KRB-PRIV")?;
        let key = self.recv_key()?;
        self.rust_priv_key(key)
    }

    /// Make [`RustPriv::key`] the keys of `key` if its enctype is an
    /// AES-SHA1 one; false (and nothing kept) for any other enctype, for
    /// which libkrb5 does the work.
    pub(super) fn rust_priv_key(&mut self, key: Key<'a>) -> Result<bool> {
        if self.rust.off {
            return Ok(false);
        }
        if let Some(k) = &self.rust.key {
            if k.from.raw == key.raw {
                return Ok(true);
            }
        }
        self.rust.key = None;
        // SAFETY: valid key reference.
        let etype = unsafe { ffi::lib().krb5_k_key_enctype(self.ctx.raw, key.raw) };
        if !auks_kcrypto::handles(etype) {
            return Ok(false);
        }
        let mut kb: *mut ffi::krb5_keyblock = ptr::null_mut();
        // SAFETY: valid key; kb receives a copy of its keyblock, freed
        // (and wiped: krb5_free_keyblock zeroes the contents) below.
        self.ctx.check("krb5_k_key_keyblock", unsafe {
            ffi::lib().krb5_k_key_keyblock(self.ctx.raw, key.raw, &mut kb)
        })?;
        if kb.is_null() {
            return Err(Error::local("krb5_k_key_keyblock", "no keyblock"));
        }
        // SAFETY: kb is a valid keyblock whose `contents` hold `length`
        // bytes (or is NULL with length 0); read before it is freed.
        let keys = unsafe {
            let (p, n) = ((*kb).contents, (*kb).length as usize);
            let bytes: &[u8] = if p.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(p, n)
            };
            let keys = UsageKey::new(etype, bytes, KRB_PRIV);
            ffi::lib().krb5_free_keyblock(self.ctx.raw, kb);
            keys
        };
        match keys {
            Some(keys) => {
                self.rust.key = Some(RustKey { from: key, keys });
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::Context;
    use super::*;
    use auks_kcrypto::{AES128_SHA1, AES256_SHA1, HEADER, TRAILER};

    /// A libkrb5 key object of `etype` holding `bytes`.
    fn lib_key<'c>(ctx: &'c Context, etype: i32, bytes: &mut [u8]) -> Key<'c> {
        let kb = ffi::krb5_keyblock {
            magic: 0,
            enctype: etype,
            length: bytes.len() as u32,
            contents: bytes.as_mut_ptr(),
        };
        let mut raw: ffi::krb5_key = ptr::null_mut();
        // SAFETY: kb points to a live buffer that libkrb5 copies; raw
        // receives a new key released by the guard.
        ctx.check("krb5_k_create_key", unsafe {
            ffi::lib().krb5_k_create_key(ctx.raw, &kb, &mut raw)
        })
        .unwrap();
        Key { ctx, raw }
    }

    fn iov(flags: u32, b: &mut [u8]) -> ffi::krb5_crypto_iov {
        ffi::krb5_crypto_iov {
            flags: flags as ffi::krb5_cryptotype,
            data: ffi::krb5_data {
                magic: 0,
                length: b.len() as u32,
                data: b.as_mut_ptr().cast(),
            },
        }
    }

    /// Both directions against libkrb5's own encryption, for both enctypes,
    /// every length up to a few blocks and some larger ones: what this
    /// module seals libkrb5 opens, and the reverse.
    #[test]
    fn rust_and_libkrb5_open_each_others_messages() {
        let ctx = Context::new().unwrap();
        for (etype, n) in [(AES128_SHA1, 16usize), (AES256_SHA1, 32)] {
            let mut bytes = vec![0u8; n];
            getrandom::fill(&mut bytes).unwrap();
            let key = lib_key(&ctx, etype, &mut bytes);
            let ours = UsageKey::new(etype, &bytes, KRB_PRIV).unwrap();
            let lens = (0..=80).chain([255, 1000, 4097]);
            for len in lens {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                // ours -> libkrb5
                let mut msg = vec![0u8; HEADER + len + TRAILER];
                msg[HEADER..HEADER + len].copy_from_slice(&data);
                ours.seal(&mut msg).unwrap();
                let mut io = [
                    iov(ffi::KRB5_CRYPTO_TYPE_STREAM, &mut msg),
                    iov(ffi::KRB5_CRYPTO_TYPE_DATA, &mut []),
                ];
                // SAFETY: the STREAM iov covers `msg`, decrypted in place;
                // DATA is pointed into it by libkrb5.
                ctx.check("krb5_k_decrypt_iov", unsafe {
                    ffi::lib().krb5_k_decrypt_iov(
                        ctx.raw,
                        key.raw,
                        KRB_PRIV as ffi::krb5_keyusage,
                        ptr::null(),
                        io.as_mut_ptr(),
                        io.len(),
                    )
                })
                .unwrap_or_else(|e| panic!("etype {etype}, {len} bytes: {e}"));
                // SAFETY: DATA points at `length` bytes inside `msg`.
                let got = unsafe {
                    std::slice::from_raw_parts(
                        io[1].data.data as *const u8,
                        io[1].data.length as usize,
                    )
                };
                assert_eq!(got, &data[..], "etype {etype}, {len} bytes");
                // libkrb5 -> ours
                let mut msg = vec![0u8; HEADER + len + TRAILER];
                msg[HEADER..HEADER + len].copy_from_slice(&data);
                let (h, rest) = msg.split_at_mut(HEADER);
                let (d, t) = rest.split_at_mut(len);
                let mut io = [
                    iov(ffi::KRB5_CRYPTO_TYPE_HEADER, h),
                    iov(ffi::KRB5_CRYPTO_TYPE_DATA, d),
                    iov(ffi::KRB5_CRYPTO_TYPE_PADDING, &mut []),
                    iov(ffi::KRB5_CRYPTO_TYPE_TRAILER, t),
                ];
                // SAFETY: the iovs cover disjoint parts of `msg`, sized by
                // this enctype's lengths (16, data, 0, 12).
                ctx.check("krb5_k_encrypt_iov", unsafe {
                    ffi::lib().krb5_k_encrypt_iov(
                        ctx.raw,
                        key.raw,
                        KRB_PRIV as ffi::krb5_keyusage,
                        ptr::null(),
                        io.as_mut_ptr(),
                        io.len(),
                    )
                })
                .unwrap();
                let r = ours
                    .open(&mut msg)
                    .unwrap_or_else(|e| panic!("etype {etype}, {len} bytes: {e:?}"));
                assert_eq!(&msg[r], &data[..], "etype {etype}, {len} bytes");
            }
            // another usage's keys do not open it
            let other = UsageKey::new(etype, &bytes, KRB_PRIV + 1).unwrap();
            let mut msg = vec![0u8; HEADER + 40 + TRAILER];
            ours.seal(&mut msg).unwrap();
            assert!(other.open(&mut msg).is_err());
        }
    }
}
