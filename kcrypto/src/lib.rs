//! auks-kcrypto: the encryption of the two enctypes every AUKS session uses in practice,
//! aes128-cts-hmac-sha1-96 (17) and aes256-cts-hmac-sha1-96 (18): RFC 3961's
//! simplified profile with RFC 3962's AES in CBC mode with ciphertext
//! stealing, on the CPU's AES and SHA instructions when it has them.
//!
//! Why not libkrb5: Debian's libk5crypto carries its own table-driven AES
//! and SHA-1 and uses neither instruction set; sealing and opening the two
//! KRB-PRIV messages of a session were a third of auksd's instructions per
//! request (callgrind, GET at 4 clients), and as much again in each client.
//! Only this step moves: the handshake (ticket, authenticator, AP-REP) and
//! every other enctype stay with libkrb5. auks-rs's `krb5::priv_rust`
//! holds the session key for it, and its tests check both directions
//! against libkrb5's own `krb5_k_encrypt_iov`/`krb5_k_decrypt_iov`; the
//! tests here use the RFCs' vectors.
//!
//! The ciphers are RustCrypto's (`aes` with run-time detection of AES-NI,
//! `cts` for CBC-CS3, which is RFC 3962's mode, and `sha1`'s compression
//! function with SHA-NI). HMAC is written out here over that compression
//! function so that every state derived from a key lives in a buffer of
//! ours that is wiped when dropped (the `hmac` crate's states are not).
//! Derived keys: `aes`'s key schedules are zeroized on drop (its `zeroize`
//! feature), the HMAC key's padded states are [`Zeroizing`].
//!
//! Layout of a message (RFC 3961 §5.3): `confounder (16) | data` encrypted
//! in place with Ke, then the first 12 bytes of HMAC-SHA1(Ki, confounder |
//! data) appended; no padding (ciphertext stealing).

#![forbid(unsafe_code)]

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, InnerIvInit, KeyInit};
use aes::{Aes128, Aes256};
use cts::{Decrypt, Encrypt};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// aes128-cts-hmac-sha1-96.
pub const AES128_SHA1: i32 = 17;
/// aes256-cts-hmac-sha1-96.
pub const AES256_SHA1: i32 = 18;
/// Bytes before the data (the confounder, one AES block).
pub const HEADER: usize = 16;
/// Bytes after the data (the truncated HMAC).
pub const TRAILER: usize = 12;

/// Whether `etype` is one of the two enctypes handled here.
pub fn handles(etype: i32) -> bool {
    etype == AES128_SHA1 || etype == AES256_SHA1
}

/// Why a message could not be sealed or opened (no detail: the caller
/// names it).
#[derive(Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// Shorter than a confounder and a checksum.
    TooShort,
    /// The checksum does not match: wrong key, or altered on the way.
    Integrity,
    /// No random bytes for the confounder.
    Random,
}

/// One AES key schedule (encryption and decryption).
enum Cipher {
    A128(Box<Aes128>),
    A256(Box<Aes256>),
}

/// `$body` with `$c` bound to the key schedule of either size.
macro_rules! with_aes {
    ($cipher:expr, $c:ident => $body:expr) => {
        match $cipher {
            Cipher::A128($c) => $body,
            Cipher::A256($c) => $body,
        }
    };
}

impl Cipher {
    fn new(key: &[u8]) -> Option<Cipher> {
        match key.len() {
            16 => Aes128::new_from_slice(key)
                .ok()
                .map(|c| Cipher::A128(Box::new(c))),
            32 => Aes256::new_from_slice(key)
                .ok()
                .map(|c| Cipher::A256(Box::new(c))),
            _ => None,
        }
    }

    fn key_len(&self) -> usize {
        match self {
            Cipher::A128(_) => 16,
            Cipher::A256(_) => 32,
        }
    }

    /// One block, in place (the basic encryption of the derivation).
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        with_aes!(self, c => c.encrypt_block(b))
    }

    /// CBC with ciphertext stealing (CS3), zero IV, of `buf` (at least one
    /// block; exactly one block is one plain block encryption, RFC 3962:
    /// the `cts` crate would encrypt a lone block twice). Lengths below
    /// one block, the modes' only error, are refused by the callers.
    fn cts_encrypt(&self, buf: &mut [u8]) {
        if buf.len() == 16 {
            let b = GenericArray::from_mut_slice(buf);
            return with_aes!(self, c => c.encrypt_block(b));
        }
        let iv = GenericArray::default();
        let _ = with_aes!(self, c => cts::CbcCs3Enc::inner_iv_init(&**c, &iv).encrypt(buf));
    }

    /// The inverse of [`Cipher::cts_encrypt`].
    fn cts_decrypt(&self, buf: &mut [u8]) {
        if buf.len() == 16 {
            let b = GenericArray::from_mut_slice(buf);
            return with_aes!(self, c => c.decrypt_block(b));
        }
        let iv = GenericArray::default();
        let _ = with_aes!(self, c => cts::CbcCs3Dec::inner_iv_init(&**c, &iv).decrypt(buf));
    }
}

