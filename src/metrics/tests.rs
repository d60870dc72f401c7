//! Tests of the metrics registry, with a strict parser of the Prometheus
//! text format.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// Labels without `le`, sorted: one histogram series.
type Key = Vec<(String, String)>;

/// One parsed sample: metric name, labels, value.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// A strict parser of the text format: `# TYPE` before samples, every
/// sample of a declared family, valid names, escaped label values,
/// numeric values, no duplicate series, cumulative histogram buckets
/// ending in `+Inf` equal to `_count`.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let e = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("TYPE"), Some(n), Some(k)) => {
                    if !["counter", "gauge", "histogram"].contains(&k) {
                        return Err(e("bad type"));
                    }
                    if types.insert(n.to_string(), k.to_string()).is_some() {
                        return Err(e("family declared twice"));
                    }
                }
                (Some("HELP"), Some(_), _) => {}
                _ => return Err(e("bad comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| e("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| e("bad value"))?,
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((n, l)) => (
                n,
                parse_labels(l.strip_suffix('}').ok_or_else(|| e("no }"))?).map_err(|m| e(&m))?,
            ),
        };
        if !valid_name(name, true) {
            return Err(e("bad name"));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(e("sample before its # TYPE"));
        }
        if !seen.insert(format!("{name}{labels:?}")) {
            return Err(e("duplicate series"));
        }
        out.push((name.to_string(), labels, value));
    }
    check_histograms(&types, &out)?;
    Ok(out)
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    let mut cs = s.chars().peekable();
    while cs.peek().is_some() {
        let key: String = cs.by_ref().take_while(|c| *c != '=').collect();
        if !valid_name(&key, false) || cs.next() != Some('"') {
            return Err(format!("bad label {key:?}"));
        }
        let mut v = String::new();
        loop {
            match cs.next() {
                Some('"') => break,
                Some('\\') => match cs.next() {
                    Some('n') => v.push('\n'),
                    Some(c @ ('\\' | '"')) => v.push(c),
                    _ => return Err("bad escape".into()),
                },
                Some(c) => v.push(c),
                None => return Err("unterminated label value".into()),
            }
        }
        if m.insert(key, v).is_some() {
            return Err("duplicate label".into());
        }
        match cs.next() {
            Some(',') | None => {}
            Some(c) => return Err(format!("unexpected {c:?} after a label")),
        }
    }
    Ok(m)
}

fn check_histograms(types: &BTreeMap<String, String>, samples: &[Sample]) -> Result<(), String> {
    for (fam, _) in types.iter().filter(|(_, k)| *k == "histogram") {
        let mut by_series: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for (n, l, v) in samples {
            let mut key: Key = l.clone().into_iter().filter(|(k, _)| k != "le").collect();
            key.sort();
            if *n == format!("{fam}_bucket") {
                let le = match l.get("le").map(String::as_str) {
                    Some("+Inf") => f64::INFINITY,
                    Some(x) => x.parse().map_err(|_| "bad le")?,
                    None => return Err("bucket without le".into()),
                };
                by_series.entry(key).or_default().push((le, *v));
            } else if *n == format!("{fam}_count") {
                counts.insert(key, *v);
            }
        }
        for (key, mut b) in by_series {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            if b.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{fam}: buckets not cumulative"));
            }
            let last = b.last().ok_or("no bucket")?;
            if last.0 != f64::INFINITY || counts.get(&key) != Some(&last.1) {
                return Err(format!("{fam}: +Inf bucket missing or != _count"));
            }
        }
    }
    Ok(())
}

pub fn sample<'a>(s: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    s.iter().find(|(n, l, _)| {
        n == name
            && labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
    })
}

#[test]
fn counters_gauges_and_histograms_render_and_parse() {
    let r = auksd_registry();
    r.set("auks_credentials_stored", &[], 12.0);
    r.inc("auks_requests_total", &[("type", "get"), ("outcome", "ok")]);
    r.inc("auks_requests_total", &[("type", "get"), ("outcome", "ok")]);
    r.inc(
        "auks_requests_total",
        &[("type", "add"), ("outcome", "denied")],
    );
    for v in [0.0004, 0.002, 0.002, 3.0] {
        r.observe("auks_request_duration_seconds", &[("type", "get")], v);
    }
    r.inc(
        "auks_connections_rejected_total",
        &[("reason", "a\"b\\c\nd")],
    );
    let text = r.render();
    let s = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(sample(&s, "auks_credentials_stored", &[]).unwrap().2, 12.0);
    let get = [("type", "get"), ("outcome", "ok")];
    assert_eq!(sample(&s, "auks_requests_total", &get).unwrap().2, 2.0);
    let b = |le| {
        sample(
            &s,
            "auks_request_duration_seconds_bucket",
            &[("type", "get"), ("le", le)],
        )
        .unwrap()
        .2
    };
    assert_eq!(b("0.0005"), 1.0);
    assert_eq!(b("0.0025"), 3.0);
    assert_eq!(b("2.5"), 3.0);
    assert_eq!(b("+Inf"), 4.0);
    let sum = sample(&s, "auks_request_duration_seconds_sum", &[("type", "get")])
        .unwrap()
        .2;
    assert!((sum - 3.0044).abs() < 1e-9);
    let rej = sample(&s, "auks_connections_rejected_total", &[]).unwrap();
    assert_eq!(rej.1.get("reason").unwrap(), "a\"b\\c\nd");
    assert_eq!(
        sample(
            &s,
            "auks_build_info",
            &[("version", crate::version::VERSION)]
        )
        .unwrap()
        .2,
        1.0
    );
}

#[test]
fn wrong_kinds_names_and_values_are_ignored() {
    let r = Registry::new();
    r.counter("c_total", "c");
    r.gauge("g", "g");
    r.counter("bad name", "x");
    r.set("c_total", &[], 5.0); // a counter is not set
    r.inc("g", &[]); // a gauge is not incremented
    r.inc_by("c_total", &[], -1.0);
    r.inc_by("c_total", &[], f64::NAN);
    r.inc("undeclared_total", &[]);
    r.inc("c_total", &[("bad-label", "x")]);
    r.inc("c_total", &[]);
    let s = parse(&r.render()).unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(sample(&s, "c_total", &[]).unwrap().2, 1.0);
    assert!(!r.render().contains("bad name"));
}

#[test]
fn the_parser_catches_bad_files() {
    for bad in [
        "x 1\n",
        "# TYPE x gauge\nx{a=\"1} 2\n",
        "# TYPE x gauge\nx one\n",
        "# TYPE x gauge\nx 1\nx 2\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_file_is_replaced_atomically_and_readable() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auksd.prom");
    let r = renewer_registry();
    r.set(
        "auks_renewer_last_pass_credentials",
        &[("result", "renewed")],
        3.0,
    );
    r.write_atomic(&path).unwrap();
    let ino1 = std::fs::metadata(&path).unwrap().ino();
    r.set(
        "auks_renewer_last_pass_credentials",
        &[("result", "renewed")],
        4.0,
    );
    r.write_atomic(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_ne!(meta.ino(), ino1, "rewritten in place instead of renamed");
    assert_eq!(meta.mode() & 0o777, 0o644);
    let s = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = sample(
        &s,
        "auks_renewer_last_pass_credentials",
        &[("result", "renewed")],
    );
    assert_eq!(v.unwrap().2, 4.0);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temporary files left: {names:?}");
    assert!(r.write_atomic(&dir.path().join("missing/x.prom")).is_err());
}
