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
    /// `MetricsFile`: the `*.prom` file written after each pass for
    /// node_exporter's textfile collector; `None`: no metrics.
    pub metrics_file: Option<PathBuf>,
}

/// Reads the optional `MetricsFile` key (auksd and renewer blocks): a path
/// whose file name ends in `.prom`, as node_exporter's textfile collector
/// reads only those.
pub(super) fn metrics_file(r: &mut BlockReader) -> Result<Option<PathBuf>, ConfigError> {
    let Some(e) = r.entry("MetricsFile") else {
        return Ok(None);
    };
    let p = PathBuf::from(&e.value);
    let named = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() > 5 && n.ends_with(".prom"));
    if !named {
        return Err(r.invalid(
            e,
            "the metrics file name must end in .prom (node_exporter textfile collector)".into(),
        ));
    }
    Ok(Some(p))
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
    let metrics_file = metrics_file(&mut r)?;
    r.finish();
    Ok(RenewerConf {
        log_file,
        log_level,
        debug_level,
        delay,
        min_lifetime,
        metrics_file,
    })
}
