//! auksd's own replay cache (`ReplayCache = yes`).
//!
//! libkrb5's file replay cache costs about twenty system calls per AP-REQ
//! (open, lock, a probe per hash table, write, unlock, close), as much as
//! the rest of a session. This one keeps the tag of every accepted
//! authenticator in memory until the authenticator could no longer pass
//! libkrb5's time check (its time plus the clock skew, and a minute more),
//! and appends it to a journal ([`journal`]) so that a restarted daemon
//! still refuses it, as libkrb5's file does. The tag is the SHA-256 of the
//! authenticator's ciphertext, which is what libkrb5 keys on as well.
//!
//! libkrb5's own file cache takes over (sessions use it, this cache keeps
//! refusing what it holds) when more than [`MAX_ENTRIES`] tags are fresh,
//! and for good when the journal cannot be read, trusted or written. The
//! sessions that were already past their choice of cache at that moment
//! are refused, never one after. At start, libkrb5's cache is used as long
//! as an authenticator its file stored could still be replayed (its
//! modification time + 2 × skew), whoever stored it (a previous run that
//! had handed over, a C auksd).

mod journal;

use journal::Journal;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Most tags kept in memory (about 45 bytes each with the table: 90 MB).
pub const MAX_ENTRIES: usize = 2_000_000;
/// Expired tags are swept this often (seconds), one shard a second.
const SWEEP_EVERY: i64 = 16;
/// Kept this much longer than libkrb5 accepts them: the session reads
/// the clock after libkrb5 did.
const GRACE: i64 = 60;
/// A journal record: the tag, then its expiry (i64, little-endian).
const RECORD: usize = 24;
/// Shards of a daemon's cache.
const SHARDS: usize = 16;

type Tag = [u8; 16];

/// The tag of an authenticator's ciphertext.
pub fn tag_of(cipher: &[u8]) -> Tag {
    let d = ring::digest::digest(&ring::digest::SHA256, cipher);
    let mut t = [0u8; 16];
    t.copy_from_slice(&d.as_ref()[..16]);
    t
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replayed authenticator")]
    Replayed,
    #[error("authentication refused while the replay cache hands over to libkrb5's (try again)")]
    HandingOver,
}

/// Hashes tags (SHA-256 output) with a per-process random key.
#[derive(Clone)]
struct TagHashing(u64);
struct TagHasher(u64);

impl std::hash::BuildHasher for TagHashing {
    type Hasher = TagHasher;
    fn build_hasher(&self) -> TagHasher {
        TagHasher(self.0)
    }
}

impl std::hash::Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// One part of the tags (by their first byte), with its own lock, so that
/// workers rarely wait for each other and a sweep holds up only the
/// sessions whose tag falls in its part.
struct Shard {
    seen: HashMap<Tag, u32, TagHashing>,
    next_sweep: i64,
}

enum Journaling {
    /// Tests: no journal.
    MemoryOnly,
    Open(Journal),
    /// It could not be read, trusted or written: libkrb5's cache is used.
    Broken,
}

/// The replay cache of a daemon, shared by its workers.
pub struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
    /// Expiries are kept as seconds after `base`.
    base: i64,
    /// Tags per shard at most.
    shard_cap: usize,
    journal: Mutex<Journaling>,
    /// Until then, sessions use libkrb5's replay cache too.
    library_until: AtomicI64,
    /// The largest clock skew of the daemon's contexts.
    skew: AtomicI64,
}

impl ReplayCache {
    /// A cache for clock skew `skew` whose journal is the files
    /// `<dir>/<name>.replay.{0,1}` (`dir` None: memory only, for tests).
    /// Returns the cache and what to log: the tags loaded, and why
    /// libkrb5's cache is used, if it is.
    pub fn open(dir: Option<&Path>, name: &str, skew: i64, now: i64) -> (Self, String) {
        Self::with_capacity(dir, name, skew, now, MAX_ENTRIES, SHARDS)
    }

    fn with_capacity(
        dir: Option<&Path>,
        name: &str,
        skew: i64,
        now: i64,
        cap: usize,
        shards: usize,
    ) -> (Self, String) {
        let skew = skew.max(0);
        let mut key = [0u8; 8];
        if getrandom::fill(&mut key).is_err() {
            key = (now as u64 ^ u64::from(std::process::id())).to_le_bytes();
        }
        let hashing = TagHashing(u64::from_le_bytes(key));
        let shards = shards.clamp(1, 256);
        let cache = ReplayCache {
            // Sweeps spread over the seconds of SWEEP_EVERY.
            shards: (0..shards)
                .map(|i| {
                    Mutex::new(Shard {
                        seen: HashMap::with_hasher(hashing.clone()),
                        next_sweep: now + 1 + (i as i64 % SWEEP_EVERY),
                    })
                })
                .collect(),
            base: now - 1,
            shard_cap: cap.div_ceil(shards).max(1),
            journal: Mutex::new(Journaling::MemoryOnly),
            library_until: AtomicI64::new(0),
            skew: AtomicI64::new(skew),
        };
        let Some(dir) = dir else {
            return (cache, "replay cache in memory only".into());
        };
        let loaded = journal::load(dir, &format!("{name}.replay"), now - GRACE, now);
        // Loaded whatever the limit: they were accepted and must stay
        // refused.
        for (tag, expiry) in &loaded.fresh {
            cache.insert(&mut cache.shard(tag), *tag, *expiry);
        }
        let mut note = format!(
            "replay cache: {} authenticators still fresh loaded from {}/{name}.replay.0",
            loaded.fresh.len(),
            dir.display()
        );
        if let Some(m) = journal::library_file_modified(dir) {
            let until = m + 2 * skew + 2 + GRACE;
            if until > now {
                cache.library_until.store(until, Ordering::SeqCst);
                note.push_str(&format!(
                    "; libkrb5's file cache, written {} s ago, is used {} s more",
                    now - m,
                    until - now
                ));
            }
        }
        *cache.journal.lock().unwrap_or_else(PoisonError::into_inner) = match loaded.journal {
            Some(j) => Journaling::Open(j),
            None => {
                cache.library_until.store(i64::MAX, Ordering::SeqCst);
                note.push_str(&format!(
                    "; libkrb5's file cache is used: {}",
                    loaded.problems.join("; ")
                ));
                Journaling::Broken
            }
        };
        (cache, note)
    }

