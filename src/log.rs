//! A small logger shared by the programs, writing C AUKS-style lines:
//! `<ctime> [INFO<n>] [euid=<euid>,pid=<pid>] <text>`.
//!
//! A message of level `n` is written when `n <= level`. Nothing here ever
//! receives ticket bytes: callers log principals, uids, times and reasons.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

enum Sink {
    Stderr,
    File(File),
}

struct Logger {
    level: i64,
    sink: Sink,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Log to standard error at `level`.
pub fn to_stderr(level: i64) {
    set(Logger {
        level,
        sink: Sink::Stderr,
    });
}

/// Log to a file (append, created 0640) at `level`; a level <= 0 disables
/// logging without opening the file.
pub fn to_file(path: &Path, level: i64) -> std::io::Result<()> {
    if level <= 0 {
        set(Logger {
            level: 0,
            sink: Sink::Stderr,
        });
        return Ok(());
    }
    use std::os::unix::fs::OpenOptionsExt;
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    set(Logger {
        level,
        sink: Sink::File(f),
    });
    Ok(())
}

/// Disable logging.
pub fn off() {
    set(Logger {
        level: 0,
        sink: Sink::Stderr,
    });
}

fn set(l: Logger) {
    if let Ok(mut g) = LOGGER.lock() {
        *g = Some(l);
    }
}

/// Whether a message of `level` would be written.
pub fn enabled(level: i64) -> bool {
    match LOGGER.lock() {
        Ok(g) => g.as_ref().is_some_and(|l| level <= l.level),
        Err(_) => false,
    }
}

/// Write one message at `level` (1 = start/stop, 2 = per request, 3 = details).
pub fn write(level: i64, msg: &str) {
    let Ok(mut g) = LOGGER.lock() else { return };
    let Some(l) = g.as_mut() else { return };
    if level > l.level {
        return;
    }
    let now = chrono::Local::now().format("%a %b %e %H:%M:%S %Y");
    let line = format!(
        "{now} [INFO{level}] [euid={},pid={}] {}\n",
        nix::unistd::geteuid(),
        std::process::id(),
        msg.replace('\n', " ")
    );
    let _ = match &mut l.sink {
        Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
        Sink::File(f) => f.write_all(line.as_bytes()),
    };
}

/// `log!(level, "format", args...)`
#[macro_export]
macro_rules! log {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write($lvl, &format!($($arg)*));
        }
    };
}
