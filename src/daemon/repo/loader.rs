//! The start-up load of the cache directory (§5.5): a background pass over
//! every `aukscc_<uid>` file on a few threads, and the on-demand load of
//! one uid a request needs before that pass reached it.

use super::{lock, uid_of_file_name, Repo};
use crate::krb5::Context;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What [`Repo::load_all`] did, for the one summary log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    pub loaded: usize,
    pub failed: usize,
    pub ignored: usize,
    pub leftovers_removed: usize,
    pub took: Duration,
    /// Per-file details, logged at debug level only.
    pub details: Vec<String>,
}

impl Repo {
    /// yet (the caller holds the uid's stripe).
    pub(super) fn settle(&self, ctx: &Context, uid: u32) {
        if self.is_loaded() || self.read_map().contains_key(&uid) {
            return;
        }
        match self.read_file(ctx, uid) {
            Ok(Some(rec)) => {
                self.write_map().insert(uid, Arc::new(rec));
            }
            Ok(None) => {}
            Err(e) => crate::log!(3, "auksd : cannot load {e}"),
        }
    }

    /// Load every `aukscc_<uid>` cache of the directory (§5.5) on `threads`
    /// threads, remove leftover temporary files and directories, then mark the
    /// repository loaded. Unreadable files are reported and left in place.
    pub fn load_all(&self, threads: usize) -> LoadSummary {
        let start = Instant::now();
        let mut sum = LoadSummary::default();
        let mut uids = Vec::new();
        match std::fs::read_dir(&self.dir) {
            Err(e) => sum.details.push(format!(
                "cache dir {} not readable ({e}): starting with an empty repository",
                self.dir.display()
            )),
            Ok(entries) => {
                for e in entries.filter_map(|e| e.ok()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let ft = e.file_type().ok();
                    if name.starts_with(".auks-") && ft.is_some() {
                        // A write cut short (kill -9, power loss): the
                        // hidden temporary file (or, from older releases,
                        // directory) of a ccache that never got its name.
                        let gone = if ft.is_some_and(|t| t.is_dir()) {
                            std::fs::remove_dir_all(e.path())
                        } else {
                            std::fs::remove_file(e.path())
                        };
                        match gone {
                            Ok(()) => sum.leftovers_removed += 1,
                            Err(err) => sum
                                .details
                                .push(format!("cannot remove leftover {name}: {err}")),
                        }
                    } else if let Some(uid) = uid_of_file_name(&name) {
                        uids.push(uid);
                    } else if name.starts_with("aukscc_") {
                        sum.ignored += 1;
                        sum.details
                            .push(format!("ignored {name}: not aukscc_<uid>"));
                    }
                }
            }
        }
        let threads = threads.clamp(1, 16).min(uids.len().max(1));
        let chunk = uids.len().div_ceil(threads).max(1);
        let results: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = uids
                .chunks(chunk)
                .map(|part| s.spawn(move || self.load_some(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or((0, 0, vec!["loader thread panicked".into()]))
                })
                .collect()
        });
        for (ok, failed, details) in results {
            sum.loaded += ok;
            sum.failed += failed;
            sum.details.extend(details);
        }
        {
            let _g = lock(&self.load_lock);
            self.loaded.store(true, Ordering::Release);
        }
        self.loaded_cv.notify_all();
        sum.took = start.elapsed();
        sum
    }

    fn load_some(&self, uids: &[u32]) -> (usize, usize, Vec<String>) {
        let ctx = match Context::new() {
            Ok(c) => c,
            Err(e) => return (0, uids.len(), vec![format!("no Kerberos context: {e}")]),
        };
        let (mut ok, mut failed, mut details) = (0, 0, Vec::new());
        for &uid in uids {
            let _w = self.stripe(uid);
            if self.read_map().contains_key(&uid) {
                continue; // already loaded on demand, or added since
            }
            match self.read_file(&ctx, uid) {
                Ok(Some(rec)) => {
                    details.push(format!("loaded uid {uid} principal {}", rec.principal));
                    self.write_map().insert(uid, Arc::new(rec));
                    ok += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    details.push(format!("cannot load {e}"));
                    failed += 1;
                }
            }
        }
        (ok, failed, details)
    }
}
