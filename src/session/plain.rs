//! One request over a client session made without libkrb5
//! ([`PlainClient`]): the bytes of [`super::Session::connect_by`] and of
//! the client's one-request exchange (versions, AP-REQ and the request in
//! one segment; the server's version byte, status, AP-REP and reply; then
//! CLOSE), every step bounded by the I/O timeout and the deadline.
//!
//! What is not handled here is an error, never a different behaviour: a
//! KRB-ERROR from the server is reported without being decoded (that
//! needs libkrb5), and the caller then makes the request the usual way,
//! which reports it in full.

use super::frame::{bound, io_err, push_frame, read_frame, write_all, TimedStream};
use super::handshake::read_ap_rep;
use super::{Result, SessionError, APPL_VERSION, SENDAUTH_VERSION};
use crate::krb5::{KrbAddr, PlainClient, PlainTicket};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How one plain exchange is bounded and addressed.
pub struct PlainLimits {
    /// Each read and write.
    pub io_timeout: Duration,
    /// The whole exchange, connection included.
    pub deadline: Instant,
    /// `NAT = yes`: KRB-PRIV carry the placeholder addresses.
    pub nat: bool,
    /// The largest reply plaintext accepted.
    pub max_reply: usize,
}

/// Connect to `addr`, authenticate with `ticket` (its session key's
/// clock: `now`, Unix seconds and microseconds), send `request` (a
/// plaintext application message), and return the plaintext of the reply
/// after sending CLOSE (`close`, the encoded CLOSE request).
pub fn request(
    addr: SocketAddr,
    ticket: &PlainTicket<'_>,
    now: (i64, u32),
    request: &[u8],
    close: &[u8],
    lim: &PlainLimits,
) -> Result<Zeroizing<Vec<u8>>> {
    let left = lim.deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(SessionError::TimedOut { what: "connecting" });
    }
    let stream = TcpStream::connect_timeout(&addr, left.min(lim.io_timeout))
        .map_err(|e| io_err("connecting", e))?;
    let _ = stream.set_nodelay(true);
    let (local, remote) = if lim.nat {
        (KrbAddr::Dummy, KrbAddr::Dummy)
    } else {
        let local = stream.local_addr().map_err(|e| io_err("getsockname", e))?;
        let peer = stream.peer_addr().map_err(|e| io_err("getpeername", e))?;
        (KrbAddr::Ip(local.ip()), KrbAddr::Ip(peer.ip()))
    };
    let (mut client, ap_req) = PlainClient::start(ticket, now, local, remote)?;
    let sealed = client.seal(request)?;
    let mut out = Vec::with_capacity(64 + ap_req.len() + sealed.len());
    push_frame(&mut out, SENDAUTH_VERSION);
    push_frame(&mut out, APPL_VERSION);
    push_frame(&mut out, &ap_req);
    push_frame(&mut out, &sealed);
    let mut stream = TimedStream::new(stream);
    let by = || bound(lim.io_timeout, Some(lim.deadline));
    write_all(&mut stream, &out, by(), "sendauth: sending AP-REQ")?;
    let Ok(ap_rep) = read_ap_rep(&mut stream, by())? else {
        return Err(SessionError::Rejected(
            "the server answered the AP-REQ with a KRB-ERROR".into(),
        ));
    };
    client.rd_rep(&ap_rep)?;
    let limit = lim.max_reply.saturating_add(4096);
    let msg = Zeroizing::new(read_frame(&mut stream, limit, by(), "reading message")?);
    let plain = client.open(&msg)?;
    // CLOSE, as the C client and ours do; its fate does not matter.
    if let Ok(c) = client.seal(close) {
        let mut out = Vec::with_capacity(c.len() + 4);
        push_frame(&mut out, &c);
        let _ = write_all(&mut stream, &out, by(), "sending CLOSE");
    }
    Ok(plain)
}
