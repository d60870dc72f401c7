//! `auks.conf` parsing (specification §9).
//!
//! The layers, bottom up:
//! - `parser`: the block grammar of §9.1 (shared with `auks.acl`, see
//!   [`crate::acl`]) producing the raw model of `model` ([`ConfFile`],
//!   [`Block`], [`Entry`]); every [`ConfigError`] names the file and line;
//! - `reader`: typed access to one block (`BlockReader`);
//! - one file per block kind (`common`, `api`, `auksd`, `renewer`) and the
//!   C `defaults`;
//! - here: the configurations of client programs ([`ClientConfig`]) and of
//!   the daemon ([`DaemonConfig`]), which pick their blocks from a file.
//!
//! Files written for the C implementation are accepted unchanged. Deliberate
//! differences from C (all of them stricter, and all reported with the file
//! path and line number):
//! - numbers must be plain decimal integers (C `strtol` silently turned
//!   garbage into 0 and ignored trailing junk), and must lie in a sane range;
//! - a duplicated `renewer` block is an error (C silently used the last one);
//! - unknown keys, duplicated keys and booleans that are neither `yes` nor `no`
//!   are kept C-compatible but reported in `warnings`;
//! - the grammar differences listed in `parser`.

use std::path::{Path, PathBuf};

mod api;
mod auksd;
mod common;
mod defaults;
mod error;
mod etcd;
mod model;
mod parser;
mod reader;
mod renewer;

pub use api::ApiConf;
pub use auksd::{DaemonConf, MAX_WORKERS, METRICS_PERIOD};
pub use common::{CommonConf, Endpoint};
pub use defaults::{
    DEFAULT_ACL, DEFAULT_API_LOG, DEFAULT_CACHE_DIR, DEFAULT_CONF, DEFAULT_DAEMON_LOG,
    DEFAULT_HOST, DEFAULT_KEYTAB, DEFAULT_PORT, DEFAULT_RENEWER_LOG, ENV_CLIENT_CONF,
    ENV_DAEMON_CONF,
};
pub use error::ConfigError;
pub use etcd::{EtcdConf, DEFAULT_ETCD_PREFIX, DEFAULT_SEAL_KEY_FILE};
pub use model::{Block, ConfFile, Entry};
pub use parser::{parse_file, parse_str, MAX_FILE_LEN, MAX_TOKEN_LEN};
pub(crate) use reader::BlockReader;
pub use renewer::RenewerConf;

/// Configuration of client programs (`auks`, renewer, plugins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub path: PathBuf,
    pub common: CommonConf,
    pub api: ApiConf,
    /// Defaults when the file has no `ren*` block.
    pub renewer: RenewerConf,
    /// Non-fatal findings (unknown or repeated keys, odd booleans), each
    /// prefixed with `file:line:`.
    pub warnings: Vec<String>,
}

/// Configuration of `auksd`.
/// Configuration of `auksd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    pub common: CommonConf,
    pub auksd: DaemonConf,
    /// Non-fatal findings (unknown or repeated keys, odd booleans), each
    /// prefixed with `file:line:`.
    pub warnings: Vec<String>,
}

/// Lookup for client programs: explicit > `$AUKS_CONF` > [`DEFAULT_CONF`].
/// An empty explicit path or environment variable counts as unset.
pub fn client_conf_path(explicit: Option<&Path>) -> PathBuf {
    lookup(explicit, ENV_CLIENT_CONF)
}

/// Lookup for the daemon: explicit > `$AUKSD_CONF` > [`DEFAULT_CONF`].
/// An empty explicit path or environment variable counts as unset.
pub fn daemon_conf_path(explicit: Option<&Path>) -> PathBuf {
    lookup(explicit, ENV_DAEMON_CONF)
}

fn lookup(explicit: Option<&Path>, var: &str) -> PathBuf {
    if let Some(p) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return p.to_path_buf();
    }
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_CONF),
    }
}

