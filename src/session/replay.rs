//! auksd's own replay cache (`ReplayCache = yes`).
//!
//! libkrb5's file replay cache costs about twenty system calls per AP-REQ
//! (open, lock, a probe per hash table, write, unlock, close), as much as
//! the rest of a session. This one keeps the tag of every accepted
//! authenticator in memory until the authenticator could no longer pass
//! libkrb5's time check (its time plus the clock skew), and appends it to
//! a journal so that a restarted daemon still refuses it (as libkrb5's file
//! does). The tag is the SHA-256 of the authenticator's ciphertext, which
//! is what libkrb5 keys on as well.
//!
//! Limits: at most [`MAX_ENTRIES`] tags in memory. When it is full (or the
//! journal cannot be written), sessions use libkrb5's own file cache again
//! for as long as an authenticator stored only there could be replayed;
//! that request alone is refused, never one after it. The journal is two
//! files beside libkrb5's (`KRB5RCACHEDIR`, else `/var/tmp`), opened
//! without following links and trusted only when owned by the daemon's
//! user and not writable by others; the older one is dropped every
//! `2 × skew + 60` seconds, when all it holds has expired.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Most tags kept in memory (about 25 bytes each, with the table).
pub const MAX_ENTRIES: usize = 2_000_000;
/// Expired tags are swept this often (seconds).
const SWEEP_EVERY: i64 = 16;
/// A journal record: the tag, then its expiry (i64, little-endian).
const RECORD: usize = 24;
/// The tag of a journal record that is not a tag but the time until which
/// libkrb5's cache must be used (it survives a restart).
const LIBRARY_MARK: Tag = [0xff; 16];

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
    #[error("replay cache full ({MAX_ENTRIES} authenticators): this authentication is refused, the following ones use libkrb5's replay cache")]
    Full,
    #[error("replay journal {path}: {source}")]
    Journal { path: PathBuf, source: io::Error },
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

/// The journal: two files, appended to one at a time.
struct Journal {
    dir: PathBuf,
    stem: String,
    file: File,
    current: u8,
    opened_at: i64,
    rotate_every: i64,
    /// Expiry of the last [`LIBRARY_MARK`] written.
    marked_until: i64,
}

impl Journal {
    fn path(&self, n: u8) -> PathBuf {
        self.dir.join(format!("{}.{n}", self.stem))
    }

    fn error(&self, n: u8, source: io::Error) -> ReplayError {
        ReplayError::Journal {
            path: self.path(n),
            source,
        }
    }

    fn append(&mut self, tag: &Tag, expiry: i64, now: i64) -> Result<(), ReplayError> {
        if now >= self.opened_at + self.rotate_every {
            // Everything in the other file has expired: its records were
            // written at least `rotate_every` seconds ago.
            let other = 1 - self.current;
            let file = create_new(&self.path(other)).map_err(|e| self.error(other, e))?;
            self.file = file;
            self.current = other;
            self.opened_at = now;
        }
        let mut rec = [0u8; RECORD];
        rec[..16].copy_from_slice(tag);
        rec[16..].copy_from_slice(&expiry.to_le_bytes());
        // One write on an O_APPEND file: whole records, never interleaved.
        self.file
            .write_all(&rec)
            .map_err(|e| self.error(self.current, e))
    }
}

/// Create `path` afresh (a previous file of that name removed), mode 0600,
/// without following a link, for appending.
fn create_new(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// One part of the tags (by their first byte), with its own lock, so that
/// workers rarely wait for each other and a sweep holds up only the
/// sessions whose tag falls in its part.
struct Shard {
    seen: HashMap<Tag, u32, TagHashing>,
    next_sweep: i64,
}

/// The tags and the journal, as [`load`] fills them.
struct Loaded {
    shards: Vec<Shard>,
    journal: Option<Journal>,
    library_until: i64,
}

/// The replay cache of a daemon, shared by its workers.
pub struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
    /// Expiries are kept as seconds after `base`.
    base: i64,
    /// Tags per shard at most.
    shard_cap: usize,
    journal: Mutex<Option<Journal>>,
    /// Until then, sessions use libkrb5's replay cache too.
    library_until: AtomicI64,
    skew: i64,
}

