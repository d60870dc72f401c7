//! The pre-auth dispatcher: accepts connections and runs the
//! unauthenticated part of the handshake itself on non-blocking sockets
//! ([`Preauth`]), so a silent, slow or hostile client holds a few bytes of
//! buffer and no worker (fixing §11.5). A connection that has sent a
//! complete AP-REQ is queued for the workers as a [`Conn`]; one that has
//! not within [`HANDSHAKE_TIMEOUT`] is closed.
//!
//! Capacity: at most [`Limits::pending`] connections may be in this stage,
//! and one client address at most [`Limits::per_address`] of them, so one
//! host flooding the port with silent connections cannot lock out the
//! others. What is dropped is counted by [`super::droplog`], not logged
//! line by line.

use super::droplog::{self, DropReason};
use super::pool::MAINTAIN_EVERY;
use super::worker::{self, Conn};
use super::Shared;
use crate::session::{Preauth, PreauthStep};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time a client has to complete the unauthenticated handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pre-auth capacity when the file descriptor limit allows it.
pub const MAX_PENDING: usize = 4096;

/// Pre-auth capacity of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub pending: usize,
    pub per_address: usize,
}

impl Limits {
    /// Derived from the open-file limit: a quarter of the descriptors is
    /// kept for queued and served connections, cache files and logs; one
    /// address gets a quarter of the pre-auth capacity.
    pub fn for_fd_limit(nofile: u64) -> Self {
        let usable = usize::try_from(nofile.saturating_sub(64) * 3 / 4).unwrap_or(usize::MAX);
        let pending = usable.clamp(16, MAX_PENDING);
        Limits {
            pending,
            per_address: (pending / 4).max(4),
        }
    }
}

/// The soft open-file limit of this process (from /proc; 1024 if unknown).
pub fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

const PEER_CLOSED: &str = "peer closed the connection";

struct Pending {
    stream: TcpStream,
    peer: Option<IpAddr>,
    pre: Preauth,
    since: Instant,
}

/// What the dispatcher is asked to do by a signal.
pub(super) enum Control {
    Continue,
    Stop,
}

