//! auksd: the credential repository daemon (spec §5).
//!
//! Threads:
//! - the dispatcher (caller's thread) accepts connections and runs the
//!   unauthenticated part of the handshake itself with non-blocking sockets
//!   ([`Preauth`]), so a silent, slow or hostile client holds a few bytes
//!   of buffer and no worker (fixing §11.5); a connection that has not sent
//!   a complete AP-REQ within the handshake timeout is closed;
//! - `Workers` threads take complete AP-REQs from a bounded queue
//!   (`QueueSize`), authenticate, apply the ACL and serve requests, each
//!   read and write bounded in size and time;
//! - the cleaner drops expired credentials every `CleanDelay` seconds.
//!
//! SIGTERM/SIGINT stop accepting, let workers finish the queue and exit;
//! SIGHUP does the same and then reloads configuration, ACL and
//! repository; SIGUSR2 logs counters.

pub mod repo;

use crate::acl::{Acl, Role};
use crate::client::reason;
use crate::config::{ConfigError, DaemonConfig, Endpoint};
use crate::cred::{self, CredError};
use crate::krb5::{Context, Keytab, Principal};
use crate::proto::{self, ErrorInfo, ProtoError, Reply, Request, MAX_DUMP_RECORDS};
use crate::session::{Preauth, PreauthStep, Session, SessionError, MAX_REQUEST};
use repo::{AddOutcome, Repo};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time a client has to complete the unauthenticated handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of each read/write once authenticated, and idle time allowed
/// between two requests of a session.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed.
pub const MAX_REQUESTS_PER_SESSION: usize = 64;
/// Connections allowed in the unauthenticated stage at once.
pub const MAX_PENDING: usize = 1024;

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("current host ({host}) is not an auks server: it is neither PrimaryHost ({primary}) nor SecondaryHost ({secondary})")]
    NotAServer {
        host: String,
        primary: String,
        secondary: String,
    },
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("Kerberos set-up failed: {0}")]
    Krb5(#[from] crate::krb5::Error),
    #[error("{0}")]
    Other(String),
}

/// Command-line options of auksd.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub conf: Option<PathBuf>,
    /// Stay in the foreground, log to stderr.
    pub foreground: bool,
    /// `-v` count, added to the configured level.
    pub verbose: i64,
    /// `-d` count, added to the configured level.
    pub debug: i64,
}

/// Which configured endpoint this host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRole {
    Primary,
    Secondary,
}

/// Role detection (§5.1): `gethostname()` equal to PrimaryHost, else to
/// SecondaryHost, else primary when either host is the literal `localhost`.
pub fn detect_role(hostname: &str, primary: &str, secondary: &str) -> Option<ServerRole> {
    if hostname == primary {
        Some(ServerRole::Primary)
    } else if hostname == secondary {
        Some(ServerRole::Secondary)
    } else if primary == "localhost" || secondary == "localhost" {
        Some(ServerRole::Primary)
    } else {
        None
    }
}

/// Reason of a refused request: code (C numbering) and text.
struct Refusal(i32, String);

fn refusal_of(e: &CredError) -> Refusal {
    match e {
        CredError::NoLocalName { .. } => Refusal(reason::NO_LOCAL_NAME, e.to_string()),
        CredError::NoSuchUser { .. } | CredError::AccountLookup { .. } => {
            Refusal(reason::NO_ACCOUNT, e.to_string())
        }
        _ => Refusal(reason::BAD_CRED, e.to_string()),
    }
}

/// Everything workers share.
struct Shared {
    conf: DaemonConfig,
    acl: Acl,
    repo: Mutex<Repo>,
    server_principal: String,
    keytab: String,
    stop: AtomicBool,
    served: AtomicU64,
}

struct Job {
    stream: TcpStream,
    ap_req: Vec<u8>,
}

struct Pending {
    stream: TcpStream,
    pre: Preauth,
    since: Instant,
}

/// Signal flags, registered once per process.
struct Signals {
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    usr2: Arc<AtomicBool>,
}

