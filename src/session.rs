//! One authenticated AUKS session over TCP (spec §2.3–§2.7).
//!
//! The handshake is byte-compatible with MIT `krb5_sendauth` /
//! `krb5_recvauth` (application version "0.1", mutual authentication, a
//! client subkey, sequence numbers only), but every read goes through
//! [`read_frame`], which bounds the announced length before allocating and
//! gives up at a deadline, so a silent or hostile peer can neither hang nor
//! exhaust a process (C weakness §11.5).
//!
//! Writes that belong together are sent in one `write` and every socket has
//! `TCP_NODELAY`, which avoids the ~40 ms Nagle/delayed-ACK stall the C
//! implementation suffers from.

use crate::krb5::{self, AuthContext, Ccache, Context, Keytab, KrbAddr, Principal};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// sendauth protocol version string (NUL included on the wire).
const SENDAUTH_VERSION: &[u8] = b"KRB5_SENDAUTH_V1.0\0";
/// AUKS application version string (NUL included on the wire).
const APPL_VERSION: &[u8] = b"0.1\0";
/// Largest version string we read during the handshake.
const MAX_VERSION_MSG: usize = 256;
/// Largest AP-REQ / AP-REP / KRB-ERROR we read (tickets with big PACs fit).
pub const MAX_HANDSHAKE_MSG: usize = 64 * 1024;
/// Largest KRB-PRIV frame we read: what a 32-bit length prefix can
/// announce. Callers pass the bound of the message they expect
/// ([`Session::recv`]); a frame above [`GROW_FROM`] is allocated as its
/// bytes arrive, not as announced.
pub const MAX_PRIV_MSG: usize = u32::MAX as usize;
/// Frames up to this size are allocated at once; larger ones grow with the
/// bytes actually received.
pub const GROW_FROM: usize = 1 << 20;
/// Largest request plaintext a daemon accepts: an ADD with a full
/// credential (type, length, data). [`Session::recv`] adds the KRB-PRIV
/// overhead itself.
pub const MAX_REQUEST: usize = 8 + crate::proto::MAX_CRED_DATA;
/// Longest client principal name accepted by the daemon (spec §2.4).
pub const MAX_PRINCIPAL: usize = 128;

/// Errors of the session layer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{what}: timed out")]
    TimedOut { what: &'static str },
    #[error("{what}: connection closed by peer")]
    Closed { what: &'static str },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{what}: announced length {len} exceeds the limit of {max} bytes")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: usize,
    },
    #[error("sendauth: peer rejected the {0} version")]
    BadVersion(&'static str),
    #[error("sendauth: unexpected response byte {0}")]
    BadResponse(u8),
    #[error("authentication rejected by server: {0}")]
    Rejected(String),
    #[error("client principal name is longer than {MAX_PRINCIPAL} characters")]
    PrincipalTooLong,
    #[error(transparent)]
    Krb5(#[from] krb5::Error),
}

impl SessionError {
    /// True for errors of the TCP transport itself (vs. Kerberos).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            SessionError::TimedOut { .. } | SessionError::Closed { .. } | SessionError::Io { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, SessionError>;

fn io_err(what: &'static str, e: io::Error) -> SessionError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => SessionError::TimedOut { what },
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => SessionError::Closed { what },
        _ => SessionError::Io { what, source: e },
    }
}

/// Read exactly `buf.len()` bytes before `deadline`.
fn read_exact_by(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    what: &'static str,
) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SessionError::TimedOut { what });
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| io_err(what, e))?;
        match stream.read(&mut buf[done..]) {
            Ok(0) => return Err(SessionError::Closed { what }),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(what, e)),
        }
    }
    Ok(())
}

