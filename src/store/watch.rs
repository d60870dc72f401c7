//! The watch thread of an instance: loads the view, then follows etcd's
//! watch stream of the credential prefix from the revision after the view's,
//! so a credential ADDed or REMOVEd through any instance is seen here within
//! milliseconds.
//!
//! Each stream read has a deadline; a stream that breaks, stays idle past
//! [`IDLE`], or is cancelled (etcd cancels it when its member loses the
//! leader) is opened again (after an error, on the next member) from the
//! revision after the last one applied, so nothing is missed. A stream
//! cancelled because that revision was compacted away reloads the view.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::etcd::{b64, int64, kv_of, prefix_end};
use super::http::TIMED_OUT;
use super::view::EtcdRepo;
use super::StoreError;

/// A stream without any message for this long is opened again.
pub const IDLE: Duration = Duration::from_secs(5);
/// How often writes are pointed at the Raft leader again (checked when a
/// stream is opened, so at least every [`IDLE`]).
const LEADER_CHECK: Duration = Duration::from_secs(10);
/// Pause between two failed attempts.
const BACKOFF: Duration = Duration::from_millis(200);

/// How one stream ended.
enum End {
    /// Broken or idle: open again from the last revision.
    Reopen,
    /// Compacted past our revision: reload the view first.
    Resync,
}

/// Starts the watch thread; `log` receives one line per notable event
/// (load, loss and recovery of etcd, values that do not open).
pub fn spawn(
    repo: Arc<EtcdRepo>,
    stop: Arc<AtomicBool>,
    log: impl Fn(i64, String) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("etcd-watch".into())
        .spawn(move || run(&repo, &stop, &log))
}

fn run(repo: &EtcdRepo, stop: &AtomicBool, log: &dyn Fn(i64, String)) {
    // A view loaded by the caller is followed from its revision.
    let mut need_sync = !repo.is_synced();
    let mut member = 0usize;
    let mut was_down = false;
    let mut last_leader_check = Instant::now() - LEADER_CHECK;
    while !stop.load(Ordering::Relaxed) {
        if need_sync {
            let t = Instant::now();
            match repo.sync() {
                Ok((rev, problems)) => {
                    for p in problems {
                        log(1, p);
                    }
                    log(
                        1,
                        format!(
                            "etcd view loaded: {} credentials at revision {rev} in {} ms",
                            repo.len(),
                            t.elapsed().as_millis()
                        ),
                    );
                    need_sync = false;
                    was_down = false;
                }
                Err(e) => {
                    if !was_down {
                        log(1, format!("etcd view not loaded: {e} (retrying)"));
                        was_down = true;
                    }
                    repo.set_healthy(false);
                    std::thread::sleep(BACKOFF);
                    continue;
                }
            }
        }
        if last_leader_check.elapsed() >= LEADER_CHECK {
            repo.etcd().prefer_leader();
            last_leader_check = Instant::now();
        }
        match watch_once(repo, member, stop, log, &mut was_down) {
            Ok(End::Resync) => need_sync = true,
            Ok(End::Reopen) => {}
            Err(e) => {
                if !was_down {
                    log(1, format!("etcd watch interrupted: {e} (retrying)"));
                    was_down = true;
                }
                member += 1;
                std::thread::sleep(BACKOFF);
            }
        }
    }
}

/// One watch stream on member `member` (modulo the endpoints).
fn watch_once(
    repo: &EtcdRepo,
    member: usize,
    stop: &AtomicBool,
    log: &dyn Fn(i64, String),
    was_down: &mut bool,
) -> Result<End, StoreError> {
    let etcd = repo.etcd();
    let i = member % etcd.endpoints().len();
    let mut conn = etcd.conn(i, etcd.timeout)?;
    conn.set_timeout(IDLE)?;
    let prefix = repo.cred_prefix();
    let start = repo.revision() + 1;
    let req = json!({ "create_request": {
        "key": b64(&prefix), "range_end": b64(&prefix_end(&prefix)),
        "start_revision": start.to_string(),
    }});
    let body = serde_json::to_vec(&req).map_err(|e| StoreError::Protocol(e.to_string()))?;
    // "hasleader" (gRPC metadata through the gateway): etcd cancels the
    // stream when its member loses the leader (partition, no quorum), so
    // we move to another member instead of waiting on a silent one.
    let (status, mut stream) =
        conn.post_with("/v3/watch", &body, &["Grpc-Metadata-hasleader: true"])?;
    if status != 200 {
        return Err(StoreError::Etcd(format!("watch: HTTP {status}")));
    }
    let mut pending = Vec::new();
    let mut created = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(End::Reopen);
        }
        let line = match stream.next_line(&mut pending, Instant::now() + IDLE) {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(End::Reopen),
            // An idle stream times out: open it again, silently.
            Err(StoreError::Unavailable(m)) if created && m == TIMED_OUT => return Ok(End::Reopen),
            Err(e) => return Err(e),
        };
        let v: Value = serde_json::from_slice(&line)
            .map_err(|_| StoreError::Protocol("watch: non-JSON message".into()))?;
        if let Some(err) = v.get("error") {
            return Err(StoreError::Etcd(format!("watch: {err}")));
        }
        let r = &v["result"];
        if r["created"].as_bool() == Some(true) {
            created = true;
            repo.set_healthy(true);
            if std::mem::take(was_down) {
                log(1, format!("etcd watch restored on {}", etcd.endpoints()[i]));
            }
        }
        if r["canceled"].as_bool() == Some(true) {
            if int64(&r["compact_revision"]) > 0 {
                log(1, "etcd watch fell behind a compaction: reloading".into());
                return Ok(End::Resync);
            }
            return Err(StoreError::Etcd(format!(
                "watch cancelled: {}",
                r["cancel_reason"].as_str().unwrap_or("")
            )));
        }
        if let Some(events) = r["events"].as_array() {
            for ev in events {
                let kv = kv_of(&ev["kv"])?;
                let problem = if ev["type"].as_str() == Some("DELETE") {
                    repo.apply(&kv.key, None, kv.mod_revision)
                } else {
                    repo.apply(&kv.key, Some(&kv), kv.mod_revision)
                };
                if let Some(p) = problem {
                    log(1, p);
                }
                repo.advance(kv.mod_revision);
            }
        }
    }
}