impl Signals {
    fn register() -> Result<Self, DaemonError> {
        let s = Signals {
            term: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
            usr2: Arc::new(AtomicBool::new(false)),
        };
        let reg = |sig, flag: &Arc<AtomicBool>| {
            signal_hook::flag::register(sig, Arc::clone(flag))
                .map_err(|e| DaemonError::Other(format!("cannot install signal handler: {e}")))
        };
        reg(signal_hook::consts::SIGTERM, &s.term)?;
        reg(signal_hook::consts::SIGINT, &s.term)?;
        reg(signal_hook::consts::SIGHUP, &s.hup)?;
        reg(signal_hook::consts::SIGUSR2, &s.usr2)?;
        Ok(s)
    }
}

fn setup_logging(conf: &DaemonConfig, opts: &Options) -> Result<(), DaemonError> {
    let level = conf.auksd.log_level.max(conf.auksd.debug_level) + opts.verbose + opts.debug;
    if opts.foreground || opts.verbose > 0 || opts.debug > 0 {
        crate::log::to_stderr(level);
        Ok(())
    } else {
        crate::log::to_file(&conf.auksd.log_file, level).map_err(|e| {
            DaemonError::Other(format!(
                "cannot open log file {}: {e}",
                conf.auksd.log_file.display()
            ))
        })
    }
}

/// Run auksd until SIGTERM/SIGINT. SIGHUP reloads everything.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    let signals = Signals::register()?;
    let mut first = true;
    loop {
        let conf = DaemonConfig::load(opts.conf.as_deref())?;
        setup_logging(&conf, opts)?;
        for w in &conf.warnings {
            crate::log!(1, "auksd : configuration warning: {w}");
        }
        if first && !(opts.foreground || opts.verbose > 0 || opts.debug > 0) {
            nix::unistd::daemon(true, false)
                .map_err(|e| DaemonError::Other(format!("cannot daemonize: {e}")))?;
        }
        first = false;
        let reload = serve(conf, &signals)?;
        if !reload {
            crate::log!(1, "auksd : stopped");
            return Ok(());
        }
        crate::log!(1, "auksd : reloading configuration, ACL and repository");
    }
}

/// Bind the listening socket (std's listen backlog is 128; `QueueSize`
/// bounds the queue of authenticated work instead).
fn bind(ep: &Endpoint) -> Result<TcpListener, DaemonError> {
    let port: u16 = ep.port.trim().parse().map_err(|_| DaemonError::Bind {
        addr: ep.port.clone(),
        reason: "the daemon needs a numeric port".into(),
    })?;
    let candidates: Vec<SocketAddr> = if ep.address.is_empty() {
        vec![
            SocketAddr::new(IpAddr::from([0u16; 8]), port),
            SocketAddr::new(IpAddr::from([0u8; 4]), port),
        ]
    } else {
        let host = ep.address.trim_start_matches('[').trim_end_matches(']');
        let mut v: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| DaemonError::Bind {
                addr: format!("{host}:{port}"),
                reason: e.to_string(),
            })?
            .collect();
        v.sort_by_key(|a| a.is_ipv6());
        v
    };
    let mut last = String::from("no address");
    for a in &candidates {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(DaemonError::Bind {
        addr: format!("{}:{}", ep.address, ep.port),
        reason: last,
    })
}

