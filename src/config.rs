//! `auks.conf` parsing (specification §9).
//!
//! Two layers:
//! - a raw model ([`ConfFile`], [`Block`], [`Entry`]) produced by a parser for
//!   the block grammar of §9.1, shared with `auks.acl` (see [`crate::acl`]);
//! - typed configurations for client programs ([`ClientConfig`]) and for the
//!   daemon ([`DaemonConfig`]) with every key and default of §9.4.
//!
//! Files written for the C implementation are accepted unchanged. Deliberate
//! differences from C (all of them stricter, and all reported with the file
//! path and line number):
//! - numbers must be plain decimal integers (C `strtol` silently turned
//!   garbage into 0 and ignored trailing junk), and must lie in a sane range;
//! - values that do not fit the C buffers (1023 bytes) are rejected instead of
//!   being truncated, and NUL characters are rejected;
//! - a duplicated `renewer` block is an error (C silently used the last one);
//! - unknown keys, duplicated keys and booleans that are neither `yes` nor `no`
//!   are kept C-compatible but reported in `warnings`;
//! - a comment on the last line of a file without a final newline is accepted
//!   (the C lexer rejected it).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Default configuration file (RPM layout, `SYSCONFDIR` = `/etc/auks`).
pub const DEFAULT_CONF: &str = "/etc/auks/auks.conf";
/// Default ACL file of the daemon.
pub const DEFAULT_ACL: &str = "/etc/auks/auks.acl";
/// Default primary and secondary keytab of the daemon.
pub const DEFAULT_KEYTAB: &str = "/etc/auks/auks.keytab";
/// Default credential cache directory of the daemon.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/auks";
/// Default daemon log and debug file.
pub const DEFAULT_DAEMON_LOG: &str = "/var/log/auksd.log";
/// Default renewer log and debug file.
pub const DEFAULT_RENEWER_LOG: &str = "/var/log/auksdrenewer.log";
/// Default client API log and debug file (kept for compatibility; programs
/// only open it when the corresponding level is above 0).
pub const DEFAULT_API_LOG: &str = "/tmp/auksapi.log";
/// Default daemon host name (also used for role detection).
pub const DEFAULT_HOST: &str = "localhost";
/// Default daemon TCP port.
pub const DEFAULT_PORT: &str = "12345";
/// Environment variable naming the client configuration file.
pub const ENV_CLIENT_CONF: &str = "AUKS_CONF";
/// Environment variable naming the daemon configuration file.
pub const ENV_DAEMON_CONF: &str = "AUKSD_CONF";

/// Longest block name, key or value accepted, in bytes (the C parser used
/// 1024-byte buffers including the terminating NUL).
pub const MAX_TOKEN_LEN: usize = 1023;
/// Largest configuration file read (a guard against `-f /dev/zero`).
pub const MAX_FILE_LEN: u64 = 4 * 1024 * 1024;
/// Largest number of workers accepted.
pub const MAX_WORKERS: i64 = 4096;

const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;

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
    /// The file is larger than [`MAX_FILE_LEN`].
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

// ---------------------------------------------------------------------------
// Raw model
// ---------------------------------------------------------------------------

/// One `key = value ;` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Key as written in the file.
    pub key: String,
    /// Value with quotes and escapes removed.
    pub value: String,
    /// Line of the key (1-based).
    pub line: usize,
}

/// One `name { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Block name as written (block names are case-sensitive).
    pub name: String,
    /// Line of the block name (1-based).
    pub line: usize,
    /// Assignments in file order.
    pub entries: Vec<Entry>,
}

impl Block {
    /// Value of `key` (case-insensitive); the first occurrence wins.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value.as_str())
    }

    /// Entry of `key` (case-insensitive); the first occurrence wins.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }
}

/// A parsed file: its blocks in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile {
    /// Path used in messages.
    pub path: PathBuf,
    /// Blocks in file order.
    pub blocks: Vec<Block>,
}

/// Parses `text` with the §9.1 grammar; `path` is only used in messages.
/// A text without any block is an error.
pub fn parse_str(text: &str, path: &Path) -> Result<ConfFile, ConfigError> {
    let mut parser = Parser {
        src: text,
        pos: 0,
        line: 1,
        path,
    };
    let blocks = parser.file()?;
    if blocks.is_empty() {
        return Err(ConfigError::NoBlocks {
            path: path.to_path_buf(),
        });
    }
    Ok(ConfFile {
        path: path.to_path_buf(),
        blocks,
    })
}

/// Reads and parses a file.
pub fn parse_file(path: &Path) -> Result<ConfFile, ConfigError> {
    let io_err = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_LEN,
        });
    }
    match String::from_utf8(bytes) {
        Ok(text) => parse_str(&text, path),
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = 1 + bytes[..good.min(bytes.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                message: "invalid UTF-8 sequence".to_string(),
            })
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '.'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Whitespace between tokens (newline handled separately). Like the C lexer,
/// vertical tab is not whitespace.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0c')
}

fn is_bare_char(c: char) -> bool {
    !matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '\x0c' | ';' | '"' | '\'' | '#' | '\0'
    )
}

/// Human description of what was found where something else was expected.
struct Found(Option<char>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("end of file"),
            Some('\n') => f.write_str("end of line"),
            Some(c) => write!(f, "'{}'", c.escape_debug()),
        }
    }
}

