//! Unit tests of the ACL: role parsing, rule order, principal regexes, host
//! matching (with a fake resolver), and the errors and warnings of bad rules.

use super::rule::HostMatch;
use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const P: &str = "/etc/auks/auks.acl";

const HOWTO: &str = "rule {
 principal = ^host/.*@EXAMPLE.COM$ ;
 host = * ;
 role = admin ;
}
rule {
 principal = ^[[:alnum:]]*@EXAMPLE.COM$ ;
 host = * ;
 role = user ;
}
rule { principal = * ; host = * ; role = guest ; }
";

fn acl(text: &str) -> Result<Acl, ConfigError> {
    let conf = config::parse_str(text, Path::new(P))?;
    Acl::from_conf(&conf, &system_resolve)
}

fn fake_resolve(host: &str) -> std::io::Result<Vec<IpAddr>> {
    match host {
        "node1" => Ok(vec![
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        ]),
        "mapped" => Ok(vec!["::ffff:10.0.0.9".parse().unwrap()]),
        "empty" => Ok(vec![]),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "unknown host",
        )),
    }
}

fn acl_fake(text: &str) -> Result<Acl, ConfigError> {
    let conf = config::parse_str(text, Path::new(P))?;
    Acl::from_conf(&conf, &fake_resolve)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// Index of the first rule matching `principal` from `peer`.
fn rule_for(a: &Acl, principal: &str, peer: Option<IpAddr>) -> Option<usize> {
    a.rules.iter().position(|r| r.matches(principal, peer))
}

/// Addresses a rule host resolved to; `None` for `host = *`.
fn host_addrs(r: &Rule) -> Option<&[IpAddr]> {
    match &r.host {
        HostMatch::Any => None,
        HostMatch::Addrs(a) => Some(a),
    }
}

#[test]
fn role_basics() {
    assert!(Role::Guest < Role::User && Role::User < Role::Admin);
    assert_eq!(Role::Admin.to_string(), "admin");
    assert_eq!(Role::User.to_string(), "user");
    assert_eq!(Role::Guest.to_string(), "guest");
    assert_eq!(Role::from_acl("guests"), Some(Role::Guest));
    assert_eq!(Role::from_acl("users"), None);
    assert_eq!(Role::from_acl("Admin"), None);
    assert_eq!(Role::from_acl(""), None);
}

#[test]
fn howto_acl() {
    let a = acl(HOWTO).unwrap();
    assert_eq!(a.rules.len(), 3);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert_eq!(
        a.role_for("host/node1.example.com@EXAMPLE.COM", None),
        Some(Role::Admin)
    );
    assert_eq!(a.role_for("alice@EXAMPLE.COM", None), Some(Role::User));
    assert_eq!(
        a.role_for("alice2@EXAMPLE.COM", ip("10.1.2.3")),
        Some(Role::User)
    );
    // Not alphanumeric before '@', or another realm: falls to guest.
    assert_eq!(
        a.role_for("alice/admin@EXAMPLE.COM", None),
        Some(Role::Guest)
    );
    assert_eq!(a.role_for("alice@OTHER.ORG", None), Some(Role::Guest));
    assert_eq!(a.role_for("", None), Some(Role::Guest));
    assert_eq!(rule_for(&a, "bob@EXAMPLE.COM", None), Some(1));
    assert_eq!(a.rules[1].role(), Role::User);
    assert_eq!(host_addrs(&a.rules[1]), None);
}

#[test]
fn first_match_wins_and_unknown() {
    let a = acl("rule { principal = alice ; host = * ; role = guest ; }\n\
                 rule { principal = ^alice@ ; host = * ; role = admin ; }\n\
                 rule { principal = ^bob@R$ ; host = * ; role = user ; }")
    .unwrap();
    // Unanchored search: the first rule matches anything containing "alice".
    assert_eq!(a.role_for("alice@R", None), Some(Role::Guest));
    assert_eq!(a.role_for("xalicex", None), Some(Role::Guest));
    assert_eq!(a.role_for("bob@R", None), Some(Role::User));
    assert_eq!(a.role_for("bob@RR", None), None);
    assert_eq!(a.role_for("carol@R", None), None);
}

#[test]
fn empty_acl_and_other_blocks() {
    let a = acl("common { x = 1 ; } rules { role = admin ; }").unwrap();
    assert!(a.rules.is_empty());
    assert_eq!(a.role_for("anyone@R", None), None);
}

#[test]
fn host_literals() {
    let a = acl(
        "rule { principal = * ; host = 127.0.0.1 ; role = admin ; }\n\
                 rule { principal = * ; host = ::1 ; role = user ; }\n\
                 rule { principal = ^g@ ; host = * ; role = guest ; }",
    )
    .unwrap();
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert_eq!(a.role_for("x@R", ip("127.0.0.1")), Some(Role::Admin));
    assert_eq!(a.role_for("x@R", ip("::ffff:127.0.0.1")), Some(Role::Admin));
    assert_eq!(a.role_for("x@R", ip("::1")), Some(Role::User));
    assert_eq!(a.role_for("x@R", ip("127.0.0.2")), None);
    assert_eq!(a.role_for("x@R", None), None);
    assert_eq!(a.role_for("g@R", None), Some(Role::Guest));
    assert_eq!(a.role_for("g@R", ip("10.0.0.1")), Some(Role::Guest));
    assert_eq!(
        host_addrs(&a.rules[0]),
        Some(&[IpAddr::V4(Ipv4Addr::LOCALHOST)][..])
    );
    let a = acl("rule { principal = * ; host = \"[::1]\" ; role = user ; }").unwrap();
    assert_eq!(a.role_for("x@R", ip("::1")), Some(Role::User));
}

#[test]
fn host_names_resolved_once() {
    let a = acl_fake(
        "rule { principal = * ; host = node1 ; role = user ; }\n\
                      rule { principal = * ; host = mapped ; role = admin ; }",
    )
    .unwrap();
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert_eq!(a.role_for("x@R", ip("10.0.0.1")), Some(Role::User));
    assert_eq!(a.role_for("x@R", ip("::ffff:10.0.0.1")), Some(Role::User));
    assert_eq!(a.role_for("x@R", ip("fd00::1")), Some(Role::User));
    assert_eq!(a.role_for("x@R", ip("10.0.0.9")), Some(Role::Admin));
    assert_eq!(a.role_for("x@R", ip("10.0.0.2")), None);
}

#[test]
fn unresolvable_host_is_a_warning() {
    let a = acl_fake(
        "rule {\n principal = * ;\n host = nowhere ;\n role = admin ;\n}\n\
                      rule { principal = * ; host = empty ; role = user ; }\n\
                      rule { principal = * ; host = * ; role = guest ; }",
    )
    .unwrap();
    assert_eq!(a.rules.len(), 3);
    assert_eq!(a.warnings.len(), 2, "{:?}", a.warnings);
    assert!(a.warnings[0].starts_with("/etc/auks/auks.acl:3: cannot resolve host \"nowhere\""));
    assert!(a.warnings[1].contains("has no address"));
    assert_eq!(a.role_for("x@R", ip("10.0.0.1")), Some(Role::Guest));
    assert_eq!(a.role_for("x@R", None), Some(Role::Guest));
}

#[test]
fn localhost_resolves() {
    // The system resolver maps "localhost" through /etc/hosts.
    let a = acl("rule { principal = * ; host = localhost ; role = user ; }").unwrap();
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    let addrs = host_addrs(&a.rules[0]).unwrap();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|ip| ip.is_loopback()), "{addrs:?}");
    assert!(addrs
        .iter()
        .all(|ip| a.role_for("x@R", Some(*ip)) == Some(Role::User)));
    assert_eq!(a.role_for("x@R", ip("10.0.0.1")), None);
}

