//! The repository backend of auksd, chosen by the configuration: the local
//! `CacheDir` ([`Repo`], the default) or the replicated repository in etcd
//! ([`EtcdRepo`], when the auksd block sets `EtcdEndpoints`, issue 11).
//!
//! Both answer the same calls, so the workers do not know which one serves
//! them. What differs with etcd:
//! - the view is loaded and kept current by the watch thread started here;
//!   a GET before it is loaded reads its one key from etcd (as the local
//!   repository loads one file on demand);
//! - an ADD or REMOVE that etcd cannot take (no quorum) is refused with a
//!   reason that says so, while GETs go on from the last view;
//! - the clean stage runs on the instance that holds the `clean` lease lock,
//!   once per cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::authz::Refusal;
use super::repo::{AddOutcome, Repo, RepoError};
use super::DaemonError;
use crate::config::DaemonConf;
use crate::krb5::Context;
use crate::proto::CredRecord;
use crate::store::view::WriteError;
use crate::store::{watch, EtcdRepo, Leader, StoreError};

/// Lease of the clean lock: a dead holder is replaced after this long.
pub const CLEAN_LOCK_TTL: i64 = 30;

/// Longest wait of a GET for the first load of the etcd view.
pub const SYNC_WAIT: Duration = Duration::from_secs(5);

/// The etcd side: repository, its watch thread's stop flag, the clean lock.
pub struct EtcdBackend {
    repo: Arc<EtcdRepo>,
    stop: Arc<AtomicBool>,
    clean_lock: Arc<Leader>,
}

impl Drop for EtcdBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.clean_lock.resign();
    }
}

/// Where the credentials live.
pub enum Backend {
    Local(Arc<Repo>),
    Etcd(EtcdBackend),
}

/// What the daemon says when etcd cannot take a write.
fn write_error(e: StoreError) -> RepoError {
    let reason = match &e {
        StoreError::Unavailable(_) => format!(
            "{e}: ADD and REMOVE are refused until etcd has a quorum again; \
             GETs are still served"
        ),
        _ => e.to_string(),
    };
    RepoError::Write {
        path: "the etcd repository".into(),
        reason,
    }
}

