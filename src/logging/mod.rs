//! The logging facade of every auks-rs program: the `log` crate, with one
//! backend chosen at start-up (and again at each reload) from auks.conf and
//! the command line.
//!
//! Backends ([`Target`]):
//! - the C AUKS log file format ([`cformat`]) in the configured `LogFile`,
//!   on standard error (`-F`, `-v`, `-d`) or on standard output (aukspriv
//!   `-v`);
//! - the systemd journal ([`journal`]) when standard error is the journal
//!   stream (`JOURNAL_STREAM`): `<N>` priority prefixes, no own timestamp;
//! - syslog ([`syslog`], `UseSyslog = yes` in the `api` block, and aukspriv);
//! - a callback (the SPANK plugin can route records to Slurm's log
//!   functions with [`Target::Callback`]).
//!
//! Levels follow the C `LogLevel`/`DebugLevel` numbers ([`level`]); the
//! audit trail of credential requests is [`audit`].
//! Nothing here receives ticket bytes or keys: callers log principals,
//! uids, addresses, times and reasons only.

pub mod audit;
pub mod cformat;
pub mod journal;
pub mod level;
pub mod syslog;

use ::log::{Level, Log, Metadata, Record};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, Once};

/// Errors of the logging layer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open log file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reach syslog at {path}: {source}")]
    Syslog {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where records go.
pub enum Target {
    /// Nowhere.
    Off,
    /// Standard error in the C format, or the journal format when standard
    /// error is the journal stream.
    Stderr,
    /// Standard output in the C format (aukspriv `-v`).
    Stdout,
    /// A file in the C format (append, created 0640, symlinks refused).
    File(PathBuf),
    /// The journal format on standard error, unconditionally.
    Journal,
    /// A syslog socket.
    Syslog {
        /// Normally [`syslog::DEV_LOG`].
        path: PathBuf,
        /// Program name shown in each message.
        ident: String,
        /// Facility code ([`syslog::FACILITY_USER`] as the C AUKS).
        facility: u8,
        /// Severity of informational records ([`syslog::SEVERITY_INFO`]).
        info_severity: u8,
    },
    /// A function receiving every record (the SPANK plugin: Slurm's log).
    Callback(fn(Level, &str)),
}

enum Sink {
    Off,
    Stderr,
    Stdout,
    File(File),
    Journal,
    Syslog(syslog::Syslog),
    Callback(fn(Level, &str)),
}

struct Facade;

static FACADE: Facade = Facade;
static SINK: Mutex<Sink> = Mutex::new(Sink::Off);
static LEVEL: AtomicI64 = AtomicI64::new(0);
/// Whether the sink writes lines in the C format (standard error or output,
/// a file): they are then made before its lock is taken.
static C_LINES: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Route records of C level up to `c_level` ([`level`]) to `target`. May be
/// called again (reload); a level <= 0 turns logging off without opening
/// anything.
pub fn init(c_level: i64, target: Target) -> Result<(), LogError> {
    INSTALL.call_once(|| {
        // Fails only if another logger is already installed (a host program
        // of the plugin): then records go there, which is what it wants.
        let _ = ::log::set_logger(&FACADE);
    });
    let sink = if c_level <= 0 {
        Sink::Off
    } else {
        open(target)?
    };
    let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
    *g = sink;
    let level = if matches!(*g, Sink::Off) { 0 } else { c_level };
    C_LINES.store(
        matches!(*g, Sink::Stderr | Sink::Stdout | Sink::File(_)),
        Ordering::Relaxed,
    );
    LEVEL.store(level, Ordering::Relaxed);
    ::log::set_max_level(level::filter(level));
    Ok(())
}

fn open(target: Target) -> Result<Sink, LogError> {
    Ok(match target {
        Target::Off => Sink::Off,
        Target::Stderr if journal::stderr_is_journal() => Sink::Journal,
        Target::Stderr => Sink::Stderr,
        Target::Stdout => Sink::Stdout,
        Target::Journal => Sink::Journal,
        Target::Callback(f) => Sink::Callback(f),
        Target::File(path) => Sink::File(open_file(&path)?),
        Target::Syslog {
            path,
            ident,
            facility,
            info_severity,
        } => match syslog::Syslog::connect(&path, &ident, facility, info_severity) {
            Ok(s) => Sink::Syslog(s),
            Err(source) => return Err(LogError::Syslog { path, source }),
        },
    })
}

fn open_file(path: &Path) -> Result<File, LogError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// The configured C level (0 when logging is off).
pub fn c_level() -> i64 {
    LEVEL.load(Ordering::Relaxed)
}

/// The program name (basename of argv\[0\]), the syslog ident.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "auks".to_string())
}

impl Log for Facade {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= level::filter(c_level())
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        let make = || {
            cformat::line(
                &cformat::now(),
                r.level(),
                nix::unistd::geteuid().as_raw(),
                std::process::id(),
                &msg,
            )
        };
        // A C-format line is made before the sink's lock is taken (every
        // worker of auksd logs its requests through it); under the lock
        // only if the sink changed in between (a reload).
        let mut early = C_LINES.load(Ordering::Relaxed).then(make);
        let mut c_line = || early.take().unwrap_or_else(make);
        let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
        // Write errors are ignored: there is nowhere left to report them.
        let _ = match &mut *g {
            Sink::Off => Ok(()),
            Sink::Stderr => std::io::stderr().lock().write_all(c_line().as_bytes()),
            Sink::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(c_line().as_bytes()).and_then(|()| o.flush())
            }
            Sink::File(f) => f.write_all(c_line().as_bytes()),
            Sink::Journal => std::io::stderr()
                .lock()
                .write_all(journal::line(r.level(), &msg).as_bytes()),
            Sink::Syslog(s) => {
                s.send(r.level(), &msg);
                Ok(())
            }
            Sink::Callback(f) => {
                f(r.level(), &cformat::one_line(&msg));
                Ok(())
            }
        };
    }

    fn flush(&self) {}
}