const HASH_NOTE: &str = " ('#' starts a comment, even inside quotes)";

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    path: &'a Path,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn peek2(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().nth(1))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn err<T>(&self, line: usize, message: String) -> Result<T, ConfigError> {
        Err(ConfigError::Syntax {
            path: self.path.to_path_buf(),
            line,
            message,
        })
    }

    /// Skips to the end of the current line, leaving the newline unread.
    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Skips whitespace, newlines and comments.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if is_space(c) || c == '\n' {
                self.bump();
            } else if c == '#' {
                self.skip_comment();
            } else {
                break;
            }
        }
    }

    fn check_len(&self, line: usize, what: &str, s: &str) -> Result<(), ConfigError> {
        if s.len() > MAX_TOKEN_LEN {
            return self.err(
                line,
                format!(
                    "{what} is too long ({} bytes, limit {MAX_TOKEN_LEN})",
                    s.len()
                ),
            );
        }
        Ok(())
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !is_ident_char(c) {
                break;
            }
            self.bump();
        }
        self.src
            .get(start..self.pos)
            .unwrap_or_default()
            .to_string()
    }

    fn file(&mut self) -> Result<Vec<Block>, ConfigError> {
        let mut blocks = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                None => return Ok(blocks),
                Some(c) if is_ident_start(c) => blocks.push(self.block()?),
                other => {
                    return self.err(
                        self.line,
                        format!("expected block name, found {}", Found(other)),
                    )
                }
            }
        }
    }

    fn block(&mut self) -> Result<Block, ConfigError> {
        let line = self.line;
        let name = self.ident();
        self.check_len(line, "block name", &name)?;
        self.skip_blank();
        if self.peek() != Some('{') {
            return self.err(
                self.line,
                format!(
                    "expected '{{' after block name '{name}', found {}",
                    Found(self.peek())
                ),
            );
        }
        self.bump();
        let mut entries = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                Some('}') => {
                    self.bump();
                    return Ok(Block {
                        name,
                        line,
                        entries,
                    });
                }
                Some(c) if is_ident_start(c) => entries.push(self.entry()?),
                None => {
                    return self.err(
                        self.line,
                        format!(
                            "expected '}}' to close block '{name}' opened at line {line}, \
                             found end of file"
                        ),
                    )
                }
                other => {
                    return self.err(
                        self.line,
                        format!(
                            "expected key name or '}}' in block '{name}', found {}",
                            Found(other)
                        ),
                    )
                }
            }
        }
    }

    fn entry(&mut self) -> Result<Entry, ConfigError> {
        let line = self.line;
        let key = self.ident();
        self.check_len(line, "key name", &key)?;
        self.skip_blank();
        if self.peek() != Some('=') {
            return self.err(
                self.line,
                format!(
                    "expected '=' after key '{key}', found {}",
                    Found(self.peek())
                ),
            );
        }
        self.bump();
        self.skip_blank();
        let value_line = self.line;
        let value = match self.peek() {
            Some('"') => {
                self.bump();
                self.double_quoted(&key)?
            }
            Some('\'') => {
                self.bump();
                self.single_quoted(&key)?
            }
            Some(c) if is_bare_char(c) => self.bare(),
            other => {
                return self.err(
                    self.line,
                    format!("expected value for key '{key}', found {}", Found(other)),
                )
            }
        };
        self.check_len(value_line, &format!("value of key '{key}'"), &value)?;
        self.skip_blank();
        if self.peek() != Some(';') {
            return self.err(
                self.line,
                format!(
                    "expected ';' after value of key '{key}', found {}",
                    Found(self.peek())
                ),
            );
        }
        self.bump();
        Ok(Entry { key, value, line })
    }

    fn bare(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !is_bare_char(c) {
                break;
            }
            self.bump();
        }
        self.src
            .get(start..self.pos)
            .unwrap_or_default()
            .to_string()
    }

    fn unterminated<T>(&self, key: &str, note: &str) -> Result<T, ConfigError> {
        self.err(
            self.line,
            format!("missing closing quote in value of key '{key}'{note}"),
        )
    }

    fn nul<T>(&self, key: &str) -> Result<T, ConfigError> {
        self.err(self.line, format!("NUL character in value of key '{key}'"))
    }

    /// Body of a double-quoted value, opening quote consumed.
    fn double_quoted(&mut self, key: &str) -> Result<String, ConfigError> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return self.unterminated(key, ""),
                Some('\n') => return self.unterminated(key, ""),
                Some('#') => return self.unterminated(key, HASH_NOTE),
                Some('\0') => return self.nul(key),
                Some('"') => {
                    self.bump();
                    return Ok(out);
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        None => return self.unterminated(key, ""),
                        Some('\0') => return self.nul(key),
                        Some('\n') => {
                            // Line continuation.
                            self.bump();
                        }
                        Some('#') => {
                            // C lexer compatibility: after a backslash, '#'
                            // followed by more text on the line is a comment
                            // and the newline ending it is a continuation; a
                            // '#' alone before the newline is a literal '#',
                            // which is then followed by a forbidden newline.
                            if matches!(self.peek2(), None | Some('\n')) {
                                return self.unterminated(key, "");
                            }
                            self.skip_comment();
                            if self.bump().is_none() {
                                return self.unterminated(key, HASH_NOTE);
                            }
                        }
                        Some(c) => {
                            self.bump();
                            out.push(c);
                        }
                    }
                }
                Some(c) => {
                    self.bump();
                    out.push(c);
                }
            }
        }
    }

    /// Body of a single-quoted value, opening quote consumed. No escapes.
    fn single_quoted(&mut self, key: &str) -> Result<String, ConfigError> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => return self.unterminated(key, ""),
                Some('#') => return self.unterminated(key, HASH_NOTE),
                Some('\0') => return self.nul(key),
                Some('\'') => {
                    self.bump();
                    return Ok(out);
                }
                Some(c) => {
                    self.bump();
                    out.push(c);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Typed access to one block
// ---------------------------------------------------------------------------

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

    fn string(&mut self, key: &'static str, default: &str) -> String {
        self.entry(key)
            .map_or_else(|| default.to_string(), |e| e.value.clone())
    }

    fn path_value(&mut self, key: &'static str, default: &str) -> PathBuf {
        PathBuf::from(self.string(key, default))
    }

    fn int(
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
    fn uint(&mut self, key: &'static str, default: u64) -> Result<u64, ConfigError> {
        let d = i64::try_from(default).unwrap_or(INT_MAX);
        let v = self.int(key, d, 0, INT_MAX)?;
        Ok(u64::try_from(v).unwrap_or(default))
    }

    fn boolean(&mut self, key: &'static str, default: bool) -> bool {
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
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

// ---------------------------------------------------------------------------
// Typed configuration
// ---------------------------------------------------------------------------

/// One daemon endpoint (primary or secondary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (`PrimaryHost`; also used for daemon role detection).
    pub host: String,
    /// Address to connect to / bind to; equals `host` when the key is unset.
    /// An explicitly empty value is kept empty (the daemon binds to any
    /// address).
    pub address: String,
    /// TCP port or service name.
    pub port: String,
    /// Daemon service principal.
    pub principal: String,
}

impl Endpoint {
    /// Address a client should connect to: `address`, or `host` when the
    /// address was set to an empty string.
    pub fn connect_address(&self) -> &str {
        if self.address.is_empty() {
            &self.host
        } else {
            &self.address
        }
    }
}

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

/// The `common` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConf {
    pub primary: Endpoint,
    pub secondary: Endpoint,
    /// `NAT = yes`: dummy KRB-PRIV addresses.
    pub nat: bool,
    /// Rounds of (primary, secondary) attempts.
    pub retries: i64,
    /// TCP connect timeout, seconds.
    pub timeout: u64,
    /// Sleep between rounds, seconds.
    pub delay: u64,
    /// Realm of a cross-realm TGT to get before ADD; `None` when empty.
    pub cross_realm: Option<String>,
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

/// The `api` block (client programs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConf {
    pub log_file: PathBuf,
    pub log_level: i64,
    pub debug_file: PathBuf,
    pub debug_level: i64,
    /// `UseSyslog` non-zero.
    pub use_syslog: bool,
    /// `None` when unset or empty. Executability is not checked here.
    pub helper_script: Option<PathBuf>,
}

impl Default for ApiConf {
    fn default() -> Self {
        ApiConf {
            log_file: PathBuf::from(DEFAULT_API_LOG),
            log_level: 0,
            debug_file: PathBuf::from(DEFAULT_API_LOG),
            debug_level: 0,
            use_syslog: false,
            helper_script: None,
        }
    }
}

/// The `auksd` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConf {
    pub primary_keytab: PathBuf,
    pub secondary_keytab: PathBuf,
    pub cache_dir: PathBuf,
    pub acl_file: PathBuf,
    pub log_file: PathBuf,
    pub log_level: i64,
    pub debug_file: PathBuf,
    pub debug_level: i64,
    /// Pending connection queue size (also the listen backlog); at least 1.
    pub queue_size: usize,
    /// Repository size hint.
    pub repo_size: usize,
    /// Worker threads (`Workers`, alias `NbWorkers`); 1 to [`MAX_WORKERS`].
    pub workers: usize,
    /// Seconds between clean stages.
    pub clean_delay: u64,
    pub replay_cache: bool,
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
            debug_file: PathBuf::from(DEFAULT_DAEMON_LOG),
            debug_level: 0,
            queue_size: 50,
            repo_size: 500,
            workers: 10,
            clean_delay: 300,
            replay_cache: true,
        }
    }
}

