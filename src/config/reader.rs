//! Typed access to one block of the raw model: strings, paths, bounded
//! integers and `yes`/`no` booleans, each invalid value reported as
//! `path:line: invalid value …`, and the keys nobody asked for reported as
//! warnings (unknown or repeated keys are C-compatible, hence not errors).

use std::path::{Path, PathBuf};

use super::{Block, ConfigError, Entry};

/// Largest value of a C `int`, the type of every numeric key in C AUKS.
pub(super) const INT_MAX: i64 = i32::MAX as i64;
/// Smallest value of a C `int`.
pub(super) const INT_MIN: i64 = i32::MIN as i64;

/// Reads typed values from one block, remembering which keys were asked for
/// so that the remaining ones can be reported as unknown.
pub(crate) struct BlockReader<'a> {
    path: &'a Path,
    block: &'a Block,
    known: Vec<&'static str>,
    warnings: &'a mut Vec<String>,
}

impl<'a> BlockReader<'a> {
    pub(crate) fn new(path: &'a Path, block: &'a Block, warnings: &'a mut Vec<String>) -> Self {
        BlockReader {
            path,
            block,
            known: Vec::new(),
            warnings,
        }
    }

    /// First entry of `key` (case-insensitive); marks the key as known.
    pub(crate) fn entry(&mut self, key: &'static str) -> Option<&'a Entry> {
        self.known.push(key);
        self.block.entry(key)
    }

    /// Accepts a key that C AUKS reads but this implementation ignores, so
    /// that it is not reported as unknown.
    pub(super) fn accept(&mut self, key: &'static str) {
        self.known.push(key);
    }

    pub(crate) fn warn(&mut self, line: usize, message: String) {
        self.warnings
            .push(format!("{}:{line}: {message}", self.path.display()));
    }

    pub(crate) fn invalid(&self, entry: &Entry, reason: String) -> ConfigError {
        ConfigError::InvalidValue {
            path: self.path.to_path_buf(),
            line: entry.line,
            key: entry.key.clone(),
            value: entry.value.clone(),
            reason,
        }
    }

    pub(super) fn string(&mut self, key: &'static str, default: &str) -> String {
        self.entry(key)
            .map_or_else(|| default.to_string(), |e| e.value.clone())
    }

    pub(super) fn path_value(&mut self, key: &'static str, default: &str) -> PathBuf {
        PathBuf::from(self.string(key, default))
    }

    pub(super) fn int(
        &mut self,
        key: &'static str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let Some(e) = self.entry(key) else {
            return Ok(default);
        };
        let v = parse_int(&e.value)
            .ok_or_else(|| self.invalid(e, "expected a decimal integer".to_string()))?;
        if v < min || v > max {
            let reason = if min == 0 && v < 0 {
                "must not be negative".to_string()
            } else {
                format!("must be between {min} and {max}")
            };
            return Err(self.invalid(e, reason));
        }
        Ok(v)
    }

    /// Non-negative number of seconds (or count) fitting a C `int`.
    pub(super) fn uint(&mut self, key: &'static str, default: u64) -> Result<u64, ConfigError> {
        let d = i64::try_from(default).unwrap_or(INT_MAX);
        let v = self.int(key, d, 0, INT_MAX)?;
        Ok(u64::try_from(v).unwrap_or(default))
    }

    /// The logging keys of every program block: `LogFile`, `LogLevel`,
    /// `DebugFile` (accepted, unused: everything goes to `LogFile`) and
    /// `DebugLevel` (default 0). Returns the file and both levels.
    pub(super) fn log_keys(
        &mut self,
        file: &str,
        level: i64,
    ) -> Result<(PathBuf, i64, i64), ConfigError> {
        let log_file = self.path_value("LogFile", file);
        let log_level = self.int("LogLevel", level, INT_MIN, INT_MAX)?;
        self.accept("DebugFile");
        let debug_level = self.int("DebugLevel", 0, INT_MIN, INT_MAX)?;
        Ok((log_file, log_level, debug_level))
    }

    pub(super) fn boolean(&mut self, key: &'static str, default: bool) -> bool {
        let Some(e) = self.entry(key) else {
            return default;
        };
        if e.value.eq_ignore_ascii_case("yes") {
            true
        } else {
            if !e.value.eq_ignore_ascii_case("no") {
                let msg = format!(
                    "value {:?} of key '{}' is neither 'yes' nor 'no'; treated as 'no'",
                    e.value, e.key
                );
                self.warn(e.line, msg);
            }
            false
        }
    }

    /// Reports unknown keys and repeated keys of the block.
    pub(crate) fn finish(self) {
        let mut seen: Vec<&Entry> = Vec::new();
        for e in &self.block.entries {
            if !self.known.iter().any(|k| k.eq_ignore_ascii_case(&e.key)) {
                self.warnings.push(format!(
                    "{}:{}: unknown key '{}' in block '{}' ignored",
                    self.path.display(),
                    e.line,
                    e.key,
                    self.block.name
                ));
            } else if let Some(first) = seen.iter().find(|f| f.key.eq_ignore_ascii_case(&e.key)) {
                self.warnings.push(format!(
                    "{}:{}: duplicate key '{}' in block '{}' ignored (first set at line {})",
                    self.path.display(),
                    e.line,
                    e.key,
                    self.block.name,
                    first.line
                ));
            } else {
                seen.push(e);
            }
        }
    }
}

/// Parses a decimal integer: optional leading whitespace, optional sign,
/// digits, optional trailing whitespace.
///
/// Deliberately stricter than C, which used `strtol` (garbage ⇒ 0, trailing
/// junk ignored): anything else is rejected so that typos are reported
/// instead of silently becoming 0. Every value written by a working C
/// deployment (`10`, `"10"`, `' 10'`) is still accepted.
pub(super) fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}
