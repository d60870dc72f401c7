//! The defaults of C AUKS (specification §9.4): file locations, the daemon
//! endpoint, and the value of every key a block leaves unset.

use std::path::PathBuf;

use super::{ApiConf, CommonConf, DaemonConf, Endpoint, RenewerConf};

/// Default configuration file (RPM layout, `SYSCONFDIR` = `/etc/auks`).
pub const DEFAULT_CONF: &str = "/etc/auks/auks.conf";
/// Default ACL file of the daemon.
pub const DEFAULT_ACL: &str = "/etc/auks/auks.acl";
/// Default primary and secondary keytab of the daemon.
pub const DEFAULT_KEYTAB: &str = "/etc/auks/auks.keytab";
/// Default credential cache directory of the daemon.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/auks";
/// Default daemon log file.
pub const DEFAULT_DAEMON_LOG: &str = "/var/log/auksd.log";
/// Default renewer log file.
pub const DEFAULT_RENEWER_LOG: &str = "/var/log/auksdrenewer.log";
/// Default client API log file (kept for compatibility; programs only open
/// it when the log level is above 0).
pub const DEFAULT_API_LOG: &str = "/tmp/auksapi.log";
/// Default daemon host name (also used for role detection).
pub const DEFAULT_HOST: &str = "localhost";
/// Default daemon TCP port.
pub const DEFAULT_PORT: &str = "12345";
/// Environment variable naming the client configuration file.
pub const ENV_CLIENT_CONF: &str = "AUKS_CONF";
/// Environment variable naming the daemon configuration file.
pub const ENV_DAEMON_CONF: &str = "AUKSD_CONF";

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            host: DEFAULT_HOST.to_string(),
            address: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT.to_string(),
            principal: String::new(),
        }
    }
}

impl Default for CommonConf {
    fn default() -> Self {
        CommonConf {
            primary: Endpoint::default(),
            secondary: Endpoint::default(),
            nat: false,
            retries: 3,
            timeout: 10,
            delay: 10,
            cross_realm: None,
        }
    }
}

impl Default for ApiConf {
    fn default() -> Self {
        ApiConf {
            log_file: PathBuf::from(DEFAULT_API_LOG),
            log_level: 0,
            helper_script: None,
            use_syslog: false,
        }
    }
}

impl Default for DaemonConf {
    fn default() -> Self {
        DaemonConf {
            primary_keytab: PathBuf::from(DEFAULT_KEYTAB),
            secondary_keytab: PathBuf::from(DEFAULT_KEYTAB),
            cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            acl_file: PathBuf::from(DEFAULT_ACL),
            log_file: PathBuf::from(DEFAULT_DAEMON_LOG),
            log_level: 1,
            debug_level: 0,
            queue_size: 50,
            workers: 10,
            clean_delay: 300,
            replay_cache: true,
            etcd: None,
            metrics_file: None,
            renewer_min_lifetime: 300,
        }
    }
}

impl Default for RenewerConf {
    fn default() -> Self {
        RenewerConf {
            log_file: PathBuf::from(DEFAULT_RENEWER_LOG),
            log_level: 1,
            debug_level: 0,
            delay: 60,
            min_lifetime: 300,
            metrics_file: None,
        }
    }
}