    /// A worker's context accepts authenticators within `skew` seconds:
    /// they are kept that long at least (krb5.conf may have changed).
    pub fn note_skew(&self, skew: i64) {
        self.skew.fetch_max(skew, Ordering::SeqCst);
    }

    /// Whether the session must (also) use libkrb5's replay cache.
    pub fn library_needed(&self, now: i64) -> bool {
        self.library_until.load(Ordering::SeqCst) > now
    }

    /// After libkrb5 accepted an AP-REQ whose authenticator has ciphertext
    /// tag `tag` and time `ctime`: refuse it if it was seen before, else
    /// remember it. `library_used`: libkrb5's cache checked and stored it
    /// too ([`ReplayCache::library_needed`] said so before).
    pub fn record(
        &self,
        tag: Tag,
        ctime: i64,
        now: i64,
        library_used: bool,
    ) -> Result<(), ReplayError> {
        let skew = self.skew.load(Ordering::SeqCst);
        // libkrb5 accepts it until ctime + skew; after an unusual clock,
        // keep it at least until now + skew.
        let expiry = ctime.max(now) + skew + 1;
        {
            let mut s = self.shard(&tag);
            if now >= s.next_sweep {
                self.sweep(&mut s, now);
            }
            if let Some(e) = s.seen.get(&tag) {
                if self.base + i64::from(*e) + GRACE > now {
                    return Err(ReplayError::Replayed);
                }
            }
            // libkrb5's cache took over after this session chose: a copy
            // of it may be stored there only.
            if !library_used && self.library_needed(now) {
                return Err(ReplayError::HandingOver);
            }
            // Full: swept again, at most once a second.
            if s.seen.len() >= self.shard_cap && now > s.next_sweep - SWEEP_EVERY {
                self.sweep(&mut s, now);
            }
            if s.seen.len() >= self.shard_cap {
                // Raised under the shard's lock: a session of this shard
                // that chose before sees it. An authenticator stored only in
                // libkrb5's cache can be replayed until its time (at most
                // now + skew) + skew.
                let until = now + 2 * skew + 2 + GRACE;
                if self.library_until.fetch_max(until, Ordering::SeqCst) <= now {
                    crate::log!(
                        1,
                        "auksd : replay cache: more than {MAX_ENTRIES} fresh authenticators: libkrb5's file cache is used for {} s",
                        until - now
                    );
                }
                return if library_used {
                    Ok(())
                } else {
                    Err(ReplayError::HandingOver)
                };
            }
            self.insert(&mut s, tag, expiry);
        }
        let mut j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let appended = match &mut *j {
            Journaling::MemoryOnly => return Ok(()),
            Journaling::Open(journal) => journal.append(&tag, expiry, now, 2 * skew + 2 * GRACE),
            Journaling::Broken => Err(String::new()),
        };
        match appended {
            Ok(()) => Ok(()),
            Err(e) => {
                if matches!(*j, Journaling::Open(_)) {
                    crate::log!(
                        1,
                        "auksd : replay cache: the journal cannot be written ({e}): libkrb5's file cache is used from now on"
                    );
                    *j = Journaling::Broken;
                    self.library_until.store(i64::MAX, Ordering::SeqCst);
                }
                // Not journalled: only libkrb5's cache keeps it across a
                // restart.
                if library_used {
                    Ok(())
                } else {
                    Err(ReplayError::HandingOver)
                }
            }
        }
    }

    fn insert(&self, s: &mut Shard, tag: Tag, expiry: i64) {
        let rel = (expiry - self.base).clamp(1, i64::from(u32::MAX));
        s.seen.insert(tag, rel as u32);
    }

    fn sweep(&self, s: &mut Shard, now: i64) {
        let base = self.base;
        s.seen.retain(|_, e| base + i64::from(*e) + GRACE > now);
        s.next_sweep = now + SWEEP_EVERY;
    }

    fn shard(&self, tag: &Tag) -> std::sync::MutexGuard<'_, Shard> {
        // The state stays consistent at every step: a panic elsewhere
        // while it was held leaves nothing half-done.
        self.shards[usize::from(tag[0]) % self.shards.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tags held in memory.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).seen.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
