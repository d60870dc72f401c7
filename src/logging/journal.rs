//! The systemd journal through standard error.
//!
//! systemd connects a service's standard error to the journal and sets
//! `JOURNAL_STREAM=<dev>:<inode>` of that stream. When standard error still
//! is that stream, records are written as `<N>text` lines: the journal takes
//! `N` as the priority (`sd-daemon(3)`, `SD_ERR` = 3 ... `SD_DEBUG` = 7) and
//! stamps time, pid and uid itself, so there is no timestamp here and
//! `journalctl -p err -u auksd` finds the errors.

use std::os::fd::AsRawFd;

/// Whether standard error is the journal stream named by `JOURNAL_STREAM`.
pub fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = parse_stream(&v) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) {
        Ok(st) => st.st_dev == dev && st.st_ino == ino,
        Err(_) => false,
    }
}

/// Parse `<dev>:<inode>` (decimal).
pub fn parse_stream(v: &str) -> Option<(u64, u64)> {
    let (d, i) = v.trim().split_once(':')?;
    Some((d.parse().ok()?, i.parse().ok()?))
}

/// One journal line: `<N>text\n`.
pub fn line(level: ::log::Level, msg: &str) -> String {
    let sev = super::level::severity(level, super::syslog::SEVERITY_INFO);
    format!("<{sev}>{}\n", super::cformat::one_line(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::log::Level;

    #[test]
    fn priorities_prefix_each_line() {
        assert_eq!(line(Level::Error, "fatal: x"), "<3>fatal: x\n");
        assert_eq!(line(Level::Warn, "w"), "<4>w\n");
        assert_eq!(line(Level::Info, "a\nb"), "<6>a b\n");
        assert_eq!(line(Level::Debug, "d"), "<7>d\n");
        assert_eq!(parse_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_stream("8-1"), None);
    }
}
