//! Tests of the typed blocks: C defaults, block selection, numbers,
//! booleans, aliases, warnings and the configuration file lookup.

use super::*;
use crate::config::reader::parse_int;

#[test]
fn deployment_file_client() {
    let c = client(DEPLOYMENT).unwrap();
    assert_eq!(c.path, Path::new(P));
    assert_eq!(c.common.primary.host, "auks.example.com");
    assert_eq!(c.common.primary.address, "");
    assert_eq!(c.common.primary.connect_address(), "auks.example.com");
    assert_eq!(c.common.primary.port, "12345");
    assert_eq!(
        c.common.primary.principal,
        "host/auks.example.com@EXAMPLE.COM"
    );
    assert_eq!(c.common.secondary.host, "auks2");
    assert_eq!(c.common.secondary.address, "10.0.0.2");
    assert_eq!(c.common.secondary.connect_address(), "10.0.0.2");
    assert_eq!(c.common.secondary.principal, "host/auks2@EXAMPLE.COM");
    assert!(!c.common.nat);
    assert_eq!(c.common.retries, 3);
    assert_eq!(c.common.timeout, 10);
    assert_eq!(c.common.delay, 3);
    assert_eq!(c.common.cross_realm, None);
    assert_eq!(c.api, ApiConf::default());
    assert_eq!(c.renewer.log_level, 1);
    assert_eq!(c.renewer.delay, 60);
    assert_eq!(c.renewer.min_lifetime, 600);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn deployment_file_daemon() {
    let d = daemon(DEPLOYMENT).unwrap();
    assert_eq!(d.common.primary.host, "auks.example.com");
    let a = &d.auksd;
    assert_eq!(a.primary_keytab, Path::new("/etc/krb5.keytab"));
    assert_eq!(a.secondary_keytab, Path::new("/etc/krb5.keytab"));
    assert_eq!(a.cache_dir, Path::new("/var/cache/auks"));
    assert_eq!(a.acl_file, Path::new("/etc/auks/auks.acl"));
    assert_eq!(a.log_level, 2);
    assert_eq!(a.debug_level, 0);
    assert_eq!(a.workers, 10);
    assert_eq!(a.queue_size, 50);
    assert_eq!(a.clean_delay, 300);
    assert!(a.replay_cache);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn c_example_style_file() {
    let c = client(C_EXAMPLE_STYLE).unwrap();
    assert_eq!(c.common.primary.host, "auks");
    assert_eq!(c.common.primary.address, "auks");
    assert_eq!(c.common.secondary.address, "auks2");
    assert_eq!(c.common.secondary.port, "12345");
    assert_eq!(c.common.secondary.principal, "");
    assert!(c.common.nat);
    assert_eq!(c.common.cross_realm, None);
    assert_eq!(c.api.log_file, Path::new("/var/log/auksapi.log"));
    assert_eq!(c.renewer.min_lifetime, 600);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let d = daemon(C_EXAMPLE_STYLE).unwrap();
    assert_eq!(d.auksd.workers, 10);
    assert!(d.auksd.replay_cache);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn all_defaults() {
    let c = client("common { } api { }").unwrap();
    assert_eq!(c.common, CommonConf::default());
    assert_eq!(c.api, ApiConf::default());
    assert_eq!(c.renewer, RenewerConf::default());
    let e = &c.common.primary;
    assert_eq!(
        (
            e.host.as_str(),
            e.address.as_str(),
            e.port.as_str(),
            e.principal.as_str()
        ),
        ("localhost", "localhost", "12345", "")
    );
    assert_eq!(c.common.secondary, c.common.primary);
    assert!(!c.common.nat);
    assert_eq!(
        (c.common.retries, c.common.timeout, c.common.delay),
        (3, 10, 10)
    );
    assert_eq!(c.api.log_file, Path::new("/tmp/auksapi.log"));
    assert_eq!(c.api.log_level, 0);
    assert_eq!(c.api.helper_script, None);
    let r = &c.renewer;
    assert_eq!(r.log_file, Path::new("/var/log/auksdrenewer.log"));
    assert_eq!((r.log_level, r.debug_level), (1, 0));
    assert_eq!((r.delay, r.min_lifetime), (60, 300));

    let d = daemon("common { } auksd { }").unwrap();
    let a = &d.auksd;
    assert_eq!(*a, DaemonConf::default());
    assert_eq!(a.primary_keytab, Path::new("/etc/auks/auks.keytab"));
    assert_eq!(a.secondary_keytab, Path::new("/etc/auks/auks.keytab"));
    assert_eq!(a.cache_dir, Path::new("/var/cache/auks"));
    assert_eq!(a.acl_file, Path::new("/etc/auks/auks.acl"));
    assert_eq!(a.log_file, Path::new("/var/log/auksd.log"));
    assert_eq!((a.log_level, a.debug_level), (1, 0));
    assert_eq!((a.queue_size, a.workers), (50, 10));
    assert_eq!(a.clean_delay, 300);
    assert!(a.replay_cache);
}

#[test]
fn address_defaults_to_host_only_when_unset() {
    let c = client(
        "common { PrimaryHost = h1 ; SecondaryHost = h2 ; SecondaryAddress = a2 ; } api { }",
    )
    .unwrap();
    assert_eq!(c.common.primary.address, "h1");
    assert_eq!(c.common.secondary.address, "a2");
}

#[test]
fn cross_realm_and_helper_script() {
    let c = client("common { CrossRealm = OTHER.ORG ; } api { HelperScript = \"/usr/bin/h\" ; }")
        .unwrap();
    assert_eq!(c.common.cross_realm.as_deref(), Some("OTHER.ORG"));
    assert_eq!(c.api.helper_script, Some(PathBuf::from("/usr/bin/h")));
    let c = client("common { CrossRealm = '' ; } api { HelperScript = '' ; }").unwrap();
    assert_eq!(c.common.cross_realm, None);
    assert_eq!(c.api.helper_script, None);
}

#[test]
fn block_selection_client() {
    let c = client("commonfoo { Retries = 7 ; } apix { LogLevel = 2 ; } ren_foo { Delay = 5 ; } auksd { Workers = x ; } other { }")
        .unwrap();
    assert_eq!(c.common.retries, 7);
    assert_eq!(c.api.log_level, 2);
    assert_eq!(c.renewer.delay, 5);
    let c = client("common { } api { } renewer { Delay = 9 ; }").unwrap();
    assert_eq!(c.renewer.delay, 9);
    // Block names are case-sensitive.
    let err = client("Common { } api { }").unwrap_err();
    assert!(matches!(err, ConfigError::MissingBlock { .. }));
}

#[test]
fn block_selection_daemon() {
    let d = daemon("commonx { Retries = 1 ; } common { Retries = 2 ; } auksd_main { Workers = 3 ; } api { } renewer { }")
        .unwrap();
    assert_eq!(d.common.retries, 2);
    assert_eq!(d.auksd.workers, 3);
    let err = daemon("commonx { } auksd { }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/auks/auks.conf: configuration file is incomplete: missing block 'common'"
    );
}

#[test]
fn missing_and_duplicate_blocks() {
    let err = client("common { }\nrenewer { }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/auks/auks.conf: configuration file is incomplete: missing block 'api'"
    );
    let err = client("common { }\napi { }\ncommon { }").unwrap_err();
    match &err {
        ConfigError::DuplicateBlock { line, block, .. } => {
            assert_eq!((*line, block.as_str()), (3, "common"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("duplicate block 'common'"));
    let err = daemon("common { }\nauksd { }\ncommon { }").unwrap_err();
    assert!(matches!(err, ConfigError::DuplicateBlock { .. }));
    let err = daemon("common { }\nauksd { }\nauksdrenewer { }").unwrap_err();
    assert!(err.to_string().contains("duplicate block 'auksd'"), "{err}");
    let err = client("common { } api { } renewer { } ren2 { }").unwrap_err();
    assert!(
        err.to_string().contains("duplicate block 'renewer'"),
        "{err}"
    );
    let err = daemon("common { } api { }").unwrap_err();
    assert!(err.to_string().contains("missing block 'auksd'"));
}

#[test]
fn unknown_keys_are_warnings() {
    let c = client("common {\n Foo = 1 ;\n} api {\n Bar = 2 ; LogLevel = 1 ;\n} zzz { Baz = 1 ; }")
        .unwrap();
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert_eq!(
        c.warnings[0],
        "/etc/auks/auks.conf:2: unknown key 'Foo' in block 'common' ignored"
    );
    assert!(c.warnings[1].starts_with("/etc/auks/auks.conf:4: unknown key 'Bar'"));
}

#[test]
fn numbers() {
    assert_eq!(parse_int("10"), Some(10));
    assert_eq!(parse_int(" +10"), Some(10));
    assert_eq!(parse_int("\t-3 "), Some(-3));
    assert_eq!(parse_int("007"), Some(7));
    for bad in ["", " ", "+", "-", "1x", "x1", "0x10", "1 2", "1.5", "- 1"] {
        assert_eq!(parse_int(bad), None, "{bad:?}");
    }
    assert_eq!(parse_int("99999999999999999999999"), None);

    let c =
        client("common { Timeout = \" 20 \" ; Retries = -1 ; } api { LogLevel = '+2' ; }").unwrap();
    assert_eq!(c.common.timeout, 20);
    assert_eq!(c.common.retries, -1);
    assert_eq!(c.api.log_level, 2);
}

#[test]
fn invalid_numbers_are_errors() {
    let err = client("common {\n Timeout = 10s ;\n} api { }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/auks/auks.conf:2: invalid value \"10s\" for key 'Timeout': expected a decimal integer"
    );
    let err = client("common { Delay = -1 ; } api { }").unwrap_err();
    assert!(err.to_string().contains("must not be negative"), "{err}");
    let err = client("common { } api { } renewer { MinLifeTime = abc ; }").unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { .. }));
    let err = client("common { Retries = 99999999999 ; } api { }").unwrap_err();
    assert!(err.to_string().contains("between"), "{err}");
    let err = client("common { } api { UseSyslog = yes ; }").unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { .. }));
    for bad in [
        "Workers = 0",
        "QueueSize = 0",
        "RepoSize = -5",
        "CleanDelay = -1",
        "Workers = 100000",
        "NbWorkers = x",
    ] {
        let err = daemon(&format!("common {{ }} auksd {{ {bad} ; }}")).unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidValue { .. }),
            "{bad}: {err}"
        );
    }
    let d = daemon("common { } auksd { RepoSize = 0 ; CleanDelay = 0 ; }").unwrap();
    assert_eq!(d.auksd.clean_delay, 0);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn workers_alias() {
    let d = daemon("common { } auksd { NbWorkers = 4 ; }").unwrap();
    assert_eq!(d.auksd.workers, 4);
    assert!(d.warnings.is_empty());
    let d = daemon("common { } auksd { workers = 5 ; NbWorkers = 4 ; }").unwrap();
    assert_eq!(d.auksd.workers, 5);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("'NbWorkers' ignored"));
}

