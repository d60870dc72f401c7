//! systemd service notifications (`sd_notify(3)` protocol) without libsystemd:
//! one datagram of `KEY=value` lines to the socket named by `$NOTIFY_SOCKET`
//! (a path, or `@name` for the abstract namespace), sent with std's
//! `UnixDatagram`.
//!
//! With `Type=notify` in the unit, systemd considers the service started
//! only on `READY=1` (auksd sends it once its port is open), shows `STATUS=`
//! in `systemctl status`, expects `RELOADING=1` ... `READY=1` around a
//! reload and `STOPPING=1` at shutdown. With `WatchdogSec=`, the service
//! must send `WATCHDOG=1` at least every [`watchdog_interval`] (half the
//! configured period) or be restarted.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// The longest `STATUS=` text sent (systemd shows one line).
pub const MAX_STATUS: usize = 512;

/// A connection to the service manager's notification socket.
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier of `$NOTIFY_SOCKET`, or `None` when not started by
    /// systemd with `Type=notify` (or the variable is malformed).
    pub fn from_env() -> Option<Notifier> {
        let v = std::env::var_os("NOTIFY_SOCKET")?;
        Notifier::to(&v.to_string_lossy()).ok()
    }

    /// A notifier sending to `socket` (`/path` or `@abstract`).
    pub fn to(socket: &str) -> io::Result<Notifier> {
        let addr = if let Some(name) = socket.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if socket.starts_with('/') {
            SocketAddr::from_pathname(Path::new(socket))?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor @abstract",
            ));
        };
        Ok(Notifier {
            sock: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Send raw `KEY=value` lines.
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.sock
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(|_| ())
    }

    /// `READY=1`: the service is up (after the listening socket is open).
    pub fn ready(&self) -> io::Result<()> {
        self.send(&format!("READY=1\nMAINPID={}", std::process::id()))
    }

    /// `RELOADING=1` with the monotonic time systemd 253+ expects; send
    /// [`Notifier::ready`] when the reload is done.
    pub fn reloading(&self) -> io::Result<()> {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()))
    }

    /// `STOPPING=1`: the service is shutting down.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    /// `WATCHDOG=1`: the service is alive.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `STATUS=<text>` (one line, at most [`MAX_STATUS`] bytes).
    pub fn status(&self, text: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", status_line(text)))
    }
}

/// `text` as one line of at most [`MAX_STATUS`] bytes (cut on a character
/// boundary).
pub fn status_line(text: &str) -> String {
    let mut s: String = text.replace(['\n', '\r'], " ");
    if s.len() > MAX_STATUS {
        let mut end = MAX_STATUS;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let s = u64::try_from(t.tv_sec()).unwrap_or(0);
            let ns = u64::try_from(t.tv_nsec()).unwrap_or(0);
            s.saturating_mul(1_000_000).saturating_add(ns / 1000)
        }
        Err(_) => 0,
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when the
/// watchdog is enabled for this process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

fn interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    let us: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(us / 2))
}

/// Send `READY=1` if started by systemd; errors are ignored (systemd then
/// reports the start as timed out, which is the right signal).
pub fn ready() {
    if let Some(n) = Notifier::from_env() {
        let _ = n.ready();
    }
}

/// Send `RELOADING=1` if started by systemd (then [`ready`] when done).
pub fn reloading() {
    if let Some(n) = Notifier::from_env() {
        let _ = n.reloading();
    }
}

/// Send `STOPPING=1` if started by systemd.
pub fn stopping() {
    if let Some(n) = Notifier::from_env() {
        let _ = n.stopping();
    }
}

/// Send `WATCHDOG=1` if started by systemd.
pub fn watchdog() {
    if let Some(n) = Notifier::from_env() {
        let _ = n.watchdog();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(s: &UnixDatagram) -> String {
        let mut buf = [0u8; 1024];
        let n = s.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::to(path.to_str().unwrap()).unwrap();
        n.ready().unwrap();
        assert_eq!(
            recv(&server),
            format!("READY=1\nMAINPID={}", std::process::id())
        );
        n.status("12 credentials\nstored").unwrap();
        assert_eq!(recv(&server), "STATUS=12 credentials stored");
        n.reloading().unwrap();
        let r = recv(&server);
        assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
    }

    #[test]
    fn abstract_sockets_are_supported() {
        let name = format!("auks-rs-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Notifier::to(&format!("@{name}"))
            .unwrap()
            .watchdog()
            .unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
    }

    #[test]
    fn bad_socket_names_are_refused() {
        assert!(Notifier::to("relative/path").is_err());
        assert!(Notifier::to("").is_err());
    }

    #[test]
    fn watchdog_interval_is_half_the_period_for_us_only() {
        assert_eq!(
            interval_from(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            interval_from(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(interval_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(interval_from(None, None, 7), None);
        assert_eq!(interval_from(Some("0"), None, 7), None);
        assert_eq!(interval_from(Some("x"), None, 7), None);
    }

    #[test]
    fn status_is_one_bounded_line() {
        assert_eq!(status_line("a\nb"), "a b");
        let long = "é".repeat(400);
        let s = status_line(&long);
        assert!(s.len() <= MAX_STATUS && s.chars().all(|c| c == 'é'));
    }
}