/// The `renewer` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewerConf {
    pub log_file: PathBuf,
    pub log_level: i64,
    pub debug_file: PathBuf,
    pub debug_level: i64,
    /// Seconds between renewal passes.
    pub delay: u64,
    /// `MinLifeTime`, seconds.
    pub min_lifetime: u64,
}

impl Default for RenewerConf {
    fn default() -> Self {
        RenewerConf {
            log_file: PathBuf::from(DEFAULT_RENEWER_LOG),
            log_level: 1,
            debug_file: PathBuf::from(DEFAULT_RENEWER_LOG),
            debug_level: 0,
            delay: 60,
            min_lifetime: 300,
        }
    }
}

/// Configuration of client programs (`auks`, renewer, plugins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub path: PathBuf,
    pub common: CommonConf,
    pub api: ApiConf,
    /// Defaults when the file has no `ren*` block.
    pub renewer: RenewerConf,
    /// Non-fatal findings (unknown or repeated keys, odd booleans), each
    /// prefixed with `file:line:`.
    pub warnings: Vec<String>,
}

/// Configuration of `auksd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    pub path: PathBuf,
    pub common: CommonConf,
    pub auksd: DaemonConf,
    /// Non-fatal findings (unknown or repeated keys, odd booleans), each
    /// prefixed with `file:line:`.
    pub warnings: Vec<String>,
}

/// Lookup for client programs: explicit > `$AUKS_CONF` > [`DEFAULT_CONF`].
/// An empty explicit path or environment variable counts as unset.
pub fn client_conf_path(explicit: Option<&Path>) -> PathBuf {
    lookup(explicit, ENV_CLIENT_CONF)
}

/// Lookup for the daemon: explicit > `$AUKSD_CONF` > [`DEFAULT_CONF`].
/// An empty explicit path or environment variable counts as unset.
pub fn daemon_conf_path(explicit: Option<&Path>) -> PathBuf {
    lookup(explicit, ENV_DAEMON_CONF)
}

fn lookup(explicit: Option<&Path>, var: &str) -> PathBuf {
    if let Some(p) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return p.to_path_buf();
    }
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_CONF),
    }
}

/// Picks the unique block whose name satisfies `matches`.
fn select<'a>(
    conf: &'a ConfFile,
    kind: &str,
    matches: impl Fn(&str) -> bool,
) -> Result<Option<&'a Block>, ConfigError> {
    let mut found: Option<&Block> = None;
    for b in conf.blocks.iter().filter(|b| matches(&b.name)) {
        if let Some(first) = found {
            let detail = if b.name == first.name {
                format!("first defined at line {}", first.line)
            } else {
                format!(
                    "block '{}' and block '{}' at line {} both select it",
                    b.name, first.name, first.line
                )
            };
            return Err(ConfigError::DuplicateBlock {
                path: conf.path.clone(),
                line: b.line,
                block: kind.to_string(),
                detail,
            });
        }
        found = Some(b);
    }
    Ok(found)
}

fn require<'a>(
    conf: &'a ConfFile,
    kind: &str,
    matches: impl Fn(&str) -> bool,
) -> Result<&'a Block, ConfigError> {
    select(conf, kind, matches)?.ok_or_else(|| ConfigError::MissingBlock {
        path: conf.path.clone(),
        block: kind.to_string(),
    })
}

fn read_endpoint(r: &mut BlockReader<'_>, primary: bool) -> Endpoint {
    let (h, a, p, n) = if primary {
        (
            "PrimaryHost",
            "PrimaryAddress",
            "PrimaryPort",
            "PrimaryPrincipal",
        )
    } else {
        (
            "SecondaryHost",
            "SecondaryAddress",
            "SecondaryPort",
            "SecondaryPrincipal",
        )
    };
    let host = r.string(h, DEFAULT_HOST);
    let address = r.entry(a).map_or_else(|| host.clone(), |e| e.value.clone());
    Endpoint {
        port: r.string(p, DEFAULT_PORT),
        principal: r.string(n, ""),
        host,
        address,
    }
}

fn read_common(path: &Path, b: &Block, w: &mut Vec<String>) -> Result<CommonConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = CommonConf::default();
    let primary = read_endpoint(&mut r, true);
    let secondary = read_endpoint(&mut r, false);
    let nat = r.boolean("NAT", d.nat);
    let retries = r.int("Retries", d.retries, INT_MIN, INT_MAX)?;
    let timeout = r.uint("Timeout", d.timeout)?;
    let delay = r.uint("Delay", d.delay)?;
    let cross_realm = Some(r.string("CrossRealm", "")).filter(|s| !s.is_empty());
    r.finish();
    Ok(CommonConf {
        primary,
        secondary,
        nat,
        retries,
        timeout,
        delay,
        cross_realm,
    })
}

fn read_api(path: &Path, b: &Block, w: &mut Vec<String>) -> Result<ApiConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = ApiConf::default();
    let log_file = r.path_value("LogFile", DEFAULT_API_LOG);
    let log_level = r.int("LogLevel", d.log_level, INT_MIN, INT_MAX)?;
    let debug_file = r.path_value("DebugFile", DEFAULT_API_LOG);
    let debug_level = r.int("DebugLevel", d.debug_level, INT_MIN, INT_MAX)?;
    let use_syslog = r.int("UseSyslog", 0, INT_MIN, INT_MAX)? != 0;
    let helper_script = r
        .entry("HelperScript")
        .filter(|e| !e.value.is_empty())
        .map(|e| PathBuf::from(&e.value));
    r.finish();
    Ok(ApiConf {
        log_file,
        log_level,
        debug_file,
        debug_level,
        use_syslog,
        helper_script,
    })
}

