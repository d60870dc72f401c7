//! The pre-auth dispatcher: accepts connections and runs the
//! unauthenticated part of the handshake itself on non-blocking sockets
//! ([`Preauth`]), so a silent, slow or hostile client holds a few bytes of
//! buffer and no worker (fixing §11.5). A connection that has sent a
//! complete AP-REQ is queued for the workers as a [`Conn`]; one that has
//! not within [`HANDSHAKE_TIMEOUT`] is closed.

use super::lifecycle::Signals;
use super::worker::Conn;
use super::Shared;
use crate::session::{Preauth, PreauthStep};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// Time a client has to complete the unauthenticated handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections allowed in the unauthenticated stage at once.
pub const MAX_PENDING: usize = 1024;

struct Pending {
    stream: TcpStream,
    pre: Preauth,
    since: Instant,
}

/// Accept loop + unauthenticated stage. Returns true for a reload.
pub(super) fn dispatch(
    listener: &TcpListener,
    tx: &SyncSender<Conn>,
    signals: &Signals,
    shared: &Shared,
) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut pending: Vec<Pending> = Vec::new();
    let mut dispatched: u64 = 0;
    loop {
        if signals.term.swap(false, Ordering::SeqCst) {
            crate::log!(1, "auksd : termination requested");
            return false;
        }
        if signals.hup.swap(false, Ordering::SeqCst) {
            return true;
        }
        if signals.usr2.swap(false, Ordering::SeqCst) {
            crate::log!(
                1,
                "auksd : {dispatched} connections dispatched, {} sessions served, {} pending",
                shared.served.load(Ordering::Relaxed),
                pending.len()
            );
        }
        let (listen_ready, ready): (bool, Vec<bool>) = {
            let mut fds = Vec::with_capacity(pending.len() + 1);
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            for p in &pending {
                fds.push(PollFd::new(p.stream.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    crate::log!(1, "auksd : poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
            let r: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            (r[0], r[1..].to_vec())
        };
        // Serve readable pending connections (iterate backwards so that
        // removal keeps the indices of `ready` valid).
        for i in (0..ready.len()).rev() {
            if !ready[i] {
                continue;
            }
            match advance(&mut pending[i]) {
                Ok(None) => {}
                Ok(Some(ap_req)) => {
                    let p = pending.swap_remove(i);
                    let peer = p.stream.peer_addr().ok();
                    if p.stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    match tx.try_send(Conn {
                        stream: p.stream,
                        ap_req,
                    }) {
                        Ok(()) => dispatched += 1,
                        Err(TrySendError::Full(_)) => {
                            crate::log!(1, "auksd : queue full, connection from {peer:?} dropped")
                        }
                        Err(TrySendError::Disconnected(_)) => return false,
                    }
                }
                Err(e) => {
                    let p = pending.swap_remove(i);
                    crate::log!(
                        2,
                        "auksd : {} : connection closed before authentication: {e}",
                        p.stream
                            .peer_addr()
                            .map(|a| a.ip().to_string())
                            .unwrap_or_default()
                    );
                }
            }
        }
        // Expire slow handshakes.
        let now = Instant::now();
        pending.retain(|p| {
            let keep = now.duration_since(p.since) < HANDSHAKE_TIMEOUT;
            if !keep {
                crate::log!(
                    2,
                    "auksd : {} : handshake not completed within {}s, connection closed",
                    p.stream
                        .peer_addr()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default(),
                    HANDSHAKE_TIMEOUT.as_secs()
                );
            }
            keep
        });
        if listen_ready {
            loop {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        if pending.len() >= MAX_PENDING {
                            crate::log!(1, "auksd : too many pending handshakes, {peer} dropped");
                            continue;
                        }
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        pending.push(Pending {
                            stream,
                            pre: Preauth::new(),
                            since: Instant::now(),
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        crate::log!(1, "auksd : accept failed: {e}");
                        break;
                    }
                }
            }
        }
    }
}

/// Read what a pending connection sent and advance its handshake.
/// Ok(Some(ap_req)) = ready for a worker; Err = close it.
fn advance(p: &mut Pending) -> Result<Option<Vec<u8>>, String> {
    let mut buf = [0u8; 8192];
    let n = match p.stream.read(&mut buf) {
        Ok(0) => return Err("peer closed the connection".into()),
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut step = p.pre.feed(&buf[..n]).map_err(|e| e.to_string())?;
    loop {
        match step {
            PreauthStep::NeedMore => return Ok(None),
            PreauthStep::SendOk => {
                p.stream
                    .write_all(&[0])
                    .map_err(|e| format!("cannot answer version check: {e}"))?;
                step = p.pre.feed(&[]).map_err(|e| e.to_string())?;
            }
            PreauthStep::Refuse(b) => {
                let _ = p.stream.write_all(&[b]);
                return Err(format!(
                    "bad {} version",
                    if b == 1 { "sendauth" } else { "application" }
                ));
            }
            PreauthStep::ApReq(req) => return Ok(Some(req)),
        }
    }
}
