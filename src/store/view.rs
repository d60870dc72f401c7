//! [`EtcdRepo`]: the credential repository of an auksd instance when the
//! site keeps its credentials in etcd.
//!
//! Reads (GET, DUMP) are served from an in-memory view of the key prefix,
//! loaded at start-up and kept current by the [`super::watch`] thread, so
//! they cost what the local repository costs and keep working when etcd
//! loses its quorum. Writes (ADD, REMOVE, the clean stage) go to etcd first,
//! as compare-and-swap transactions on the mod revision the view holds, and
//! only then into the view: an ADD acknowledged to a client is in etcd, on a
//! quorum of members. A write that cannot reach a quorum fails with
//! [`StoreError::Unavailable`]; nothing is queued (an acknowledged ADD that
//! then disappears with this instance would be worse than a clear refusal
//! the client can retry on the other server).
//!
//! Writers of one uid on this instance are serialised by striped mutexes;
//! writers on different instances by etcd's compare-and-swap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::etcd::{Etcd, Kv};
use super::seal::KeyRing;
use super::StoreError;
use crate::config::EtcdConf;
use crate::cred;
use crate::daemon::repo::{is_stale, newer_or_equal, AddOutcome};
use crate::krb5::Context;
use crate::proto::CredRecord;

/// Number of per-uid writer locks.
const STRIPES: usize = 64;
/// Compare-and-swap rounds before an ADD or REMOVE gives up.
const CAS_ROUNDS: usize = 4;

/// Why an ADD or REMOVE was not done.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E> {
    #[error("cred with matching uid not found")]
    NotFound,
    /// The caller's check refused it.
    #[error("refused")]
    Refused(E),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// One credential of the view and the etcd revision it was written at.
#[derive(Clone)]
struct Entry {
    rec: Arc<CredRecord>,
    rev: i64,
}

