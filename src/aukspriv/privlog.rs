//! Where aukspriv writes its messages, through the crate's logging facade
//! (crate::logging): standard output (-v, or AUKS_PRIV_SYSLOG_PRIO=none) in
//! the C format, or syslog.

pub use crate::logging::syslog::parse_priority;

/// Where aukspriv writes its messages (set up once in the facade).
#[derive(Clone, Copy)]
pub struct PrivLog {
    /// Prefix `aukspriv: ` (standard output; syslog names the program).
    prefix: bool,
}

impl PrivLog {
    /// `verbose` or priority `none`: stdout; else syslog through /dev/log
    /// (stdout, with a warning, when there is no syslog daemon).
    pub fn new(verbose: bool, priority: &str) -> Result<PrivLog, String> {
        use crate::logging::{init, syslog, Target};
        let stdout = || init(1, Target::Stdout).map(|()| PrivLog { prefix: true });
        if verbose || priority.trim().eq_ignore_ascii_case("none") {
            return stdout().map_err(|e| e.to_string());
        }
        let (facility, info_severity) = parse_priority(priority).ok_or_else(|| {
            format!("AUKS_PRIV_SYSLOG_PRIO={priority:?}: not a facility.severity priority")
        })?;
        let target = Target::Syslog {
            path: syslog::DEV_LOG.into(),
            ident: "aukspriv".into(),
            facility,
            info_severity,
        };
        match init(1, target) {
            Ok(()) => Ok(PrivLog { prefix: false }),
            Err(e) => {
                let l = stdout().map_err(|e| e.to_string())?;
                l.error(&format!("no syslog ({e}): logging to standard output"));
                Ok(l)
            }
        }
    }

    fn pre(&self) -> &'static str {
        if self.prefix {
            "aukspriv: "
        } else {
            ""
        }
    }

    pub fn info(&self, msg: &str) {
        ::log::info!("{}{msg}", self.pre());
    }

    pub fn error(&self, msg: &str) {
        ::log::error!("{}{msg}", self.pre());
    }
}
