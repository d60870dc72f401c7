//! The C AUKS levels and the `log` crate levels.
//!
//! auks.conf has `LogLevel` and `DebugLevel` (blocks `api`, `auksd`,
//! `renewer`); each `-v`/`-d` on a command line adds one. The configured
//! level is `max(LogLevel, DebugLevel) + count(-v) + count(-d)`, and a
//! message of C level `n` is written when `n <= level`:
//!
//! | configured level | records written (`log` crate levels) |
//! |---|---|
//! | 0 (or less) | nothing (the log file is not even opened) |
//! | 1 | `error!`, `warn!`, `info!` — start/stop, failures, audit lines |
//! | 2 | and `debug!` — one line per request |
//! | 3 and more | and `trace!` — details |
//!
//! A record's C level, shown as `[INFO<n>]` in the file format, is 1 for
//! `warn!`/`info!`, 2 for `debug!` and 3 for `trace!`; `error!` is written as
//! `[ERROR]` as the C `xerror()` does. The legacy shim `crate::log!(n, ...)`
//! maps `n` the other way (1 → `info!`, 2 → `debug!`, 3+ → `trace!`).

use ::log::{Level, LevelFilter};

/// The `log` filter for a configured C level.
pub fn filter(c_level: i64) -> LevelFilter {
    match c_level {
        i64::MIN..=0 => LevelFilter::Off,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// The `log` level of a message of C level `n` (the `crate::log!` shim).
pub fn level_of(c_level: i64) -> Level {
    match c_level {
        i64::MIN..=1 => Level::Info,
        2 => Level::Debug,
        _ => Level::Trace,
    }
}

/// The C level of a record (1 for error, warn and info).
pub fn c_level_of(level: Level) -> u8 {
    match level {
        Level::Error | Level::Warn | Level::Info => 1,
        Level::Debug => 2,
        Level::Trace => 3,
    }
}

/// The syslog/journal severity of a record: err(3), warning(4), `info`
/// (the severity given for informational records, normally info(6)) and
/// debug(7).
pub fn severity(level: Level, info: u8) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => info,
        Level::Debug | Level::Trace => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_round_trips() {
        assert_eq!(filter(0), LevelFilter::Off);
        assert_eq!(filter(-3), LevelFilter::Off);
        assert_eq!(filter(1), LevelFilter::Info);
        assert_eq!(filter(2), LevelFilter::Debug);
        assert_eq!(filter(9), LevelFilter::Trace);
        for n in 1..=3 {
            assert_eq!(i64::from(c_level_of(level_of(n))), n);
            assert!(level_of(n) <= filter(n));
        }
        for n in 1..=2 {
            assert!(level_of(n + 1) > filter(n));
        }
        assert_eq!(severity(Level::Error, 6), 3);
        assert_eq!(severity(Level::Info, 5), 5);
        assert_eq!(severity(Level::Trace, 6), 7);
    }
}