/// Read one `krb5_write_message` frame (4-byte big-endian length + data),
/// refusing lengths above `max` before allocating anything.
pub fn read_frame(
    stream: &mut TcpStream,
    max: usize,
    deadline: Instant,
    what: &'static str,
) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    read_exact_by(stream, &mut len, deadline, what)?;
    let n = u32::from_be_bytes(len);
    if n as u64 > max as u64 {
        return Err(SessionError::TooLarge {
            what,
            len: n.into(),
            max,
        });
    }
    let n = n as usize;
    if n <= GROW_FROM {
        let mut data = vec![0u8; n];
        read_exact_by(stream, &mut data, deadline, what)?;
        return Ok(data);
    }
    // A large frame (a DUMP reply): memory follows what the peer really
    // sent, one chunk at a time, never the announced length alone.
    let mut data: Vec<u8> = Vec::with_capacity(GROW_FROM);
    while data.len() < n {
        let chunk = (n - data.len()).min(data.len().max(GROW_FROM));
        let at = data.len();
        data.resize(at + chunk, 0);
        read_exact_by(stream, &mut data[at..], deadline, what)?;
    }
    Ok(data)
}

/// The earlier of `now + timeout` and `deadline`.
fn bound(timeout: Duration, deadline: Option<Instant>) -> Instant {
    let t = Instant::now() + timeout;
    deadline.map_or(t, |d| d.min(t))
}

fn push_frame(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

fn write_all(
    stream: &mut TcpStream,
    buf: &[u8],
    deadline: Instant,
    what: &'static str,
) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SessionError::TimedOut { what });
        }
        stream
            .set_write_timeout(Some(left))
            .map_err(|e| io_err(what, e))?;
        match stream.write(&buf[done..]) {
            Ok(0) => return Err(SessionError::Closed { what }),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(what, e)),
        }
    }
    Ok(())
}

fn nul_terminated_eq(got: &[u8], want_with_nul: &[u8]) -> bool {
    // MIT compares with strcmp: everything up to the first NUL must match.
    let end = got.iter().position(|&b| b == 0).unwrap_or(got.len());
    got[..end] == want_with_nul[..want_with_nul.len() - 1] && end < got.len()
}

/// Auth-context addresses for a connected socket (§2.3); IPv6 is allowed
/// (an extension: C peers only ever use IPv4).
fn socket_addrs(stream: &TcpStream) -> Result<(KrbAddr, KrbAddr)> {
    let local = stream.local_addr().map_err(|e| io_err("getsockname", e))?;
    let peer = stream.peer_addr().map_err(|e| io_err("getpeername", e))?;
    Ok((KrbAddr::Ip(local.ip()), KrbAddr::Ip(peer.ip())))
}

/// An authenticated session: the socket plus the auth context holding the
/// session subkey and both sequence numbers.
pub struct Session<'a> {
    stream: TcpStream,
    ac: AuthContext<'a>,
    peer: SocketAddr,
    io_timeout: Duration,
    /// Bound of the whole session, on top of `io_timeout` per operation.
    deadline: Option<Instant>,
}

impl<'a> Session<'a> {
    /// Client side: run the sendauth exchange over `stream` using tickets
    /// from `ccache` for service `server`. `io_timeout` bounds every read
    /// and write of the session.
    pub fn connect(
        ctx: &'a Context,
        stream: TcpStream,
        ccache: &Ccache<'_>,
        server: &str,
        nat: bool,
        io_timeout: Duration,
    ) -> Result<Self> {
        Self::connect_by(ctx, stream, ccache, server, nat, io_timeout, None)
    }

