//! When the per-job renewer must stop: SIGTERM/SIGINT set a flag and
//! write to a socket, so that a renewer sleeping between two checks wakes
//! at once (the plugin waits for it at the end of every job step).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// When the job renewer must stop: a flag set by SIGTERM/SIGINT, plus a
/// socket the handler writes to, so that a sleeping renewer wakes at once
/// (the plugin waits for it at the end of every job step).
pub struct Stop {
    flag: Arc<AtomicBool>,
    wake: Option<std::os::unix::net::UnixStream>,
}

impl Stop {
    /// Never set by a signal (`auks -R once`, tests).
    pub fn new() -> Stop {
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            wake: None,
        }
    }

    /// Set by SIGTERM and SIGINT.
    pub fn on_signals() -> Stop {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut stop = Stop::new();
        for sig in [SIGTERM, SIGINT] {
            if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop.flag)) {
                crate::log!(1, "renewer : cannot install signal handler: {e}");
            }
        }
        match std::os::unix::net::UnixStream::pair() {
            Ok((rx, tx)) => {
                // The handler writes one byte per signal, non-blocking (a
                // full socket only means a wake-up is already pending).
                let registered = rx.set_nonblocking(true).is_ok()
                    && [SIGTERM, SIGINT].into_iter().all(|sig| {
                        tx.try_clone()
                            .and_then(|t| signal_hook::low_level::pipe::register(sig, t))
                            .is_ok()
                    });
                if registered {
                    stop.wake = Some(rx);
                } else {
                    crate::log!(1, "renewer : cannot install the wake-up socket: polling");
                }
            }
            Err(e) => crate::log!(
                1,
                "renewer : cannot create the wake-up socket ({e}): polling"
            ),
        }
        // slurmstepd blocks SIGTERM and a child started with std's Command
        // inherits that mask (C cleared it, §10.5): unblock the stop
        // signals so that the plugin's SIGTERM reaches us instead of its
        // SIGKILL. The process is single-threaded here.
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None) {
            crate::log!(1, "renewer : cannot unblock SIGTERM: {e}");
        }
        stop
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Wait up to `limit`, returning early when a stop signal arrives.
    pub(super) fn wait(&self, limit: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let Some(rx) = &self.wake else {
            std::thread::sleep(limit);
            return;
        };
        let ms = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            // Drain; the flag is what is checked.
            Ok(n) if n > 0 => {
                let mut buf = [0u8; 16];
                let _ = std::io::Read::read(&mut &*rx, &mut buf);
            }
            Ok(_) => {}
            // EINTR (the signal itself): the caller checks the flag.
            Err(_) => {}
        }
    }
}

impl Default for Stop {
    fn default() -> Stop {
        Stop::new()
    }
}
