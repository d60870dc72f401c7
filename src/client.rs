//! The AUKS client API: one request per connection (as the C client; a
//! caller with many ADDs keeps a session, [`KeptSession`]), primary/secondary
//! fail-over with `Retries` rounds (spec §2.1), `Timeout` bounding each
//! whole attempt (host name look-up, connect, service ticket from the KDC, handshake,
//! request, reply; the C client has no timeout at all), IPv4 and IPv6.
//!
//! Errors are classified so that programs can give an exit status per
//! failure class and a message that says what happened and what to do.

use crate::config::{ClientConfig, Endpoint};
use crate::cred::{self, CredError};
use crate::krb5::{self, Ccache, Context};
use crate::proto::{self, CredRecord, ErrorInfo, Reply, Request};
use crate::session::{Session, SessionError};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

mod first;
mod kept;
pub use kept::{KeptSession, KEPT_FOR, KEPT_REQUESTS};

/// Extra time a DUMP reply may take beyond `Timeout`: the daemon encodes,
/// encrypts and sends every stored credential (100 000 in about a second).
pub const DUMP_ALLOWANCE: Duration = Duration::from_secs(60);

/// The wire reason codes, re-exported from [`crate::proto::reason`].
pub use crate::proto::reason;

/// Failure classes of a client request. Each has its own exit status.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot reach auksd at {0}")]
    Unreachable(String),
    #[error("cannot authenticate to auksd at {endpoint}: {reason}")]
    Auth { endpoint: String, reason: String },
    #[error("permission denied by auksd at {endpoint} for principal {principal}: {reason}")]
    PermissionDenied {
        endpoint: String,
        principal: String,
        reason: String,
    },
    #[error("no credential stored for uid {uid} on auksd {endpoint}")]
    NotFound { uid: u32, endpoint: String },
    #[error("{0}")]
    LocalCred(#[from] CredError),
    #[error("auksd at {endpoint} refused the request: {reason}")]
    Rejected { endpoint: String, reason: String },
    #[error("protocol error with auksd at {endpoint}: {reason}")]
    Protocol { endpoint: String, reason: String },
}

impl ClientError {
    /// Documented exit status of the `auks` CLI for this class.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Config(_) => 2,
            ClientError::Unreachable(_) => 3,
            ClientError::Auth { .. } => 4,
            ClientError::PermissionDenied { .. } => 5,
            ClientError::NotFound { .. } => 6,
            ClientError::LocalCred(_) => 7,
            ClientError::Rejected { .. } => 8,
            ClientError::Protocol { .. } => 9,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A client bound to one configuration.
pub struct Client {
    pub conf: ClientConfig,
    /// ccache used to authenticate to auksd; `None` = the default ccache.
    auth_ccache: Option<String>,
    /// Use the thread's kept krb5 context ([`Client::keeping_context`]).
    keep_context: bool,
    /// Endpoints (bit 0: primary, 1: secondary) that closed the connection
    /// on a request sent with the handshake: the request waits for the
    /// AP-REP there ([`Client::first_exchange`]).
    after_ap_rep: std::sync::atomic::AtomicU8,
}

/// Where a request went and who we were.
struct Answer {
    reply: Reply,
    endpoint: String,
    principal: String,
}

fn endpoint_label(ep: &Endpoint) -> String {
    format!("{}:{}", ep.connect_address(), ep.port)
}

/// Look a TCP service name up in /etc/services (numbers pass through).
fn port_number(port: &str) -> Option<u16> {
    if let Ok(n) = port.trim().parse::<u16>() {
        return Some(n);
    }
    let text = std::fs::read_to_string("/etc/services").ok()?;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut it = line.split_whitespace();
        let (Some(name), Some(pp)) = (it.next(), it.next()) else {
            continue;
        };
        let aliases: Vec<&str> = it.collect();
        if (name == port || aliases.contains(&port)) && pp.ends_with("/tcp") {
            return pp.trim_end_matches("/tcp").parse().ok();
        }
    }
    None
}