#[test]
fn booleans() {
    let c = client("common { NAT = YES ; } api { }").unwrap();
    assert!(c.common.nat);
    assert!(c.warnings.is_empty());
    let c = client("common { NAT = No ; } api { }").unwrap();
    assert!(!c.common.nat);
    assert!(c.warnings.is_empty());
    let c = client("common {\n NAT = true ;\n} api { }").unwrap();
    assert!(!c.common.nat);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].starts_with("/etc/auks/auks.conf:2: value \"true\" of key 'NAT'"));
    let d = daemon("common { } auksd { ReplayCache = no ; }").unwrap();
    assert!(!d.auksd.replay_cache);
    let d = daemon("common { } auksd { ReplayCache = 1 ; }").unwrap();
    assert!(!d.auksd.replay_cache);
    assert_eq!(d.warnings.len(), 1);
}

#[test]
fn accepted_but_unused_keys() {
    // Keys C AUKS reads and this implementation ignores: no warning, and the
    // numeric ones must still be integers.
    let c = client(
        "common { } api { UseSyslog = 2 ; DebugFile = /x ; DebugLevel = 3 ; } \
         renewer { DebugFile = /y ; }",
    )
    .unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        c.api,
        ApiConf {
            use_syslog: true,
            ..ApiConf::default()
        }
    );
    let d = daemon("common { } auksd { DebugFile = /z ; RepoSize = 7 ; }").unwrap();
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.auksd, DaemonConf::default());
    for bad in ["UseSyslog = yes", "DebugLevel = x"] {
        let err = client(&format!("common {{ }} api {{\n {bad} ;\n}}")).unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidValue { line: 2, .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn lookup_order() {
    // Environment handling is checked without touching the process
    // environment (tests run in parallel): explicit always wins.
    let p = Path::new("/x/y.conf");
    assert_eq!(client_conf_path(Some(p)), p);
    assert_eq!(daemon_conf_path(Some(p)), p);
    let expected_client = std::env::var_os(ENV_CLIENT_CONF)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CONF), PathBuf::from);
    assert_eq!(client_conf_path(None), expected_client);
    assert_eq!(client_conf_path(Some(Path::new(""))), expected_client);
    let expected_daemon = std::env::var_os(ENV_DAEMON_CONF)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CONF), PathBuf::from);
    assert_eq!(daemon_conf_path(None), expected_daemon);
}