/// The repository: etcd client, sealing keys, in-memory view.
pub struct EtcdRepo {
    pub(super) etcd: Arc<Etcd>,
    keys: KeyRing,
    prefix: String,
    map: RwLock<HashMap<u32, Entry>>,
    /// etcd revision the view reflects.
    revision: AtomicI64,
    synced: Mutex<bool>,
    synced_cv: Condvar,
    /// Whether the last write or watch contact with etcd succeeded.
    healthy: AtomicBool,
    stripes: Vec<Mutex<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EtcdRepo {
    /// Builds the client and loads the sealing keys; nothing is read from
    /// etcd yet (see [`EtcdRepo::sync`]).
    pub fn open(conf: &EtcdConf) -> Result<EtcdRepo, StoreError> {
        let keys = KeyRing::load(&conf.seal_key_file)?;
        Ok(Self::with(Etcd::new(conf)?, keys, &conf.prefix))
    }

    /// A repository over an existing client and key ring.
    pub fn with(etcd: Etcd, keys: KeyRing, prefix: &str) -> EtcdRepo {
        EtcdRepo {
            etcd: Arc::new(etcd),
            keys,
            prefix: prefix.to_string(),
            map: RwLock::new(HashMap::new()),
            revision: AtomicI64::new(0),
            synced: Mutex::new(false),
            synced_cv: Condvar::new(),
            healthy: AtomicBool::new(false),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn etcd(&self) -> &Arc<Etcd> {
        &self.etcd
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The prefix of credential keys.
    pub fn cred_prefix(&self) -> Vec<u8> {
        format!("{}cred/", self.prefix).into_bytes()
    }

    /// The etcd key of `uid`.
    pub fn key_of(&self, uid: u32) -> Vec<u8> {
        format!("{}cred/{uid}", self.prefix).into_bytes()
    }

    /// The etcd key of a named lease lock (`clean`, `renewer`).
    pub fn lock_key(&self, name: &str) -> Vec<u8> {
        format!("{}lock/{name}", self.prefix).into_bytes()
    }

    fn uid_of_key(&self, key: &[u8]) -> Option<u32> {
        let rest = key.strip_prefix(self.cred_prefix().as_slice())?;
        let s = std::str::from_utf8(rest).ok()?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }

    /// The revision the view reflects.
    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    pub fn is_synced(&self) -> bool {
        *lock(&self.synced)
    }

    /// Waits (at most `max`) until the view was loaded once.
    pub fn wait_synced(&self, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        let mut s = lock(&self.synced);
        while !*s {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .synced_cv
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Whether the last contact with etcd succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(super) fn set_healthy(&self, h: bool) {
        self.healthy.store(h, Ordering::Relaxed);
    }

    /// A failed etcd call: an unreachable cluster marks the view unhealthy.
    fn failed(&self, e: StoreError) -> StoreError {
        if matches!(e, StoreError::Unavailable(_)) {
            self.set_healthy(false);
        }
        e
    }

    fn open_kv(&self, kv: &Kv) -> Result<Option<(u32, Entry)>, StoreError> {
        let Some(uid) = self.uid_of_key(&kv.key) else {
            return Ok(None);
        };
        let rec = self.keys.open(&kv.key, &kv.value)?;
        if rec.uid != uid {
            return Err(StoreError::Seal(format!(
                "record of uid {} stored under uid {uid}",
                rec.uid
            )));
        }
        Ok(Some((
            uid,
            Entry {
                rec: Arc::new(rec),
                rev: kv.mod_revision,
            },
        )))
    }

    /// Loads the whole view from etcd (start-up, or after the watch fell
    /// behind a compaction). Returns the revision read and a log line per
    /// value that does not open.
    pub fn sync(&self) -> Result<(i64, Vec<String>), StoreError> {
        let (kvs, rev) = self.etcd.range_prefix(&self.cred_prefix())?;
        let mut fresh = HashMap::with_capacity(kvs.len());
        let mut problems = Vec::new();
        for kv in &kvs {
            match self.open_kv(kv) {
                Ok(Some((uid, e))) => {
                    fresh.insert(uid, e);
                }
                Ok(None) => {}
                Err(e) => problems.push(format!(
                    "etcd key {} ignored: {e}",
                    String::from_utf8_lossy(&kv.key)
                )),
            }
        }
        *self.map.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        self.revision.store(rev, Ordering::Release);
        self.set_healthy(true);
        *lock(&self.synced) = true;
        self.synced_cv.notify_all();
        Ok((rev, problems))
    }

    /// Applies one watched change: a put (`Some(kv)`) or a delete of `key`
    /// at `rev`. Older news than the view holds is ignored.
    pub fn apply(&self, key: &[u8], put: Option<&Kv>, rev: i64) -> Option<String> {
        let uid = self.uid_of_key(key)?;
        match put {
            Some(kv) => match self.open_kv(kv) {
                Ok(Some((_, e))) => {
                    let mut m = self.map.write().unwrap_or_else(PoisonError::into_inner);
                    if m.get(&uid).map_or(true, |old| old.rev < e.rev) {
                        m.insert(uid, e);
                    }
                    None
                }
                Ok(None) => None,
                Err(e) => Some(format!("etcd key of uid {uid} ignored: {e}")),
            },
            None => {
                let mut m = self.map.write().unwrap_or_else(PoisonError::into_inner);
                if m.get(&uid).is_some_and(|old| old.rev < rev) {
                    m.remove(&uid);
                }
                None
            }
        }
    }

    /// Records that the view reflects etcd up to `rev`.
    pub fn advance(&self, rev: i64) {
        self.revision.fetch_max(rev, Ordering::AcqRel);
    }

    /// Re-reads one key after a compare-and-swap lost a race.
    fn refresh(&self, uid: u32) -> Result<(), StoreError> {
        let key = self.key_of(uid);
        match self.etcd.get(&key)? {
            Some(kv) => {
                if let Some((_, e)) = self.open_kv(&kv)? {
                    let mut m = self.map.write().unwrap_or_else(PoisonError::into_inner);
                    m.insert(uid, e);
                }
            }
            None => {
                self.map
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&uid);
            }
        }
        Ok(())
    }

    /// Reads the credential of `uid` from etcd itself (before the view is
    /// loaded: a restarted instance serves a GET at once, as the local
    /// repository loads one file on demand). `Ok(None)`: none stored.
    pub fn fetch(&self, uid: u32) -> Result<Option<Arc<CredRecord>>, StoreError> {
        let key = self.key_of(uid);
        match self.etcd.get(&key)? {
            None => Ok(None),
            Some(kv) => Ok(self.open_kv(&kv)?.map(|(_, e)| e.rec)),
        }
    }

    fn entry(&self, uid: u32) -> Option<Entry> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&uid)
            .cloned()
    }

    /// Number of credentials in the view.
    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The credential of `uid` in the view.
    pub fn get(&self, uid: u32) -> Option<Arc<CredRecord>> {
        self.entry(uid).map(|e| e.rec)
    }

    /// Stores `rec` in etcd following the replacement policy, once `check`
    /// (given the received and stored records) allowed it.
    pub fn add<T, E>(
        &self,
        ctx: &Context,
        rec: CredRecord,
        check: impl Fn(&CredRecord, Option<&CredRecord>) -> Result<T, E>,
    ) -> Result<(AddOutcome, T), WriteError<E>> {
        let uid = rec.uid;
        let key = self.key_of(uid);
        let _w = lock(&self.stripes[uid as usize % STRIPES]);
        for _ in 0..CAS_ROUNDS {
            let old = self.entry(uid);
            let old_rec = old.as_ref().map(|e| &*e.rec);
            let allowed = check(&rec, old_rec).map_err(WriteError::Refused)?;
            let outcome = match old_rec {
                None => AddOutcome::Stored,
                Some(o)
                    if o.principal == rec.principal
                        && cred::same_tickets(ctx, &o.data, &rec.data) =>
                {
                    return Ok((AddOutcome::Unchanged, allowed))
                }
                Some(o) if newer_or_equal(&rec, o) => AddOutcome::Replaced,
                Some(_) => return Ok((AddOutcome::KeptStored, allowed)),
            };
            let sealed = self.keys.seal(&key, &rec)?;
            let expect = old.as_ref().map_or(0, |e| e.rev);
            match self.etcd.put_if(&key, &sealed, expect, 0) {
                Ok(Some(rev)) => {
                    self.set_healthy(true);
                    let mut m = self.map.write().unwrap_or_else(PoisonError::into_inner);
                    if m.get(&uid).map_or(true, |e| e.rev < rev) {
                        m.insert(
                            uid,
                            Entry {
                                rec: Arc::new(rec),
                                rev,
                            },
                        );
                    }
                    return Ok((outcome, allowed));
                }
                Ok(None) => self.refresh(uid)?,
                Err(e) => return Err(self.failed(e).into()),
            }
        }
        Err(StoreError::Etcd(format!("uid {uid}: too many concurrent writers")).into())
    }

    /// Deletes the credential of `uid` from etcd once `check` allowed it.
    pub fn remove<E>(
        &self,
        uid: u32,
        check: impl Fn(Option<&CredRecord>) -> Result<(), E>,
    ) -> Result<Arc<CredRecord>, WriteError<E>> {
        let key = self.key_of(uid);
        let _w = lock(&self.stripes[uid as usize % STRIPES]);
        for _ in 0..CAS_ROUNDS {
            let old = self.entry(uid);
            check(old.as_ref().map(|e| &*e.rec)).map_err(WriteError::Refused)?;
            let Some(old) = old else {
                return Err(WriteError::NotFound);
            };
            match self.etcd.delete_if(&key, old.rev) {
                Ok(Some(_)) => {
                    self.set_healthy(true);
                    let mut m = self.map.write().unwrap_or_else(PoisonError::into_inner);
                    if m.get(&uid).is_some_and(|e| e.rev == old.rev) {
                        m.remove(&uid);
                    }
                    return Ok(old.rec);
                }
                Ok(None) => self.refresh(uid)?,
                Err(e) => return Err(self.failed(e).into()),
            }
        }
        Err(StoreError::Etcd(format!("uid {uid}: too many concurrent writers")).into())
    }

    /// All credentials of the view in C's DUMP order (decimal uid strings
    /// compared lexicographically).
    pub fn dump(&self) -> Vec<Arc<CredRecord>> {
        let mut v: Vec<(String, Arc<CredRecord>)> = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|e| (e.rec.uid.to_string(), Arc::clone(&e.rec)))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, r)| r).collect()
    }

