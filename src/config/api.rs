//! The `api` block, read by the client programs (`auks`, the in-job renewer
//! and the SPANK plugin).

use std::path::{Path, PathBuf};

use super::reader::{BlockReader, INT_MAX, INT_MIN};
use super::{Block, ConfigError, DEFAULT_API_LOG};

/// The `api` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConf {
    pub log_file: PathBuf,
    pub log_level: i64,
    /// `None` when unset or empty. Executability is not checked here.
    pub helper_script: Option<PathBuf>,
    /// `UseSyslog`: a non-zero integer sends the client programs' log records
    /// to syslog as well (as in C AUKS, where the key lives in this block).
    pub use_syslog: bool,
}

/// Reads an `api` block; unset keys take the C defaults.
///
/// `DebugFile` and `DebugLevel` are accepted for compatibility with C files
/// but not used (`DebugLevel` must still be an integer).
pub(super) fn read_api(
    path: &Path,
    b: &Block,
    w: &mut Vec<String>,
) -> Result<ApiConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = ApiConf::default();
    let (log_file, log_level, _debug_level) = r.log_keys(DEFAULT_API_LOG, d.log_level)?;
    let use_syslog = r.int("UseSyslog", 0, INT_MIN, INT_MAX)? != 0;
    let helper_script = r
        .entry("HelperScript")
        .filter(|e| !e.value.is_empty())
        .map(|e| PathBuf::from(&e.value));
    r.finish();
    Ok(ApiConf {
        log_file,
        log_level,
        helper_script,
        use_syslog,
    })
}
