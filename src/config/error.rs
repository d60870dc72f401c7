//! The one error type of configuration and ACL loading.
//!
//! Every message names the file and, whenever the problem sits on a line,
//! that line (`path:line: reason`), so that `auksd -t` points the
//! administrator at the exact spot.

use std::path::PathBuf;

/// Errors of configuration and ACL loading. Every message names the file and,
/// when it makes sense, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_LEN`](super::MAX_FILE_LEN).
    #[error("{path}: file is too large (limit {limit} bytes)")]
    TooLarge { path: PathBuf, limit: u64 },
    /// Grammar error (§9.1).
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The file contains no block at all.
    #[error("{path}: no configuration blocks found")]
    NoBlocks { path: PathBuf },
    /// A mandatory block is absent.
    #[error("{path}: configuration file is incomplete: missing block '{block}'")]
    MissingBlock { path: PathBuf, block: String },
    /// A block kind that must be unique appears more than once.
    #[error("{path}:{line}: duplicate block '{block}' ({detail})")]
    DuplicateBlock {
        path: PathBuf,
        line: usize,
        block: String,
        detail: String,
    },
    /// A mandatory key is absent from a block.
    #[error("{path}:{line}: block '{block}' has no '{key}' key")]
    MissingKey {
        path: PathBuf,
        line: usize,
        block: String,
        key: String,
    },
    /// A value is not acceptable for its key.
    #[error("{path}:{line}: invalid value {value:?} for key '{key}': {reason}")]
    InvalidValue {
        path: PathBuf,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },
}
