//! The etcd keys of the `auksd` block (issue 11): where the replicated
//! repository lives. They are new keys in the block the C auksd already
//! reads, so one `auks.conf` serves both implementations: the C daemon looks
//! its keys up by name (`config_GetKeyValueByName`) and never sees these.
//!
//! Without `EtcdEndpoints` the daemon uses its local `CacheDir` (the
//! default); with it, the other keys apply:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `EtcdEndpoints` | (none) | comma- or space-separated `http://` or `https://` URLs |
//! | `EtcdPrefix` | `/auks/` | key prefix of this AUKS service in etcd |
//! | `EtcdCAFile` | (none) | PEM CA bundle that signs the etcd server certificates |
//! | `EtcdCertFile` / `EtcdKeyFile` | (none) | PEM client certificate and key for etcd |
//! | `EtcdSealKeyFile` | `/etc/auks/auks-etcd.keys` | the sealing keys (0600, see `store::seal`) |
//! | `EtcdTimeout` | 3 | seconds a write to etcd may take before the request fails |

use std::path::PathBuf;

use super::reader::BlockReader;
use super::ConfigError;

/// Default key prefix in etcd.
pub const DEFAULT_ETCD_PREFIX: &str = "/auks/";
/// Default file of sealing keys.
pub const DEFAULT_SEAL_KEY_FILE: &str = "/etc/auks/auks-etcd.keys";

/// Where and how to reach etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConf {
    /// Client URLs, tried in order.
    pub endpoints: Vec<String>,
    /// Key prefix, ends with `/`.
    pub prefix: String,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub seal_key_file: PathBuf,
    /// Seconds for one etcd write (1 to 60).
    pub timeout: u64,
}

/// Reads the etcd keys; `None` when `EtcdEndpoints` is not set.
pub(super) fn read_etcd(r: &mut BlockReader<'_>) -> Result<Option<EtcdConf>, ConfigError> {
    let endpoints = r.entry("EtcdEndpoints");
    let prefix = r.entry("EtcdPrefix");
    let ca = r.entry("EtcdCAFile").map(|e| PathBuf::from(&e.value));
    let cert = r.entry("EtcdCertFile");
    let key = r.entry("EtcdKeyFile");
    let seal = r.entry("EtcdSealKeyFile").map(|e| PathBuf::from(&e.value));
    let timeout = r.int("EtcdTimeout", 3, 1, 60)?;
    let Some(ep) = endpoints else {
        return Ok(None);
    };
    let list: Vec<String> = ep
        .value
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(r.invalid(ep, "no endpoint given".into()));
    }
    if let Some(bad) = list
        .iter()
        .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        return Err(r.invalid(ep, format!("{bad}: expected an http:// or https:// URL")));
    }
    let prefix = match prefix {
        None => DEFAULT_ETCD_PREFIX.to_string(),
        Some(p) if p.value.is_empty() || p.value.contains(['\0', ' ']) => {
            return Err(r.invalid(p, "expected a non-empty key prefix".into()))
        }
        Some(p) if p.value.ends_with('/') => p.value.clone(),
        Some(p) => format!("{}/", p.value),
    };
    if cert.is_some() != key.is_some() {
        let e = cert.or(key).expect("one of them is set");
        return Err(r.invalid(e, "EtcdCertFile and EtcdKeyFile go together".into()));
    }
    Ok(Some(EtcdConf {
        endpoints: list,
        prefix,
        ca_file: ca,
        cert_file: cert.map(|e| PathBuf::from(&e.value)),
        key_file: key.map(|e| PathBuf::from(&e.value)),
        seal_key_file: seal.unwrap_or_else(|| PathBuf::from(DEFAULT_SEAL_KEY_FILE)),
        timeout: u64::try_from(timeout).unwrap_or(3),
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_str, DaemonConfig};
    use std::path::Path;

    fn load(auksd: &str) -> Result<DaemonConfig, crate::config::ConfigError> {
        let text = format!("common {{ PrimaryHost = \"localhost\"; }}\nauksd {{ {auksd} }}\n");
        DaemonConfig::from_conf(&parse_str(&text, Path::new("t.conf"))?)
    }

    #[test]
    fn absent_means_local_cache_dir() {
        let c = load("CacheDir = \"/tmp/x\";").unwrap();
        assert_eq!(c.auksd.etcd, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn keys_are_read_and_not_reported_unknown() {
        let c = load(
            "EtcdEndpoints = \"https://127.0.0.1:2379, https://127.0.0.2:2379\"; \
             EtcdPrefix = \"/site/auks\"; EtcdCAFile = \"/ca\"; EtcdCertFile = \"/c\"; \
             EtcdKeyFile = \"/k\"; EtcdSealKeyFile = \"/s\"; EtcdTimeout = 5;",
        )
        .unwrap();
        let e = c.auksd.etcd.unwrap();
        assert_eq!(
            e.endpoints,
            vec!["https://127.0.0.1:2379", "https://127.0.0.2:2379"]
        );
        assert_eq!(e.prefix, "/site/auks/");
        assert_eq!(e.seal_key_file, Path::new("/s"));
        assert_eq!(e.timeout, 5);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(load("EtcdEndpoints = \"127.0.0.1:2379\";").is_err());
        assert!(load("EtcdEndpoints = \"http://a:1\"; EtcdCertFile = \"/c\";").is_err());
        assert!(load("EtcdEndpoints = \"http://a:1\"; EtcdTimeout = 0;").is_err());
    }
}
