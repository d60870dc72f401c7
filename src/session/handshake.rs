//! The sendauth/recvauth handshake: the client side ([`Session::connect`])
//! and the server side once the AP-REQ is in hand ([`Session::accept`]).

use super::frame::{bound, io_err, push_frame, read_byte, read_frame, write_all, TimedStream};
use super::{
    replay, ReplayCheck, ReplayError, Result, Session, SessionError, APPL_VERSION,
    MAX_HANDSHAKE_MSG, MAX_PRINCIPAL, SENDAUTH_VERSION,
};
use crate::krb5::{self, AuthContext, Ccache, Context, Creds, Keytab, KrbAddr, Principal};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Auth-context addresses for a connected socket (§2.3); IPv6 is allowed
/// (an extension: C peers only ever use IPv4).
/// Also returns the peer's socket address.
fn socket_addrs(stream: &TcpStream) -> Result<(KrbAddr, KrbAddr, SocketAddr)> {
    let local = stream.local_addr().map_err(|e| io_err("getsockname", e))?;
    let peer = stream.peer_addr().map_err(|e| io_err("getpeername", e))?;
    Ok((KrbAddr::Ip(local.ip()), KrbAddr::Ip(peer.ip()), peer))
}

/// Client: the server's answer to the versions and the AP-REQ, read by
/// `deadline`: its AP-REP, or the KRB-ERROR it sent instead (`Err`).
pub(super) fn read_ap_rep(
    stream: &mut TimedStream,
    deadline: Instant,
) -> Result<std::result::Result<Vec<u8>, Vec<u8>>> {
    match read_byte(stream, deadline, "sendauth: reading version reply")? {
        0 => {}
        1 => return Err(SessionError::BadVersion("sendauth protocol")),
        2 => return Err(SessionError::BadVersion("application")),
        b => return Err(SessionError::BadResponse(b)),
    }
    let status = read_frame(
        stream,
        MAX_HANDSHAKE_MSG,
        deadline,
        "sendauth: reading server status",
    )?;
    if !status.is_empty() {
        return Ok(Err(status));
    }
    let ap_rep = read_frame(
        stream,
        MAX_HANDSHAKE_MSG,
        deadline,
        "sendauth: reading AP-REP",
    )?;
    Ok(Ok(ap_rep))
}

impl<'a> Session<'a> {
    /// Client side: run the sendauth exchange over `stream` using tickets
    /// from `ccache` for service `server`. `io_timeout` bounds every read
    /// and write of the session. The handshake is complete on return.
    pub fn connect(
        ctx: &'a Context,
        stream: TcpStream,
        ccache: &Ccache<'_>,
        server: &str,
        nat: bool,
        io_timeout: Duration,
    ) -> Result<Self> {
        let mut s = Self::connect_by(ctx, stream, ccache, server, nat, io_timeout, None)?;
        s.finish_handshake()?;
        Ok(s)
    }

    /// Client side, every operation also bounded by `deadline` (the
    /// client's whole-request `Timeout`). Nothing is sent yet: the
    /// versions and the AP-REQ go out with the first request, in one
    /// segment, and the server's answer is read before its reply
    /// ([`Session::finish_handshake`], called by the first receive).
    ///
    /// A request sent before the AP-REP is as safe as after it: it is a
    /// KRB-PRIV under the subkey of our authenticator, which only the
    /// holder of the service key can read (kpasswd sends its request
    /// with its AP-REQ the same way), and the reply is not trusted before
    /// the AP-REP is verified. A C auksd reads the socket in order and
    /// finds the request there after its AP-REP.
    pub fn connect_by(
        ctx: &'a Context,
        stream: TcpStream,
        ccache: &Ccache<'_>,
        server: &str,
        nat: bool,
        io_timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        // Getting the service ticket may talk to the KDC: it happens
        // before anything is written.
        Self::handshake(ctx, stream, nat, (io_timeout, deadline), |ac| {
            ac.mk_req(ccache, &Principal::parse(ctx, server)?)
        })
    }

    /// [`Session::connect_by`] with the service ticket already in hand
    /// (found valid in the ccache by the caller): the AP-REQ is built from
    /// it without reading the ccache again.
    pub fn connect_with_ticket(
        ctx: &'a Context,
        stream: TcpStream,
        ticket: &mut Creds<'_>,
        nat: bool,
        io_timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        Self::handshake(ctx, stream, nat, (io_timeout, deadline), |ac| {
            ac.mk_req_with(ticket)
        })
    }

