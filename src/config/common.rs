//! The `common` block, read by every program: the primary and secondary
//! daemon endpoints and the client's connection policy.

use std::path::Path;

use super::reader::{BlockReader, INT_MAX, INT_MIN};
use super::{Block, ConfigError, DEFAULT_HOST, DEFAULT_PORT};

/// One daemon endpoint (primary or secondary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (`PrimaryHost`; also used for daemon role detection).
    pub host: String,
    /// Address to connect to / bind to; equals `host` when the key is unset.
    /// An explicitly empty value is kept empty (the daemon binds to any
    /// address).
    pub address: String,
    /// TCP port or service name.
    pub port: String,
    /// Daemon service principal.
    pub principal: String,
}

impl Endpoint {
    /// Address a client should connect to: `address`, or `host` when the
    /// address was set to an empty string.
    pub fn connect_address(&self) -> &str {
        if self.address.is_empty() {
            &self.host
        } else {
            &self.address
        }
    }
}

impl CommonConf {
    /// Timeout of every read and write of a client once connected:
    /// three times `Timeout`, between 5 and 120 s.
    pub fn io_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.timeout * 3).clamp(5, 120))
    }
}

/// The `common` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConf {
    pub primary: Endpoint,
    pub secondary: Endpoint,
    /// `NAT = yes`: dummy KRB-PRIV addresses.
    pub nat: bool,
    /// Rounds of (primary, secondary) attempts.
    pub retries: i64,
    /// TCP connect timeout, seconds.
    pub timeout: u64,
    /// Sleep between rounds, seconds.
    pub delay: u64,
    /// Realm of a cross-realm TGT to get before ADD; `None` when empty.
    pub cross_realm: Option<String>,
}

fn read_endpoint(r: &mut BlockReader<'_>, primary: bool) -> Endpoint {
    let (h, a, p, n) = if primary {
        (
            "PrimaryHost",
            "PrimaryAddress",
            "PrimaryPort",
            "PrimaryPrincipal",
        )
    } else {
        (
            "SecondaryHost",
            "SecondaryAddress",
            "SecondaryPort",
            "SecondaryPrincipal",
        )
    };
    let host = r.string(h, DEFAULT_HOST);
    let address = r.entry(a).map_or_else(|| host.clone(), |e| e.value.clone());
    Endpoint {
        port: r.string(p, DEFAULT_PORT),
        principal: r.string(n, ""),
        host,
        address,
    }
}

/// Reads a `common` block; unset keys take the C defaults.
pub(super) fn read_common(
    path: &Path,
    b: &Block,
    w: &mut Vec<String>,
) -> Result<CommonConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = CommonConf::default();
    let primary = read_endpoint(&mut r, true);
    let secondary = read_endpoint(&mut r, false);
    let nat = r.boolean("NAT", d.nat);
    let retries = r.int("Retries", d.retries, INT_MIN, INT_MAX)?;
    let timeout = r.uint("Timeout", d.timeout)?;
    let delay = r.uint("Delay", d.delay)?;
    let cross_realm = Some(r.string("CrossRealm", "")).filter(|s| !s.is_empty());
    r.finish();
    Ok(CommonConf {
        primary,
        secondary,
        nat,
        retries,
        timeout,
        delay,
        cross_realm,
    })
}