    /// Clean stage (run by the elected instance only): deletes expired
    /// credentials from etcd, each only if nobody rewrote it meanwhile.
    /// Returns (uid, principal, reason) of each credential handled.
    pub fn clean(&self, now: i64) -> Vec<(u32, String, String)> {
        let stale: Vec<(u32, Entry)> = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, e)| is_stale(&e.rec, now))
            .map(|(u, e)| (*u, e.clone()))
            .collect();
        let mut out = Vec::new();
        for (uid, e) in stale {
            let _w = lock(&self.stripes[uid as usize % STRIPES]);
            let r = &e.rec;
            match self.etcd.delete_if(&self.key_of(uid), e.rev) {
                Ok(Some(_)) => {
                    let mut m = self.map.write().unwrap_or_else(PoisonError::into_inner);
                    if m.get(&uid).is_some_and(|x| x.rev == e.rev) {
                        m.remove(&uid);
                    }
                    let why = if r.endtime < now {
                        format!("expired at {}", r.endtime)
                    } else {
                        format!("renewable period ended at {}", r.renew_till)
                    };
                    out.push((uid, r.principal.clone(), why));
                }
                Ok(None) => {} // rewritten meanwhile: the watch brings it
                Err(err) => out.push((uid, r.principal.clone(), format!("not removed: {err}"))),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    const KEYS: &str = "k 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

    fn repo() -> EtcdRepo {
        let conf = EtcdConf {
            endpoints: vec!["http://127.0.0.1:9".into()],
            prefix: "/p/".into(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            seal_key_file: "/nonexistent".into(),
            timeout: 1,
        };
        EtcdRepo::with(
            Etcd::new(&conf).unwrap(),
            KeyRing::parse(KEYS, "t").unwrap(),
            "/p/",
        )
    }

    fn kv(r: &EtcdRepo, uid: u32, end: i64, rev: i64) -> Kv {
        let rec = CredRecord {
            principal: format!("u{uid}@R"),
            uid,
            starttime: 0,
            endtime: end,
            renew_till: 0,
            addressless: true,
            crossrealm: false,
            data: Zeroizing::new(vec![7; 40]),
            status: 0,
        };
        let key = r.key_of(uid);
        Kv {
            value: r.keys().seal(&key, &rec).unwrap(),
            key,
            mod_revision: rev,
        }
    }

    #[test]
    fn keys_map_to_uids_and_nothing_else() {
        let r = repo();
        assert_eq!(r.key_of(42), b"/p/cred/42".to_vec());
        assert_eq!(r.uid_of_key(b"/p/cred/42"), Some(42));
        for bad in [
            &b"/p/cred/"[..],
            b"/p/cred/4x",
            b"/p/lock/clean",
            b"/q/cred/1",
        ] {
            assert_eq!(r.uid_of_key(bad), None);
        }
    }

    #[test]
    fn watched_changes_apply_in_revision_order() {
        let r = repo();
        let new = kv(&r, 7, 200, 5);
        assert!(r.apply(&new.key, Some(&new), 5).is_none());
        assert_eq!(r.get(7).unwrap().endtime, 200);
        let old = kv(&r, 7, 100, 3);
        r.apply(&old.key, Some(&old), 3);
        assert_eq!(r.get(7).unwrap().endtime, 200, "older put ignored");
        r.apply(&new.key, None, 4);
        assert!(r.get(7).is_some(), "older delete ignored");
        r.apply(&new.key, None, 6);
        assert!(r.get(7).is_none(), "newer delete applied");
        // A value that does not open is reported, not applied.
        let mut bad = kv(&r, 8, 100, 9);
        bad.value[20] ^= 1;
        assert!(r.apply(&bad.key, Some(&bad), 9).is_some());
        assert!(r.get(8).is_none());
        // A value moved to another uid's key does not open either.
        let mut moved = kv(&r, 9, 100, 10);
        moved.key = r.key_of(10);
        assert!(r.apply(&moved.key, Some(&moved), 10).is_some());
        assert!(r.get(10).is_none());
    }

    #[test]
    fn dump_is_in_c_order() {
        let r = repo();
        for (i, uid) in [500u32, 2, 1000].into_iter().enumerate() {
            let k = kv(&r, uid, 100, i as i64 + 1);
            r.apply(&k.key, Some(&k), k.mod_revision);
        }
        let uids: Vec<u32> = r.dump().iter().map(|c| c.uid).collect();
        assert_eq!(uids, vec![1000, 2, 500]);
    }
}