/// Picks the unique block whose name satisfies `matches`.
fn select<'a>(
    conf: &'a ConfFile,
    kind: &str,
    matches: impl Fn(&str) -> bool,
) -> Result<Option<&'a Block>, ConfigError> {
    let mut found: Option<&Block> = None;
    for b in conf.blocks.iter().filter(|b| matches(&b.name)) {
        if let Some(first) = found {
            let detail = if b.name == first.name {
                format!("first defined at line {}", first.line)
            } else {
                format!(
                    "block '{}' and block '{}' at line {} both select it",
                    b.name, first.name, first.line
                )
            };
            return Err(ConfigError::DuplicateBlock {
                path: conf.path.clone(),
                line: b.line,
                block: kind.to_string(),
                detail,
            });
        }
        found = Some(b);
    }
    Ok(found)
}

fn require<'a>(
    conf: &'a ConfFile,
    kind: &str,
    matches: impl Fn(&str) -> bool,
) -> Result<&'a Block, ConfigError> {
    select(conf, kind, matches)?.ok_or_else(|| ConfigError::MissingBlock {
        path: conf.path.clone(),
        block: kind.to_string(),
    })
}

impl ClientConfig {
    /// Loads the client configuration from the file chosen by
    /// [`client_conf_path`].
    pub fn load(explicit: Option<&Path>) -> Result<ClientConfig, ConfigError> {
        let conf = parse_file(&client_conf_path(explicit))?;
        ClientConfig::from_conf(&conf)
    }

    /// Builds the client configuration from a parsed file. Blocks: exactly
    /// one whose name starts with `common`, exactly one starting with `api`,
    /// at most one starting with `ren`; other blocks are ignored.
    pub fn from_conf(conf: &ConfFile) -> Result<ClientConfig, ConfigError> {
        let common_b = require(conf, "common", |n| n.starts_with("common"))?;
        let api_b = require(conf, "api", |n| n.starts_with("api"))?;
        let ren_b = select(conf, "renewer", |n| n.starts_with("ren"))?;
        let mut warnings = Vec::new();
        let common = common::read_common(&conf.path, common_b, &mut warnings)?;
        let api = api::read_api(&conf.path, api_b, &mut warnings)?;
        let renewer = match ren_b {
            Some(b) => renewer::read_renewer(&conf.path, b, &mut warnings)?,
            None => RenewerConf::default(),
        };
        Ok(ClientConfig {
            path: conf.path.clone(),
            common,
            api,
            renewer,
            warnings,
        })
    }
}

impl DaemonConfig {
    /// Loads the daemon configuration from the file chosen by
    /// [`daemon_conf_path`].
    pub fn load(explicit: Option<&Path>) -> Result<DaemonConfig, ConfigError> {
        let conf = parse_file(&daemon_conf_path(explicit))?;
        DaemonConfig::from_conf(&conf)
    }

    /// Builds the daemon configuration from a parsed file. Blocks: exactly
    /// one named `common`, exactly one whose name starts with `auksd`; other
    /// blocks are ignored.
    pub fn from_conf(conf: &ConfFile) -> Result<DaemonConfig, ConfigError> {
        let common_b = require(conf, "common", |n| n == "common")?;
        let auksd_b = require(conf, "auksd", |n| n.starts_with("auksd"))?;
        let mut warnings = Vec::new();
        let common = common::read_common(&conf.path, common_b, &mut warnings)?;
        let mut auksd = auksd::read_auksd(&conf.path, auksd_b, &mut warnings)?;
        // The renewer's MinLifeTime, for the "expiring" metric only: its
        // block's warnings and errors are the renewer's business.
        if let Ok(Some(b)) = select(conf, "renewer", |n| n.starts_with("ren")) {
            if let Ok(r) = renewer::read_renewer(&conf.path, b, &mut Vec::new()) {
                auksd.renewer_min_lifetime = r.min_lifetime;
            }
        }
        Ok(DaemonConfig {
            common,
            auksd,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests;