/// Resolve an endpoint: IPv4 addresses first (as C), then IPv6. A host
/// name (not an address) is looked up by `deadline` ([`helper_by`]).
pub(crate) fn resolve(
    ep: &Endpoint,
    deadline: Option<Instant>,
) -> std::result::Result<Vec<SocketAddr>, String> {
    let port = port_number(&ep.port).ok_or_else(|| format!("unknown port {:?}", ep.port))?;
    let host = ep.connect_address();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let mut addrs: Vec<SocketAddr> = match (host.parse::<std::net::IpAddr>(), deadline) {
        (Ok(ip), _) => vec![SocketAddr::new(ip, port)],
        (Err(_), None) => lookup(&host, port)?,
        (Err(_), Some(d)) => {
            let name = host.clone();
            let what = format!("the look-up of {host}");
            helper_by("auks-resolve", &what, move || lookup(&name, port), d)??
        }
    };
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    Ok(addrs)
}

fn lookup(host: &str, port: u16) -> std::result::Result<Vec<SocketAddr>, String> {
    Ok((host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect())
}

/// Run `f` (`what`, for messages) on a helper thread named `thread` and
/// wait for it until `deadline`: libkrb5's KDC exchanges and the
/// resolver's retries (DNS, an LDAP-backed hosts database) have their own
/// timeouts, far longer than the request's `Timeout`. At the deadline the
/// helper is left to finish on its own; it holds nothing shared.
fn helper_by<T: Send + 'static>(
    thread: &str,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
    deadline: Instant,
) -> std::result::Result<T, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => {
                format!("timed out: no answer to {what} within the request's Timeout")
            }
            std::sync::mpsc::RecvTimeoutError::Disconnected => {
                format!("{what} stopped without an answer")
            }
        })
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// An authenticated session to one endpoint.
struct Open<'a> {
    session: Session<'a>,
    endpoint: String,
    principal: String,
    /// The bound of the request (`Timeout`).
    deadline: Option<Instant>,
}

impl<'a> Open<'a> {
    /// After the one request of the session and its reply (`r`), CLOSE:
    /// the one-request session of the C client.
    fn finish(
        mut self,
        r: std::result::Result<crate::krb5::Plaintext<'a>, SessionError>,
    ) -> Result<Answer> {
        // CLOSE before parsing, as C does (keeps TIME_WAIT on our side).
        let _ = self.session.send(&proto::encode_request(&Request::Close));
        self.answer(r.and_then(decode))
    }

    /// Send `req` and receive its reply (not decoded).
    fn exchange(
        &mut self,
        req: &Request,
        client: &Client,
    ) -> std::result::Result<crate::krb5::Plaintext<'a>, SessionError> {
        let s = &mut self.session;
        s.send(&proto::encode_request(req))?;
        if matches!(req, Request::Dump) {
            // The handshake within `Timeout`, not the DUMP's allowance.
            s.finish_handshake()?;
            // The size of a DUMP reply follows from the repository size:
            // accept what a KRB-PRIV can carry, allocated as it arrives.
            s.set_deadline(self.deadline.map(|d| d + DUMP_ALLOWANCE));
            s.recv_within(
                proto::MAX_DUMP_MESSAGE,
                client.io_timeout() + DUMP_ALLOWANCE,
            )
        } else {
            s.recv(proto::MAX_MESSAGE)
        }
    }

    /// The answer of a reply, or the client error of a failed exchange.
    fn answer(&self, r: std::result::Result<Reply, SessionError>) -> Result<Answer> {
        let (endpoint, principal) = (self.endpoint.clone(), self.principal.clone());
        match r {
            Ok(reply) => Ok(Answer {
                reply,
                endpoint,
                principal,
            }),
            Err(SessionError::Closed { .. }) => Err(ClientError::PermissionDenied {
                endpoint,
                principal,
                reason: "auksd closed the connection without replying (a C auksd does this when its ACL gives the principal no role)".into(),
            }),
            Err(e) => Err(ClientError::Protocol {
                endpoint,
                reason: e.to_string(),
            }),
        }
    }
}