/// One life of the daemon between (re)loads. Returns true for a reload.
fn serve(conf: DaemonConfig, signals: &Signals) -> Result<bool, DaemonError> {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let c = &conf.common;
    let role = detect_role(&host, &c.primary.host, &c.secondary.host).ok_or_else(|| {
        DaemonError::NotAServer {
            host: host.clone(),
            primary: c.primary.host.clone(),
            secondary: c.secondary.host.clone(),
        }
    })?;
    let (ep, keytab) = match role {
        ServerRole::Primary => (&c.primary, &conf.auksd.primary_keytab),
        ServerRole::Secondary => (&c.secondary, &conf.auksd.secondary_keytab),
    };
    let acl = Acl::load(&conf.auksd.acl_file)?;
    for w in &acl.warnings {
        crate::log!(1, "auksd : ACL warning: {w}");
    }
    // Check the Kerberos set-up once, so a bad keytab or principal stops
    // the start-up instead of failing every connection.
    {
        let ctx = Context::new()?;
        let kt = Keytab::resolve(&ctx, &keytab.display().to_string())?;
        kt.principals().map_err(|e| {
            DaemonError::Other(format!("keytab {} unusable: {e}", keytab.display()))
        })?;
        Principal::parse(&ctx, &ep.principal)?;
    }
    prepare_cache_dir(&conf.auksd.cache_dir);
    let ctx = Context::new()?;
    let mut repo = Repo::new(&conf.auksd.cache_dir);
    for line in repo.load(&ctx) {
        crate::log!(1, "auksd : {line}");
    }
    drop(ctx);
    let listener = bind(ep)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| DaemonError::Other(e.to_string()))?;
    crate::log!(
        1,
        "auksd : {} server listening on {} as {} ({} workers, {} stored credentials)",
        if role == ServerRole::Primary {
            "primary"
        } else {
            "secondary"
        },
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        ep.principal,
        conf.auksd.workers,
        repo.len()
    );
    let shared = Arc::new(Shared {
        server_principal: ep.principal.clone(),
        keytab: keytab.display().to_string(),
        acl,
        repo: Mutex::new(repo),
        stop: AtomicBool::new(false),
        served: AtomicU64::new(0),
        conf,
    });
    let (tx, rx) = sync_channel::<Job>(shared.conf.auksd.queue_size);
    let rx = Arc::new(Mutex::new(rx));
    let mut threads = Vec::new();
    for i in 0..shared.conf.auksd.workers {
        let (sh, rx) = (Arc::clone(&shared), Arc::clone(&rx));
        threads.push(
            std::thread::Builder::new()
                .name(format!("worker{i}"))
                .spawn(move || worker(i, sh, rx))
                .map_err(|e| DaemonError::Other(format!("cannot start worker: {e}")))?,
        );
    }
    let sh = Arc::clone(&shared);
    let cleaner = std::thread::Builder::new()
        .name("cleaner".into())
        .spawn(move || clean_loop(sh))
        .map_err(|e| DaemonError::Other(format!("cannot start cleaner: {e}")))?;

    let reload = dispatch(&listener, &tx, signals, &shared);
    drop(listener);
    drop(tx);
    shared.stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let _ = cleaner.join();
    Ok(reload)
}

