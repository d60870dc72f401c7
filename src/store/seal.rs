//! Sealing of credentials at rest in etcd: AES-256-GCM (ring) under a key
//! that only the auksd instances hold, so etcd's operators, backups and
//! snapshots never see a usable ticket.
//!
//! The keys live in a file of their own (`EtcdSealKeyFile`): one key per
//! line, `<id> <64 hex digits>`, `#` comments; the first key seals, every
//! key opens. The file must be a regular file (not a symlink) owned by the
//! daemon's user with no group or other permission bits. Rotation: add the
//! new key as a second line on every instance, then make it the first line
//! everywhere, `auksd-etcd reseal`, and remove the old line.
//!
//! A sealed value is `"AUKSSEAL1"`, the key id length (1 byte) and id, a
//! 12-byte random nonce, then the ciphertext and tag of the compact AUKS cred
//! record. The etcd key is authenticated with it, so a value moved to another
//! uid's key does not open.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::StoreError;
use crate::proto::{self, CredRecord};

const MAGIC: &[u8] = b"AUKSSEAL1";
/// Largest key file accepted.
const MAX_KEY_FILE: u64 = 64 << 10;
/// Longest key id.
pub const MAX_KEY_ID: usize = 32;

/// One sealing key. The hex text and raw bytes read from the file are
/// zeroized; ring's expanded AES key schedule is opaque and is not wiped
/// when dropped (ring offers no way to), a limit stated in the README.
struct SealKey {
    id: String,
    key: LessSafeKey,
}

/// The sealing keys of this instance.
pub struct KeyRing {
    keys: Vec<SealKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("KeyRing").field("ids", &ids).finish()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn unhex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 2));
    for pair in s.as_bytes().chunks(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push(u8::try_from(hi * 16 + lo).ok()?);
    }
    Some(out)
}