fn read_renewer(path: &Path, b: &Block, w: &mut Vec<String>) -> Result<RenewerConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = RenewerConf::default();
    let log_file = r.path_value("LogFile", DEFAULT_RENEWER_LOG);
    let log_level = r.int("LogLevel", d.log_level, INT_MIN, INT_MAX)?;
    let debug_file = r.path_value("DebugFile", DEFAULT_RENEWER_LOG);
    let debug_level = r.int("DebugLevel", d.debug_level, INT_MIN, INT_MAX)?;
    let delay = r.uint("Delay", d.delay)?;
    let min_lifetime = r.uint("MinLifeTime", d.min_lifetime)?;
    r.finish();
    Ok(RenewerConf {
        log_file,
        log_level,
        debug_file,
        debug_level,
        delay,
        min_lifetime,
    })
}

fn read_auksd(path: &Path, b: &Block, w: &mut Vec<String>) -> Result<DaemonConf, ConfigError> {
    let mut r = BlockReader::new(path, b, w);
    let d = DaemonConf::default();
    let primary_keytab = r.path_value("PrimaryKeytab", DEFAULT_KEYTAB);
    let secondary_keytab = r.path_value("SecondaryKeytab", DEFAULT_KEYTAB);
    let cache_dir = r.path_value("CacheDir", DEFAULT_CACHE_DIR);
    let acl_file = r.path_value("ACLFile", DEFAULT_ACL);
    let log_file = r.path_value("LogFile", DEFAULT_DAEMON_LOG);
    let log_level = r.int("LogLevel", d.log_level, INT_MIN, INT_MAX)?;
    let debug_file = r.path_value("DebugFile", DEFAULT_DAEMON_LOG);
    let debug_level = r.int("DebugLevel", d.debug_level, INT_MIN, INT_MAX)?;
    let queue_size = r.int("QueueSize", 50, 1, INT_MAX)?;
    let repo_size = r.int("RepoSize", 500, 0, INT_MAX)?;
    // The C daemon reads `Workers`; `NbWorkers` is accepted as an alias.
    let workers_key = if r.entry("Workers").is_some() {
        if let Some(alias) = r.entry("NbWorkers") {
            let msg = format!("key '{}' ignored: 'Workers' is also set", alias.key);
            r.warn(alias.line, msg);
        }
        "Workers"
    } else {
        "NbWorkers"
    };
    let workers = r.int(workers_key, 10, 1, MAX_WORKERS)?;
    let clean_delay = r.uint("CleanDelay", d.clean_delay)?;
    let replay_cache = r.boolean("ReplayCache", d.replay_cache);
    r.finish();
    Ok(DaemonConf {
        primary_keytab,
        secondary_keytab,
        cache_dir,
        acl_file,
        log_file,
        log_level,
        debug_file,
        debug_level,
        queue_size: usize::try_from(queue_size).unwrap_or(d.queue_size),
        repo_size: usize::try_from(repo_size).unwrap_or(d.repo_size),
        workers: usize::try_from(workers).unwrap_or(d.workers),
        clean_delay,
        replay_cache,
    })
}

impl ClientConfig {
    /// Loads the client configuration from the file chosen by
    /// [`client_conf_path`].
    pub fn load(explicit: Option<&Path>) -> Result<ClientConfig, ConfigError> {
        let conf = parse_file(&client_conf_path(explicit))?;
        ClientConfig::from_conf(&conf)
    }

    /// Builds the client configuration from a parsed file. Blocks: exactly
    /// one whose name starts with `common`, exactly one starting with `api`,
    /// at most one starting with `ren`; other blocks are ignored.
    pub fn from_conf(conf: &ConfFile) -> Result<ClientConfig, ConfigError> {
        let common_b = require(conf, "common", |n| n.starts_with("common"))?;
        let api_b = require(conf, "api", |n| n.starts_with("api"))?;
        let ren_b = select(conf, "renewer", |n| n.starts_with("ren"))?;
        let mut warnings = Vec::new();
        let common = read_common(&conf.path, common_b, &mut warnings)?;
        let api = read_api(&conf.path, api_b, &mut warnings)?;
        let renewer = match ren_b {
            Some(b) => read_renewer(&conf.path, b, &mut warnings)?,
            None => RenewerConf::default(),
        };
        Ok(ClientConfig {
            path: conf.path.clone(),
            common,
            api,
            renewer,
            warnings,
        })
    }
}

impl DaemonConfig {
    /// Loads the daemon configuration from the file chosen by
    /// [`daemon_conf_path`].
    pub fn load(explicit: Option<&Path>) -> Result<DaemonConfig, ConfigError> {
        let conf = parse_file(&daemon_conf_path(explicit))?;
        DaemonConfig::from_conf(&conf)
    }

