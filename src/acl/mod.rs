//! `auks.acl` parsing and evaluation (specification §9.5 and §5.3).
//!
//! The file uses the `auks.conf` grammar ([`crate::config::parse_file`]).
//! Blocks named exactly `rule` carry `principal`, `host` and `role` (see
//! `rule`); other blocks are ignored. Rules are evaluated in file order and
//! the first rule whose principal and host both match gives the role.
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

use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use crate::config::{self, ConfFile, ConfigError};

mod rule;

pub use rule::{Role, Rule};

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

    fn from_conf(conf: &ConfFile, resolve: rule::Resolver<'_>) -> Result<Acl, ConfigError> {
        let mut warnings = Vec::new();
        let mut rules = Vec::new();
        for block in conf.blocks.iter().filter(|b| b.name == "rule") {
            if let Some(rule) = Rule::read(&conf.path, block, &mut warnings, resolve)? {
                rules.push(rule);
            }
        }
        Ok(Acl { rules, warnings })
    }

    /// Role of `principal` connecting from `peer`: the first matching rule in
    /// file order wins; `None` means unknown (the daemon drops the
    /// connection). With `peer == None` only `host = *` rules can match.
    pub fn role_for(&self, principal: &str, peer: Option<IpAddr>) -> Option<Role> {
        self.rules
            .iter()
            .find(|r| r.matches(principal, peer))
            .map(Rule::role)
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

#[cfg(test)]
mod tests;
