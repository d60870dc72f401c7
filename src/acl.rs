//! `auks.acl` parsing and evaluation (specification §9.5 and §5.3).
//!
//! The file uses the `auks.conf` grammar ([`crate::config::parse_str`]).
//! Blocks named exactly `rule` carry `principal`, `host` and `role`; other
//! blocks are ignored. Rules are evaluated in file order and the first rule
//! whose principal and host both match gives the role.
//!
//! Deliberate differences from C:
//! - `host` is honoured (C bug §11.10: the C daemon always compared against
//!   the literal `*`, so rules with a host never matched). The rule host is
//!   resolved once at load time (IPv4 and IPv6) and compared with the peer
//!   address of the connection;
//! - principal regexes are compiled once at load time, and an invalid regex
//!   makes the ACL invalid (C silently treated it as "no match" on every
//!   connection);
//! - regexes use the `regex` crate, which accepts the POSIX extended syntax
//!   used in practice (anchors, classes such as `[[:alnum:]]`, repetitions,
//!   alternation). Only matching/non-matching matters, so the difference
//!   between leftmost-longest and leftmost-first semantics is irrelevant.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use regex::Regex;

use crate::config::{self, BlockReader, ConfFile, ConfigError};

/// Role granted by the ACL. Ordered by privilege: `Guest < User < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Guest,
    User,
    Admin,
}

