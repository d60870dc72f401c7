//! A small blocking client of the etcd v3 API, spoken as JSON over HTTP/1.1
//! (etcd's gRPC gateway, served on every client URL of etcd ≥ 3.4): range,
//! put, delete, compare-and-swap transactions, leases. Keys and values are
//! base64 in JSON, as the gateway wants them.
//!
//! Endpoints are tried in turn: a request that cannot reach a member, or
//! that a member cannot serve (no leader, no quorum), moves to the next one
//! within the request's deadline. Idle keep-alive connections are pooled per
//! endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::http::{Conn, Endpoint};
use super::StoreError;
use crate::config::EtcdConf;

/// Most idle connections kept per endpoint.
const POOL_PER_ENDPOINT: usize = 16;

/// One key-value pair read from etcd.
#[derive(Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// The client: endpoints, TLS settings, connection pools.
pub struct Etcd {
    endpoints: Vec<Endpoint>,
    tls: Option<Arc<rustls::ClientConfig>>,
    pools: Vec<Mutex<Vec<Conn>>>,
    /// The endpoint that answered last: tried first.
    current: AtomicUsize,
    /// Deadline of one request.
    pub timeout: Duration,
}

/// The end of the range of every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

pub(crate) fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn unb64(v: &Value) -> Result<Vec<u8>, StoreError> {
    match v.as_str() {
        None => Ok(Vec::new()),
        Some(s) => B64
            .decode(s)
            .map_err(|_| StoreError::Protocol("invalid base64 from etcd".into())),
    }
}