/// RFC 3961 §5.1 n-fold of `input` to `out_len` bytes: the input repeated
/// to the least common multiple of both lengths, each copy rotated 13 bits
/// further right than the one before, summed in `out_len`-byte pieces with
/// ones'-complement addition.
fn nfold(input: &[u8], out_len: usize) -> Vec<u8> {
    let (k, n) = (input.len(), out_len);
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let lcm = k * n / gcd(k, n);
    let bits = 8 * k;
    let bit = |x: &[u8], i: usize| (x[i / 8] >> (7 - i % 8)) & 1;
    let mut stream = vec![0u8; lcm];
    for copy in 0..lcm / k {
        let shift = (13 * copy) % bits;
        for j in 0..bits {
            // bit j of the rotated copy is bit (j - shift) of the input
            let v = bit(input, (j + bits - shift) % bits);
            stream[copy * k + j / 8] |= v << (7 - j % 8);
        }
    }
    let mut sum = vec![0u8; n];
    for piece in stream.chunks(n) {
        let mut carry = 0u16;
        for (s, p) in sum.iter_mut().zip(piece).rev() {
            let t = u16::from(*s) + u16::from(*p) + carry;
            *s = t as u8;
            carry = t >> 8;
        }
        // end-around carry
        while carry != 0 {
            for s in sum.iter_mut().rev() {
                let t = u16::from(*s) + carry;
                *s = t as u8;
                carry = t >> 8;
                if carry == 0 {
                    break;
                }
            }
        }
    }
    sum
}

