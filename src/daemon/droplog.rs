//! Rate-limited, aggregated logging of dropped and failed connections.
//!
//! A hostile or broken host can make thousands of connections a second; one
//! log line each would fill the disk (600 000 lines in 32 s were seen).
//! Instead the first event of each (address, reason) in a period is logged
//! at once, later ones are counted, and every [`PERIOD`] one line per
//! (address, reason) gives the count: "N connections from 10.1.2.3 dropped
//! in the last 60 s: slow pre-auth". At most [`MAX_LINES`] lines are written
//! per period; the rest is summed up in one more line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Length of one counting period.
pub const PERIOD: Duration = Duration::from_secs(60);
/// Most lines written per period (first events and counts together).
pub const MAX_LINES: usize = 20;

/// Why a connection was dropped or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The address already holds its share of the pre-auth capacity.
    AddressShare,
    /// The pre-auth capacity of the whole daemon is in use.
    PreauthFull,
    /// No complete AP-REQ within the handshake timeout.
    SlowPreauth,
    /// Bad versions, oversized frames, reset before authentication.
    BadPreauth,
    /// Closed by the client before authentication (a port probe).
    ClosedEarly,
    /// The AP-REQ did not authenticate.
    AuthFailed,
    /// accept() failed (e.g. out of file descriptors).
    AcceptFailed,
}

impl DropReason {
    /// The `reason` label of `auks_connections_rejected_total`; `None` for
    /// a connection the client closed itself before authenticating (a port
    /// probe or a health check), which is no rejection.
    pub fn rejected(self) -> Option<crate::metrics::Rejected> {
        use crate::metrics::Rejected;
        match self {
            DropReason::AddressShare | DropReason::PreauthFull | DropReason::AcceptFailed => {
                Some(Rejected::Overload)
            }
            DropReason::SlowPreauth => Some(Rejected::Timeout),
            DropReason::BadPreauth => Some(Rejected::Malformed),
            DropReason::AuthFailed => Some(Rejected::Handshake),
            DropReason::ClosedEarly => None,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            DropReason::AddressShare => "dropped: too many pending handshakes from this address",
            DropReason::PreauthFull => "dropped: too many pending handshakes",
            DropReason::SlowPreauth => "closed: slow pre-auth (no AP-REQ in time)",
            DropReason::BadPreauth => "closed: invalid pre-auth data",
            DropReason::ClosedEarly => "closed by the client before authentication",
            DropReason::AuthFailed => "failed: authentication",
            DropReason::AcceptFailed => "not accepted: accept failed",
        }
    }
}

struct Period {
    start: Instant,
    counts: HashMap<(Option<IpAddr>, DropReason), u64>,
    lines: usize,
    suppressed: u64,
}

/// The shared aggregator (cheap to call from any thread).
pub struct DropLog {
    period: Duration,
    cur: Mutex<Period>,
}

impl Default for DropLog {
    fn default() -> Self {
        DropLog::new(PERIOD)
    }
}

impl DropLog {
    pub fn new(period: Duration) -> Self {
        DropLog {
            period,
            cur: Mutex::new(Period {
                start: Instant::now(),
                counts: HashMap::new(),
                lines: 0,
                suppressed: 0,
            }),
        }
    }

    /// Count one event; returns the lines to log now (usually none).
    pub fn record(&self, addr: Option<IpAddr>, why: DropReason, detail: &str) -> Vec<String> {
        let mut out = self.flush_if_due(false);
        let mut p = self.cur.lock().unwrap_or_else(PoisonError::into_inner);
        let n = p.counts.entry((addr, why)).or_insert(0);
        *n += 1;
        if *n == 1 {
            if p.lines < MAX_LINES {
                p.lines += 1;
                out.push(format!(
                    "auksd : {} : connection {}{}{} (further ones are counted)",
                    show(addr),
                    why.text(),
                    if detail.is_empty() { "" } else { ": " },
                    detail
                ));
            } else {
                p.suppressed += 1;
            }
        }
        out
    }

    /// Lines summing up the period when it is over (or now when `force`).
    pub fn flush_if_due(&self, force: bool) -> Vec<String> {
        let mut p = self.cur.lock().unwrap_or_else(PoisonError::into_inner);
        let age = p.start.elapsed();
        if !force && age < self.period {
            return Vec::new();
        }
        let mut v: Vec<((Option<IpAddr>, DropReason), u64)> = p.counts.drain().collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.1));
        let mut out = Vec::new();
        // A count of 1 was already logged as a first event.
        let mut rest = (0u64, 0usize);
        for ((addr, why), n) in v.into_iter().filter(|(_, n)| *n > 1) {
            if out.len() < MAX_LINES {
                out.push(format!(
                    "auksd : {n} connections from {} {} in the last {} s",
                    show(addr),
                    why.text(),
                    age.as_secs().max(1)
                ));
            } else {
                rest.0 += n;
                rest.1 += 1;
            }
        }
        if rest.1 > 0 || p.suppressed > 0 {
            out.push(format!(
                "auksd : and {} more connections from {} more address/reason pairs dropped or failed in the last {} s",
                rest.0,
                rest.1 as u64 + p.suppressed,
                age.as_secs().max(1)
            ));
        }
        p.start = Instant::now();
        p.lines = 0;
        p.suppressed = 0;
        out
    }
}

fn show(addr: Option<IpAddr>) -> String {
    addr.map_or_else(|| "?".into(), |a| a.to_string())
}

/// Log lines returned by [`DropLog`] at level 1.
pub fn emit(lines: Vec<String>) {
    for l in lines {
        crate::log!(1, "{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_logged_then_counted() {
        let d = DropLog::new(Duration::from_secs(3600));
        let a: Option<IpAddr> = Some("10.1.2.3".parse().unwrap());
        let first = d.record(a, DropReason::SlowPreauth, "");
        assert_eq!(first.len(), 1);
        assert!(first[0].contains("10.1.2.3") && first[0].contains("slow pre-auth"));
        for _ in 0..999 {
            assert!(d.record(a, DropReason::SlowPreauth, "").is_empty());
        }
        let sum = d.flush_if_due(true);
        assert_eq!(sum.len(), 1, "{sum:?}");
        assert!(sum[0].starts_with("auksd : 1000 connections from 10.1.2.3"));
        assert!(d.flush_if_due(true).is_empty(), "counts restart");
    }

    #[test]
    fn lines_per_period_are_bounded() {
        let d = DropLog::new(Duration::from_secs(3600));
        let mut lines = 0;
        for i in 0..5000u32 {
            let a = Some(IpAddr::from(i.to_be_bytes()));
            lines += d.record(a, DropReason::BadPreauth, "").len();
            lines += d.record(a, DropReason::BadPreauth, "").len();
        }
        assert_eq!(lines, MAX_LINES);
        let sum = d.flush_if_due(true);
        assert_eq!(sum.len(), MAX_LINES + 1);
        assert!(sum.last().unwrap().contains("more address/reason pairs"));
    }
}