    /// [`Session::connect`], the handshake and every later operation also
    /// bounded by `deadline` (the client's whole-request `Timeout`).
    pub fn connect_by(
        ctx: &'a Context,
        mut stream: TcpStream,
        ccache: &Ccache<'_>,
        server: &str,
        nat: bool,
        io_timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().map_err(|e| io_err("getpeername", e))?;
        let mut ac = AuthContext::for_session(ctx)?;
        let (local, remote) = socket_addrs(&stream)?;
        ac.set_addrs(local, remote)?;
        let server = Principal::parse(ctx, server)?;
        // Getting the service ticket may talk to the KDC: do it before
        // writing anything, then send versions and AP-REQ in one segment
        // (the server reads them in order, exactly as from krb5_sendauth).
        let ap_req = ac.mk_req(ccache, &server)?;
        let mut out = Vec::with_capacity(64 + ap_req.len());
        push_frame(&mut out, SENDAUTH_VERSION);
        push_frame(&mut out, APPL_VERSION);
        push_frame(&mut out, &ap_req);
        write_all(
            &mut stream,
            &out,
            bound(io_timeout, deadline),
            "sendauth: sending AP-REQ",
        )?;
        let session_deadline = deadline;
        let deadline = bound(io_timeout, deadline);
        let mut byte = [0u8; 1];
        read_exact_by(
            &mut stream,
            &mut byte,
            deadline,
            "sendauth: reading version reply",
        )?;
        match byte[0] {
            0 => {}
            1 => return Err(SessionError::BadVersion("sendauth protocol")),
            2 => return Err(SessionError::BadVersion("application")),
            b => return Err(SessionError::BadResponse(b)),
        }
        let status = read_frame(
            &mut stream,
            MAX_HANDSHAKE_MSG,
            deadline,
            "sendauth: reading server status",
        )?;
        if !status.is_empty() {
            return Err(SessionError::Rejected(krb5::rd_error(ctx, &status)));
        }
        let ap_rep = read_frame(
            &mut stream,
            MAX_HANDSHAKE_MSG,
            deadline,
            "sendauth: reading AP-REP",
        )?;
        ac.rd_rep(&ap_rep)?;
        if nat {
            ac.set_addrs(KrbAddr::Dummy, KrbAddr::Dummy)?;
        }
        Ok(Session {
            stream,
            ac,
            peer,
            io_timeout,
            deadline: session_deadline,
        })
    }

    /// Server side, after [`Preauth`] collected the AP-REQ: verify it with
    /// the keytab, answer "ok" + AP-REP (or a KRB-ERROR), and return the
    /// session and the authenticated client principal name.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        ctx: &'a Context,
        mut stream: TcpStream,
        ap_req: &[u8],
        keytab: &Keytab<'_>,
        server: &Principal<'_>,
        replay_cache: bool,
        nat: bool,
        io_timeout: Duration,
    ) -> Result<(Self, String)> {
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().map_err(|e| io_err("getpeername", e))?;
        let mut ac = AuthContext::for_session(ctx)?;
        let (local, remote) = socket_addrs(&stream)?;
        ac.set_addrs(local, remote)?;
        ac.set_replay_cache(replay_cache, server)?;
        let (client, mutual) = match ac.rd_req(ap_req, server, keytab) {
            Ok(v) => v,
            Err(e) => {
                if let Ok(err) = krb5::mk_error(ctx, server, &e) {
                    let mut out = Vec::new();
                    push_frame(&mut out, &err);
                    let _ = write_all(
                        &mut stream,
                        &out,
                        bound(io_timeout, None),
                        "recvauth: KRB-ERROR",
                    );
                }
                return Err(e.into());
            }
        };
        // "ok" (empty message) and the AP-REP go out in one segment.
        let mut out = Vec::new();
        push_frame(&mut out, &[]);
        if mutual {
            let rep = ac.mk_rep()?;
            push_frame(&mut out, &rep);
        }
        write_all(
            &mut stream,
            &out,
            bound(io_timeout, None),
            "recvauth: sending AP-REP",
        )?;
        if client.len() > MAX_PRINCIPAL {
            return Err(SessionError::PrincipalTooLong);
        }
        if nat {
            ac.set_addrs(KrbAddr::Dummy, KrbAddr::Dummy)?;
        }
        Ok((
            Session {
                stream,
                ac,
                peer,
                io_timeout,
                deadline: None,
            },
            client,
        ))
    }

    /// The peer's socket address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Bound the rest of the session by `deadline` (None: only the
    /// per-operation I/O timeout).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Send one application message as a KRB-PRIV frame.
    pub fn send(&mut self, plain: &[u8]) -> Result<()> {
        let msg = self.ac.mk_priv(plain)?;
        let by = bound(self.io_timeout, self.deadline);
        if msg.len() > GROW_FROM {
            // A large message (a DUMP reply): no copy just to prepend the
            // length; two segments do not matter at this size.
            let len = u32::try_from(msg.len()).map_err(|_| SessionError::TooLarge {
                what: "sending message",
                len: msg.len() as u64,
                max: MAX_PRIV_MSG,
            })?;
            write_all(&mut self.stream, &len.to_be_bytes(), by, "sending message")?;
            return write_all(&mut self.stream, &msg, by, "sending message");
        }
        let mut out = Vec::with_capacity(msg.len() + 4);
        push_frame(&mut out, &msg);
        drop(msg);
        write_all(&mut self.stream, &out, by, "sending message")
    }

    /// Receive one application message of at most `max` bytes of
    /// plaintext, within the I/O timeout.
    pub fn recv(&mut self, max: usize) -> Result<Zeroizing<Vec<u8>>> {
        self.recv_within(max, self.io_timeout)
    }

    /// Receive one application message, waiting at most `wait` for it.
    pub fn recv_within(&mut self, max: usize, wait: Duration) -> Result<Zeroizing<Vec<u8>>> {
        let deadline = bound(wait, self.deadline);
        let limit = max.saturating_add(4096).min(MAX_PRIV_MSG);
        let msg = read_frame(&mut self.stream, limit, deadline, "reading message")?;
        Ok(self.ac.rd_priv(&msg)?)
    }
}

