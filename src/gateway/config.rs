//! The gateway's own configuration file (`/etc/auks/gateway.toml`): TOML,
//! every key documented in `packaging/etc/gateway.toml.example`. Unknown
//! keys and bad values stop the start with a message naming the key; the
//! secret files (JWT key, keytab, TLS key) must be readable by the gateway's
//! account only.

use serde::Deserialize;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/auks/gateway.toml";

/// A configuration problem, naming the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {message}")]
    Key {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
    #[error("key `{key}`: file {file}: {message}")]
    SecretFile {
        key: &'static str,
        file: PathBuf,
        message: String,
    },
}

/// The file as written (all optional keys spelled out with defaults).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    allow_plain_http_on_loopback: bool,
    #[serde(default = "default_auks_conf")]
    auks_conf: PathBuf,
    realm: Option<String>,
    keytab: PathBuf,
    verify_principal: String,
    #[serde(default = "default_ticket_lifetime")]
    ticket_lifetime: u32,
    #[serde(default = "default_renew_lifetime")]
    renew_lifetime: u32,
    jwt_key: PathBuf,
    #[serde(default = "default_jwt_lifespan")]
    jwt_lifespan: u32,
    slurmrestd: String,
    #[serde(default = "default_openapi_version")]
    openapi_version: String,
    #[serde(default = "default_backend_timeout")]
    backend_timeout: u32,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    #[serde(default = "default_max_concurrent")]
    max_concurrent_requests: usize,
    #[serde(default = "default_failures")]
    login_failures_before_backoff: u32,
    #[serde(default = "default_backoff_base")]
    login_backoff_base: u32,
    #[serde(default = "default_backoff_max")]
    login_backoff_max: u32,
}

fn default_auks_conf() -> PathBuf {
    PathBuf::from("/etc/auks/auks.conf")
}
fn default_ticket_lifetime() -> u32 {
    36_000
}
fn default_renew_lifetime() -> u32 {
    604_800
}
fn default_jwt_lifespan() -> u32 {
    120
}
fn default_openapi_version() -> String {
    "v0.0.38".into()
}
fn default_backend_timeout() -> u32 {
    15
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_max_concurrent() -> usize {
    64
}
fn default_failures() -> u32 {
    5
}
fn default_backoff_base() -> u32 {
    2
}
fn default_backoff_max() -> u32 {
    300
}

/// Where slurmrestd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestEndpoint {
    /// `http://host:port` (plain HTTP: slurmrestd is expected on the same
    /// host or a trusted network; the token only lives `jwt_lifespan`).
    Tcp { host: String, port: u16 },
    /// `unix:/path/to/socket`.
    Unix(PathBuf),
}

impl std::fmt::Display for RestEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestEndpoint::Tcp { host, port } => write!(f, "http://{host}:{port}"),
            RestEndpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Certificate chain and key (PEM); `None` = plain HTTP on loopback.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub auks_conf: PathBuf,
    pub realm: Option<String>,
    pub keytab: PathBuf,
    pub verify_principal: String,
    pub ticket_lifetime: i32,
    pub renew_lifetime: i32,
    pub jwt_key: PathBuf,
    pub jwt_lifespan: Duration,
    pub slurmrestd: RestEndpoint,
    pub openapi_version: String,
    pub backend_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_concurrent_requests: usize,
    pub login_failures_before_backoff: u32,
    pub login_backoff_base: Duration,
    pub login_backoff_max: Duration,
}

