//! The C AUKS log line format, kept byte for byte so that existing log
//! parsers keep working.
//!
//! The C AUKS (`xlogger.c`) writes one line per message:
//!
//! ```text
//! <ctime> [INFO<n>] [euid=<euid>,pid=<pid>] <text>
//! <ctime> [ERROR] [euid=<euid>,pid=<pid>] <text>
//! ```
//!
//! where `<ctime>` is `ctime(3)` without its newline (`Sun Nov 29 21:05:28
//! 2026`, day of month padded with a space), `<n>` the verbosity level of the
//! message (1 = start/stop and errors, 2 = one line per request, 3 = details)
//! and `<euid>`/`<pid>` those of the writing process. Newlines inside a
//! message are replaced by spaces so that one record is always one line.
//!
//! The C debug stream (`[DBUG<n>]`, without euid/pid) is not produced: as
//! since the first auks-rs release, `DebugLevel` raises the one verbosity
//! level (see [`super::level`]).

use ::log::Level;

/// The `ctime(3)` layout without the trailing newline.
pub const CTIME_FORMAT: &str = "%a %b %e %H:%M:%S %Y";

/// The bracketed tag of a record: `ERROR` for errors, else `INFO<n>` with
/// the C level of the record ([`super::level::c_level_of`]).
pub fn tag(level: Level) -> String {
    match level {
        Level::Error => "ERROR".to_string(),
        l => format!("INFO{}", super::level::c_level_of(l)),
    }
}

/// One complete line (with its `\n`) in the C format.
pub fn line(now: &str, level: Level, euid: u32, pid: u32, msg: &str) -> String {
    format!(
        "{now} [{}] [euid={euid},pid={pid}] {}\n",
        tag(level),
        one_line(msg)
    )
}

/// `msg` with line breaks replaced by spaces.
pub fn one_line(msg: &str) -> String {
    msg.replace(['\n', '\r'], " ")
}

/// The current local time in the `ctime(3)` layout. Formatted once a
/// second per thread: the time zone lookup behind `chrono::Local` looks at
/// `/etc/localtime` on every call, and auksd logs a line per request.
pub fn now() -> String {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        if l.0 != secs {
            *l = (secs, chrono::Local::now().format(CTIME_FORMAT).to_string());
        }
        l.1.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_error_lines() {
        let now = "Sun Nov  1 09:05:28 2026";
        assert_eq!(
            line(now, Level::Info, 0, 42, "auksd : started"),
            "Sun Nov  1 09:05:28 2026 [INFO1] [euid=0,pid=42] auksd : started\n"
        );
        assert_eq!(
            line(now, Level::Debug, 7, 1, "a\nb"),
            "Sun Nov  1 09:05:28 2026 [INFO2] [euid=7,pid=1] a b\n"
        );
        assert_eq!(
            line(now, Level::Error, 0, 3, "bad"),
            "Sun Nov  1 09:05:28 2026 [ERROR] [euid=0,pid=3] bad\n"
        );
        assert_eq!(tag(Level::Trace), "INFO3");
        assert_eq!(tag(Level::Warn), "INFO1");
    }

    #[test]
    fn ctime_layout_pads_the_day_with_a_space() {
        use chrono::TimeZone;
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 9, 5, 28).unwrap();
        assert_eq!(
            t.format(CTIME_FORMAT).to_string(),
            "Sun Nov  1 09:05:28 2026"
        );
    }
}
