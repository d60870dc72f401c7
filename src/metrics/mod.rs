//! Prometheus metrics written as a text file for node_exporter's textfile
//! collector (the HPC-site convention: no extra listening port). The file
//! is rewritten atomically (a private temporary file in the same
//! directory, then `rename(2)`), mode 0644, so the collector never reads a
//! half-written file; its name must end in `.prom`, e.g.
//! `/var/lib/prometheus/node-exporter/auksd.prom`.
//!
//! Proposed metrics (declared by [`auksd_registry`] and
//! [`renewer_registry`], recorded through the typed [`AuksdMetrics`] and
//! [`RenewerMetrics`]; no principal or uid is ever a label):
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `auks_credentials_stored` | gauge | | credentials in the repository |
//! | `auks_credentials_expiring` | gauge | | stored credentials whose remaining life is under the renewer `MinLifeTime` |
//! | `auks_requests_total` | counter | `type` (ping, add, get, remove, dump), `outcome` (ok, denied, not_found, rejected, error) | requests answered |
//! | `auks_request_duration_seconds` | histogram | `type` | from the end of the handshake to the reply sent |
//! | `auks_connections_rejected_total` | counter | `reason` (overload, handshake, timeout, malformed) | connections closed without a request |
//! | `auks_start_time_seconds` | gauge | | start (or last reload) of the process, Unix time |
//! | `auks_renewer_last_pass_timestamp_seconds` | gauge | | end of the last renewal pass, Unix time |
//! | `auks_renewer_last_pass_duration_seconds` | gauge | | length of that pass |
//! | `auks_renewer_last_pass_credentials` | gauge | `result` (renewed, skipped, failed) | counts of that pass |
//! | `auks_renewer_renewals_total` | counter | `result` (renewed, failed) | since start |
//! | `auks_build_info` | gauge | `version` | always 1 |

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Errors writing the metrics file.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Request latency buckets, seconds (a GET takes about a millisecond).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone)]
enum Series {
    Value(f64),
    Hist {
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: Kind,
    buckets: Vec<f64>,
    series: BTreeMap<Labels, Series>,
}

/// A set of metric families. Updates to an undeclared name or with the
/// wrong kind are ignored (metrics must never break a daemon).
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
}

fn valid_name(n: &str, colon: bool) -> bool {
    let mut cs = n.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    cs.next().is_some_and(ok_first)
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn declare(&self, name: &str, help: &str, kind: Kind, buckets: &[f64]) {
        if !valid_name(name, true) {
            return;
        }
        let mut b: Vec<f64> = buckets.iter().copied().filter(|x| x.is_finite()).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let mut g = self.families.lock().unwrap_or_else(|e| e.into_inner());
        g.entry(name.to_string()).or_insert(Family {
            help: help.to_string(),
            kind,
            buckets: b,
            series: BTreeMap::new(),
        });
    }

    /// Declare a counter (its name should end in `_total`).
    pub fn counter(&self, name: &str, help: &str) {
        self.declare(name, help, Kind::Counter, &[]);
    }

    /// Declare a gauge.
    pub fn gauge(&self, name: &str, help: &str) {
        self.declare(name, help, Kind::Gauge, &[]);
    }

    /// Declare a histogram with upper bounds `buckets` (`+Inf` is implied).
    pub fn histogram(&self, name: &str, help: &str, buckets: &[f64]) {
        self.declare(name, help, Kind::Histogram, buckets);
    }

    fn update(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        kind: Kind,
        f: impl FnOnce(&mut Family, Labels),
    ) {
        if !labels
            .iter()
            .all(|(k, _)| valid_name(k, false) && *k != "le")
        {
            return;
        }
        let mut g = self.families.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fam) = g.get_mut(name).filter(|f| f.kind == kind) {
            let l = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            f(fam, l);
        }
    }

    /// Add `by` (>= 0) to a counter.
    pub fn inc_by(&self, name: &str, labels: &[(&str, &str)], by: f64) {
        if !(by >= 0.0 && by.is_finite()) {
            return;
        }
        self.update(name, labels, Kind::Counter, |f, l| {
            let e = f.series.entry(l).or_insert(Series::Value(0.0));
            if let Series::Value(v) = e {
                *v += by;
            }
        });
    }

    /// Add 1 to a counter.
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.inc_by(name, labels, 1.0);
    }

    /// Set a gauge.
    pub fn set(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.update(name, labels, Kind::Gauge, |f, l| {
            f.series.insert(l, Series::Value(value));
        });
    }

    /// Record one observation in a histogram.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        if value.is_nan() {
            return;
        }
        self.update(name, labels, Kind::Histogram, |f, l| {
            let n = f.buckets.len();
            let e = f.series.entry(l).or_insert(Series::Hist {
                counts: vec![0; n],
                sum: 0.0,
                count: 0,
            });
            if let Series::Hist { counts, sum, count } = e {
                for (c, b) in counts.iter_mut().zip(&f.buckets) {
                    if value <= *b {
                        *c += 1;
                    }
                }
                *sum += value;
                *count += 1;
            }
        });
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let g = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, f) in g.iter() {
            out.push_str(&format!("# HELP {name} {}\n", escape_help(&f.help)));
            out.push_str(&format!("# TYPE {name} {}\n", f.kind.name()));
            for (labels, s) in &f.series {
                match s {
                    Series::Value(v) => {
                        out.push_str(&format!("{name}{} {}\n", fmt_labels(labels, None), num(*v)));
                    }
                    Series::Hist { counts, sum, count } => {
                        for (b, c) in f.buckets.iter().zip(counts) {
                            let le = num(*b);
                            out.push_str(&format!(
                                "{name}_bucket{} {c}\n",
                                fmt_labels(labels, Some(&le))
                            ));
                        }
                        out.push_str(&format!(
                            "{name}_bucket{} {count}\n",
                            fmt_labels(labels, Some("+Inf"))
                        ));
                        out.push_str(&format!(
                            "{name}_sum{} {}\n",
                            fmt_labels(labels, None),
                            num(*sum)
                        ));
                        out.push_str(&format!(
                            "{name}_count{} {count}\n",
                            fmt_labels(labels, None)
                        ));
                    }
                }
            }
        }
        out
    }

    /// Write [`Registry::render`] to `path` atomically (mode 0644).
    pub fn write_atomic(&self, path: &Path) -> Result<(), MetricsError> {
        let err = |source| MetricsError::Write {
            path: path.display().to_string(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let text = self.render();
        let mut tmp = tempfile::Builder::new()
            .prefix(".auks-metrics.")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(err)?;
        tmp.write_all(text.as_bytes()).map_err(err)?;
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

mod families;
pub use families::{auksd_registry, renewer_registry, AuksdMetrics, Rejected, RenewerMetrics};

#[cfg(test)]
mod tests;