/// Decode a reply's plaintext.
fn decode(plain: crate::krb5::Plaintext<'_>) -> std::result::Result<Reply, SessionError> {
    proto::decode_reply(&plain).map_err(|e| SessionError::Io {
        what: "decoding reply",
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// Outcome of one endpoint attempt before authentication completed.
enum Attempt {
    /// TCP-level failure (refused, unreachable, timed out, closed early).
    Transport(String),
    /// Kerberos failure (no ticket, KDC down, rejected AP-REQ).
    Auth(String),
}

impl Client {
    /// Load the configuration (explicit path > `$AUKS_CONF` > default).
    pub fn from_config_file(path: Option<&std::path::Path>) -> Result<Self> {
        Ok(Client::new(ClientConfig::load(path)?))
    }

    pub fn new(conf: ClientConfig) -> Self {
        Client {
            conf,
            auth_ccache: None,
            keep_context: false,
            after_ap_rep: Default::default(),
        }
    }

    /// Make requests with the calling thread's kept krb5 context
    /// ([`Context::with_kept`]) instead of a new one each time: for a
    /// thread that makes many requests (auksdrenewer's, a load
    /// generator's). The context then keeps what libkrb5 set up once
    /// (default realm, clock skew, the KDC time offset of the first ccache
    /// it read) for the thread's life.
    pub fn keeping_context(mut self) -> Self {
        self.keep_context = true;
        self
    }

    /// Run `f` with a krb5 context: the thread's kept one or a new one.
    fn with_context<T, E: From<krb5::Error>>(
        &self,
        f: impl FnOnce(&Context) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if self.keep_context {
            Context::with_kept(f)
        } else {
            f(&Context::new()?)
        }
    }

    /// Authenticate with this ccache instead of the default one.
    pub fn with_auth_ccache(mut self, ccache: Option<String>) -> Self {
        self.auth_ccache = ccache;
        self
    }

    fn connect_timeout(&self) -> Option<Duration> {
        match self.conf.common.timeout {
            0 => None,
            t => Some(Duration::from_secs(t)),
        }
    }

    /// Timeout of every read and write once connected (the whole request
    /// is also bounded by `Timeout` when it is not 0).
    pub fn io_timeout(&self) -> Duration {
        self.conf.common.io_timeout()
    }

    fn tcp_connect(
        &self,
        ep: &Endpoint,
        deadline: Option<Instant>,
    ) -> std::result::Result<TcpStream, String> {
        let addrs = resolve(ep, deadline)?;
        let mut last = String::from("no address");
        for a in addrs {
            let r = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => TcpStream::connect_timeout(&a, left),
                    _ => Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                },
                None => TcpStream::connect(a),
            };
            match r {
                Ok(s) => return Ok(s),
                Err(e) => last = describe_io(&e),
            }
        }
        Err(last)
    }

    /// Send one request and return its reply, trying the primary then the
    /// secondary daemon for `Retries` rounds. Once authenticated, the
    /// request is not retried (spec §2.1).
    fn request(&self, req: &Request) -> Result<Answer> {
        let r = self.with_context(|ctx| {
            Ok::<_, krb5::Error>(self.fail_over(|ep| {
                let (open, r) = self.first_exchange(ctx, ep, req)?;
                Ok(open.finish(r))
            }))
        });
        r.unwrap_or_else(|e| {
            Err(ClientError::Auth {
                endpoint: "-".into(),
                reason: e.to_string(),
            })
        })
    }

    /// Run `attempt` on the primary then the secondary daemon for
    /// `Retries` rounds, until one gives a final result (`Ok`); `Err` is an
    /// attempt that failed before authentication, worth the next endpoint.
    fn fail_over<T>(
        &self,
        mut attempt: impl FnMut(&Endpoint) -> std::result::Result<Result<T>, Attempt>,
    ) -> Result<T> {
        let eps = [
            ("primary", &self.conf.common.primary),
            ("secondary", &self.conf.common.secondary),
        ];
        let rounds = self.conf.common.retries.max(0);
        let mut failures: Vec<(String, Attempt)> = Vec::new();
        for round in 1..=rounds {
            for (role, ep) in eps {
                let label = format!("{} ({role})", endpoint_label(ep));
                match attempt(ep) {
                    Ok(r) => return r,
                    Err(a) => {
                        crate::log!(2, "auks api : {label}: {}", attempt_text(&a));
                        failures.retain(|(l, _)| l != &label);
                        failures.push((label, a));
                    }
                }
            }
            if round < rounds {
                std::thread::sleep(Duration::from_secs(self.conf.common.delay));
            }
        }
        if rounds == 0 {
            return Err(ClientError::Unreachable(
                "any endpoint: Retries is 0 in the configuration, so no attempt was made".into(),
            ));
        }
        // Prefer reporting an authentication problem: it is actionable.
        if let Some((l, Attempt::Auth(r))) =
            failures.iter().find(|(_, a)| matches!(a, Attempt::Auth(_)))
        {
            return Err(ClientError::Auth {
                endpoint: l.clone(),
                reason: r.clone(),
            });
        }
        let text = failures
            .iter()
            .map(|(l, a)| format!("{l}: {}", attempt_text(a)))
            .collect::<Vec<_>>()
            .join(" nor ");
        Err(ClientError::Unreachable(text))
    }

    /// Connect to one endpoint and prepare the handshake, which goes out
    /// with the first request ([`Client::first_exchange`]): `Err(attempt)`
    /// = try the next one.
    fn open<'a>(&self, ctx: &'a Context, ep: &Endpoint) -> std::result::Result<Open<'a>, Attempt> {
        let ccache = match &self.auth_ccache {
            Some(n) => Ccache::resolve(ctx, n),
            None => Ccache::default(ctx),
        }
        .map_err(|e| Attempt::Auth(ccache_hint(&e)))?;
        // One read of the ccache finds the principal and a valid service
        // ticket (the usual case); the handshake then reads it no more.
        let (principal, ticket) = cached_ticket(ctx, &ccache, &ep.principal)?;
        // `Timeout` bounds the whole attempt: connect, handshake, request
        // and reply (a DUMP reply gets [`DUMP_ALLOWANCE`] more).
        let deadline = self.connect_timeout().map(|t| Instant::now() + t);
        let stream = self.tcp_connect(ep, deadline).map_err(Attempt::Transport)?;
        let (nat, io_timeout) = (self.conf.common.nat, self.io_timeout());
        let connected = match ticket {
            Some(mut t) => {
                Session::connect_with_ticket(ctx, stream, &mut t, nat, io_timeout, deadline)
            }
            None => {
                if let Some(d) = deadline {
                    service_ticket_by(&ccache, &ep.principal, d)?;
                }
                Session::connect_by(
                    ctx,
                    stream,
                    &ccache,
                    &ep.principal,
                    nat,
                    io_timeout,
                    deadline,
                )
            }
        };
        let session = connected.map_err(attempt_of)?;
        Ok(Open {
            session,
            endpoint: endpoint_label(ep),
            principal,
            deadline,
        })
    }

    fn refused(ans: &Answer, info: &ErrorInfo, what: &str, uid: Option<u32>) -> ClientError {
        let endpoint = ans.endpoint.clone();
        let reason = info
            .reason
            .as_deref()
            .map(sanitize)
            .unwrap_or_else(|| match uid {
                Some(u) => format!(
                    "no credential stored for uid {u}, or not authorized to {what} it \
                     (this auksd gives no reason; see its log)"
                ),
                None => {
                    format!("{what} refused without a reason (this auksd gives none; see its log)")
                }
            });
        match info.code {
            Some(reason::NOT_FOUND) => ClientError::NotFound {
                uid: uid.unwrap_or(0),
                endpoint,
            },
            Some(reason::ACL_DENIED | reason::NOT_AUTHORIZED | reason::PRINCIPAL_MISMATCH) => {
                ClientError::PermissionDenied {
                    endpoint,
                    principal: ans.principal.clone(),
                    reason,
                }
            }
            _ => ClientError::Rejected { endpoint, reason },
        }
    }

    fn unexpected(ans: &Answer) -> ClientError {
        ClientError::Protocol {
            endpoint: ans.endpoint.clone(),
            reason: format!("unexpected reply type {}", ans.reply.msg_type()),
        }
    }

    /// PING.
    pub fn ping(&self) -> Result<()> {
        let ans = self.request(&Request::Ping)?;
        match &ans.reply {
            Reply::Ping => Ok(()),
            Reply::Error(i) => Err(Self::refused(&ans, i, "ping", None)),
            _ => Err(Self::unexpected(&ans)),
        }
    }

    /// Prepare a KRB-CRED for ADD: make it addressless (§4.3) and add a
    /// cross-realm TGT when `CrossRealm` is set (failure only logged, §4.4).
    pub fn prepare_for_add(&self, data: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>> {
        self.with_context(|ctx| {
            let mut data = cred::make_addressless(ctx, data)?;
            if let Some(realm) = &self.conf.common.cross_realm {
                match cred::add_cross_realm(ctx, data.clone(), realm) {
                    Ok(d) => data = d,
                    Err(e) => {
                        crate::log!(1, "auks api : cross-realm TGT for {realm} not added: {e}")
                    }
                }
            }
            Ok::<_, CredError>(data)
        })
        .map_err(ClientError::from)
    }

    /// ADD the TGT found in `ccache` (default ccache when `None`).
    pub fn add_from_ccache(&self, ccache: Option<&str>) -> Result<()> {
        let ctx = Context::new().map_err(CredError::from)?;
        let data = cred::extract_from_ccache(&ctx, ccache)?;
        drop(ctx);
        self.add(data)
    }

    /// ADD a KRB-CRED (prepared with [`Client::prepare_for_add`] first).
    pub fn add(&self, data: Zeroizing<Vec<u8>>) -> Result<()> {
        let data = self.prepare_for_add(data)?;
        Self::added(&self.request(&Request::Add(data))?)
    }

    /// The outcome of an ADD's answer.
    fn added(ans: &Answer) -> Result<()> {
        match &ans.reply {
            Reply::Add => Ok(()),
            Reply::Error(i) => Err(Self::refused(ans, i, "add", None)),
            _ => Err(Self::unexpected(ans)),
        }
    }

    /// GET the credential stored for `uid`.
    pub fn get(&self, uid: u32) -> Result<CredRecord> {
        let ans = self.request(&Request::Get(uid))?;
        match ans.reply {
            Reply::Get(rec) => Ok(rec),
            Reply::Error(ref i) => Err(Self::refused(&ans, i, "get", Some(uid))),
            _ => Err(Self::unexpected(&ans)),
        }
    }

    /// REMOVE the credential stored for `uid`.
    pub fn remove(&self, uid: u32) -> Result<()> {
        let ans = self.request(&Request::Remove(uid))?;
        match &ans.reply {
            Reply::Remove => Ok(()),
            Reply::Error(i) => Err(Self::refused(&ans, i, "remove", Some(uid))),
            _ => Err(Self::unexpected(&ans)),
        }
    }

    /// DUMP every stored credential (admin only).
    pub fn dump(&self) -> Result<Vec<CredRecord>> {
        let ans = self.request(&Request::Dump)?;
        match ans.reply {
            Reply::Dump(v) => Ok(v),
            Reply::Error(ref i) => Err(Self::refused(&ans, i, "dump", None)),
            _ => Err(Self::unexpected(&ans)),
        }
    }
}