/// The n-fold to one block of the constant `usage | kind` (public, the
/// same for every key), computed once per thread and constant: the
/// bit-by-bit [`nfold`] cost more than the rest of a derivation.
fn folded_constant(usage: u32, kind: u8) -> [u8; 16] {
    thread_local! {
        static FOLDED: std::cell::RefCell<Vec<(u32, u8, [u8; 16])>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    FOLDED.with(|f| {
        let mut f = f.borrow_mut();
        if let Some((_, _, b)) = f.iter().find(|(u, k, _)| *u == usage && *k == kind) {
            return *b;
        }
        let mut constant = [0u8; 5];
        constant[..4].copy_from_slice(&usage.to_be_bytes());
        constant[4] = kind;
        let mut block = [0u8; 16];
        block.copy_from_slice(&nfold(&constant, 16));
        // A few usages are ever used; the bound keeps a caller that
        // cycles through many from growing the table.
        if f.len() < 16 {
            f.push((usage, kind, block));
        }
        block
    })
}

/// RFC 3961 §5.1 DK(base, usage | kind): the n-fold of the constant to one
/// block, encrypted again and again with the base key, as many bytes as the
/// key has (random-to-key is the identity for AES).
fn derive(base: &Cipher, usage: u32, kind: u8) -> Zeroizing<Vec<u8>> {
    let mut block = Zeroizing::new(folded_constant(usage, kind));
    let mut out = Zeroizing::new(Vec::with_capacity(base.key_len()));
    while out.len() < base.key_len() {
        base.encrypt_block(&mut block);
        let take = (base.key_len() - out.len()).min(16);
        out.extend_from_slice(&block[..take]);
    }
    out
}

/// HMAC-SHA1 keyed once: the SHA-1 states after the inner and outer padded
/// key blocks (RFC 2104), wiped when dropped.
struct HmacSha1 {
    inner: Zeroizing<[u32; 5]>,
    outer: Zeroizing<[u32; 5]>,
}

const SHA1_INIT: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

fn compress(state: &mut [u32; 5], block: &[u8]) {
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// Continue SHA-1 from `state` (after `prefix` bytes already hashed, a
/// multiple of 64) over `data`, and finish; the digest as bytes. The
/// callers pass a `Zeroizing` copy of a keyed state, wiped when dropped.
fn sha1_finish(state: &mut [u32; 5], prefix: usize, data: &[u8]) -> Zeroizing<[u8; 20]> {
    let mut blocks = data.chunks_exact(64);
    for b in &mut blocks {
        compress(state, b);
    }
    let rest = blocks.remainder();
    let mut last = Zeroizing::new([0u8; 128]);
    last[..rest.len()].copy_from_slice(rest);
    last[rest.len()] = 0x80;
    let len = if rest.len() + 9 <= 64 { 64 } else { 128 };
    let bits = ((prefix + data.len()) as u64) * 8;
    last[len - 8..len].copy_from_slice(&bits.to_be_bytes());
    for b in last[..len].chunks_exact(64) {
        compress(state, b);
    }
    let mut out = Zeroizing::new([0u8; 20]);
    for (o, w) in out.chunks_exact_mut(4).zip(state.iter()) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

impl HmacSha1 {
    /// A key of at most one block (Ki of AES: 16 or 32 bytes).
    fn new(key: &[u8]) -> HmacSha1 {
        let mut pad = Zeroizing::new([0u8; 64]);
        let keyed = |byte: u8, pad: &mut [u8; 64]| {
            for (p, k) in pad.iter_mut().zip(key.iter().chain(std::iter::repeat(&0))) {
                *p = k ^ byte;
            }
            let mut s = Zeroizing::new(SHA1_INIT);
            compress(&mut s, &pad[..]);
            s
        };
        let inner = keyed(0x36, &mut pad);
        let outer = keyed(0x5c, &mut pad);
        HmacSha1 { inner, outer }
    }

    fn mac(&self, data: &[u8]) -> Zeroizing<[u8; 20]> {
        let mut s = self.inner.clone();
        let inner = sha1_finish(&mut s, 64, data);
        let mut s = self.outer.clone();
        sha1_finish(&mut s, 64, &inner[..])
    }
}

/// The keys of one base key for one key usage: Ke (encryption) and Ki
/// (integrity).
pub struct UsageKey {
    ke: Cipher,
    ki: HmacSha1,
}

impl UsageKey {
    /// The keys of `base` (the raw key of enctype `etype`) for `usage`;
    /// None for another enctype or a key of the wrong length.
    pub fn new(etype: i32, base: &[u8], usage: u32) -> Option<UsageKey> {
        let want = match etype {
            AES128_SHA1 => 16,
            AES256_SHA1 => 32,
            _ => return None,
        };
        if base.len() != want {
            return None;
        }
        let base = Cipher::new(base)?;
        let ke = Cipher::new(&derive(&base, usage, 0xaa))?;
        let ki = HmacSha1::new(&derive(&base, usage, 0x55));
        Some(UsageKey { ke, ki })
    }

    /// Encrypt `msg` in place: `msg` is [`HEADER`] bytes (overwritten by
    /// the confounder), the data, then [`TRAILER`] bytes (overwritten by
    /// the checksum).
    pub fn seal(&self, msg: &mut [u8]) -> Result<(), CryptoError> {
        let body = msg
            .len()
            .checked_sub(TRAILER)
            .filter(|&b| b >= HEADER)
            .ok_or(CryptoError::TooShort)?;
        let (plain, mac) = msg.split_at_mut(body);
        getrandom::fill(&mut plain[..HEADER]).map_err(|_| CryptoError::Random)?;
        let sum = self.ki.mac(plain);
        mac.copy_from_slice(&sum[..TRAILER]);
        self.ke.cts_encrypt(plain);
        Ok(())
    }

    /// Decrypt `msg` (ciphertext and checksum) in place and verify it;
    /// returns where the data is in `msg`. On an integrity failure the
    /// decrypted bytes are wiped.
    pub fn open(&self, msg: &mut [u8]) -> Result<std::ops::Range<usize>, CryptoError> {
        let body = msg
            .len()
            .checked_sub(TRAILER)
            .filter(|&b| b >= HEADER)
            .ok_or(CryptoError::TooShort)?;
        let (plain, mac) = msg.split_at_mut(body);
        self.ke.cts_decrypt(plain);
        let sum = self.ki.mac(plain);
        if bool::from(sum[..TRAILER].ct_eq(mac)) {
            Ok(HEADER..body)
        } else {
            plain.zeroize();
            Err(CryptoError::Integrity)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn nfold_matches_rfc_3961_vectors() {
        let cases: &[(&str, usize, &str)] = &[
            ("012345", 8, "be072631276b1955"),
            ("password", 7, "78a07b6caf85fa"),
            ("Rough Consensus, and Running Code", 8, "bb6ed30870b7f0e0"),
            ("password", 21, "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e"),
            (
                "MASSACHVSETTS INSTITVTE OF TECHNOLOGY",
                24,
                "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b",
            ),
            ("Q", 21, "518a54a215a8452a518a54a215a8452a518a54a215"),
            ("ba", 21, "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"),
            ("kerberos", 8, "6b65726265726f73"),
            ("kerberos", 16, "6b65726265726f737b9b5b2b93132b93"),
            ("kerberos", 21, "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4"),
            (
                "kerberos",
                32,
                "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4",
            ),
        ];
        for (input, n, want) in cases {
            assert_eq!(
                nfold(input.as_bytes(), *n),
                hex(want),
                "{n}-fold of {input}"
            );
        }
    }

    #[test]
    fn folded_constants_are_the_n_fold_of_the_usage_constant() {
        // usage 13, Ke and Ki; asked twice (the second from the table)
        for _ in 0..2 {
            for kind in [0xaa, 0x55] {
                let want = nfold(&[0, 0, 0, 13, kind], 16);
                assert_eq!(folded_constant(13, kind).to_vec(), want);
            }
        }
        // more usages than the table keeps are still folded right
        for usage in 0..40u32 {
            let mut c = usage.to_be_bytes().to_vec();
            c.push(0x99);
            assert_eq!(folded_constant(usage, 0x99).to_vec(), nfold(&c, 16));
        }
    }

    #[test]
    fn cts_matches_rfc_3962_vectors() {
        // Appendix B: AES-128 key "chicken teriyaki", zero IV.
        let c = Cipher::new(b"chicken teriyaki").unwrap();
        let input = b"I would like the General Gau's Chicken, please, and wonton soup.";
        let cases: &[(usize, &str)] = &[
            (17, "c6353568f2bf8cb4d8a580362da7ff7f97"),
            (
                31,
                "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5",
            ),
            (
                32,
                "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584",
            ),
            (
                47,
                "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e
                 39312523a78662d5be7fcbcc98ebf5",
            ),
            (
                48,
                "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd8
                 39312523a78662d5be7fcbcc98ebf5a8",
            ),
            (
                64,
                "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a8
                 4807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8",
            ),
        ];
        for (len, want) in cases {
            let mut buf = input[..*len].to_vec();
            c.cts_encrypt(&mut buf);
            assert_eq!(buf, hex(want), "{len} bytes");
            c.cts_decrypt(&mut buf);
            assert_eq!(buf, &input[..*len]);
        }
    }

    #[test]
    fn hmac_matches_rfc_2202_vectors() {
        let h = HmacSha1::new(&[0x0b; 20]);
        assert_eq!(
            &h.mac(b"Hi There")[..],
            &hex("b617318655057264e28bc0b6fb378c8ef146be00")[..]
        );
        let h = HmacSha1::new(b"Jefe");
        assert_eq!(
            &h.mac(b"what do ya want for nothing?")[..],
            &hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")[..]
        );
        let h = HmacSha1::new(&[0xaa; 20]);
        assert_eq!(
            &h.mac(&[0xdd; 50])[..],
            &hex("125d7342b9ac11cd91a39af48aa17b4f63f175d3")[..]
        );
    }

    #[test]
    fn sealed_message_opens_and_any_change_is_refused() {
        let k = UsageKey::new(AES256_SHA1, &[7; 32], 13).unwrap();
        for len in [0usize, 1, 15, 16, 17, 100, 1000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut msg = vec![0u8; HEADER + len + TRAILER];
            msg[HEADER..HEADER + len].copy_from_slice(&data);
            k.seal(&mut msg).unwrap();
            let sealed = msg.clone();
            let r = k.open(&mut msg).unwrap();
            assert_eq!(&msg[r], &data[..]);
            for i in [0, sealed.len() / 2, sealed.len() - 1] {
                let mut bad = sealed.clone();
                bad[i] ^= 1;
                assert_eq!(k.open(&mut bad), Err(CryptoError::Integrity));
            }
        }
        let other = UsageKey::new(AES256_SHA1, &[7; 32], 14).unwrap();
        let mut msg = vec![0u8; HEADER + 10 + TRAILER];
        k.seal(&mut msg).unwrap();
        assert_eq!(other.open(&mut msg), Err(CryptoError::Integrity));
        assert_eq!(k.open(&mut [0u8; 27]), Err(CryptoError::TooShort));
        assert_eq!(k.seal(&mut [0u8; 27]), Err(CryptoError::TooShort));
        assert!(UsageKey::new(AES256_SHA1, &[7; 16], 13).is_none());
        assert!(UsageKey::new(20, &[7; 32], 13).is_none());
    }
}
