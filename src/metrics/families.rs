//! The metric families of auksd and auksdrenewer (see the table in
//! [`super`]) and typed recorders over them, so that the daemons cannot
//! misspell a name or a label: [`AuksdMetrics`] and [`RenewerMetrics`].

use super::{Registry, LATENCY_BUCKETS};
use crate::logging::audit::{Op, Outcome};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn common(r: &Registry) {
    r.gauge("auks_build_info", "auks-rs build; always 1");
    r.set(
        "auks_build_info",
        &[("version", crate::version::VERSION)],
        1.0,
    );
    r.gauge(
        "auks_start_time_seconds",
        "Start (or last reload) of the process, Unix time",
    );
}

/// The families auksd maintains.
pub fn auksd_registry() -> Registry {
    let r = Registry::new();
    common(&r);
    r.gauge("auks_credentials_stored", "Credentials in the repository");
    r.gauge(
        "auks_credentials_expiring",
        "Stored credentials whose remaining life is under the renewer MinLifeTime",
    );
    r.counter(
        "auks_requests_total",
        "Requests answered, by type and outcome",
    );
    r.histogram(
        "auks_request_duration_seconds",
        "Request processing time after the handshake, by type",
        LATENCY_BUCKETS,
    );
    r.counter(
        "auks_connections_rejected_total",
        "Connections closed without a request, by reason",
    );
    r
}

/// The families auksdrenewer maintains.
pub fn renewer_registry() -> Registry {
    let r = Registry::new();
    common(&r);
    r.gauge(
        "auks_renewer_last_pass_timestamp_seconds",
        "End of the last renewal pass, Unix time",
    );
    r.gauge(
        "auks_renewer_last_pass_duration_seconds",
        "Length of the last renewal pass",
    );
    r.gauge(
        "auks_renewer_last_pass_credentials",
        "Credentials of the last renewal pass, by result",
    );
    r.counter(
        "auks_renewer_renewals_total",
        "Renewals since start, by result",
    );
    r.gauge(
        "auks_credentials_expiring",
        "Stored credentials whose remaining life is under the renewer MinLifeTime",
    );
    r
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The `type` label of a request: the audited operations, plus `ping`.
fn op_label(op: Option<Op>) -> &'static str {
    match op {
        Some(Op::Get) => "get",
        Some(Op::Add) => "add",
        Some(Op::Remove) => "remove",
        Some(Op::Dump) => "dump",
        None => "ping",
    }
}

/// Why a connection was closed without a request (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Queue or pending-handshake limit reached.
    Overload,
    /// Kerberos handshake failed (bad ticket, replay, wrong service).
    Handshake,
    /// The client was too slow.
    Timeout,
    /// Undecodable request.
    Malformed,
}

impl Rejected {
    fn label(self) -> &'static str {
        match self {
            Rejected::Overload => "overload",
            Rejected::Handshake => "handshake",
            Rejected::Timeout => "timeout",
            Rejected::Malformed => "malformed",
        }
    }
}

/// What auksd records.
pub struct AuksdMetrics {
    reg: Registry,
}

impl Default for AuksdMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AuksdMetrics {
    pub fn new() -> Self {
        let reg = auksd_registry();
        reg.set("auks_start_time_seconds", &[], unix_now());
        AuksdMetrics { reg }
    }

    /// One request answered: `op` `None` is a ping.
    pub fn request(&self, op: Option<Op>, outcome: Outcome, took: Duration) {
        let t = op_label(op);
        self.reg.inc(
            "auks_requests_total",
            &[("type", t), ("outcome", outcome.as_str())],
        );
        self.reg.observe(
            "auks_request_duration_seconds",
            &[("type", t)],
            took.as_secs_f64(),
        );
    }

    /// One connection closed without a request.
    pub fn rejected(&self, why: Rejected) {
        self.reg.inc(
            "auks_connections_rejected_total",
            &[("reason", why.label())],
        );
    }