/// Margin under which a cached service ticket is treated as expired (it
/// must still be valid when the daemon reads the AP-REQ).
pub(crate) const TICKET_MARGIN: i64 = 30;

/// The ccache's principal and a service ticket for `server` issued to it,
/// valid for at least [`TICKET_MARGIN`] more seconds (None when there is
/// none: it must then come from the KDC), from one read of `ccache`. The
/// principal is the client of the local TGT; only a ccache without one is
/// asked for its principal separately.
fn cached_ticket<'a>(
    ctx: &'a Context,
    ccache: &Ccache<'a>,
    server: &str,
) -> std::result::Result<(String, Option<krb5::Creds<'a>>), Attempt> {
    let wanted = krb5::Principal::parse(ctx, server)
        .and_then(|p| p.name())
        .map_err(|e| Attempt::Auth(e.to_string()))?;
    let all = ccache.creds().map_err(|e| Attempt::Auth(ccache_hint(&e)))?;
    let principal = match all.iter().find(|c| c.is_local_tgt()) {
        Some(tgt) => tgt.client(),
        None => ccache.principal().and_then(|p| p.name()),
    }
    .map_err(|e| Attempt::Auth(ccache_hint(&e)))?;
    let now = ctx.now();
    let ticket = all.into_iter().find(|c| {
        c.endtime() > now + TICKET_MARGIN
            && !c.is_invalid()
            && c.server_principal()
                .and_then(|p| p.name())
                .is_ok_and(|n| n == wanted)
            && c.client().is_ok_and(|n| n == principal)
    });
    Ok((principal, ticket))
}

