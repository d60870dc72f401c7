//! The raw model of a parsed `auks.conf` or `auks.acl` file (§9.1): blocks of
//! `key = value ;` entries, each remembering its line, before any key is
//! given a type.

use std::path::PathBuf;

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
