//! Failed-login rate limiting with growing back-off, per user name and per
//! client address: after `threshold` failures in a row the key is locked
//! for `base`, then twice as long at each further failure, up to `max`. A
//! successful login clears both keys. The table is bounded in size.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; older ones are pruned first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Instant,
    last: Instant,
}

/// The failed-login table.
pub struct Limiter {
    table: Mutex<HashMap<Key, Entry>>,
    threshold: u32,
    base: Duration,
    max: Duration,
}

impl Limiter {
    pub fn new(threshold: u32, base: Duration, max: Duration) -> Self {
        Limiter {
            table: Mutex::new(HashMap::new()),
            threshold: threshold.max(1),
            base,
            max,
        }
    }

    fn keys(user: &str, addr: IpAddr) -> [Key; 2] {
        [Key::User(user.to_string()), Key::Addr(addr)]
    }

    /// `Err(wait)` when the user or the address is locked out now.
    pub fn check(&self, user: &str, addr: IpAddr) -> Result<(), Duration> {
        self.check_at(user, addr, Instant::now())
    }

    fn check_at(&self, user: &str, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let wait = Self::keys(user, addr)
            .iter()
            .filter_map(|k| t.get(k))
            .filter(|e| e.locked_until > now)
            .map(|e| e.locked_until - now)
            .max();
        match wait {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    /// Record a failed login; returns the lock-out now in force, if any.
    pub fn failure(&self, user: &str, addr: IpAddr) -> Option<Duration> {
        self.failure_at(user, addr, Instant::now())
    }

    fn failure_at(&self, user: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= MAX_ENTRIES {
            let max = self.max;
            t.retain(|_, e| e.locked_until > now || now.duration_since(e.last) < max);
            if t.len() >= MAX_ENTRIES {
                t.clear();
            }
        }
        let mut lock = None;
        for k in Self::keys(user, addr) {
            let e = t.entry(k).or_insert(Entry {
                failures: 0,
                locked_until: now,
                last: now,
            });
            // failures long ago are forgiven
            if now.duration_since(e.last) > self.max.max(self.base) * 2 {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if e.failures >= self.threshold {
                let exp = (e.failures - self.threshold).min(20);
                let d = self.base.saturating_mul(1u32 << exp).min(self.max);
                e.locked_until = now + d;
                lock = Some(lock.map_or(d, |l: Duration| l.max(d)));
            }
        }
        lock
    }

    /// A successful login clears the user's and the address's record.
    pub fn success(&self, user: &str, addr: IpAddr) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        for k in Self::keys(user, addr) {
            t.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn locks_after_threshold_with_growing_backoff() {
        let l = Limiter::new(3, Duration::from_secs(2), Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("127.0.0.2");
        assert_eq!(l.failure_at("bob", a, t0), None);
        assert_eq!(l.failure_at("bob", a, t0), None);
        assert!(l.check_at("bob", a, t0).is_ok());
        assert_eq!(l.failure_at("bob", a, t0), Some(Duration::from_secs(2)));
        assert!(l.check_at("bob", a, t0).is_err());
        // another address, same user: still locked (per user)
        assert!(l.check_at("bob", ip("127.0.0.3"), t0).is_err());
        // another user, same address: locked (per address)
        assert!(l.check_at("carol", a, t0).is_err());
        let t1 = t0 + Duration::from_secs(3);
        assert!(l.check_at("bob", a, t1).is_ok());
        assert_eq!(l.failure_at("bob", a, t1), Some(Duration::from_secs(4)));
        assert_eq!(l.failure_at("bob", a, t1), Some(Duration::from_secs(8)));
        for _ in 0..10 {
            l.failure_at("bob", a, t1);
        }
        assert_eq!(l.check_at("bob", a, t1), Err(Duration::from_secs(60)));
    }

    #[test]
    fn success_clears() {
        let l = Limiter::new(1, Duration::from_secs(5), Duration::from_secs(60));
        let a = ip("::1");
        let t0 = Instant::now();
        assert!(l.failure_at("bob", a, t0).is_some());
        assert!(l.check_at("bob", a, t0).is_err());
        l.success("bob", a);
        assert!(l.check_at("bob", a, t0).is_ok());
    }
}