/// Fetch a service ticket for `server` into the ccache by `deadline`, so
/// that the handshake does not wait for the KDC beyond `Timeout`:
/// libkrb5 bounds its KDC exchanges by its own timeouts only (several
/// seconds per KDC and pass), and has no per-context setting for them.
///
/// The ticket is fetched on a helper thread with its own context
/// (`krb5_get_credentials` stores it in the ccache, where the handshake
/// finds it); at the deadline the attempt fails and the helper is left to
/// finish on its own (libkrb5 gives up by itself later; it holds nothing
/// but its own context).
fn service_ticket_by(
    ccache: &Ccache<'_>,
    server: &str,
    deadline: Instant,
) -> std::result::Result<(), Attempt> {
    let wanted = server.to_owned();
    let name = ccache
        .full_name()
        .map_err(|e| Attempt::Auth(ccache_hint(&e)))?;
    let fetch = move || {
        let r = (|| {
            let ctx = Context::new()?;
            let cc = Ccache::resolve(&ctx, &name)?;
            let sp = krb5::Principal::parse(&ctx, &wanted)?;
            // The AP-REQ built here is never sent: only the ticket that
            // krb5_get_credentials stored in the ccache is wanted.
            krb5::AuthContext::for_session(&ctx)?.mk_req(&cc, &sp)?;
            Ok::<(), krb5::Error>(())
        })();
        r.map_err(|e| ccache_hint(&e))
    };
    let what = format!("the KDC's service ticket request for {server}");
    helper_by("auks-tgs", &what, fetch, deadline)
        .map_err(Attempt::Auth)?
        .map_err(Attempt::Auth)
}

