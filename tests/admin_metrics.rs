//! The metrics files of auksd and auksdrenewer as node_exporter's textfile
//! collector reads them: `promtool check metrics` (Debian package
//! `prometheus`) accepts them, every proposed family is declared, and a
//! rewrite replaces the file in one rename.
//!
//! Without promtool the format is still checked by the strict parser of the
//! unit tests (src/metrics/tests.rs); this test then says so and checks the
//! rest.

mod common;

use auks::metrics::{auksd_registry, renewer_registry, Registry};
use common::promtool;

fn filled_auksd() -> Registry {
    let r = auksd_registry();
    r.set("auks_credentials_stored", &[], 42.0);
    r.set("auks_credentials_expiring", &[], 3.0);
    r.set("auks_start_time_seconds", &[], 1.7e9);
    for (t, o) in [
        ("get", "ok"),
        ("get", "not_found"),
        ("add", "ok"),
        ("dump", "denied"),
    ] {
        r.inc("auks_requests_total", &[("type", t), ("outcome", o)]);
        r.observe("auks_request_duration_seconds", &[("type", t)], 0.0012);
    }
    r.inc(
        "auks_connections_rejected_total",
        &[("reason", "handshake")],
    );
    r
}

fn filled_renewer() -> Registry {
    let r = renewer_registry();
    r.set("auks_renewer_last_pass_timestamp_seconds", &[], 1.7e9);
    r.set("auks_renewer_last_pass_duration_seconds", &[], 0.25);
    for (res, n) in [("renewed", 2.0), ("skipped", 40.0), ("failed", 0.0)] {
        r.set("auks_renewer_last_pass_credentials", &[("result", res)], n);
    }
    r.inc_by("auks_renewer_renewals_total", &[("result", "renewed")], 2.0);
    r
}

#[test]
fn metrics_files_pass_promtool_and_declare_every_family() {
    let dir = tempfile::tempdir().unwrap();
    for (name, r, families) in [
        (
            "auksd.prom",
            filled_auksd(),
            &[
                "auks_credentials_stored",
                "auks_credentials_expiring",
                "auks_requests_total",
                "auks_request_duration_seconds",
                "auks_connections_rejected_total",
                "auks_start_time_seconds",
                "auks_build_info",
            ][..],
        ),
        (
            "auksdrenewer.prom",
            filled_renewer(),
            &[
                "auks_renewer_last_pass_timestamp_seconds",
                "auks_renewer_last_pass_duration_seconds",
                "auks_renewer_last_pass_credentials",
                "auks_renewer_renewals_total",
                "auks_credentials_expiring",
            ][..],
        ),
    ] {
        let path = dir.path().join(name);
        r.write_atomic(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for f in families {
            assert!(
                text.contains(&format!("# TYPE {f} ")),
                "{name}: {f} missing\n{text}"
            );
            assert!(
                text.contains(&format!("# HELP {f} ")),
                "{name}: {f} has no HELP"
            );
        }
        match promtool(&text) {
            Some((ok, msg)) => assert!(
                ok && msg.trim().is_empty(),
                "promtool on {name}: {msg}\n{text}"
            ),
            None => eprintln!(
                "promtool not installed (apt-get install prometheus): {name} checked by \
                 the unit-test parser only"
            ),
        }
    }
}

#[test]
fn a_rewrite_is_one_rename() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auksd.prom");
    let r = filled_auksd();
    r.write_atomic(&path).unwrap();
    // A reader holding the old file keeps a complete old version.
    let old = std::fs::File::open(&path).unwrap();
    let old_ino = old.metadata().unwrap().ino();
    for i in 0..50 {
        r.set("auks_credentials_stored", &[], f64::from(i));
        r.write_atomic(&path).unwrap();
    }
    let new = std::fs::metadata(&path).unwrap();
    assert_ne!(new.ino(), old_ino);
    assert_eq!(new.mode() & 0o777, 0o644);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\nauks_credentials_stored 49\n"), "{text}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "temporary files left behind");
}