/// Accept loop + unauthenticated stage. Returns true for a reload.
fn dispatch(
    listener: &TcpListener,
    tx: &std::sync::mpsc::SyncSender<Job>,
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
                    match tx.try_send(Job {
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

fn worker(idx: usize, shared: Arc<Shared>, rx: Arc<Mutex<Receiver<Job>>>) {
    let ctx = match Context::new() {
        Ok(c) => c,
        Err(e) => {
            crate::log!(1, "worker[{idx}] : cannot create Kerberos context: {e}");
            return;
        }
    };
    let (kt, sp) = match (
        Keytab::resolve(&ctx, &shared.keytab),
        Principal::parse(&ctx, &shared.server_principal),
    ) {
        (Ok(k), Ok(p)) => (k, p),
        (Err(e), _) | (_, Err(e)) => {
            crate::log!(1, "worker[{idx}] : Kerberos set-up failed: {e}");
            return;
        }
    };
    loop {
        let job = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let w = Worker {
            idx,
            shared: &shared,
            ctx: &ctx,
        };
        // A panic while serving one client must not take the worker down.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.session(job, &kt, &sp)));
        if r.is_err() {
            crate::log!(1, "worker[{idx}] : internal error while serving a client");
        }
        shared.served.fetch_add(1, Ordering::Relaxed);
    }
}

struct Worker<'a> {
    idx: usize,
    shared: &'a Shared,
    ctx: &'a Context,
}

fn type_name(req: &Request) -> &'static str {
    match req {
        Request::Ping => "ping",
        Request::List => "list",
        Request::Add(_) => "add",
        Request::Get(_) => "get",
        Request::Remove(_) => "remove",
        Request::Close => "close",
        Request::Dump => "dump",
    }
}

fn err_reply(code: i32, text: impl Into<String>) -> Reply {
    Reply::Error(ErrorInfo {
        code: Some(code),
        reason: Some(text.into()),
    })
}

impl Worker<'_> {
    fn session(&self, job: Job, kt: &Keytab<'_>, sp: &Principal<'_>) {
        let peer_ip = job
            .stream
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| "?".into());
        let c = &self.shared.conf;
        let (mut s, client) = match Session::accept(
            self.ctx,
            job.stream,
            &job.ap_req,
            kt,
            sp,
            c.auksd.replay_cache,
            c.common.nat,
            IO_TIMEOUT,
        ) {
            Ok(v) => v,
            Err(e) => {
                crate::log!(
                    2,
                    "worker[{}] : {peer_ip} : authentication failed: {e}",
                    self.idx
                );
                return;
            }
        };
        let role = self.shared.acl.role_for(&client, Some(s.peer().ip()));
        for _ in 0..MAX_REQUESTS_PER_SESSION {
            let plain = match s.recv(MAX_REQUEST) {
                Ok(p) => p,
                Err(SessionError::Closed { .. }) => return,
                Err(e) => {
                    crate::log!(
                        2,
                        "worker[{}] : {client} from {peer_ip} : session ended: {e}",
                        self.idx
                    );
                    return;
                }
            };
            let req = match proto::decode_request(&plain) {
                Ok(Request::Close) => return,
                Ok(r) => r,
                Err(e) => {
                    let unknown = matches!(
                        e,
                        ProtoError::UnknownType(_) | ProtoError::UnexpectedType { .. }
                    );
                    let code = if unknown {
                        reason::UNKNOWN_REQUEST
                    } else {
                        reason::CORRUPTED
                    };
                    crate::log!(
                        2,
                        "worker[{}] : {client} from {peer_ip} : request failed : {}: {e}",
                        self.idx,
                        if unknown {
                            "unknown request type"
                        } else {
                            "request is corrupted"
                        }
                    );
                    let _ = s.send(&proto::encode_reply(&err_reply(code, e.to_string())));
                    if unknown {
                        continue;
                    }
                    return;
                }
            };
            let what = type_name(&req);
            let uid_txt = match &req {
                Request::Get(u) | Request::Remove(u) => format!(" uid={u}"),
                _ => String::new(),
            };
            let (reply, note) = match role {
                None => (
                    err_reply(
                        reason::ACL_DENIED,
                        format!("permission denied by auksd ACL: principal {client} has no role"),
                    ),
                    "no matching ACL rule".to_string(),
                ),
                Some(role) => self.handle(role, &client, req),
            };
            let ok = !matches!(reply, Reply::Error(_));
            crate::log!(
                2,
                "worker[{}] : {client} from {peer_ip} : {what} request{uid_txt} {} : {note}",
                self.idx,
                if ok { "succeed" } else { "failed" }
            );
            if let Err(e) = s.send(&proto::encode_reply(&reply)) {
                crate::log!(
                    2,
                    "worker[{}] : {client} from {peer_ip} : cannot send reply: {e}",
                    self.idx
                );
                return;
            }
            if role.is_none() {
                return;
            }
        }
    }

    /// Apply the authorization matrix (§5.3) and the repository policy.
    fn handle(&self, role: Role, client: &str, req: Request) -> (Reply, String) {
        let now = chrono::Utc::now().timestamp();
        match req {
            Request::Ping | Request::List => (Reply::Ping, format!("role {role}")),
            Request::Add(data) => self.add(role, client, data),
            Request::Get(uid) => {
                let Ok(repo) = self.shared.repo.lock() else {
                    return (err_reply(reason::INTERNAL, "internal error"), "lock".into());
                };
                match owned_cred(&repo, role, client, uid, "get") {
                    Err(refusal) => refusal,
                    Ok(r) if repo::is_stale(r, now) => (
                        err_reply(
                            reason::NOT_FOUND,
                            format!(
                                "no valid credential stored for uid {uid}: the stored one expired (end {} , renewable until {})",
                                fmt_time(r.endtime),
                                fmt_time(r.renew_till)
                            ),
                        ),
                        "stored credential expired".into(),
                    ),
                    Ok(r) => (Reply::Get(r.clone()), format!("principal {}", r.principal)),
                }
            }
            Request::Remove(uid) => {
                let Ok(mut repo) = self.shared.repo.lock() else {
                    return (err_reply(reason::INTERNAL, "internal error"), "lock".into());
                };
                if let Err(refusal) = owned_cred(&repo, role, client, uid, "remove") {
                    return refusal;
                }
                match repo.remove(uid) {
                    Ok(r) => (Reply::Remove, format!("principal {}", r.principal)),
                    Err(e) => (
                        err_reply(reason::UNLINK_FAILED, e.to_string()),
                        e.to_string(),
                    ),
                }
            }
            Request::Dump => {
                if role != Role::Admin {
                    return (
                        err_reply(
                            reason::NOT_AUTHORIZED,
                            "requester is not authorized to do that (dump needs the admin role)",
                        ),
                        "dump needs admin".into(),
                    );
                }
                let Ok(repo) = self.shared.repo.lock() else {
                    return (err_reply(reason::INTERNAL, "internal error"), "lock".into());
                };
                let mut all = repo.dump();
                let n = all.len();
                all.truncate(MAX_DUMP_RECORDS);
                (Reply::Dump(all), format!("{n} credentials"))
            }
            Request::Close => (Reply::Ping, String::new()),
        }
    }

    fn add(&self, role: Role, client: &str, data: zeroize::Zeroizing<Vec<u8>>) -> (Reply, String) {
        let rec = match cred::record_from_krb_cred(self.ctx, data) {
            Ok(r) => r,
            Err(e) => {
                let Refusal(code, text) = refusal_of(&e);
                return (err_reply(code, text.clone()), text);
            }
        };
        if !rec.addressless {
            return (
                err_reply(
                    reason::NOT_ADDRESSLESS,
                    "received credential is not addressless",
                ),
                format!("principal {} not addressless", rec.principal),
            );
        }
        if role != Role::Admin && rec.principal != client {
            return (
                err_reply(
                    reason::PRINCIPAL_MISMATCH,
                    format!(
                        "requester {client} may only add its own credential, not {}",
                        rec.principal
                    ),
                ),
                format!("credential of {}", rec.principal),
            );
        }
        let Ok(mut repo) = self.shared.repo.lock() else {
            return (err_reply(reason::INTERNAL, "internal error"), "lock".into());
        };
        let now = chrono::Utc::now().timestamp();
        let uid = rec.uid;
        let principal = rec.principal.clone();
        let times = format!(
            "end {} renewable until {}",
            fmt_time(rec.endtime),
            fmt_time(rec.renew_till)
        );
        let other = repo
            .get(uid)
            .filter(|old| old.principal != principal && !repo::is_stale(old, now))
            .map(|old| old.principal.clone());
        if let Some(other) = &other {
            if role != Role::Admin {
                // §11.11: a user may not displace another principal's credential.
                return (
                    err_reply(
                        reason::NOT_AUTHORIZED,
                        format!("uid {uid} already holds a valid credential of principal {other}"),
                    ),
                    format!("uid {uid} holds {other}"),
                );
            }
        }
        match repo.add(self.ctx, rec) {
            Ok(AddOutcome::Stored) => (Reply::Add, format!("uid={uid} principal {principal} stored, {times}")),
            Ok(AddOutcome::Replaced) => (Reply::Add, format!("uid={uid} principal {principal} replaced the stored one, {times}")),
            Ok(AddOutcome::Unchanged) => (Reply::Add, format!("uid={uid} principal {principal}: the same credential is already stored, {times}")),
            Ok(AddOutcome::KeptStored) if other.is_none() => (
                Reply::Add,
                format!("uid={uid} principal {principal}: kept the stored credential, which is fresher ({times} for the received one)"),
            ),
            Ok(AddOutcome::KeptStored) => (
                err_reply(
                    reason::NOT_FRESHER,
                    format!("not stored: uid {uid} holds a fresher credential of another principal"),
                ),
                "stored credential is fresher".into(),
            ),
            Err(e) => (err_reply(reason::INTERNAL, format!("auksd cannot store the credential: {e}")), e.to_string()),
        }
    }
}