impl GatewayConfig {
    /// Read, parse and validate `path` (secret file checks included).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let conf = Self::parse(&text, path)?;
        conf.check_secret_files()?;
        Ok(conf)
    }

    /// Parse and validate the text (no file system checks).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at line {})", line_of(text, s.start)))
                    .unwrap_or_default(),
        })?;
        let key = |key: &'static str, message: String| ConfigError::Key {
            path: path.to_owned(),
            key,
            message,
        };
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            key(
                "listen",
                format!(
                    "{:?} is not an address:port (e.g. \"0.0.0.0:8443\")",
                    raw.listen
                ),
            )
        })?;
        let tls = match (raw.tls_cert, raw.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(key("tls_key", "tls_cert is set but not tls_key".into()))
            }
            (None, Some(_)) => {
                return Err(key("tls_cert", "tls_key is set but not tls_cert".into()))
            }
        };
        if tls.is_none() {
            if !listen.ip().is_loopback() {
                return Err(key(
                    "tls_cert",
                    format!(
                        "listening on {listen} (not loopback) without TLS is refused: \
                         set tls_cert and tls_key"
                    ),
                ));
            }
            if !raw.allow_plain_http_on_loopback {
                return Err(key(
                    "tls_cert",
                    "no TLS certificate: set tls_cert and tls_key (or \
                     allow_plain_http_on_loopback = true behind a local TLS proxy)"
                        .into(),
                ));
            }
        }
        let positive = |k: &'static str, v: u32| {
            if v == 0 {
                Err(key(k, "must be greater than 0".into()))
            } else {
                Ok(v)
            }
        };
        let to_i32 = |k: &'static str, v: u32| {
            i32::try_from(positive(k, v)?).map_err(|_| key(k, format!("{v} is too large")))
        };
        if raw.verify_principal.trim().is_empty() {
            return Err(key(
                "verify_principal",
                "must name a principal of the keytab".into(),
            ));
        }
        if let Some(r) = &raw.realm {
            if r.is_empty() || r.contains(['@', '/']) {
                return Err(key("realm", format!("{r:?} is not a realm name")));
            }
        }
        let slurmrestd = parse_rest_endpoint(&raw.slurmrestd).map_err(|m| key("slurmrestd", m))?;
        if !raw.openapi_version.starts_with('v') || raw.openapi_version.contains('/') {
            return Err(key(
                "openapi_version",
                format!("{:?}: expected e.g. \"v0.0.38\"", raw.openapi_version),
            ));
        }
        if raw.max_body_bytes < 1024 || raw.max_body_bytes > 64 << 20 {
            return Err(key(
                "max_body_bytes",
                "must be between 1024 and 67108864".into(),
            ));
        }
        if raw.jwt_lifespan > 3600 {
            return Err(key(
                "jwt_lifespan",
                "at most 3600 seconds (keep tokens short)".into(),
            ));
        }
        if raw.backend_timeout > 300 {
            return Err(key("backend_timeout", "at most 300 seconds".into()));
        }
        if raw.login_backoff_base > raw.login_backoff_max {
            return Err(key(
                "login_backoff_base",
                "must not exceed login_backoff_max".into(),
            ));
        }
        Ok(GatewayConfig {
            listen,
            tls,
            auks_conf: raw.auks_conf,
            realm: raw.realm,
            keytab: raw.keytab,
            verify_principal: raw.verify_principal,
            ticket_lifetime: to_i32("ticket_lifetime", raw.ticket_lifetime)?,
            renew_lifetime: i32::try_from(raw.renew_lifetime)
                .map_err(|_| key("renew_lifetime", "too large".into()))?,
            jwt_key: raw.jwt_key,
            jwt_lifespan: Duration::from_secs(positive("jwt_lifespan", raw.jwt_lifespan)?.into()),
            slurmrestd,
            openapi_version: raw.openapi_version,
            backend_timeout: Duration::from_secs(
                positive("backend_timeout", raw.backend_timeout)?.into(),
            ),
            max_body_bytes: raw.max_body_bytes,
            max_concurrent_requests: match raw.max_concurrent_requests {
                0 => {
                    return Err(key(
                        "max_concurrent_requests",
                        "must be greater than 0".into(),
                    ))
                }
                n => n,
            },
            login_failures_before_backoff: positive(
                "login_failures_before_backoff",
                raw.login_failures_before_backoff,
            )?,
            login_backoff_base: Duration::from_secs(
                positive("login_backoff_base", raw.login_backoff_base)?.into(),
            ),
            login_backoff_max: Duration::from_secs(raw.login_backoff_max.into()),
        })
    }

    /// The JWT key, the keytab and the TLS key must be regular files that
    /// only the gateway's account can read.
    pub fn check_secret_files(&self) -> Result<(), ConfigError> {
        check_private_file("jwt_key", &self.jwt_key)?;
        check_private_file("keytab", &self.keytab)?;
        if let Some((_, key)) = &self.tls {
            check_private_file("tls_key", key)?;
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn parse_rest_endpoint(s: &str) -> Result<RestEndpoint, String> {
    if let Some(p) = s.strip_prefix("unix:") {
        let p = p.trim_start_matches("//");
        if !p.starts_with('/') {
            return Err(format!("{s:?}: a unix socket needs an absolute path"));
        }
        return Ok(RestEndpoint::Unix(PathBuf::from(p)));
    }
    let Some(rest) = s.strip_prefix("http://") else {
        return Err(format!(
            "{s:?}: expected http://host:port or unix:/path/to/socket"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: missing :port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return Err(format!("{s:?}: bad host"));
    }
    Ok(RestEndpoint::Tcp {
        host: host.to_string(),
        port,
    })
}

/// A secret file: regular (not a symlink), owned by our effective uid, and
/// no permission bit for group or others.
pub fn check_private_file(key: &'static str, path: &Path) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::SecretFile {
        key,
        file: path.to_owned(),
        message,
    };
    let md = std::fs::symlink_metadata(path).map_err(|e| err(format!("cannot stat: {e}")))?;
    if !md.file_type().is_file() {
        return Err(err("is not a regular file (symlinks are refused)".into()));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if md.uid() != euid {
        return Err(err(format!(
            "is owned by uid {}, not by the gateway's account (uid {euid}): \
             chown it to the gateway's account",
            md.uid()
        )));
    }
    if md.mode() & 0o077 != 0 {
        return Err(err(format!(
            "has mode {:04o}: other accounts could read it; chmod 600 it",
            md.mode() & 0o7777
        )));
    }
    std::fs::File::open(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
listen = "127.0.0.1:8443"
tls_cert = "/c.pem"
tls_key = "/k.pem"
keytab = "/etc/auks/gw.keytab"
verify_principal = "HTTP/gw.example.org"
jwt_key = "/etc/auks/jwt.key"
slurmrestd = "http://127.0.0.1:6820"
"#;

    fn parse(t: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse(t, Path::new("/etc/auks/gateway.toml"))
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = parse(MIN).unwrap();
        assert_eq!(c.openapi_version, "v0.0.38");
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!(
            c.slurmrestd,
            RestEndpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 6820
            }
        );
        assert_eq!(c.auks_conf, PathBuf::from("/etc/auks/auks.conf"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse(&format!("{MIN}\nlisten_port = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_port"), "{e}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let e = parse(&MIN.replace("127.0.0.1:8443", "nowhere"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`listen`"), "{e}");
        let e = parse(&MIN.replace("http://127.0.0.1:6820", "ftp://x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`slurmrestd`"), "{e}");
        let e = parse(&format!("{MIN}\nbackend_timeout = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`backend_timeout`"), "{e}");
    }

    #[test]
    fn plain_http_only_on_loopback_and_when_asked() {
        let plain = MIN
            .replace("tls_cert = \"/c.pem\"\n", "")
            .replace("tls_key = \"/k.pem\"\n", "");
        assert!(parse(&plain).is_err());
        let ok = format!("{plain}\nallow_plain_http_on_loopback = true\n");
        assert!(parse(&ok).unwrap().tls.is_none());
        let wide = ok.replace("127.0.0.1:8443", "0.0.0.0:8443");
        let e = parse(&wide).unwrap_err().to_string();
        assert!(e.contains("without TLS is refused"), "{e}");
    }

    #[test]
    fn unix_socket_endpoint() {
        let c = parse(&MIN.replace("http://127.0.0.1:6820", "unix:/run/slurmrestd.sock")).unwrap();
        assert_eq!(
            c.slurmrestd,
            RestEndpoint::Unix("/run/slurmrestd.sock".into())
        );
    }

    #[test]
    fn secret_file_checks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = check_private_file("jwt_key", &f).unwrap_err().to_string();
        assert!(e.contains("jwt_key") && e.contains("0640"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private_file("jwt_key", &f).unwrap();
        let l = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(check_private_file("keytab", &l).is_err());
        assert!(check_private_file("keytab", &dir.path().join("none")).is_err());
    }
}