/// Accept loop + unauthenticated stage, until `control` says stop. The
/// listener may be replaced by `control` (a reload that changed the
/// address); it is never closed in between.
pub(super) fn dispatch(
    listener: &mut TcpListener,
    shared: &Arc<Shared>,
    limits: Limits,
    control: &mut dyn FnMut(&mut TcpListener, usize) -> Control,
) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut pending: Vec<Pending> = Vec::new();
    let mut per_addr: HashMap<Option<IpAddr>, usize> = HashMap::new();
    let mut last_queue_note = Instant::now() - Duration::from_secs(3600);
    // Connections accepted in the last round (at the end of `pending`):
    // read at once without a poll, a client sending its handshake right
    // after connecting (ours does) has usually sent it by then.
    let mut fresh = 0;
    loop {
        if let Control::Stop = control(listener, pending.len()) {
            return;
        }
        droplog::emit(shared.drops.flush_if_due(false));
        let (listen_ready, ready): (bool, Vec<bool>) = if fresh > 0 {
            let mut r = vec![false; pending.len() - fresh];
            r.resize(pending.len(), true);
            (false, r)
        } else {
            let mut fds = Vec::with_capacity(pending.len() + 1);
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            for p in &pending {
                fds.push(PollFd::new(p.stream.as_fd(), PollFlags::POLLIN));
            }
            // While work is queued, come back soon enough to give it a
            // thread if the workers wait for their clients (Pool::maintain).
            let wait = if shared.pool.has_queued() {
                MAINTAIN_EVERY.as_millis() as u16
            } else {
                200
            };
            match poll(&mut fds, PollTimeout::from(wait)) {
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
        // Serve readable pending connections in the order they were
        // accepted (a complete AP-REQ joins the FIFO queue in that order).
        let all = std::mem::replace(&mut pending, Vec::with_capacity(ready.len()));
        for (mut p, r) in all.into_iter().zip(ready) {
            if !r {
                pending.push(p);
                continue;
            }
            let step = advance(&mut p);
            if let Ok(None) = step {
                pending.push(p);
                continue;
            }
            release(&mut per_addr, p.peer);
            match step {
                Ok(Some((ap_req, owe_version_ok))) => {
                    if p.stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    let queued = shared.pool.push(Conn {
                        early: p.pre.take_early(),
                        stream: p.stream,
                        ap_req,
                        owe_version_ok,
                        peer: p.peer,
                    });
                    if queued.spawn {
                        worker::spawn(shared);
                    }
                    let soft = shared.state().conf.auksd.queue_size;
                    if queued.len > soft && last_queue_note.elapsed() >= Duration::from_secs(60) {
                        last_queue_note = Instant::now();
                        let (_, threads, _, _) = shared.pool.stats();
                        crate::log!(
                            1,
                            "auksd : {} connections queued (QueueSize {soft}), {threads} workers: the queue grows, nothing is dropped",
                            queued.len
                        );
                    }
                }
                Err(e) => {
                    let why = if e == PEER_CLOSED {
                        DropReason::ClosedEarly
                    } else {
                        DropReason::BadPreauth
                    };
                    shared.dropped(p.peer, why, &e)
                }
                Ok(None) => {}
            }
        }
        // Queued work behind workers that wait for their clients.
        for _ in 0..shared.pool.maintain() {
            worker::spawn(shared);
        }
        // Expire slow handshakes.
        let now = Instant::now();
        pending.retain(|p| {
            let keep = now.duration_since(p.since) < HANDSHAKE_TIMEOUT;
            if !keep {
                release(&mut per_addr, p.peer);
                shared.dropped(p.peer, DropReason::SlowPreauth, "");
            }
            keep
        });
        fresh = 0;
        if listen_ready {
            let before = pending.len();
            accept_all(listener, shared, limits, &mut pending, &mut per_addr);
            fresh = pending.len() - before;
        }
    }
}

fn release(per_addr: &mut HashMap<Option<IpAddr>, usize>, peer: Option<IpAddr>) {
    if let Some(n) = per_addr.get_mut(&peer) {
        *n -= 1;
        if *n == 0 {
            per_addr.remove(&peer);
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    shared: &Shared,
    limits: Limits,
    pending: &mut Vec<Pending>,
    per_addr: &mut HashMap<Option<IpAddr>, usize>,
) {
    // Bounded per round so that a flood cannot starve the pending ones.
    for _ in 0..limits.pending {
        match listener.accept() {
            Ok((stream, addr)) => {
                let peer = Some(addr.ip());
                let mine = per_addr.get(&peer).copied().unwrap_or(0);
                let why = if mine >= limits.per_address {
                    Some(DropReason::AddressShare)
                } else if pending.len() >= limits.pending {
                    Some(DropReason::PreauthFull)
                } else {
                    None
                };
                if let Some(why) = why {
                    shared.dropped(peer, why, "");
                    continue;
                }
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                // TCP_NODELAY is set by the session (Session::accept); the
                // one byte this thread may send is the connection's first
                // write, which Nagle's algorithm never delays.
                *per_addr.entry(peer).or_insert(0) += 1;
                pending.push(Pending {
                    stream,
                    peer,
                    pre: Preauth::new(),
                    since: Instant::now(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                shared.dropped(None, DropReason::AcceptFailed, &e.to_string());
                // Out of descriptors: let the pending ones progress.
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
    }
}

/// Read what a pending connection sent and advance its handshake.
/// Ok(Some((ap_req, owe_version_ok))) = ready for a worker, which sends the
/// version check's answer with its own when the client did not wait for
/// it (ours sends the AP-REQ with the versions; MIT's `krb5_sendauth`
/// waits for the answer); Err = close it.
fn advance(p: &mut Pending) -> Result<Option<(Vec<u8>, bool)>, String> {
    let mut buf = [0u8; 8192];
    let n = match p.stream.read(&mut buf) {
        Ok(0) => return Err(PEER_CLOSED.into()),
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
                step = p.pre.feed(&[]).map_err(|e| e.to_string())?;
                if let PreauthStep::ApReq(req) = step {
                    // One write, one wake-up of the client for both.
                    return Ok(Some((req, true)));
                }
                p.stream
                    .write_all(&[0])
                    .map_err(|e| format!("cannot answer version check: {e}"))?;
            }
            PreauthStep::Refuse(b) => {
                let _ = p.stream.write_all(&[b]);
                return Err(format!(
                    "bad {} version",
                    if b == 1 { "sendauth" } else { "application" }
                ));
            }
            PreauthStep::ApReq(req) => return Ok(Some((req, false))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_descriptor_limit() {
        assert_eq!(
            Limits::for_fd_limit(1024),
            Limits {
                pending: 720,
                per_address: 180
            }
        );
        assert_eq!(Limits::for_fd_limit(1 << 20).pending, MAX_PENDING);
        assert_eq!(Limits::for_fd_limit(0).pending, 16);
        assert!(fd_limit() >= 16);
    }
}