    /// Repository size and credentials under `MinLifeTime`.
    pub fn repository(&self, stored: usize, expiring: usize) {
        self.reg.set("auks_credentials_stored", &[], stored as f64);
        self.reg
            .set("auks_credentials_expiring", &[], expiring as f64);
    }

    /// A reload: the start time is reset.
    pub fn reloaded(&self) {
        self.reg.set("auks_start_time_seconds", &[], unix_now());
    }

    /// Write the textfile atomically.
    pub fn write(&self, path: &Path) -> Result<(), super::MetricsError> {
        self.reg.write_atomic(path)
    }

    /// The underlying registry (rendering, tests).
    pub fn registry(&self) -> &Registry {
        &self.reg
    }
}

/// What auksdrenewer records.
pub struct RenewerMetrics {
    reg: Registry,
}

impl Default for RenewerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RenewerMetrics {
    pub fn new() -> Self {
        let reg = renewer_registry();
        reg.set("auks_start_time_seconds", &[], unix_now());
        RenewerMetrics { reg }
    }

    /// One pass over the repository ended.
    pub fn pass(
        &self,
        took: Duration,
        renewed: usize,
        skipped: usize,
        failed: usize,
        expiring: usize,
    ) {
        let r = &self.reg;
        r.set("auks_renewer_last_pass_timestamp_seconds", &[], unix_now());
        r.set(
            "auks_renewer_last_pass_duration_seconds",
            &[],
            took.as_secs_f64(),
        );
        for (label, n) in [
            ("renewed", renewed),
            ("skipped", skipped),
            ("failed", failed),
        ] {
            r.set(
                "auks_renewer_last_pass_credentials",
                &[("result", label)],
                n as f64,
            );
        }
        r.inc_by(
            "auks_renewer_renewals_total",
            &[("result", "renewed")],
            renewed as f64,
        );
        r.inc_by(
            "auks_renewer_renewals_total",
            &[("result", "failed")],
            failed as f64,
        );
        r.set("auks_credentials_expiring", &[], expiring as f64);
    }

    /// Write the textfile atomically.
    pub fn write(&self, path: &Path) -> Result<(), super::MetricsError> {
        self.reg.write_atomic(path)
    }

    /// The underlying registry (rendering, tests).
    pub fn registry(&self) -> &Registry {
        &self.reg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_recorders_fill_the_families() {
        let m = AuksdMetrics::new();
        m.request(Some(Op::Get), Outcome::Ok, Duration::from_millis(2));
        m.request(None, Outcome::Ok, Duration::from_micros(300));
        m.rejected(Rejected::Handshake);
        m.repository(10, 2);
        let s = super::super::tests::parse(&m.registry().render()).unwrap();
        let find = |n: &str, l: &[(&str, &str)]| super::super::tests::sample(&s, n, l).map(|x| x.2);
        assert_eq!(
            find("auks_requests_total", &[("type", "get"), ("outcome", "ok")]),
            Some(1.0)
        );
        assert_eq!(find("auks_requests_total", &[("type", "ping")]), Some(1.0));
        assert_eq!(
            find(
                "auks_connections_rejected_total",
                &[("reason", "handshake")]
            ),
            Some(1.0)
        );
        assert_eq!(find("auks_credentials_stored", &[]), Some(10.0));
        assert!(find("auks_start_time_seconds", &[]).unwrap() > 1.0e9);

        let r = RenewerMetrics::new();
        r.pass(Duration::from_millis(250), 2, 5, 1, 3);
        r.pass(Duration::from_millis(250), 1, 6, 0, 0);
        let s = super::super::tests::parse(&r.registry().render()).unwrap();
        let find = |n: &str, l: &[(&str, &str)]| super::super::tests::sample(&s, n, l).map(|x| x.2);
        assert_eq!(
            find("auks_renewer_renewals_total", &[("result", "renewed")]),
            Some(3.0)
        );
        assert_eq!(
            find(
                "auks_renewer_last_pass_credentials",
                &[("result", "skipped")]
            ),
            Some(6.0)
        );
        assert_eq!(find("auks_credentials_expiring", &[]), Some(0.0));
    }
}
