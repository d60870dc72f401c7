//! A syslog client for the local daemon socket (`/dev/log`), used when
//! auks.conf says `UseSyslog = yes` (block `api`, as the C AUKS) and by
//! aukspriv (`AUKS_PRIV_SYSLOG_PRIO`).
//!
//! Messages are sent as the C library's `syslog(3)` sends them to the local
//! socket (RFC 3164 without a host name):
//! `<PRI>Mmm dd hh:mm:ss ident[pid]: text`, one datagram per record, with
//! `PRI = facility * 8 + severity`. The C AUKS calls `vsyslog()` without
//! `openlog()`, i.e. facility `user` and the program name as ident; that is
//! the default here too ([`FACILITY_USER`]).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The usual path of the local syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// Facility `user` (1), the C AUKS default.
pub const FACILITY_USER: u8 = 1;
/// Facility `daemon` (3).
pub const FACILITY_DAEMON: u8 = 3;
/// Severity `info` (6).
pub const SEVERITY_INFO: u8 = 6;
/// The largest datagram sent; longer messages are cut (syslog daemons cut
/// them anyway, and a datagram must fit the socket buffer).
pub const MAX_DATAGRAM: usize = 8192;

/// A connected syslog socket.
pub struct Syslog {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    ident: String,
    facility: u8,
    info_severity: u8,
}

impl Syslog {
    /// Connect to `path` (normally [`DEV_LOG`]).
    pub fn connect(
        path: &Path,
        ident: &str,
        facility: u8,
        info_severity: u8,
    ) -> io::Result<Syslog> {
        let sock = open(path)?;
        Ok(Syslog {
            path: path.to_path_buf(),
            sock: Some(sock),
            ident: ident.to_string(),
            facility,
            info_severity,
        })
    }

    /// Send one record; reconnects once if the syslog daemon was restarted.
    pub fn send(&mut self, level: ::log::Level, msg: &str) {
        let sev = super::level::severity(level, self.info_severity);
        let now = chrono::Local::now().format("%b %e %H:%M:%S").to_string();
        let line = line(
            self.facility,
            sev,
            &now,
            &self.ident,
            std::process::id(),
            msg,
        );
        let bytes = &line.as_bytes()[..line.len().min(MAX_DATAGRAM)];
        let sent = self.sock.as_ref().map(|s| s.send(bytes));
        if !matches!(sent, Some(Ok(_))) {
            self.sock = open(&self.path).ok();
            if let Some(s) = &self.sock {
                let _ = s.send(bytes);
            }
        }
    }
}

fn open(path: &Path) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    Ok(s)
}

/// One syslog datagram.
pub fn line(facility: u8, severity: u8, now: &str, ident: &str, pid: u32, msg: &str) -> String {
    let pri = u16::from(facility) * 8 + u16::from(severity);
    format!(
        "<{pri}>{now} {ident}[{pid}]: {}",
        super::cformat::one_line(msg)
    )
}

fn facility_code(name: &str) -> Option<u8> {
    let n = match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        _ => {
            let d = name.strip_prefix("local")?;
            let k: u8 = d.parse().ok()?;
            if k > 7 || d.len() != 1 {
                return None;
            }
            16 + k
        }
    };
    Some(n)
}

fn severity_code(name: &str) -> Option<u8> {
    Some(match name {
        "emerg" | "panic" => 0,
        "alert" => 1,
        "crit" => 2,
        "err" | "error" => 3,
        "warning" | "warn" => 4,
        "notice" => 5,
        "info" => 6,
        "debug" => 7,
        _ => return None,
    })
}

/// Parse a `logger -p` priority (`facility.severity`, or a bare facility
/// meaning `notice`) into (facility, severity) codes.
pub fn parse_priority(p: &str) -> Option<(u8, u8)> {
    let p = p.trim().to_ascii_lowercase();
    let (f, s) = p.split_once('.').unwrap_or((&p, "notice"));
    Some((facility_code(f)?, severity_code(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(parse_priority("local3.notice"), Some((19, 5)));
        assert_eq!(parse_priority("daemon.err"), Some((3, 3)));
        assert_eq!(parse_priority("user"), Some((1, 5)));
        assert_eq!(parse_priority("local8.info"), None);
        assert_eq!(parse_priority("local3.loud"), None);
    }

    #[test]
    fn datagram_layout() {
        assert_eq!(
            line(1, 3, "Nov  1 09:05:28", "auks", 12, "no\nticket"),
            "<11>Nov  1 09:05:28 auks[12]: no ticket"
        );
    }

    #[test]
    fn records_reach_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut s = Syslog::connect(&path, "auksd", FACILITY_DAEMON, SEVERITY_INFO).unwrap();
        s.send(::log::Level::Error, "boom");
        s.send(::log::Level::Info, "fine");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.starts_with("<27>"), "{got}");
        assert!(got.ends_with(&format!(" auksd[{}]: boom", std::process::id())));
        let n = server.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().starts_with("<30>"));
    }
}