impl KeyRing {
    /// Parses the text of a key file (`what` names it in errors).
    pub fn parse(text: &str, what: &str) -> Result<KeyRing, StoreError> {
        let bad = |n: usize, why: &str| StoreError::Config(format!("{what}:{n}: {why}"));
        let mut keys: Vec<SealKey> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            let (Some(id), Some(hex), None) = (it.next(), it.next(), it.next()) else {
                return Err(bad(i + 1, "expected '<id> <64 hex digits>'"));
            };
            if !valid_id(id) {
                return Err(bad(i + 1, "invalid key id"));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(bad(i + 1, "duplicate key id"));
            }
            let raw = unhex(hex)
                .filter(|r| r.len() == 32)
                .ok_or_else(|| bad(i + 1, "the key must be 64 hexadecimal digits (256 bits)"))?;
            let key =
                UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| bad(i + 1, "unusable key"))?;
            keys.push(SealKey {
                id: id.to_string(),
                key: LessSafeKey::new(key),
            });
        }
        if keys.is_empty() {
            return Err(StoreError::Config(format!("{what}: no sealing key")));
        }
        Ok(KeyRing {
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// Loads a key file, refusing one that others could read or replace.
    pub fn load(path: &Path) -> Result<KeyRing, StoreError> {
        let what = path.display().to_string();
        let err = |why: String| StoreError::Config(format!("sealing key file {what}: {why}"));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| err(e.to_string()))?;
        let m = f.metadata().map_err(|e| err(e.to_string()))?;
        if !m.is_file() {
            return Err(err("not a regular file".into()));
        }
        if m.mode() & 0o077 != 0 {
            return Err(err(format!(
                "mode {:o} gives access to group or others (chmod 600)",
                m.mode() & 0o777
            )));
        }
        if m.uid() != nix::unistd::geteuid().as_raw() {
            return Err(err(format!("owned by uid {}, not by this daemon", m.uid())));
        }
        if m.len() > MAX_KEY_FILE {
            return Err(err("too large".into()));
        }
        let mut text = Zeroizing::new(String::new());
        f.read_to_string(&mut text)
            .map_err(|e| err(e.to_string()))?;
        KeyRing::parse(&text, &what)
    }

    /// A new key file text with one random key named `id`.
    pub fn generate(id: &str) -> Result<Zeroizing<String>, StoreError> {
        if !valid_id(id) {
            return Err(StoreError::Config(format!("invalid key id {id:?}")));
        }
        let mut raw = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(raw.as_mut())
            .map_err(|_| StoreError::Config("no system randomness".into()))?;
        let mut text = Zeroizing::new(format!(
            "# auksd sealing keys: first line seals, every line opens\n{id} "
        ));
        for b in raw.iter() {
            text.push_str(&format!("{b:02x}"));
        }
        text.push('\n');
        Ok(text)
    }

    /// The id of the sealing key.
    pub fn active_id(&self) -> &str {
        &self.keys[0].id
    }

    /// The id of the key that sealed `value`, if it is a sealed value.
    pub fn key_id_of(value: &[u8]) -> Option<&str> {
        let rest = value.strip_prefix(MAGIC)?;
        let (&n, rest) = rest.split_first()?;
        std::str::from_utf8(rest.get(..usize::from(n))?).ok()
    }

    fn aad(etcd_key: &[u8], id: &str) -> Vec<u8> {
        let mut a = Vec::with_capacity(MAGIC.len() + id.len() + etcd_key.len() + 1);
        a.extend_from_slice(MAGIC);
        a.extend_from_slice(id.as_bytes());
        a.push(0);
        a.extend_from_slice(etcd_key);
        a
    }

    /// Seals `rec` for storage under `etcd_key`.
    pub fn seal(&self, etcd_key: &[u8], rec: &CredRecord) -> Result<Vec<u8>, StoreError> {
        let k = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| StoreError::Seal("no system randomness".into()))?;
        let mut buf = Zeroizing::new(Vec::with_capacity(proto::compact_record_len(rec) + 16));
        proto::encode_record(rec, &mut buf);
        let tag = k
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(etcd_key, &k.id)),
                &mut buf,
            )
            .map_err(|_| StoreError::Seal("encryption failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + 1 + k.id.len() + NONCE_LEN + buf.len() + 16);
        out.extend_from_slice(MAGIC);
        out.push(u8::try_from(k.id.len()).unwrap_or(0));
        out.extend_from_slice(k.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a value read from `etcd_key`.
    pub fn open(&self, etcd_key: &[u8], value: &[u8]) -> Result<CredRecord, StoreError> {
        let id = Self::key_id_of(value)
            .ok_or_else(|| StoreError::Seal("not a sealed AUKS credential".into()))?;
        let k = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| StoreError::Seal(format!("sealed with unknown key id {id:?}")))?;
        let body = &value[MAGIC.len() + 1 + id.len()..];
        if body.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(StoreError::Seal("sealed value truncated".into()));
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| StoreError::Seal("bad nonce".into()))?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = k
            .key
            .open_in_place(nonce, Aad::from(Self::aad(etcd_key, id)), &mut buf)
            .map_err(|_| {
                StoreError::Seal(format!(
                    "authentication failed (wrong key {id:?}, or value altered or moved)"
                ))
            })?;
        let (rec, used) =
            proto::decode_record(plain).map_err(|e| StoreError::Seal(e.to_string()))?;
        if used != plain.len() {
            return Err(StoreError::Seal("trailing bytes in sealed record".into()));
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> CredRecord {
        CredRecord {
            principal: "alice@R".into(),
            uid: 2000,
            starttime: 1,
            endtime: 100,
            renew_till: 200,
            addressless: true,
            crossrealm: false,
            data: Zeroizing::new(b"TICKET-BYTES-TICKET-BYTES".to_vec()),
            status: 0,
        }
    }

    const A: &str = "a 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    const B: &str = "b 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100\n";

    #[test]
    fn seal_open_roundtrip_hides_the_ticket() {
        let ring = KeyRing::parse(A, "t").unwrap();
        let v = ring.seal(b"/auks/cred/2000", &rec()).unwrap();
        assert!(!v
            .windows(12)
            .any(|w| w == &b"TICKET-BYTES-TICKET-BYTES"[..12]));
        assert_eq!(KeyRing::key_id_of(&v), Some("a"));
        let r = ring.open(b"/auks/cred/2000", &v).unwrap();
        assert_eq!((r.uid, r.principal.as_str()), (2000, "alice@R"));
        assert_eq!(&r.data[..], b"TICKET-BYTES-TICKET-BYTES");
        // Two seals of the same record differ (random nonce).
        assert_ne!(v, ring.seal(b"/auks/cred/2000", &rec()).unwrap());
    }

    #[test]
    fn moved_altered_or_foreign_values_do_not_open() {
        let ring = KeyRing::parse(A, "t").unwrap();
        let mut v = ring.seal(b"/auks/cred/2000", &rec()).unwrap();
        assert!(ring.open(b"/auks/cred/2001", &v).is_err(), "moved");
        let n = v.len();
        v[n - 20] ^= 1;
        assert!(ring.open(b"/auks/cred/2000", &v).is_err(), "altered");
        let other = KeyRing::parse(B, "t").unwrap();
        let v = other.seal(b"k", &rec()).unwrap();
        assert!(ring.open(b"k", &v).is_err(), "unknown key id");
        assert!(ring.open(b"k", b"AUKSSEAL1").is_err());
        assert!(ring.open(b"k", b"plain").is_err());
    }

    #[test]
    fn rotation_second_key_still_opens() {
        let old = KeyRing::parse(A, "t").unwrap();
        let v = old.seal(b"k", &rec()).unwrap();
        let both = KeyRing::parse(&format!("{B}{A}"), "t").unwrap();
        assert_eq!(both.active_id(), "b");
        assert_eq!(both.open(b"k", &v).unwrap().uid, 2000);
        let v2 = both.seal(b"k", &rec()).unwrap();
        assert_eq!(KeyRing::key_id_of(&v2), Some("b"));
        assert!(old.open(b"k", &v2).is_err());
    }

    #[test]
    fn key_files_are_checked() {
        assert!(KeyRing::parse("", "t").is_err());
        assert!(KeyRing::parse("a 00", "t").is_err());
        assert!(KeyRing::parse("a/b 00", "t").is_err());
        assert!(KeyRing::parse(&format!("{A}{A}"), "t").is_err());
        let g = KeyRing::generate("k1").unwrap();
        assert_eq!(KeyRing::parse(&g, "t").unwrap().active_id(), "k1");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys");
        std::fs::write(&p, g.as_bytes()).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        assert!(KeyRing::load(&p).is_err(), "group-readable");
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert!(KeyRing::load(&p).is_ok());
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        assert!(KeyRing::load(&l).is_err(), "symlink");
    }
}
