//! The block grammar of `auks.conf` and `auks.acl` (specification §9.1):
//! a hand-written scanner and parser producing the raw model of
//! [`super::model`]. It is the only tokenizer of the crate; the ACL parser
//! uses it too.
//!
//! Files written for the C implementation are accepted unchanged. Deliberate
//! differences from the C lexer (all reported with the file and line):
//! - values that do not fit the C buffers (1023 bytes) are rejected instead of
//!   being truncated, and NUL characters are rejected;
//! - a comment on the last line of a file without a final newline is accepted
//!   (the C lexer rejected it).

use std::fmt;
use std::io::Read;
use std::path::Path;

use super::{Block, ConfFile, ConfigError, Entry};

/// Longest block name, key or value accepted, in bytes (the C parser used
/// 1024-byte buffers including the terminating NUL).
pub const MAX_TOKEN_LEN: usize = 1023;
/// Largest configuration file read (a guard against `-f /dev/zero`).
pub const MAX_FILE_LEN: u64 = 4 * 1024 * 1024;

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

    /// Reads the longest run of characters satisfying `accept`.
    fn run_of(&mut self, accept: fn(char) -> bool) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !accept(c) {
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

    /// Reads a block name or a key followed by `sign` (`{` or `=`); returns
    /// the name and its line. `what` names it in messages.
    fn name_then(
        &mut self,
        (what, what_short): (&str, &str),
        sign: char,
    ) -> Result<(String, usize), ConfigError> {
        let line = self.line;
        let name = self.run_of(is_ident_char);
        self.check_len(line, what, &name)?;
        self.skip_blank();
        if self.peek() != Some(sign) {
            return self.err(
                self.line,
                format!(
                    "expected '{sign}' after {what_short} '{name}', found {}",
                    Found(self.peek())
                ),
            );
        }
        self.bump();
        Ok((name, line))
    }

    fn block(&mut self) -> Result<Block, ConfigError> {
        let (name, line) = self.name_then(("block name", "block name"), '{')?;
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
        let (key, line) = self.name_then(("key name", "key"), '=')?;
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
            Some(c) if is_bare_char(c) => self.run_of(is_bare_char),
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