impl Backend {
    /// Opens the configured backend; with etcd, starts the watch thread
    /// that loads the view and keeps it current.
    pub fn open(conf: &DaemonConf) -> Result<Backend, DaemonError> {
        let Some(ec) = &conf.etcd else {
            return Ok(Backend::Local(Arc::new(Repo::open(&conf.cache_dir))));
        };
        let repo = Arc::new(
            EtcdRepo::open(ec).map_err(|e| DaemonError::Other(format!("etcd repository: {e}")))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        watch::spawn(Arc::clone(&repo), Arc::clone(&stop), |lvl, line| {
            crate::log!(lvl, "auksd : {line}");
        })
        .map_err(|e| DaemonError::Other(format!("cannot start the etcd watch: {e}")))?;
        // The holder refreshes its lease in the background; a dead holder's
        // lock is taken over once the lease ran out.
        let clean_lock = Arc::new(Leader::new(
            Arc::clone(repo.etcd()),
            repo.lock_key("clean"),
            CLEAN_LOCK_TTL,
        ));
        clean_lock
            .keep_alive_in_background(Arc::clone(&stop))
            .map_err(|e| DaemonError::Other(format!("cannot start the etcd lease thread: {e}")))?;
        crate::log!(
            1,
            "auksd : repository: etcd {} prefix {} (sealing key {})",
            ec.endpoints.join(","),
            ec.prefix,
            repo.keys().active_id()
        );
        Ok(Backend::Etcd(EtcdBackend {
            repo,
            stop,
            clean_lock,
        }))
    }

    /// Whether a reload with `conf` keeps this backend. The etcd backend
    /// is always opened again, so a reload also reads the sealing keys
    /// again (key rotation); the new view is loaded from etcd.
    pub fn same_as(&self, old: &DaemonConf, new: &DaemonConf) -> bool {
        match self {
            Backend::Local(_) => new.etcd.is_none() && old.cache_dir == new.cache_dir,
            Backend::Etcd(_) => false,
        }
    }

    /// The local repository, to be loaded by the caller's loader thread.
    pub fn local(&self) -> Option<Arc<Repo>> {
        match self {
            Backend::Local(r) => Some(Arc::clone(r)),
            Backend::Etcd(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Backend::Local(r) => r.len(),
            Backend::Etcd(e) => e.repo.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first load is complete.
    pub fn is_loaded(&self) -> bool {
        match self {
            Backend::Local(r) => r.is_loaded(),
            Backend::Etcd(e) => e.repo.is_synced(),
        }
    }

    pub fn get(&self, ctx: &Context, uid: u32) -> Option<Arc<CredRecord>> {
        match self {
            Backend::Local(r) => r.get(ctx, uid),
            Backend::Etcd(e) => {
                if e.repo.is_synced() {
                    return e.repo.get(uid);
                }
                // Not loaded yet: this one key from etcd, else wait a little.
                match e.repo.fetch(uid) {
                    Ok(r) => r,
                    Err(err) => {
                        crate::log!(2, "auksd : uid {uid} not read from etcd: {err}");
                        e.repo.wait_synced(SYNC_WAIT);
                        e.repo.get(uid)
                    }
                }
            }
        }
    }

    /// Store `rec` (with `file`, the bytes of its cache file when made:
    /// used by a local repository).
    pub fn add<T>(
        &self,
        ctx: &Context,
        rec: CredRecord,
        file: Option<zeroize::Zeroizing<Vec<u8>>>,
        check: impl Fn(&CredRecord, Option<&CredRecord>) -> Result<T, Refusal>,
    ) -> Result<(AddOutcome, T), RepoError> {
        match self {
            Backend::Local(r) => r.add_with_file(ctx, rec, file, check),
            Backend::Etcd(e) => {
                if !e.repo.wait_synced(SYNC_WAIT) {
                    return Err(write_error(StoreError::Unavailable(
                        "the etcd view is not loaded yet".into(),
                    )));
                }
                e.repo.add(ctx, rec, check).map_err(|err| match err {
                    WriteError::NotFound => RepoError::NotFound,
                    WriteError::Refused(r) => RepoError::Refused(r),
                    WriteError::Store(s) => write_error(s),
                })
            }
        }
    }

    pub fn remove(
        &self,
        ctx: &Context,
        uid: u32,
        check: impl Fn(Option<&CredRecord>) -> Result<(), Refusal>,
    ) -> Result<Arc<CredRecord>, RepoError> {
        match self {
            Backend::Local(r) => r.remove(ctx, uid, check),
            Backend::Etcd(e) => {
                e.repo.wait_synced(SYNC_WAIT);
                e.repo.remove(uid, check).map_err(|err| match err {
                    WriteError::NotFound => RepoError::NotFound,
                    WriteError::Refused(r) => RepoError::Refused(r),
                    WriteError::Store(s) => write_error(s),
                })
            }
        }
    }

    /// Every credential in C's DUMP order; `None` while not loaded after
    /// `max`.
    pub fn dump(&self, max: Duration) -> Option<Vec<Arc<CredRecord>>> {
        match self {
            Backend::Local(r) => r.dump(max),
            Backend::Etcd(e) => e.repo.wait_synced(max).then(|| e.repo.dump()),
        }
    }

    /// Clean stage. With etcd, only the holder of the clean lock cleans;
    /// the others return nothing.
    pub fn clean(&self, now: i64) -> Vec<(u32, String, String)> {
        match self {
            Backend::Local(r) => r.clean(now),
            Backend::Etcd(e) => match e.clean_lock.try_lead() {
                Ok(true) => e.repo.clean(now),
                Ok(false) => {
                    crate::log!(
                        3,
                        "auksd : clean stage left to the holder of the clean lock"
                    );
                    Vec::new()
                }
                Err(err) => {
                    crate::log!(2, "auksd : clean stage skipped: {err}");
                    Vec::new()
                }
            },
        }
    }
}