/// An int64 of the gateway's JSON: a string, or absent for 0.
pub(crate) fn int64(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn kv_of(v: &Value) -> Result<Kv, StoreError> {
    Ok(Kv {
        key: unb64(&v["key"])?,
        value: unb64(&v["value"])?,
        mod_revision: int64(&v["mod_revision"]),
    })
}

/// Whether an etcd error means "this member cannot serve now" (try another
/// member, or report the service unavailable) rather than a bad request.
fn is_unavailable(msg: &str) -> bool {
    [
        "no leader",
        "timed out",
        "deadline",
        "unavailable",
        "not capable",
        "leader changed",
        "too many requests",
        "stopped",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

impl Etcd {
    /// A client for the configured endpoints (nothing is contacted yet).
    pub fn new(conf: &EtcdConf) -> Result<Etcd, StoreError> {
        let endpoints = conf
            .endpoints
            .iter()
            .map(|u| Endpoint::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match &conf.ca_file {
            Some(ca) => Some(super::http::tls_config(
                ca,
                conf.cert_file.as_deref(),
                conf.key_file.as_deref(),
            )?),
            None if endpoints.iter().any(|e| e.tls) => {
                return Err(StoreError::Config(
                    "https etcd endpoints need EtcdCAFile".into(),
                ))
            }
            None => None,
        };
        Ok(Etcd {
            pools: endpoints.iter().map(|_| Mutex::new(Vec::new())).collect(),
            endpoints,
            tls,
            current: AtomicUsize::new(0),
            timeout: Duration::from_secs(conf.timeout),
        })
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// A connection to endpoint `i`: pooled or new.
    pub(crate) fn conn(&self, i: usize, timeout: Duration) -> Result<Conn, StoreError> {
        self.conn_and_origin(i, timeout).map(|(c, _)| c)
    }

    /// A connection and whether it came from the pool.
    fn conn_and_origin(&self, i: usize, timeout: Duration) -> Result<(Conn, bool), StoreError> {
        let pooled = self.pools[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(c) => Ok((c, true)),
            None => {
                Conn::connect(&self.endpoints[i], self.tls.as_ref(), timeout).map(|c| (c, false))
            }
        }
    }

    fn give_back(&self, i: usize, c: Conn) {
        let mut p = self.pools[i].lock().unwrap_or_else(PoisonError::into_inner);
        if p.len() < POOL_PER_ENDPOINT {
            p.push(c);
        }
    }

    /// One unary call: `path` with JSON `body`, on the first endpoint able
    /// to serve it within the deadline.
    pub fn call(&self, path: &str, body: &Value) -> Result<Value, StoreError> {
        self.call_within(path, body, self.timeout)
    }

    pub fn call_within(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, StoreError> {
        let deadline = Instant::now() + timeout;
        let body = serde_json::to_vec(body).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let n = self.endpoints.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut last_err = None;
        // Each endpoint once; a pooled connection that failed may have been
        // closed by the server while idle, so that endpoint gets a second
        // try on a fresh connection. Then round again while time is left
        // (writes are compare-and-swap: a retry of one that did commit
        // fails its comparison, and the caller re-reads).
        let mut retry_fresh = false;
        for k in 0..n * 6 {
            let i = (first + k / 2) % n;
            if Instant::now() >= deadline {
                break;
            }
            // One attempt may take a third of the deadline (at least 1 s):
            // a request whose proposal died with a killed leader, or held by
            // a member that lost its leader, leaves time to try another.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min((timeout / 3).max(Duration::from_secs(1)));
            if left.is_zero() {
                break;
            }
            let fresh = k % 2 == 1;
            if fresh && !std::mem::take(&mut retry_fresh) {
                continue;
            }
            let conn = if fresh {
                Conn::connect(&self.endpoints[i], self.tls.as_ref(), left).map(|c| (c, false))
            } else {
                self.conn_and_origin(i, left)
            };
            let mut c = match conn {
                Ok((c, pooled)) => {
                    retry_fresh = pooled;
                    c
                }
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            if let Err(e) = c.set_timeout(left) {
                last_err = Some(e);
                continue;
            }
            let (status, reply) = match c.post_all(path, &body) {
                Ok(r) => r,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let v: Value = serde_json::from_slice(&reply).map_err(|_| {
                StoreError::Protocol(format!("{path}: non-JSON reply (HTTP {status})"))
            })?;
            if status == 200 {
                self.give_back(i, c);
                self.current.store(i, Ordering::Relaxed);
                return Ok(v);
            }
            let msg = v["error"]
                .as_str()
                .or(v["message"].as_str())
                .unwrap_or("")
                .to_string();
            if is_unavailable(&msg) || status >= 500 && msg.is_empty() {
                self.give_back(i, c);
                last_err = Some(StoreError::Unavailable(format!(
                    "{}: {msg}",
                    self.endpoints[i]
                )));
                // The member answered: no fresh-connection retry.
                retry_fresh = false;
                continue;
            }
            return Err(StoreError::Etcd(format!("{path}: {msg} (HTTP {status})")));
        }
        Err(match last_err {
            Some(StoreError::Unavailable(m)) => StoreError::Unavailable(m),
            Some(e) => e,
            None => StoreError::Unavailable(format!("{path}: deadline passed")),
        })
    }

    /// One page of `[key, end)` at `revision` (0: latest), at most `limit`
    /// pairs. Returns the pairs, whether more follow, and the revision read.
    /// A `serializable` read is served by the member alone (no quorum
    /// needed; possibly behind the cluster).
    pub fn range(
        &self,
        key: &[u8],
        end: &[u8],
        revision: i64,
        limit: i64,
        serializable: bool,
    ) -> Result<(Vec<Kv>, bool, i64), StoreError> {
        let v = self.call(
            "/v3/kv/range",
            &json!({
                "key": b64(key), "range_end": b64(end),
                "revision": revision.to_string(), "limit": limit.to_string(),
                "serializable": serializable,
            }),
        )?;
        let kvs = match v["kvs"].as_array() {
            Some(a) => a.iter().map(kv_of).collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let more = v["more"].as_bool().unwrap_or(false);
        Ok((kvs, more, int64(&v["header"]["revision"])))
    }

    /// Every pair under `prefix`, read page by page at one revision:
    /// linearizable, or serializable from one member when no quorum can
    /// answer (a restarted instance then serves what that member has).
    pub fn range_prefix(&self, prefix: &[u8]) -> Result<(Vec<Kv>, i64), StoreError> {
        match self.range_prefix_with(prefix, false) {
            Err(StoreError::Unavailable(_)) => self.range_prefix_with(prefix, true),
            r => r,
        }
    }

    fn range_prefix_with(
        &self,
        prefix: &[u8],
        serializable: bool,
    ) -> Result<(Vec<Kv>, i64), StoreError> {
        let end = prefix_end(prefix);
        let mut out = Vec::new();
        let mut start = prefix.to_vec();
        let mut rev = 0;
        loop {
            let (page, more, r) = self.range(&start, &end, rev, 500, serializable)?;
            if rev == 0 {
                rev = r;
            }
            if let Some(last) = page.last() {
                start = last.key.clone();
                start.push(0);
            }
            out.extend(page);
            if !more {
                return Ok((out, rev));
            }
        }
    }

    /// One value, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Kv>, StoreError> {
        let v = self.call("/v3/kv/range", &json!({ "key": b64(key) }))?;
        match v["kvs"].as_array().and_then(|a| a.first()) {
            Some(kv) => Ok(Some(kv_of(kv)?)),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key` if its current mod revision is `expect`
    /// (0: the key must not exist). Returns `Ok(Some(new revision))` when
    /// written, `Ok(None)` when the comparison failed.
    pub fn put_if(
        &self,
        key: &[u8],
        value: &[u8],
        expect: i64,
        lease: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut put = json!({ "key": b64(key), "value": b64(value) });
        if lease != 0 {
            put["lease"] = json!(lease.to_string());
        }
        self.txn_if(key, expect, json!({ "request_put": put }))
    }

    /// Deletes `key` if its mod revision is `expect`.
    pub fn delete_if(&self, key: &[u8], expect: i64) -> Result<Option<i64>, StoreError> {
        self.txn_if(
            key,
            expect,
            json!({ "request_delete_range": { "key": b64(key) } }),
        )
    }

    fn txn_if(&self, key: &[u8], expect: i64, op: Value) -> Result<Option<i64>, StoreError> {
        let v = self.call(
            "/v3/kv/txn",
            &json!({
                "compare": [{
                    "key": b64(key), "target": "MOD", "result": "EQUAL",
                    "mod_revision": expect.to_string(),
                }],
                "success": [op],
            }),
        )?;
        if v["succeeded"].as_bool().unwrap_or(false) {
            Ok(Some(int64(&v["header"]["revision"])))
        } else {
            Ok(None)
        }
    }

    /// Several puts in one transaction (the import).
    pub fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<i64, StoreError> {
        let ops: Vec<Value> = pairs
            .iter()
            .map(|(k, v)| json!({ "request_put": { "key": b64(k), "value": b64(v) } }))
            .collect();
        let v = self.call("/v3/kv/txn", &json!({ "success": ops }))?;
        Ok(int64(&v["header"]["revision"]))
    }

    /// Unconditional delete of one key; returns how many were deleted.
    pub fn delete(&self, key: &[u8]) -> Result<i64, StoreError> {
        let v = self.call("/v3/kv/deleterange", &json!({ "key": b64(key) }))?;
        Ok(int64(&v["deleted"]))
    }

    /// A lease of `ttl` seconds.
    pub fn lease_grant(&self, ttl: i64) -> Result<i64, StoreError> {
        let v = self.call("/v3/lease/grant", &json!({ "TTL": ttl.to_string() }))?;
        match int64(&v["ID"]) {
            0 => Err(StoreError::Etcd(format!(
                "lease grant refused: {}",
                v["error"].as_str().unwrap_or("")
            ))),
            id => Ok(id),
        }
    }

    /// Refreshes a lease; returns its remaining TTL (0 or less: it expired).
    pub fn lease_keepalive(&self, id: i64) -> Result<i64, StoreError> {
        let v = self.call("/v3/lease/keepalive", &json!({ "ID": id.to_string() }))?;
        Ok(int64(&v["result"]["TTL"]))
    }

    pub fn lease_revoke(&self, id: i64) -> Result<(), StoreError> {
        self.call("/v3/lease/revoke", &json!({ "ID": id.to_string() }))
            .map(|_| ())
    }

    /// Sends the next requests to the member that is the Raft leader, when
    /// one of ours is (a follower forwards every write to the leader: one
    /// hop saved). Returns whether a leader was found.
    pub fn prefer_leader(&self) -> bool {
        for i in 0..self.endpoints.len() {
            if let Ok((_, v)) = self.member_status(i) {
                let me = &v["header"]["member_id"];
                if !me.is_null() && *me == v["leader"] {
                    self.current.store(i, Ordering::Relaxed);
                    return true;
                }
            }
        }
        false
    }

    /// The status of each member: `(endpoint, Ok(leader id) | Err)`.
    pub fn status(&self) -> Vec<(String, Result<String, StoreError>)> {
        (0..self.endpoints.len())
            .map(|i| {
                let ep = self.endpoints[i].to_string();
                let r = self.member_status(i).and_then(|(st, v)| {
                    if st != 200 {
                        return Err(StoreError::Etcd(format!("HTTP {st}")));
                    }
                    Ok(format!(
                        "version {} leader {} raft term {}",
                        v["version"].as_str().unwrap_or("?"),
                        v["leader"].as_str().unwrap_or("?"),
                        v["raftTerm"].as_str().unwrap_or("?"),
                    ))
                });
                (ep, r)
            })
            .collect()
    }

    /// One `/v3/maintenance/status` call to member `i`: the HTTP status and
    /// the JSON body. A connection that answered 200 goes back to the pool.
    fn member_status(&self, i: usize) -> Result<(u16, Value), StoreError> {
        let mut c = self.conn(i, self.timeout)?;
        c.set_timeout(self.timeout)?;
        let (st, body) = c.post_all("/v3/maintenance/status", b"{}")?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| StoreError::Protocol("status: non-JSON".into()))?;
        if st == 200 {
            self.give_back(i, c);
        }
        Ok((st, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/auks/"), b"/auks0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn gateway_numbers() {
        assert_eq!(int64(&json!("42")), 42);
        assert_eq!(int64(&json!(7)), 7);
        assert_eq!(int64(&Value::Null), 0);
        let kv = kv_of(&json!({"key": b64(b"k"), "mod_revision": "9"})).unwrap();
        assert_eq!(
            (kv.key, kv.value, kv.mod_revision),
            (b"k".to_vec(), vec![], 9)
        );
        assert!(is_unavailable("etcdserver: no leader"));
        assert!(!is_unavailable("etcdserver: key not found"));
    }
}