/// Create the cache directory (mode 0700) when missing; warn when other
/// users could write into it.
fn prepare_cache_dir(dir: &std::path::Path) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::symlink_metadata(dir) {
        Err(_) => match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => crate::log!(1, "auksd : created cache dir {}", dir.display()),
            Err(e) => crate::log!(1, "auksd : cannot create cache dir {}: {e}", dir.display()),
        },
        Ok(m) if !m.is_dir() => {
            crate::log!(1, "auksd : cache dir {} is not a directory", dir.display())
        }
        Ok(m) if m.permissions().mode() & 0o022 != 0 => crate::log!(
            1,
            "auksd : WARNING: cache dir {} is writable by other users (mode {:o}); use 0700",
            dir.display(),
            m.permissions().mode() & 0o7777
        ),
        Ok(_) => {}
    }
}

/// GET/REMOVE authorization (§5.3): guests may not; users only for a
/// credential of their own principal; admins for any stored credential.
fn owned_cred<'r>(
    repo: &'r Repo,
    role: Role,
    client: &str,
    uid: u32,
    what: &str,
) -> Result<&'r proto::CredRecord, (Reply, String)> {
    if role == Role::Guest {
        return Err((
            err_reply(
                reason::NOT_AUTHORIZED,
                "requester is not authorized to do that (guest role)",
            ),
            format!("guest may not {what}"),
        ));
    }
    match repo.get(uid) {
        None => Err((
            err_reply(
                reason::NOT_FOUND,
                format!("no credential stored for uid {uid}"),
            ),
            "not found".into(),
        )),
        Some(r) if role != Role::Admin && r.principal != client => Err((
            err_reply(
                reason::PRINCIPAL_MISMATCH,
                format!("the credential of uid {uid} belongs to another principal"),
            ),
            format!("stored principal is {}", r.principal),
        )),
        Some(r) => Ok(r),
    }
}

/// Human-readable UTC time for log lines and error reasons.
pub fn fmt_time(t: i64) -> String {
    if t == 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

fn clean_loop(shared: Arc<Shared>) {
    let delay = Duration::from_secs(shared.conf.auksd.clean_delay.max(1));
    loop {
        let now = chrono::Utc::now().timestamp();
        if let Ok(mut repo) = shared.repo.lock() {
            for (uid, princ, why) in repo.clean(now) {
                crate::log!(1, "auksd : clean stage : uid {uid} {princ} removed: {why}");
            }
        }
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_detection_follows_c() {
        assert_eq!(detect_role("a", "a", "b"), Some(ServerRole::Primary));
        assert_eq!(detect_role("b", "a", "b"), Some(ServerRole::Secondary));
        assert_eq!(
            detect_role("c", "localhost", "b"),
            Some(ServerRole::Primary)
        );
        assert_eq!(
            detect_role("c", "a", "localhost"),
            Some(ServerRole::Primary)
        );
        assert_eq!(detect_role("c", "a", "b"), None);
    }

    #[test]
    fn times_format() {
        assert_eq!(fmt_time(0), "-");
        assert_eq!(fmt_time(86400), "1970-01-02T00:00:00Z");
    }
}
