//! A lease lock in etcd that elects one holder among the instances: the one
//! auksd that runs the clean stage, the one auksdrenewer that runs a renewal
//! pass. The holder's key lives as long as its lease; the holder refreshes
//! the lease at each turn, and when it dies the lease runs out (`ttl`
//! seconds) and the next instance to try takes over.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::etcd::{b64, Etcd};
use super::StoreError;

/// The lock of one role.
pub struct Leader {
    etcd: Arc<Etcd>,
    key: Vec<u8>,
    /// Who we are (host name and pid): the value of the key.
    me: String,
    ttl: i64,
    /// The lease we hold the key with.
    lease: Mutex<Option<i64>>,
}

impl Leader {
    /// A lock on `key` whose lease lasts `ttl` seconds.
    pub fn new(etcd: Arc<Etcd>, key: Vec<u8>, ttl: i64) -> Leader {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        Leader {
            etcd,
            key,
            me: format!("{host}:{}", std::process::id()),
            ttl: ttl.max(2),
            lease: Mutex::new(None),
        }
    }

    /// Who we are in the lock's value.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Takes or keeps the lock: `Ok(true)` when this instance holds it for
    /// at least the next `ttl` seconds.
    pub fn try_lead(&self) -> Result<bool, StoreError> {
        let mut held = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = *held {
            match self.etcd.lease_keepalive(id) {
                Ok(ttl) if ttl > 0 => return Ok(true),
                Ok(_) => *held = None,
                Err(e) => {
                    // Unknown: we may still hold it, but cannot say so.
                    return Err(e);
                }
            }
        }
        let id = self.etcd.lease_grant(self.ttl)?;
        let v = self.etcd.call(
            "/v3/kv/txn",
            &json!({
                "compare": [{
                    "key": b64(&self.key), "target": "CREATE", "result": "EQUAL",
                    "create_revision": "0",
                }],
                "success": [{ "request_put": {
                    "key": b64(&self.key), "value": b64(self.me.as_bytes()),
                    "lease": id.to_string(),
                }}],
            }),
        )?;
        if v["succeeded"].as_bool().unwrap_or(false) {
            *held = Some(id);
            Ok(true)
        } else {
            let _ = self.etcd.lease_revoke(id);
            Ok(false)
        }
    }

    /// Who holds the lock now, if anyone.
    pub fn holder(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .etcd
            .get(&self.key)?
            .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }

    /// Refreshes the lease every third of its TTL in a thread of its own
    /// while the lock is held, until `stop`: the holder keeps the lock as
    /// long as it lives, however long one of its turns takes, and a dead
    /// holder is replaced after `ttl` seconds.
    pub fn keep_alive_in_background(
        self: &Arc<Self>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<()> {
        let me = Arc::clone(self);
        let period =
            std::time::Duration::from_secs(u64::try_from(self.ttl / 3).unwrap_or(1).max(1));
        std::thread::Builder::new()
            .name("etcd-lease".into())
            .spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(period);
                    let mut held = me.lease.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(id) = *held {
                        match me.etcd.lease_keepalive(id) {
                            Ok(ttl) if ttl > 0 => {}
                            Ok(_) => *held = None,
                            // Unknown: the next try_lead decides.
                            Err(_) => {}
                        }
                    }
                }
            })
            .map(|_| ())
    }

    /// Gives the lock up (on shutdown), so another instance takes over at
    /// once instead of after the lease runs out.
    pub fn resign(&self) {
        if let Some(id) = self
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = self.etcd.lease_revoke(id);
        }
    }
}