#[test]
fn rule_without_role_is_skipped() {
    let a = acl("rule {\n principal = * ;\n host = * ;\n}\nrule { principal = ^a$ ; host = * ; role = user ; }")
        .unwrap();
    assert_eq!(a.rules.len(), 1);
    assert_eq!(a.warnings.len(), 1);
    assert_eq!(
        a.warnings[0],
        "/etc/auks/auks.acl:1: rule without 'role' skipped"
    );
    assert_eq!(a.role_for("a", None), Some(Role::User));
    // Even without principal/host, a role-less rule is only skipped.
    let a = acl("rule { } rule { foo = 1 ; }").unwrap();
    assert!(a.rules.is_empty());
    assert_eq!(a.warnings.len(), 3, "{:?}", a.warnings);
}

#[test]
fn invalid_role() {
    let err = acl("rule {\n principal = * ;\n host = * ;\n role = root ;\n}").unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidValue { line: 4, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "/etc/auks/auks.acl:4: invalid value \"root\" for key 'role': expected 'guest', 'user' or 'admin'"
    );
}

#[test]
fn missing_principal_or_host() {
    let err = acl("# acl\nrule { principal = * ; role = user ; }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/auks/auks.acl:2: block 'rule' has no 'host' key"
    );
    let err = acl("rule { host = * ; role = user ; }").unwrap_err();
    assert!(matches!(err, ConfigError::MissingKey { ref key, .. } if key == "principal"));
}

#[test]
fn no_blocks() {
    let err = acl("# nothing here\n").unwrap_err();
    assert!(matches!(err, ConfigError::NoBlocks { .. }));
    assert_eq!(
        err.to_string(),
        "/etc/auks/auks.acl: no configuration blocks found"
    );
}

#[test]
fn invalid_regex() {
    let err = acl("rule {\n principal = ^(abc ;\n host = * ;\n role = user ;\n}").unwrap_err();
    match &err {
        ConfigError::InvalidValue { line, key, .. } => {
            assert_eq!((*line, key.as_str()), (2, "principal"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("invalid regular expression"));
}

#[test]
fn case_insensitive_keys_and_unknown_keys() {
    let a = acl("rule { Principal = * ; HOST = * ; Role = admin ; comment = x ; }").unwrap();
    assert_eq!(a.role_for("x", None), Some(Role::Admin));
    assert_eq!(a.warnings.len(), 1);
    assert!(a.warnings[0].contains("unknown key 'comment'"));
}

#[test]
fn load_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("auks.acl");
    std::fs::write(&f, HOWTO).unwrap();
    let a = Acl::load(&f).unwrap();
    assert_eq!(a.rules.len(), 3);
    let err = Acl::load(&dir.path().join("missing.acl")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
}

#[test]
fn syntax_errors_propagate() {
    let err = acl("rule { principal = \"a#b\" ; host = * ; role = user ; }").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { line: 1, .. }));
}
