//! The session type: a socket authenticated by the handshake, carrying
//! KRB-PRIV application messages under per-operation and whole-session
//! deadlines.

use super::frame::{bound, push_frame, read_frame, write_all, TimedStream};
use super::{Result, SessionError, GROW_FROM, MAX_PRIV_MSG};
use crate::krb5::{AuthContext, Plaintext};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// An authenticated session: the socket plus the auth context holding the
/// session subkey and both sequence numbers.
pub struct Session<'a> {
    pub(super) stream: TimedStream,
    pub(super) ac: AuthContext<'a>,
    pub(super) peer: SocketAddr,
    pub(super) io_timeout: Duration,
    /// Bound of the whole session, on top of `io_timeout` per operation.
    pub(super) deadline: Option<Instant>,
    /// Bytes to send with the next message, or before the next wait for
    /// the peer: the client's handshake (sent with its first request),
    /// the server's AP-REP (sent with its first reply when the request
    /// came with the AP-REQ).
    pub(super) out: Vec<u8>,
    /// Client: the server's answer to the AP-REQ (version byte, status,
    /// AP-REP) is still to be read and checked ([`Session::finish_handshake`]).
    pub(super) awaiting_rep: bool,
}

impl<'a> Session<'a> {
    /// The peer's socket address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Leave every KRB-PRIV of this session to libkrb5 (before its first
    /// message), whatever the enctype: for the tests that check that
    /// libkrb5 and auks-rs read each other's messages.
    pub fn libkrb5_priv_only(&mut self) {
        self.ac.libkrb5_priv_only();
    }

    /// Bound the rest of the session by `deadline` (None: only the
    /// per-operation I/O timeout).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Send one application message as a KRB-PRIV frame. A message above
    /// [`GROW_FROM`] (a DUMP reply) is sealed in place ([`Session::send_last`]);
    /// so is any message under an AES-SHA1 session key (sealed in Rust, on
    /// the CPU's AES and SHA instructions), else `krb5_mk_priv` seals it.
    pub fn send(&mut self, plain: &[u8]) -> Result<()> {
        if plain.len() > GROW_FROM {
            return self.send_last(plain);
        }
        let mut out = std::mem::take(&mut self.out);
        let (sealed, lib);
        let msg: &[u8] = if self.ac.seals_in_rust()? {
            sealed = self.ac.mk_priv_in_place(plain)?;
            &sealed
        } else {
            lib = self.ac.mk_priv(plain)?;
            &lib
        };
        out.reserve(msg.len() + 4);
        push_frame(&mut out, msg);
        let by = bound(self.io_timeout, self.deadline);
        write_all(&mut self.stream, &out, by, "sending message")
    }

    /// Send the last message of this session: the KRB-PRIV is built in one
    /// buffer, the plaintext copied into it once and encrypted there (one
    /// copy of a DUMP reply besides the caller's, where `krb5_mk_priv`
    /// makes three); the session sends nothing after it (under an
    /// AES-SHA1 key it could, but nothing needs to).
    ///
    /// What is pending (a server's AP-REP, held to go out with the first
    /// reply) is sent first: sealing a DUMP reply takes seconds at 100 000
    /// credentials (1.4–1.9 s for C's 138 MB one here), while the client
    /// waits for the AP-REP within its `Timeout`.
    pub fn send_last(&mut self, plain: &[u8]) -> Result<()> {
        self.flush(bound(self.io_timeout, self.deadline), "sending message")?;
        let msg = self.ac.mk_priv_in_place(plain)?;
        let len = u32::try_from(msg.len()).map_err(|_| SessionError::TooLarge {
            what: "sending message",
            len: msg.len() as u64,
            max: MAX_PRIV_MSG,
        })?;
        let by = bound(self.io_timeout, self.deadline);
        // No copy just to prepend the length: two segments.
        write_all(&mut self.stream, &len.to_be_bytes(), by, "sending message")?;
        write_all(&mut self.stream, &msg, by, "sending message")
    }

    /// Send what [`Session::out`] holds, if anything, by `by` (`what`:
    /// the step named in an error).
    pub(super) fn flush(&mut self, by: Instant, what: &'static str) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        write_all(&mut self.stream, &out, by, what)
    }

    /// Whether the handshake is complete: on the client, the server's
    /// AP-REP was read and verified (a client session is returned before
    /// that, so that the first request goes out with the AP-REQ).
    pub fn authenticated(&self) -> bool {
        !self.awaiting_rep
    }

    /// Receive one application message of at most `max` bytes of
    /// plaintext, within the I/O timeout.
    pub fn recv(&mut self, max: usize) -> Result<Plaintext<'a>> {
        self.recv_within(max, self.io_timeout)
    }

    /// Receive one application message, waiting at most `wait` for it.
    ///
    /// Memory: a frame above [`GROW_FROM`] (a DUMP reply, 3.3 GB from a C
    /// auksd holding 100 000 credentials) is decrypted where it was read
    /// and its plaintext is a range of it: one copy of the message, where
    /// `krb5_rd_priv` holds four at its peak. When libkrb5 decrypts it,
    /// such a message must be the last one the session receives
    /// (libkrb5's receive sequence number cannot be advanced from
    /// outside): later receives are refused.
    /// Smaller messages are opened in place too under an AES-SHA1 session
    /// key (in Rust; later receives stay possible), else by `krb5_rd_priv`,
    /// whose own plaintext buffer is returned without a copy.
    pub fn recv_within(&mut self, max: usize, wait: Duration) -> Result<Plaintext<'a>> {
        let deadline = bound(wait, self.deadline);
        if self.awaiting_rep {
            self.finish_handshake()?;
        } else if !self.stream.holds_frame() {
            // About to wait for the peer, which may be waiting for these.
            self.flush(deadline, "sending message")?;
        }
        let limit = max.saturating_add(4096).min(MAX_PRIV_MSG);
        let msg = read_frame(&mut self.stream, limit, deadline, "reading message")?;
        if msg.len() > GROW_FROM || self.ac.opens_in_rust()? {
            let mut frame = Zeroizing::new(msg);
            let range = self.ac.rd_priv_in_place(&mut frame)?;
            return Ok(Plaintext::InPlace { frame, range });
        }
        Ok(Plaintext::Lib(self.ac.rd_priv(&msg)?))
    }
}