/// What the server must do next with a connection that has not
/// authenticated yet (see [`Preauth::feed`]).
#[derive(Debug, PartialEq, Eq)]
pub enum PreauthStep {
    /// Wait for more bytes.
    NeedMore,
    /// Both version strings arrived and are valid: send the byte 0, then
    /// keep feeding.
    SendOk,
    /// Send this byte (1 = bad sendauth version, 2 = bad application
    /// version) and close.
    Refuse(u8),
    /// The AP-REQ is complete: hand it to [`Session::accept`].
    ApReq(Vec<u8>),
}

/// Incremental, allocation-bounded parser of the unauthenticated part of
/// the sendauth exchange (two version frames, then the AP-REQ frame).
///
/// The daemon runs it in its dispatcher for every new connection, so a
/// silent or slow client costs a few bytes of buffer and no worker thread.
#[derive(Debug, Default)]
pub struct Preauth {
    buf: Vec<u8>,
    versions_done: bool,
}

fn take_frame(buf: &[u8], max: usize, what: &'static str) -> Result<Option<(Vec<u8>, usize)>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if n as u64 > max as u64 {
        return Err(SessionError::TooLarge {
            what,
            len: n.into(),
            max,
        });
    }
    let end = 4 + n as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((buf[4..end].to_vec(), end)))
}

impl Preauth {
    /// Most bytes a client can make us buffer before authentication.
    pub const MAX_BUFFER: usize = 2 * (4 + MAX_VERSION_MSG) + 4 + MAX_HANDSHAKE_MSG;

    pub fn new() -> Self {
        Preauth::default()
    }