    /// Builds the daemon configuration from a parsed file. Blocks: exactly
    /// one named `common`, exactly one whose name starts with `auksd`; other
    /// blocks are ignored.
    pub fn from_conf(conf: &ConfFile) -> Result<DaemonConfig, ConfigError> {
        let common_b = require(conf, "common", |n| n == "common")?;
        let auksd_b = require(conf, "auksd", |n| n.starts_with("auksd"))?;
        let mut warnings = Vec::new();
        let common = read_common(&conf.path, common_b, &mut warnings)?;
        let auksd = read_auksd(&conf.path, auksd_b, &mut warnings)?;
        Ok(DaemonConfig {
            path: conf.path.clone(),
            common,
            auksd,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/etc/auks/auks.conf";

    fn parse(text: &str) -> Result<ConfFile, ConfigError> {
        parse_str(text, Path::new(P))
    }

    fn syntax_err(text: &str) -> (usize, String) {
        match parse(text) {
            Err(ConfigError::Syntax { line, message, .. }) => (line, message),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    fn client(text: &str) -> Result<ClientConfig, ConfigError> {
        ClientConfig::from_conf(&parse(text)?)
    }

    fn daemon(text: &str) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::from_conf(&parse(text)?)
    }

    const DEPLOYMENT: &str = r#"common {
 PrimaryHost = "auks.example.com" ;
 PrimaryAddress = "" ;
 PrimaryPort = 12345 ;
 PrimaryPrincipal = "host/auks.example.com@EXAMPLE.COM" ;
 SecondaryHost = "auks2" ;
 SecondaryAddress = "10.0.0.2" ;
 SecondaryPort = "12345" ;
 SecondaryPrincipal = "host/auks2@EXAMPLE.COM" ;
 NAT = no ;
 Retries = 3 ;
 Timeout = 10 ;
 Delay = 3 ;
}
api {
 LogFile = "/tmp/auksapi.log" ;
 LogLevel = "0" ;
 DebugFile = "/tmp/auksapi.log" ;
 DebugLevel = "0" ;
}
auksd {
 PrimaryKeytab = "/etc/krb5.keytab" ;
 SecondaryKeytab = "/etc/krb5.keytab" ;
 LogFile = "/var/log/auksd.log" ;
 LogLevel = "2" ;
 DebugFile = "/var/log/auksd.log" ;
 DebugLevel = "0" ;
 CacheDir = "/var/cache/auks" ;
 ACLFile = "/etc/auks/auks.acl" ;
 NbWorkers = "10" ;
 QueueSize = "50" ;
 RepoSize = "1000" ;
 CleanDelay = "300" ;
}
renewer {
 LogFile = "/var/log/auksdrenewer.log" ;
 LogLevel = "1" ;
 DebugFile = "/var/log/auksdrenewer.log" ;
 DebugLevel = "0" ;
 Delay = "60" ;
 MinLifeTime = "600" ;
}
"#;

    /// Layout of the example file shipped with the C sources: banner
    /// comments, tabs around '=', commented-out keys, blank lines, a quoted
    /// value directly followed by ';', C key spellings.
    const C_EXAMPLE_STYLE: &str = "#----------------\n\
# auks configuration\n\
#----------------\n\
\n\
common {\n\
\n\
 # Primary daemon configuration\n\
 PrimaryHost        = \t\"auks\" ;\n\
 #PrimaryAddress     = \t\"\" ;\n\
 PrimaryPort        = \t12345 ;\n\
 PrimaryPrincipal   = \t\"host/auks.realm.org@REALM.ORG\";\n\
 SecondaryHost      = \t\"auks2\" ;\n\
 CrossRealm         =\t\"\" ;\n\
 NAT                =  \tyes ;\n\
 Retries            =\t 3 ;\n\
 Timeout            =   10 ;\n\
 Delay              =    3 ;\n\
\n\
}\n\
\n\
api {\n\
 # log file\n\
 LogFile            =  \t\"/var/log/auksapi.log\" ;\n\
 LogLevel           =  \t\"0\" ;\n\
 UseSyslog          =  \t1 ;\n\
}\n\
\n\
auksd {\n\
 PrimaryKeytab      = \t\"/etc/krb5.keytab\" ;\n\
 QueueSize          =  \t50 ;\n\
 RepoSize           = \t500 ;\n\
 Workers            =  \t10 ;\n\
 CleanDelay         = \t300 ;\n\
 ReplayCache        = \tyes ;\n\
}\n\
\n\
renewer {\n\
 Delay              = \t60 ;\n\
 Minlifetime        = \t600 ;\n\
}\n";

    // ----- grammar ---------------------------------------------------------

    #[test]
    fn basic_structure() {
        let c = parse("a { k = v ; }\n\nb{x=1;y='2';z=\"3\";}").unwrap();
        assert_eq!(c.path, Path::new(P));
        assert_eq!(c.blocks.len(), 2);
        assert_eq!(c.blocks[0].name, "a");
        assert_eq!(c.blocks[0].line, 1);
        assert_eq!(
            c.blocks[0].entries,
            vec![Entry {
                key: "k".into(),
                value: "v".into(),
                line: 1
            }]
        );
        assert_eq!(c.blocks[1].line, 3);
        assert_eq!(c.blocks[1].get("x"), Some("1"));
        assert_eq!(c.blocks[1].get("y"), Some("2"));
        assert_eq!(c.blocks[1].get("z"), Some("3"));
        assert_eq!(c.blocks[1].get("w"), None);
    }

    #[test]
    fn empty_block_and_free_layout() {
        let c = parse("\n\n  empty\n{\n}\nb\n{\nk\n=\nv\n;\n}").unwrap();
        assert_eq!(c.blocks[0].name, "empty");
        assert_eq!(c.blocks[0].line, 3);
        assert!(c.blocks[0].entries.is_empty());
        assert_eq!(c.blocks[1].entries[0].line, 8);
        assert_eq!(c.blocks[1].get("k"), Some("v"));
    }

    #[test]
    fn comments_everywhere() {
        let text = "# head\n\
                    blk # after name\n\
                    { # after brace\n\
                    # full line\n\
                    key # after key\n\
                    = # after equal\n\
                    value# right after a bare value\n\
                    ; # after semicolon\n\
                    k2 = \"q\" # after quoted value\n\
                    ;\n\
                    } # after close\n\
                    # trailing comment without newline";
        let c = parse(text).unwrap();
        assert_eq!(c.blocks[0].get("key"), Some("value"));
        assert_eq!(c.blocks[0].get("k2"), Some("q"));
    }

    #[test]
    fn hash_inside_quotes_is_a_comment() {
        let (line, msg) = syntax_err("b {\n k = \"a#b\" ;\n}\n");
        assert_eq!(line, 2);
        assert!(msg.contains("missing closing quote"), "{msg}");
        assert!(msg.contains("'k'"), "{msg}");
        let (line, msg) = syntax_err("b {\n k = 'a#b' ;\n}\n");
        assert_eq!(line, 2);
        assert!(msg.contains("missing closing quote"), "{msg}");
    }

    #[test]
    fn double_quote_escapes() {
        let c = parse(r#"b { k = "a\"b\\c\;d\x" ; s = "sp ace;" ; }"#).unwrap();
        assert_eq!(c.blocks[0].get("k"), Some("a\"b\\c;dx"));
        assert_eq!(c.blocks[0].get("s"), Some("sp ace;"));
    }

    #[test]
    fn single_quotes_have_no_escapes() {
        let c = parse(r#"b { k = 'a\b"c' ; }"#).unwrap();
        assert_eq!(c.blocks[0].get("k"), Some("a\\b\"c"));
    }

    #[test]
    fn continuation_line() {
        let c = parse("b {\n k = \"abc\\\ndef\" ;\n n = 1 ;\n}").unwrap();
        assert_eq!(c.blocks[0].get("k"), Some("abcdef"));
        // Line counting continues across the continuation.
        assert_eq!(c.blocks[0].entries[1].line, 4);
    }

    #[test]
    fn escaped_hash_c_compat() {
        // After a backslash, "#..." is a comment and its newline a continuation.
        let c = parse("b { k = \"ab\\# note\ncd\" ; }").unwrap();
        assert_eq!(c.blocks[0].get("k"), Some("abcd"));
        let (_, msg) = syntax_err("b { k = \"ab\\#\ncd\" ; }");
        assert!(msg.contains("missing closing quote"), "{msg}");
    }

    #[test]
    fn newline_in_quotes() {
        let (line, msg) = syntax_err("b {\n k = \"abc\ndef\" ;\n}");
        assert_eq!(line, 2);
        assert!(msg.contains("missing closing quote in value of key 'k'"));
        let (line, _) = syntax_err("b {\n\n k = 'abc\ndef' ;\n}");
        assert_eq!(line, 3);
        let (_, msg) = syntax_err("b { k = \"abc");
        assert!(msg.contains("missing closing quote"));
        let (_, msg) = syntax_err("b { k = \"abc\\");
        assert!(msg.contains("missing closing quote"));
    }

    #[test]
    fn missing_semicolon() {
        let text = "common {\n PrimaryHost = a ;\n\n\n\n\n\n\n\n\n\n PrimaryPort = 12345\n}\n";
        let err = parse(text).unwrap_err();
        let s = err.to_string();
        assert!(
            s.starts_with("/etc/auks/auks.conf:13: expected ';' after value of key 'PrimaryPort'"),
            "{s}"
        );
        let (line, msg) = syntax_err("b { k = \"v\" }");
        assert_eq!(line, 1);
        assert_eq!(msg, "expected ';' after value of key 'k', found '}'");
        let (_, msg) = syntax_err("b { k = a b ; }");
        assert!(msg.contains("expected ';'"), "{msg}");
    }

    #[test]
    fn missing_close_brace() {
        let (line, msg) = syntax_err("blk {\n k = v ;\n");
        assert_eq!(line, 3);
        assert!(msg.contains("'}'") && msg.contains("'blk'") && msg.contains("line 1"));
        let (_, msg) = syntax_err("a { k = v ; b { }");
        assert!(msg.contains("expected '='"), "{msg}");
    }

    #[test]
    fn semicolon_after_block_is_an_error() {
        let (_, msg) = syntax_err("a { } ;");
        assert!(msg.contains("expected block name"), "{msg}");
    }

    #[test]
    fn bad_identifiers() {
        let (_, msg) = syntax_err("1abc { }");
        assert_eq!(msg, "expected block name, found '1'");
        let (_, msg) = syntax_err("b { 9k = v ; }");
        assert!(msg.contains("expected key name or '}'"), "{msg}");
        let (_, msg) = syntax_err("b { k@ = v ; }");
        assert!(msg.contains("expected '=' after key 'k'"), "{msg}");
        let (_, msg) = syntax_err("\"b\" { }");
        assert!(msg.contains("expected block name"), "{msg}");
        let (_, msg) = syntax_err("b = { }");
        assert!(msg.contains("expected '{' after block name 'b'"), "{msg}");
        let c = parse("_a.b:c-d { .k-1:x = v ; }").unwrap();
        assert_eq!(c.blocks[0].name, "_a.b:c-d");
        assert_eq!(c.blocks[0].get(".K-1:X"), Some("v"));
    }

    #[test]
    fn missing_or_empty_value() {
        let (_, msg) = syntax_err("b { k = ; }");
        assert_eq!(msg, "expected value for key 'k', found ';'");
        let c = parse("b { k = \"\" ; l = '' ; }").unwrap();
        assert_eq!(c.blocks[0].get("k"), Some(""));
        assert_eq!(c.blocks[0].get("l"), Some(""));
    }

    #[test]
    fn bare_values_keep_special_characters() {
        let c = parse("rule { principal = ^[[:alnum:]]*@A.B$ ; x = a{b}=c\\d ; }").unwrap();
        assert_eq!(c.blocks[0].get("principal"), Some("^[[:alnum:]]*@A.B$"));
        assert_eq!(c.blocks[0].get("x"), Some("a{b}=c\\d"));
    }

    #[test]
    fn unexpected_characters() {
        let (_, msg) = syntax_err("b { k = v ; }\n\u{b}");
        assert!(msg.contains("expected block name"), "{msg}");
        let (_, msg) = syntax_err("b { k = \"a\0b\" ; }");
        assert!(msg.contains("NUL"), "{msg}");
        let (_, msg) = syntax_err("b { k = a\0b ; }");
        assert!(msg.contains("expected ';'"), "{msg}");
    }

    #[test]
    fn length_limits() {
        let ok = "v".repeat(MAX_TOKEN_LEN);
        assert!(parse(&format!("b {{ k = \"{ok}\" ; }}")).is_ok());
        let long = "v".repeat(MAX_TOKEN_LEN + 1);
        let (_, msg) = syntax_err(&format!("b {{ k = {long} ; }}"));
        assert!(msg.contains("too long"), "{msg}");
        let (_, msg) = syntax_err(&format!("b {{ {long} = 1 ; }}"));
        assert!(msg.contains("key name is too long"), "{msg}");
        let (_, msg) = syntax_err(&format!("{long} {{ }}"));
        assert!(msg.contains("block name is too long"), "{msg}");
    }

    #[test]
    fn no_blocks() {
        for text in ["", "   \n\n# only comments\n", "#x"] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, ConfigError::NoBlocks { .. }));
            assert_eq!(
                err.to_string(),
                "/etc/auks/auks.conf: no configuration blocks found"
            );
        }
    }

    #[test]
    fn case_insensitive_keys_first_wins() {
        let c = parse("b { PrimaryHost = a ; primaryhost = b ; PRIMARYHOST = c ; }").unwrap();
        assert_eq!(c.blocks[0].get("primaryHOST"), Some("a"));
        assert_eq!(c.blocks[0].entry("PrimaryHost").map(|e| e.line), Some(1));
        let cfg = client("common { primaryhost = x ; PrimaryHost = y ; } api { }").unwrap();
        assert_eq!(cfg.common.primary.host, "x");
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("duplicate key 'PrimaryHost'")));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "\u{feff}a { }",
            "a { k = \"é\\é\" ; }",
            "a { k = v ;",
            "a {",
            "a",
            "{",
            "}",
            "a { k",
            "a { k =",
            "a { k = \\",
            "a { k = \"\\",
            "a { k = \"\\#x",
            "é { }",
            "a { k = 'x",
        ];
        for s in samples {
            let _ = parse(s);
            let _ = client(s);
            let _ = daemon(s);
        }
        let c = parse("a { k = \"é\\é\" ; }").unwrap();
        assert_eq!(c.blocks[0].get("k"), Some("éé"));
    }

    #[test]
    fn parse_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.conf");
        let err = parse_file(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(err.to_string().contains("nope.conf: cannot read file"));

        let bad = dir.path().join("bad.conf");
        std::fs::write(&bad, b"a {\n k = \"\xff\" ;\n}\n").unwrap();
        match parse_file(&bad) {
            Err(ConfigError::Syntax { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("UTF-8"));
            }
            other => panic!("{other:?}"),
        }

        let good = dir.path().join("auks.conf");
        std::fs::write(&good, DEPLOYMENT).unwrap();
        let c = parse_file(&good).unwrap();
        assert_eq!(c.path, good);
        assert_eq!(c.blocks.len(), 4);
    }

    // ----- typed configuration ---------------------------------------------

    #[test]
    fn deployment_file_client() {
        let c = client(DEPLOYMENT).unwrap();
        assert_eq!(c.path, Path::new(P));
        assert_eq!(c.common.primary.host, "auks.example.com");
        assert_eq!(c.common.primary.address, "");
        assert_eq!(c.common.primary.connect_address(), "auks.example.com");
        assert_eq!(c.common.primary.port, "12345");
        assert_eq!(
            c.common.primary.principal,
            "host/auks.example.com@EXAMPLE.COM"
        );
        assert_eq!(c.common.secondary.host, "auks2");
        assert_eq!(c.common.secondary.address, "10.0.0.2");
        assert_eq!(c.common.secondary.connect_address(), "10.0.0.2");
        assert_eq!(c.common.secondary.principal, "host/auks2@EXAMPLE.COM");
        assert!(!c.common.nat);
        assert_eq!(c.common.retries, 3);
        assert_eq!(c.common.timeout, 10);
        assert_eq!(c.common.delay, 3);
        assert_eq!(c.common.cross_realm, None);
        assert_eq!(c.api, ApiConf::default());
        assert_eq!(c.renewer.log_level, 1);
        assert_eq!(c.renewer.delay, 60);
        assert_eq!(c.renewer.min_lifetime, 600);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn deployment_file_daemon() {
        let d = daemon(DEPLOYMENT).unwrap();
        assert_eq!(d.common.primary.host, "auks.example.com");
        let a = &d.auksd;
        assert_eq!(a.primary_keytab, Path::new("/etc/krb5.keytab"));
        assert_eq!(a.secondary_keytab, Path::new("/etc/krb5.keytab"));
        assert_eq!(a.cache_dir, Path::new("/var/cache/auks"));
        assert_eq!(a.acl_file, Path::new("/etc/auks/auks.acl"));
        assert_eq!(a.log_level, 2);
        assert_eq!(a.debug_level, 0);
        assert_eq!(a.workers, 10);
        assert_eq!(a.queue_size, 50);
        assert_eq!(a.repo_size, 1000);
        assert_eq!(a.clean_delay, 300);
        assert!(a.replay_cache);
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    #[test]
    fn c_example_style_file() {
        let c = client(C_EXAMPLE_STYLE).unwrap();
        assert_eq!(c.common.primary.host, "auks");
        assert_eq!(c.common.primary.address, "auks");
        assert_eq!(c.common.secondary.address, "auks2");
        assert_eq!(c.common.secondary.port, "12345");
        assert_eq!(c.common.secondary.principal, "");
        assert!(c.common.nat);
        assert_eq!(c.common.cross_realm, None);
        assert!(c.api.use_syslog);
        assert_eq!(c.api.log_file, Path::new("/var/log/auksapi.log"));
        assert_eq!(c.renewer.min_lifetime, 600);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let d = daemon(C_EXAMPLE_STYLE).unwrap();
        assert_eq!(d.auksd.workers, 10);
        assert_eq!(d.auksd.repo_size, 500);
        assert!(d.auksd.replay_cache);
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    #[test]
    fn all_defaults() {
        let c = client("common { } api { }").unwrap();
        assert_eq!(c.common, CommonConf::default());
        assert_eq!(c.api, ApiConf::default());
        assert_eq!(c.renewer, RenewerConf::default());
        let e = &c.common.primary;
        assert_eq!(
            (
                e.host.as_str(),
                e.address.as_str(),
                e.port.as_str(),
                e.principal.as_str()
            ),
            ("localhost", "localhost", "12345", "")
        );
        assert_eq!(c.common.secondary, c.common.primary);
        assert!(!c.common.nat);
        assert_eq!(
            (c.common.retries, c.common.timeout, c.common.delay),
            (3, 10, 10)
        );
        assert_eq!(c.api.log_file, Path::new("/tmp/auksapi.log"));
        assert_eq!(c.api.debug_file, Path::new("/tmp/auksapi.log"));
        assert_eq!((c.api.log_level, c.api.debug_level), (0, 0));
        assert!(!c.api.use_syslog);
        assert_eq!(c.api.helper_script, None);
        let r = &c.renewer;
        assert_eq!(r.log_file, Path::new("/var/log/auksdrenewer.log"));
        assert_eq!(r.debug_file, Path::new("/var/log/auksdrenewer.log"));
        assert_eq!((r.log_level, r.debug_level), (1, 0));
        assert_eq!((r.delay, r.min_lifetime), (60, 300));

        let d = daemon("common { } auksd { }").unwrap();
        let a = &d.auksd;
        assert_eq!(*a, DaemonConf::default());
        assert_eq!(a.primary_keytab, Path::new("/etc/auks/auks.keytab"));
        assert_eq!(a.secondary_keytab, Path::new("/etc/auks/auks.keytab"));
        assert_eq!(a.cache_dir, Path::new("/var/cache/auks"));
        assert_eq!(a.acl_file, Path::new("/etc/auks/auks.acl"));
        assert_eq!(a.log_file, Path::new("/var/log/auksd.log"));
        assert_eq!(a.debug_file, Path::new("/var/log/auksd.log"));
        assert_eq!((a.log_level, a.debug_level), (1, 0));
        assert_eq!((a.queue_size, a.repo_size, a.workers), (50, 500, 10));
        assert_eq!(a.clean_delay, 300);
        assert!(a.replay_cache);
    }

    #[test]
    fn address_defaults_to_host_only_when_unset() {
        let c = client(
            "common { PrimaryHost = h1 ; SecondaryHost = h2 ; SecondaryAddress = a2 ; } api { }",
        )
        .unwrap();
        assert_eq!(c.common.primary.address, "h1");
        assert_eq!(c.common.secondary.address, "a2");
    }

    #[test]
    fn cross_realm_and_helper_script() {
        let c =
            client("common { CrossRealm = OTHER.ORG ; } api { HelperScript = \"/usr/bin/h\" ; }")
                .unwrap();
        assert_eq!(c.common.cross_realm.as_deref(), Some("OTHER.ORG"));
        assert_eq!(c.api.helper_script, Some(PathBuf::from("/usr/bin/h")));
        let c = client("common { CrossRealm = '' ; } api { HelperScript = '' ; }").unwrap();
        assert_eq!(c.common.cross_realm, None);
        assert_eq!(c.api.helper_script, None);
    }

    #[test]
    fn block_selection_client() {
        let c = client("commonfoo { Retries = 7 ; } apix { LogLevel = 2 ; } ren_foo { Delay = 5 ; } auksd { Workers = x ; } other { }")
            .unwrap();
        assert_eq!(c.common.retries, 7);
        assert_eq!(c.api.log_level, 2);
        assert_eq!(c.renewer.delay, 5);
        let c = client("common { } api { } renewer { Delay = 9 ; }").unwrap();
        assert_eq!(c.renewer.delay, 9);
        // Block names are case-sensitive.
        let err = client("Common { } api { }").unwrap_err();
        assert!(matches!(err, ConfigError::MissingBlock { .. }));
    }

    #[test]
    fn block_selection_daemon() {
        let d = daemon("commonx { Retries = 1 ; } common { Retries = 2 ; } auksd_main { Workers = 3 ; } api { } renewer { }")
            .unwrap();
        assert_eq!(d.common.retries, 2);
        assert_eq!(d.auksd.workers, 3);
        let err = daemon("commonx { } auksd { }").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/auks/auks.conf: configuration file is incomplete: missing block 'common'"
        );
    }

    #[test]
    fn missing_and_duplicate_blocks() {
        let err = client("common { }\nrenewer { }").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/auks/auks.conf: configuration file is incomplete: missing block 'api'"
        );
        let err = client("common { }\napi { }\ncommon { }").unwrap_err();
        match &err {
            ConfigError::DuplicateBlock { line, block, .. } => {
                assert_eq!((*line, block.as_str()), (3, "common"));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("duplicate block 'common'"));
        let err = daemon("common { }\nauksd { }\ncommon { }").unwrap_err();
        assert!(matches!(err, ConfigError::DuplicateBlock { .. }));
        let err = daemon("common { }\nauksd { }\nauksdrenewer { }").unwrap_err();
        assert!(err.to_string().contains("duplicate block 'auksd'"), "{err}");
        let err = client("common { } api { } renewer { } ren2 { }").unwrap_err();
        assert!(
            err.to_string().contains("duplicate block 'renewer'"),
            "{err}"
        );
        let err = daemon("common { } api { }").unwrap_err();
        assert!(err.to_string().contains("missing block 'auksd'"));
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let c =
            client("common {\n Foo = 1 ;\n} api {\n Bar = 2 ; LogLevel = 1 ;\n} zzz { Baz = 1 ; }")
                .unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert_eq!(
            c.warnings[0],
            "/etc/auks/auks.conf:2: unknown key 'Foo' in block 'common' ignored"
        );
        assert!(c.warnings[1].starts_with("/etc/auks/auks.conf:4: unknown key 'Bar'"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_int("10"), Some(10));
        assert_eq!(parse_int(" +10"), Some(10));
        assert_eq!(parse_int("\t-3 "), Some(-3));
        assert_eq!(parse_int("007"), Some(7));
        for bad in ["", " ", "+", "-", "1x", "x1", "0x10", "1 2", "1.5", "- 1"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
        assert_eq!(parse_int("99999999999999999999999"), None);

        let c = client("common { Timeout = \" 20 \" ; Retries = -1 ; } api { LogLevel = '+2' ; }")
            .unwrap();
        assert_eq!(c.common.timeout, 20);
        assert_eq!(c.common.retries, -1);
        assert_eq!(c.api.log_level, 2);
    }

    #[test]
    fn invalid_numbers_are_errors() {
        let err = client("common {\n Timeout = 10s ;\n} api { }").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/auks/auks.conf:2: invalid value \"10s\" for key 'Timeout': expected a decimal integer"
        );
        let err = client("common { Delay = -1 ; } api { }").unwrap_err();
        assert!(err.to_string().contains("must not be negative"), "{err}");
        let err = client("common { } api { } renewer { MinLifeTime = abc ; }").unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }));
        let err = client("common { Retries = 99999999999 ; } api { }").unwrap_err();
        assert!(err.to_string().contains("between"), "{err}");
        let err = client("common { } api { UseSyslog = yes ; }").unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }));
        for bad in [
            "Workers = 0",
            "QueueSize = 0",
            "RepoSize = -5",
            "CleanDelay = -1",
            "Workers = 100000",
            "NbWorkers = x",
        ] {
            let err = daemon(&format!("common {{ }} auksd {{ {bad} ; }}")).unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidValue { .. }),
                "{bad}: {err}"
            );
        }
        let d = daemon("common { } auksd { RepoSize = 0 ; CleanDelay = 0 ; }").unwrap();
        assert_eq!((d.auksd.repo_size, d.auksd.clean_delay), (0, 0));
    }

    #[test]
    fn workers_alias() {
        let d = daemon("common { } auksd { NbWorkers = 4 ; }").unwrap();
        assert_eq!(d.auksd.workers, 4);
        assert!(d.warnings.is_empty());
        let d = daemon("common { } auksd { workers = 5 ; NbWorkers = 4 ; }").unwrap();
        assert_eq!(d.auksd.workers, 5);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].contains("'NbWorkers' ignored"));
    }

    #[test]
    fn booleans() {
        let c = client("common { NAT = YES ; } api { }").unwrap();
        assert!(c.common.nat);
        assert!(c.warnings.is_empty());
        let c = client("common { NAT = No ; } api { }").unwrap();
        assert!(!c.common.nat);
        assert!(c.warnings.is_empty());
        let c = client("common {\n NAT = true ;\n} api { }").unwrap();
        assert!(!c.common.nat);
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].starts_with("/etc/auks/auks.conf:2: value \"true\" of key 'NAT'"));
        let d = daemon("common { } auksd { ReplayCache = no ; }").unwrap();
        assert!(!d.auksd.replay_cache);
        let d = daemon("common { } auksd { ReplayCache = 1 ; }").unwrap();
        assert!(!d.auksd.replay_cache);
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn use_syslog_numeric() {
        let c = client("common { } api { UseSyslog = 0 ; }").unwrap();
        assert!(!c.api.use_syslog);
        let c = client("common { } api { UseSyslog = 2 ; }").unwrap();
        assert!(c.api.use_syslog);
    }

    #[test]
    fn lookup_order() {
        // Environment handling is checked without touching the process
        // environment (tests run in parallel): explicit always wins.
        let p = Path::new("/x/y.conf");
        assert_eq!(client_conf_path(Some(p)), p);
        assert_eq!(daemon_conf_path(Some(p)), p);
        let expected_client = std::env::var_os(ENV_CLIENT_CONF)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONF), PathBuf::from);
        assert_eq!(client_conf_path(None), expected_client);
        assert_eq!(client_conf_path(Some(Path::new(""))), expected_client);
        let expected_daemon = std::env::var_os(ENV_DAEMON_CONF)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONF), PathBuf::from);
        assert_eq!(daemon_conf_path(None), expected_daemon);
    }

    #[test]
    fn load_explicit_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auks.conf");
        std::fs::write(&f, DEPLOYMENT).unwrap();
        let c = ClientConfig::load(Some(&f)).unwrap();
        assert_eq!(c.path, f);
        let d = DaemonConfig::load(Some(&f)).unwrap();
        assert_eq!(d.auksd.repo_size, 1000);
        let err = ClientConfig::load(Some(&dir.path().join("missing"))).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
    }
}