/// Shards of a daemon's cache.
const SHARDS: usize = 16;

impl ReplayCache {
    /// A cache for clock skew `skew` whose journal is the files
    /// `<dir>/<name>.replay.{0,1}` (`dir` None: memory only, for tests).
    /// Returns the cache and what to log: the tags loaded, or why the
    /// journal cannot be used (then libkrb5's replay cache is used
    /// throughout, as before).
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
        let _ = getrandom::fill(&mut key);
        let hashing = TagHashing(u64::from_le_bytes(key));
        let shards = shards.clamp(1, 256);
        let mut cache = ReplayCache {
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
            journal: Mutex::new(None),
            library_until: AtomicI64::new(0),
            skew,
        };
        let note = match dir {
            None => "replay cache in memory only".to_string(),
            Some(dir) => match load(&cache, dir, &format!("{name}.replay"), now) {
                Ok((n, loaded)) => {
                    for (m, s) in cache.shards.iter_mut().zip(loaded.shards) {
                        *m.get_mut().unwrap_or_else(PoisonError::into_inner) = s;
                    }
                    *cache
                        .journal
                        .get_mut()
                        .unwrap_or_else(PoisonError::into_inner) = loaded.journal;
                    cache.library_until = AtomicI64::new(loaded.library_until);
                    format!(
                        "replay cache: {n} authenticators still fresh loaded from {}/{name}.replay.0",
                        dir.display()
                    )
                }
                Err(e) => {
                    cache.library_until = AtomicI64::new(i64::MAX);
                    format!("replay cache: libkrb5's file cache is used ({e})")
                }
            },
        };
        (cache, note)
    }

    /// Whether the session must (also) use libkrb5's replay cache.
    pub fn library_needed(&self, now: i64) -> bool {
        self.library_until.load(Ordering::Relaxed) > now
    }

    /// After libkrb5 accepted an AP-REQ whose authenticator has ciphertext
    /// tag `tag` and time `ctime`: refuse it if it was seen before, else
    /// remember it. `library_used`: libkrb5's cache checked and stored it
    /// too ([`ReplayCache::library_needed`] said so).
    pub fn record(
        &self,
        tag: Tag,
        ctime: i64,
        now: i64,
        library_used: bool,
    ) -> Result<(), ReplayError> {
        // libkrb5 accepts it until ctime + skew; after an unusual clock,
        // keep it at least until now + skew.
        let expiry = ctime.max(now) + self.skew + 1;
        {
            let mut s = self.shard(&tag);
            if now >= s.next_sweep {
                self.sweep(&mut s, now);
            }
            if let Some(e) = s.seen.get(&tag) {
                if self.base + i64::from(*e) > now {
                    return Err(ReplayError::Replayed);
                }
            }
            // Full: swept again, at most once a second.
            if s.seen.len() >= self.shard_cap && now > s.next_sweep - SWEEP_EVERY {
                self.sweep(&mut s, now);
            }
            if s.seen.len() >= self.shard_cap {
                drop(s);
                // An authenticator stored only in libkrb5's cache can be
                // replayed until this (its time is at most now + skew).
                self.use_library_until(now + 2 * self.skew + 2, now);
                return if library_used {
                    Ok(())
                } else {
                    Err(ReplayError::Full)
                };
            }
            let rel = (expiry - self.base).clamp(1, i64::from(u32::MAX));
            s.seen.insert(tag, rel as u32);
        }
        let mut j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        // Memory only (tests), or the journal failed before and the
        // library's cache is in use for good.
        let Some(journal) = j.as_mut() else {
            return Ok(());
        };
        match journal.append(&tag, expiry, now) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Not journalled: from now on libkrb5's cache keeps the
                // replay protection across a restart.
                *j = None;
                self.library_until.store(i64::MAX, Ordering::Relaxed);
                if library_used {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Use libkrb5's cache until `until` (and say so in the journal).
    fn use_library_until(&self, until: i64, now: i64) {
        self.library_until.fetch_max(until, Ordering::Relaxed);
        let mut j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(j) = j.as_mut() {
            if until > j.marked_until + SWEEP_EVERY {
                // A journal that cannot be written now fails the next
                // record, which then hands over for good.
                let _ = j.append(&LIBRARY_MARK, until + SWEEP_EVERY, now);
                j.marked_until = until;
            }
        }
    }

    fn sweep(&self, s: &mut Shard, now: i64) {
        let base = self.base;
        s.seen.retain(|_, e| base + i64::from(*e) > now);
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

/// Read the journal in `dir` (fresh records only) into shards like
/// `cache`'s, write them back as one compact file and open it for
/// appending. Returns the number of tags loaded.
fn load(cache: &ReplayCache, dir: &Path, stem: &str, now: i64) -> io::Result<(usize, Loaded)> {
    let euid = rustix::process::geteuid().as_raw();
    let mut fresh: Vec<(Tag, i64)> = Vec::new();
    let mut library_until = 0;
    for n in 0..2u8 {
        let path = dir.join(format!("{stem}.{n}"));
        let f = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let m = f.metadata()?;
        if !m.is_file() || m.uid() != euid || m.mode() & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: not a regular file of uid {euid} writable by it alone",
                    path.display()
                ),
            ));
        }
        let mut r = BufReader::with_capacity(1 << 16, f);
        let mut rec = [0u8; RECORD];
        // A record cut short by a crash ends the file.
        while r.read_exact(&mut rec).is_ok() {
            let mut tag = [0u8; 16];
            tag.copy_from_slice(&rec[..16]);
            let mut e = [0u8; 8];
            e.copy_from_slice(&rec[16..]);
            let expiry = i64::from_le_bytes(e);
            if expiry <= now {
                continue;
            }
            if tag == LIBRARY_MARK {
                library_until = library_until.max(expiry);
            } else {
                fresh.push((tag, expiry));
            }
        }
    }
    let mut shards: Vec<Shard> = cache
        .shards
        .iter()
        .map(|m| {
            let s = m.lock().unwrap_or_else(PoisonError::into_inner);
            Shard {
                seen: HashMap::with_hasher(s.seen.hasher().clone()),
                next_sweep: s.next_sweep,
            }
        })
        .collect();
    let mut loaded = 0;
    let count = shards.len();
    for (tag, expiry) in &fresh {
        let s = &mut shards[usize::from(tag[0]) % count];
        if s.seen.len() >= cache.shard_cap {
            // More than memory holds (a smaller limit than before): they
            // are still written back, and libkrb5's cache is used until
            // they have expired.
            library_until = library_until.max(*expiry);
            continue;
        }
        let rel = (expiry - cache.base).clamp(1, i64::from(u32::MAX));
        s.seen.insert(*tag, rel as u32);
        loaded += 1;
    }
    // Written back compactly as file 0; file 1 removed.
    let tmp = dir.join(format!("{stem}.new"));
    let mut out = create_new(&tmp)?;
    let mut buf = Vec::with_capacity(fresh.len().min(1 << 16) * RECORD);
    let marks = (library_until > now).then_some((LIBRARY_MARK, library_until));
    for (tag, expiry) in fresh.iter().chain(marks.iter()) {
        buf.extend_from_slice(tag);
        buf.extend_from_slice(&expiry.to_le_bytes());
        if buf.len() >= (1 << 16) * RECORD {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    std::fs::rename(&tmp, dir.join(format!("{stem}.0")))?;
    match std::fs::remove_file(dir.join(format!("{stem}.1"))) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let journal = Journal {
        dir: dir.to_path_buf(),
        stem: stem.to_string(),
        file: out,
        current: 0,
        opened_at: now,
        rotate_every: 2 * cache.skew + 60,
        marked_until: library_until,
    };
    Ok((
        loaded,
        Loaded {
            shards,
            journal: Some(journal),
            library_until,
        },
    ))
}

#[cfg(test)]
mod tests;