    /// Add received bytes and say what to do next. Errors (oversized
    /// frames, bytes after the AP-REQ) mean "close the connection".
    pub fn feed(&mut self, data: &[u8]) -> Result<PreauthStep> {
        if self.buf.len() + data.len() > Self::MAX_BUFFER {
            return Err(SessionError::TooLarge {
                what: "recvauth: pre-authentication data",
                len: (self.buf.len() + data.len()) as u64,
                max: Self::MAX_BUFFER,
            });
        }
        self.buf.extend_from_slice(data);
        if !self.versions_done {
            let Some((v, used1)) = take_frame(
                &self.buf,
                MAX_VERSION_MSG,
                "recvauth: reading sendauth version",
            )?
            else {
                return Ok(PreauthStep::NeedMore);
            };
            let Some((a, used2)) = take_frame(
                &self.buf[used1..],
                MAX_VERSION_MSG,
                "recvauth: reading application version",
            )?
            else {
                return Ok(PreauthStep::NeedMore);
            };
            if !nul_terminated_eq(&v, SENDAUTH_VERSION) {
                return Ok(PreauthStep::Refuse(1));
            }
            if !nul_terminated_eq(&a, APPL_VERSION) {
                return Ok(PreauthStep::Refuse(2));
            }
            self.buf.drain(..used1 + used2);
            self.versions_done = true;
            return Ok(PreauthStep::SendOk);
        }
        match take_frame(&self.buf, MAX_HANDSHAKE_MSG, "recvauth: reading AP-REQ")? {
            None => Ok(PreauthStep::NeedMore),
            Some((req, used)) if used == self.buf.len() => Ok(PreauthStep::ApReq(req)),
            Some(_) => Err(SessionError::Io {
                what: "recvauth",
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    "client sent data after the AP-REQ before authentication completed",
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn frame_length_is_bounded_before_allocation() {
        let (mut a, mut b) = pair();
        a.write_all(&0xffff_ffffu32.to_be_bytes()).unwrap();
        let err = read_frame(
            &mut b,
            1024,
            Instant::now() + Duration::from_secs(2),
            "test",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                SessionError::TooLarge {
                    len: 0xffff_ffff,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn silent_peer_times_out() {
        let (_a, mut b) = pair();
        let t = Instant::now();
        let err = read_frame(
            &mut b,
            1024,
            Instant::now() + Duration::from_millis(200),
            "test",
        )
        .unwrap_err();
        assert!(matches!(err, SessionError::TimedOut { .. }), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn truncated_frame_is_closed_error() {
        let (mut a, mut b) = pair();
        a.write_all(&[0, 0, 0, 10, 1, 2]).unwrap();
        drop(a);
        let err = read_frame(
            &mut b,
            1024,
            Instant::now() + Duration::from_secs(2),
            "test",
        )
        .unwrap_err();
        assert!(matches!(err, SessionError::Closed { .. }), "{err}");
    }

    fn frame(d: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        push_frame(&mut v, d);
        v
    }

    #[test]
    fn preauth_accepts_byte_by_byte_and_all_at_once() {
        let mut all = frame(SENDAUTH_VERSION);
        all.extend(frame(APPL_VERSION));
        let split = all.len();
        all.extend(frame(b"AP-REQ bytes"));
        // at once: versions ok, then the AP-REQ on the next feed
        let mut p = Preauth::new();
        assert_eq!(p.feed(&all).unwrap(), PreauthStep::SendOk);
        assert_eq!(
            p.feed(&[]).unwrap(),
            PreauthStep::ApReq(b"AP-REQ bytes".to_vec())
        );
        // byte by byte
        let mut p = Preauth::new();
        let mut steps = Vec::new();
        for (i, b) in all.iter().enumerate() {
            let s = p.feed(&[*b]).unwrap();
            if s != PreauthStep::NeedMore {
                steps.push((i, s));
            }
        }
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0], (split - 1, PreauthStep::SendOk));
        assert_eq!(steps[1].1, PreauthStep::ApReq(b"AP-REQ bytes".to_vec()));
    }

    #[test]
    fn preauth_refuses_bad_versions_and_huge_frames() {
        let mut p = Preauth::new();
        let mut d = frame(b"KRB5_SENDAUTH_V9.9\0");
        d.extend(frame(APPL_VERSION));
        assert_eq!(p.feed(&d).unwrap(), PreauthStep::Refuse(1));
        let mut p = Preauth::new();
        let mut d = frame(SENDAUTH_VERSION);
        d.extend(frame(b"0.2\0"));
        assert_eq!(p.feed(&d).unwrap(), PreauthStep::Refuse(2));
        let mut p = Preauth::new();
        assert!(p.feed(&[0xff, 0xff, 0xff, 0xff]).is_err());
        let mut p = Preauth::new();
        let mut d = frame(SENDAUTH_VERSION);
        d.extend(frame(APPL_VERSION));
        p.feed(&d).unwrap();
        assert!(p.feed(&0x0100_0000u32.to_be_bytes()).is_err());
        let mut p = Preauth::new();
        assert!(p.feed(&vec![0u8; Preauth::MAX_BUFFER + 1]).is_err());
    }

    #[test]
    fn version_strings_compare_like_strcmp() {
        assert!(nul_terminated_eq(b"0.1\0", APPL_VERSION));
        assert!(nul_terminated_eq(b"0.1\0junk", APPL_VERSION));
        assert!(!nul_terminated_eq(b"0.1", APPL_VERSION));
        assert!(!nul_terminated_eq(b"0.2\0", APPL_VERSION));
        assert!(!nul_terminated_eq(b"", APPL_VERSION));
    }
}
