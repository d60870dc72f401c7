//! The legacy logging calls (`crate::log!(n, ...)`, `to_stderr`,
//! `to_file`, `off`), kept as a thin shim over the [`crate::logging`]
//! facade (the `log` crate) so that existing call sites keep working while
//! they are converted to `log::info!`/`log::error!`/... .
//!
//! `crate::log!(n, ...)` emits a record of C level `n` (1 → `info!`,
//! 2 → `debug!`, 3+ → `trace!`, see [`crate::logging::level`]). In the log
//! file this gives exactly the lines of the C AUKS and of the earlier
//! auks-rs: `<ctime> [INFO<n>] [euid=<euid>,pid=<pid>] <text>`.

use crate::logging::{self, Target};
use std::path::Path;

/// Log to standard error at `level` (to the journal, with priorities, when
/// standard error is the journal stream).
pub fn to_stderr(level: i64) {
    let _ = logging::init(level, Target::Stderr);
}

/// Log to a file (append, created 0640) at `level`; a level <= 0 disables
/// logging without opening the file. Under systemd (standard error is the
/// journal stream) the file is not used and records go to the journal, as
/// the C AUKS documents for `LogFile`.
pub fn to_file(path: &Path, level: i64) -> std::io::Result<()> {
    let target = if logging::journal::stderr_is_journal() {
        Target::Journal
    } else {
        Target::File(path.to_path_buf())
    };
    logging::init(level, target).map_err(|e| match e {
        logging::LogError::Open { source, .. } | logging::LogError::Syslog { source, .. } => source,
    })
}

/// Disable logging.
pub fn off() {
    let _ = logging::init(0, Target::Off);
}

/// Whether a message of C level `level` would be written.
pub fn enabled(level: i64) -> bool {
    level <= logging::c_level()
}

/// Write one message of C level `level` (1 = start/stop, 2 = per request,
/// 3 = details).
pub fn write(level: i64, msg: &str) {
    ::log::log!(logging::level::level_of(level), "{msg}");
}

/// `log!(level, "format", args...)`
#[macro_export]
macro_rules! log {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write($lvl, &format!($($arg)*));
        }
    };
}
