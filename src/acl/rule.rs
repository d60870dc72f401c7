//! One `rule` block of `auks.acl`: the role it grants and the principal and
//! peer address it applies to, compiled and resolved once at load time.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use regex::Regex;

use crate::config::{Block, BlockReader, ConfigError};

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
pub(super) enum PrincipalMatch {
    Any,
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub(super) enum HostMatch {
    Any,
    /// Addresses of the rule host, normalised (IPv4-mapped IPv6 as IPv4).
    /// Empty when resolution failed: the rule never matches.
    Addrs(Vec<IpAddr>),
}

/// One `rule` block.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(super) principal: PrincipalMatch,
    pub(super) host: HostMatch,
    pub(super) role: Role,
}

/// Resolves a rule host name to its addresses.
pub(super) type Resolver<'a> = &'a dyn Fn(&str) -> std::io::Result<Vec<IpAddr>>;

impl Rule {
    /// Role granted by the rule.
    pub fn role(&self) -> Role {
        self.role
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

    /// Reads one `rule` block. A rule without `role` is skipped with a
    /// warning (`Ok(None)`), as C does; a bad role, a missing `principal`
    /// or `host`, or an invalid regex is an error naming the file and line.
    /// A host that does not resolve is a warning: the rule never matches.
    pub(super) fn read(
        path: &Path,
        block: &Block,
        warnings: &mut Vec<String>,
        resolve: Resolver<'_>,
    ) -> Result<Option<Rule>, ConfigError> {
        let mut r = BlockReader::new(path, block, warnings);
        let role_e = r.entry("role");
        let principal_e = r.entry("principal");
        let host_e = r.entry("host");
        let Some(role_e) = role_e else {
            r.warn(block.line, "rule without 'role' skipped".to_string());
            r.finish();
            return Ok(None);
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
        Ok(Some(Rule {
            principal,
            host,
            role,
        }))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are treated as IPv4.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