/// The attempt that failed with `e` before authentication completed.
fn attempt_of(e: SessionError) -> Attempt {
    match e {
        e if e.is_transport() => Attempt::Transport(format!("during authentication: {e}")),
        SessionError::Krb5(e) => Attempt::Auth(ccache_hint(&e)),
        e => Attempt::Auth(e.to_string()),
    }
}

fn attempt_text(a: &Attempt) -> String {
    match a {
        Attempt::Transport(s) | Attempt::Auth(s) => s.clone(),
    }
}

/// Add a hint to Kerberos errors that mean "you have no usable ticket".
fn ccache_hint(e: &krb5::Error) -> String {
    if e.is_ccache_missing() {
        format!("{e} (no Kerberos ticket of your own: run kinit)")
    } else if e.is_expired() {
        format!("{e} (your ticket has expired: run kinit)")
    } else {
        e.to_string()
    }
}

/// Keep peer-provided text printable.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_bounded_by_the_deadline() {
        let soon = Instant::now() + Duration::from_millis(200);
        let t = Instant::now();
        let slow = helper_by(
            "t",
            "the look-up of x",
            || std::thread::sleep(Duration::from_secs(5)),
            soon,
        );
        assert_eq!(
            slow.unwrap_err(),
            "timed out: no answer to the look-up of x within the request's Timeout"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(helper_by("t", "y", || 7, later), Ok(7));
        // an address literal needs no look-up at all, a name does
        let mut ep = Endpoint {
            host: "localhost".into(),
            address: "127.0.0.2".into(),
            port: "4242".into(),
            principal: String::new(),
        };
        assert_eq!(
            resolve(&ep, Some(Instant::now())).unwrap(),
            vec!["127.0.0.2:4242".parse().unwrap()]
        );
        ep.address = "localhost".into();
        let r = resolve(&ep, Some(later)).unwrap();
        assert!(
            r.iter().all(|a| a.ip().is_loopback() && a.port() == 4242),
            "{r:?}"
        );
    }

    #[test]
    fn ports_by_number_and_name() {
        assert_eq!(port_number("12345"), Some(12345));
        assert_eq!(port_number(" 80"), Some(80));
        assert_eq!(port_number("no-such-service-xyz"), None);
    }

    #[test]
    fn exit_codes_are_distinct() {
        let e = [
            ClientError::Unreachable(String::new()).exit_code(),
            ClientError::Auth {
                endpoint: String::new(),
                reason: String::new(),
            }
            .exit_code(),
            ClientError::NotFound {
                uid: 1,
                endpoint: String::new(),
            }
            .exit_code(),
        ];
        assert_eq!(e, [3, 4, 6]);
    }

    #[test]
    fn sanitize_strips_control_chars() {
        assert_eq!(sanitize("a\x1b[2Jb\n"), "a [2Jb ");
    }
}