#[test]
fn load_explicit_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("auks.conf");
    std::fs::write(&f, DEPLOYMENT).unwrap();
    let c = ClientConfig::load(Some(&f)).unwrap();
    assert_eq!(c.path, f);
    let d = DaemonConfig::load(Some(&f)).unwrap();
    assert_eq!(d.auksd.log_level, 2);
    let err = ClientConfig::load(Some(&dir.path().join("missing"))).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
}

#[test]
fn metrics_file_in_auksd_and_renewer_blocks() {
    let text = "common { PrimaryHost = a ; }\n\
        auksd { MetricsFile = \"/var/lib/prometheus/node-exporter/auksd.prom\" ; }\n\
        api { }\n\
        renewer { MinLifeTime = 900 ; MetricsFile = /m/renewer.prom ; }\n";
    let d = daemon(text).unwrap();
    assert_eq!(
        d.auksd.metrics_file.as_deref(),
        Some(Path::new("/var/lib/prometheus/node-exporter/auksd.prom"))
    );
    assert_eq!(d.auksd.renewer_min_lifetime, 900);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let c = client(text).unwrap();
    assert_eq!(
        c.renewer.metrics_file.as_deref(),
        Some(Path::new("/m/renewer.prom"))
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Unset: no metrics; the renewer's MinLifeTime defaults as in C.
    let d = daemon("common { PrimaryHost = a ; }\nauksd { }\n").unwrap();
    assert_eq!(d.auksd.metrics_file, None);
    assert_eq!(d.auksd.renewer_min_lifetime, 300);
    // node_exporter reads only *.prom files.
    for bad in ["/m/auksd.txt", "/m/.prom", "/m/"] {
        let t = format!("common {{ PrimaryHost = a ; }}\nauksd {{ MetricsFile = \"{bad}\" ; }}\n");
        let e = daemon(&t).unwrap_err().to_string();
        assert!(
            e.contains("MetricsFile") && e.contains(".prom"),
            "{bad}: {e}"
        );
    }
}