    /// The client handshake, up to the point where the server answers: an
    /// auth context with the socket's addresses, and the versions and the
    /// AP-REQ from `ap_req` ready to go out in one segment (the server
    /// reads them in order, exactly as from krb5_sendauth).
    fn handshake(
        ctx: &'a Context,
        stream: TcpStream,
        nat: bool,
        (io_timeout, deadline): (Duration, Option<Instant>),
        ap_req: impl FnOnce(&mut AuthContext<'a>) -> krb5::Result<Vec<u8>>,
    ) -> Result<Self> {
        let _ = stream.set_nodelay(true);
        let mut ac = AuthContext::for_session(ctx)?;
        let (local, remote, peer) = socket_addrs(&stream)?;
        ac.set_addrs(local, remote)?;
        let ap_req = ap_req(&mut ac)?;
        let mut out = Vec::with_capacity(64 + ap_req.len());
        push_frame(&mut out, SENDAUTH_VERSION);
        push_frame(&mut out, APPL_VERSION);
        push_frame(&mut out, &ap_req);
        if nat {
            // The AP-REP is not checked against addresses: the KRB-PRIV
            // that may follow at once already carries the dummy ones.
            ac.set_addrs(KrbAddr::Dummy, KrbAddr::Dummy)?;
        }
        Ok(Session {
            stream: TimedStream::new(stream),
            ac,
            peer,
            io_timeout,
            deadline,
            out,
            awaiting_rep: true,
        })
    }

    /// Client: send what is pending (the handshake, if no request took it
    /// along), then read the server's answer to the AP-REQ and verify its
    /// AP-REP. Nothing to do once done.
    pub fn finish_handshake(&mut self) -> Result<()> {
        if !self.awaiting_rep {
            return Ok(());
        }
        let deadline = bound(self.io_timeout, self.deadline);
        self.flush(deadline, "sendauth: sending AP-REQ")?;
        let ap_rep = match read_ap_rep(&mut self.stream, deadline)? {
            Ok(ap_rep) => ap_rep,
            Err(krb_error) => {
                return Err(SessionError::Rejected(krb5::rd_error(
                    self.ac.context(),
                    &krb_error,
                )))
            }
        };
        self.ac.rd_rep(&ap_rep)?;
        self.awaiting_rep = false;
        Ok(())
    }

    /// Server side, after [`Preauth`] collected the AP-REQ (and `early`,
    /// what the client sent after it): verify it with
    /// the keytab, answer "ok" + AP-REP (or a KRB-ERROR), and return the
    /// session and the authenticated client principal name. `owe_version_ok`:
    /// the version check's answer (one byte 0) was not sent yet; it goes
    /// out first, in the same write.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        ctx: &'a Context,
        stream: TcpStream,
        ap_req: &[u8],
        early: Vec<u8>,
        owe_version_ok: bool,
        keytab: &Keytab<'_>,
        server: &Principal<'_>,
        replay: ReplayCheck<'_>,
        nat: bool,
        io_timeout: Duration,
    ) -> Result<(Self, String)> {
        let _ = stream.set_nodelay(true);
        let mut ac = AuthContext::for_session(ctx)?;
        let (local, remote, peer) = socket_addrs(&stream)?;
        let mut stream = TimedStream::with_early(stream, early);
        ac.set_addrs(local, remote)?;
        let library = match replay {
            ReplayCheck::Off => false,
            ReplayCheck::Own(c) => c.library_needed(ctx.now()),
        };
        ac.set_replay_cache(library, server)?;
        let verified = ac.rd_req(ap_req, server, keytab).and_then(|v| {
            let ReplayCheck::Own(cache) = replay else {
                return Ok(v);
            };
            let tag = replay::tag_of(krb5::ap_req::authenticator_cipher(ap_req)?);
            let ctime = ac.authenticator_time()?;
            match cache.record(tag, ctime, ctx.now(), library) {
                Ok(()) => Ok(v),
                Err(ReplayError::Replayed) => Err(krb5::Error::replayed()),
                Err(e) => Err(krb5::Error::local("replay cache", e.to_string())),
            }
        });
        let (client, mutual) = match verified {
            Ok(v) => v,
            Err(e) => {
                if let Ok(err) = krb5::mk_error(ctx, server, &e) {
                    let mut out = Vec::new();
                    if owe_version_ok {
                        out.push(0);
                    }
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
        if owe_version_ok {
            out.push(0);
        }
        push_frame(&mut out, &[]);
        if mutual {
            let rep = ac.mk_rep()?;
            push_frame(&mut out, &rep);
        }
        let mut session = Session {
            stream,
            ac,
            peer,
            io_timeout,
            deadline: None,
            out,
            awaiting_rep: false,
        };
        // When the client sent its request with the AP-REQ, the AP-REP
        // goes out with the reply, one segment and one wake-up of the
        // client for both (or before the session waits for more).
        if session.stream.buffered() == 0 {
            session.flush(bound(io_timeout, None), "recvauth: sending AP-REP")?;
        }
        if client.len() > MAX_PRINCIPAL {
            return Err(SessionError::PrincipalTooLong);
        }
        if nat {
            session.ac.set_addrs(KrbAddr::Dummy, KrbAddr::Dummy)?;
        }
        Ok((session, client))
    }
}
