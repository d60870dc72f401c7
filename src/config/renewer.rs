//! The `renewer` block, read by `auksdrenewer` and the in-job renewer.

use std::path::{Path, PathBuf};

use super::reader::BlockReader;
use super::{Block, ConfigError, DEFAULT_RENEWER_LOG};

/// The `renewer` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewerConf {
    pub log_file: PathBuf,
    pub log_level: i64,
    /// The log level is the larger of `LogLevel` and `DebugLevel`.
    pub debug_level: i64,
    /// Seconds between renewal passes.
    pub delay: u64,
    /// `MinLifeTime`, seconds.
    pub min_lifetime: u64,
}

/// Reads a `renewer` block; unset keys take the C defaults. `DebugFile` is
/// accepted for compatibility but not used: everything goes to `LogFile`.
pub(super) fn read_renewer(
    path: &Path,
    b: &Block,
    w: &mut Vec<String>,
) -> Result<RenewerConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = RenewerConf::default();
    let (log_file, log_level, debug_level) = r.log_keys(DEFAULT_RENEWER_LOG, d.log_level)?;
    let delay = r.uint("Delay", d.delay)?;
    let min_lifetime = r.uint("MinLifeTime", d.min_lifetime)?;
    r.finish();
    Ok(RenewerConf {
        log_file,
        log_level,
        debug_level,
        delay,
        min_lifetime,
    })
}