impl Role {
    /// Lowercase name as written in `auks.acl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a role the way C does: `user` and `admin` exactly, anything
    /// starting with `guest` (case-sensitive).
    pub fn from_acl(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ if s.starts_with("guest") => Some(Role::Guest),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
enum PrincipalMatch {
    Any,
    Regex(Regex),
}

#[derive(Debug, Clone)]
enum HostMatch {
    Any,
    /// Addresses of the rule host, normalised (IPv4-mapped IPv6 as IPv4).
    /// Empty when resolution failed: the rule never matches.
    Addrs(Vec<IpAddr>),
}

/// One `rule` block.
#[derive(Debug, Clone)]
pub struct Rule {
    principal_text: String,
    host_text: String,
    principal: PrincipalMatch,
    host: HostMatch,
    role: Role,
    line: usize,
}

impl Rule {
    /// `principal` value as written (`*` or a regex).
    pub fn principal(&self) -> &str {
        &self.principal_text
    }

    /// `host` value as written (`*`, a host name or an IP address).
    pub fn host(&self) -> &str {
        &self.host_text
    }

    /// Addresses the rule host resolved to at load time; `None` for `*`.
    pub fn host_addrs(&self) -> Option<&[IpAddr]> {
        match &self.host {
            HostMatch::Any => None,
            HostMatch::Addrs(a) => Some(a),
        }
    }

    /// Role granted by the rule.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Line of the `rule` block in the file.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Whether the rule applies to this principal and peer address.
    pub fn matches(&self, principal: &str, peer: Option<IpAddr>) -> bool {
        let principal_ok = match &self.principal {
            PrincipalMatch::Any => true,
            PrincipalMatch::Regex(re) => re.is_match(principal),
        };
        principal_ok
            && match &self.host {
                HostMatch::Any => true,
                HostMatch::Addrs(addrs) => peer.is_some_and(|p| addrs.contains(&normalize(p))),
            }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are treated as IPv4.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Resolves a rule host with the system resolver (IPv4 and IPv6); IP
/// literals, optionally in brackets, are used as is.
fn system_resolve(host: &str) -> std::io::Result<Vec<IpAddr>> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    Ok((host, 0u16).to_socket_addrs()?.map(|a| a.ip()).collect())
}

/// A loaded ACL.
#[derive(Debug, Clone)]
pub struct Acl {
    rules: Vec<Rule>,
    /// Non-fatal findings (skipped rules, unresolvable hosts, unknown keys),
    /// each prefixed with `file:line:`.
    pub warnings: Vec<String>,
}

impl Acl {
    /// Reads and parses an ACL file. Rule hosts are resolved now.
    pub fn load(path: &Path) -> Result<Acl, ConfigError> {
        let conf = config::parse_file(path)?;
        Acl::from_conf(&conf, &system_resolve)
    }

    /// Parses ACL text; `path` is only used in messages. Rule hosts are
    /// resolved now.
    pub fn parse_str(text: &str, path: &Path) -> Result<Acl, ConfigError> {
        let conf = config::parse_str(text, path)?;
        Acl::from_conf(&conf, &system_resolve)
    }

    fn from_conf(
        conf: &ConfFile,
        resolve: &dyn Fn(&str) -> std::io::Result<Vec<IpAddr>>,
    ) -> Result<Acl, ConfigError> {
        let path = conf.path.as_path();
        let mut warnings = Vec::new();
        let mut rules = Vec::new();
        for block in conf.blocks.iter().filter(|b| b.name == "rule") {
            let mut r = BlockReader::new(path, block, &mut warnings);
            let role_e = r.entry("role");
            let principal_e = r.entry("principal");
            let host_e = r.entry("host");
            let Some(role_e) = role_e else {
                r.warn(block.line, "rule without 'role' skipped".to_string());
                r.finish();
                continue;
            };
            let Some(role) = Role::from_acl(&role_e.value) else {
                return Err(r.invalid(role_e, "expected 'guest', 'user' or 'admin'".to_string()));
            };
            let missing = |key: &str| ConfigError::MissingKey {
                path: path.to_path_buf(),
                line: block.line,
                block: block.name.clone(),
                key: key.to_string(),
            };
            let principal_e = principal_e.ok_or_else(|| missing("principal"))?;
            let host_e = host_e.ok_or_else(|| missing("host"))?;

            let principal = if principal_e.value == "*" {
                PrincipalMatch::Any
            } else {
                match Regex::new(&principal_e.value) {
                    Ok(re) => PrincipalMatch::Regex(re),
                    Err(e) => {
                        let reason = format!("invalid regular expression: {e}");
                        return Err(r.invalid(principal_e, reason));
                    }
                }
            };

            let host = if host_e.value == "*" {
                HostMatch::Any
            } else {
                let mut addrs: Vec<IpAddr> = Vec::new();
                match resolve(&host_e.value) {
                    Ok(list) => {
                        for ip in list.into_iter().map(normalize) {
                            if !addrs.contains(&ip) {
                                addrs.push(ip);
                            }
                        }
                        if addrs.is_empty() {
                            let msg = format!(
                                "host {:?} has no address: rule will never match",
                                host_e.value
                            );
                            r.warn(host_e.line, msg);
                        }
                    }
                    Err(e) => {
                        let msg = format!(
                            "cannot resolve host {:?} ({e}): rule will never match",
                            host_e.value
                        );
                        r.warn(host_e.line, msg);
                    }
                }
                HostMatch::Addrs(addrs)
            };
            r.finish();
            rules.push(Rule {
                principal_text: principal_e.value.clone(),
                host_text: host_e.value.clone(),
                principal,
                host,
                role,
                line: block.line,
            });
        }
        Ok(Acl { rules, warnings })
    }

    /// Role of `principal` connecting from `peer`: the first matching rule in
    /// file order wins; `None` means unknown (the daemon drops the
    /// connection). With `peer == None` only `host = *` rules can match.
    pub fn role_for(&self, principal: &str, peer: Option<IpAddr>) -> Option<Role> {
        self.rule_for(principal, peer).map(Rule::role)
    }

    /// The first rule matching `principal` and `peer`, if any.
    pub fn rule_for(&self, principal: &str, peer: Option<IpAddr>) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(principal, peer))
    }

    /// Rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the ACL has no rule (every principal is unknown).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
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
        Acl::parse_str(text, Path::new(P))
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
        assert_eq!(a.len(), 3);
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
        let r = a.rule_for("bob@EXAMPLE.COM", None).unwrap();
        assert_eq!((r.line(), r.role(), r.host()), (6, Role::User, "*"));
        assert_eq!(r.principal(), "^[[:alnum:]]*@EXAMPLE.COM$");
        assert_eq!(r.host_addrs(), None);
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
        assert!(a.is_empty());
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
            a.rules()[0].host_addrs(),
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
        assert_eq!(a.len(), 3);
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
        if a.warnings.is_empty() {
            let addrs = a.rules()[0].host_addrs().unwrap_or(&[]);
            assert!(addrs.iter().all(|ip| ip.is_loopback()), "{addrs:?}");
            assert!(addrs
                .iter()
                .all(|ip| a.role_for("x@R", Some(*ip)) == Some(Role::User)));
        }
    }

    #[test]
    fn rule_without_role_is_skipped() {
        let a = acl("rule {\n principal = * ;\n host = * ;\n}\nrule { principal = ^a$ ; host = * ; role = user ; }")
            .unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a.warnings.len(), 1);
        assert_eq!(
            a.warnings[0],
            "/etc/auks/auks.acl:1: rule without 'role' skipped"
        );
        assert_eq!(a.role_for("a", None), Some(Role::User));
        // Even without principal/host, a role-less rule is only skipped.
        let a = acl("rule { } rule { foo = 1 ; }").unwrap();
        assert!(a.is_empty());
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
        assert_eq!(a.len(), 3);
        let err = Acl::load(&dir.path().join("missing.acl")).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
    }

    #[test]
    fn syntax_errors_propagate() {
        let err = acl("rule { principal = \"a#b\" ; host = * ; role = user ; }").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 1, .. }));
    }
}
