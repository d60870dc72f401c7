//! The worker: takes a queued connection whose AP-REQ is complete,
//! authenticates it, then serves its requests, asking [`super::authz`]
//! for every decision and [`super::repo`] for the stored credentials.
//!
//! Every session has a total deadline ([`SESSION_DEADLINE`]) on top of the
//! per-operation timeout, so a slow client cannot keep a worker for long; a
//! principal without any role is answered at once. One audit line per
//! GET / ADD / REMOVE / DUMP is logged at level 1: who (principal, address),
//! which uid, the outcome, never a secret.

use super::authz::{self, Refusal};
use super::droplog::DropReason;
use super::pool::Blocked;
use super::repo::{AddOutcome, RepoError};
use super::{Shared, State};
use crate::acl::Role;
use crate::cred::{self, CredError};
use crate::krb5::{Context, Keytab, Principal};
use crate::logging::audit::{self, Audit, Op, Outcome};
use crate::metrics::Rejected;
use crate::proto::{self, reason, ErrorInfo, ProtoError, Reply, Request};
use crate::session::{Session, SessionError, MAX_REQUEST};
use crate::timefmt::fmt_time;
use std::cell::Cell;
use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Timeout of each read/write once authenticated, and idle time allowed
/// between two requests of a session.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Total time one authenticated session may last.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(30);
/// How long the request of a principal without a role is waited for after
/// the refusal was sent (so the client reads the refusal, not a reset).
pub const NO_ROLE_DRAIN: Duration = Duration::from_secs(1);
/// Requests served on one connection before it is closed.
pub const MAX_REQUESTS_PER_SESSION: usize = 64;
/// How long a DUMP waits for the start-up load of the repository.
pub const DUMP_LOAD_WAIT: Duration = Duration::from_secs(60);

/// A queued connection: its socket and the complete AP-REQ the dispatcher
/// read from it.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) ap_req: Vec<u8>,
    /// What the client sent after the AP-REQ (ours sends its request with
    /// it), read by the dispatcher with the AP-REQ.
    pub(super) early: Vec<u8>,
    /// The answer to the version check (one byte 0) is still to be sent.
    pub(super) owe_version_ok: bool,
    pub(super) peer: Option<IpAddr>,
}

/// Map a credential decoding failure to its wire reason.
fn refusal_of(e: &CredError) -> Refusal {
    let code = match e {
        CredError::NoLocalName { .. } => reason::NO_LOCAL_NAME,
        CredError::NoSuchUser { .. } | CredError::AccountLookup { .. } => reason::NO_ACCOUNT,
        _ => reason::BAD_CRED,
    };
    Refusal::new(code, e.to_string(), e.to_string())
}

/// Start one worker thread (counted in the pool by the caller).
pub(super) fn spawn(shared: &Arc<Shared>) {
    let sh = Arc::clone(shared);
    let r = std::thread::Builder::new()
        .name("worker".into())
        .spawn(move || worker(sh));
    if let Err(e) = r {
        shared.pool.spawn_failed();
        crate::log!(1, "auksd : cannot start a worker thread: {e}");
    }
}

/// Worker thread body: serve queued connections until the pool says stop.
fn worker(shared: Arc<Shared>) {
    shared.pool.started();
    let ctx = match Context::new() {
        Ok(c) => c,
        Err(e) => {
            crate::log!(1, "auksd : worker cannot create Kerberos context: {e}");
            shared.pool.abandon();
            return;
        }
    };
    // The replay cache keeps authenticators as long as the most lenient
    // context accepts them (krb5.conf's clockskew may have changed).
    if let crate::session::ReplayCheck::Own(c) = shared.replay_check(&shared.state()) {
        c.note_skew(ctx.clock_skew());
    }
    // The keytab (a FILE keytab copied into memory) and the server
    // principal, kept from one session to the next while the
    // configuration names the same ones and the keytab file is unchanged
    // (looked at once a second, so a rotated key is used within a second).
    let mut ident: Option<Ident<'_>> = None;
    while let Some(conn) = shared.pool.next() {
        let st = shared.state();
        if !ident.as_ref().is_some_and(|i| i.is_for(&st)) {
            ident = match Ident::new(&ctx, &st) {
                Ok(i) => Some(i),
                Err(e) => {
                    crate::log!(1, "auksd : Kerberos set-up failed: {e}");
                    None
                }
            };
        }
        let Some(id) = &ident else {
            continue;
        };
        let w = Worker {
            shared: &shared,
            st: &st,
            ctx: &ctx,
            id,
        };
        // A panic while serving one client must not take the worker down
        // (and, the repository being poison-tolerant, nothing else either).
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.session(conn)));
        if r.is_err() {
            crate::log!(1, "auksd : internal error while serving a client");
        }
        shared.served.fetch_add(1, Ordering::Relaxed);
    }
}

/// The daemon's Kerberos identity as one worker's context holds it.
struct Ident<'a> {
    keytab_name: String,
    principal_name: String,
    keytab: Keytab<'a>,
    principal: Principal<'a>,
    /// The FILE keytab's path and its state when it was copied (`None`:
    /// another keytab type, used as it is).
    file: Option<(PathBuf, Option<FileStamp>)>,
    /// When the keytab file was last looked at.
    checked: Cell<Instant>,
}

/// How often a worker looks whether its keytab file changed.
const KEYTAB_CHECK_EVERY: Duration = Duration::from_secs(1);

/// What tells a rewritten file from the one that was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

impl<'a> Ident<'a> {
    fn new(ctx: &'a Context, st: &State) -> crate::krb5::Result<Self> {
        let named = Keytab::resolve(ctx, &st.keytab)?;
        let principal = Principal::parse(ctx, &st.server_principal)?;
        let (keytab, file) = match cred::file_path_of(&st.keytab) {
            // The stamp is taken before the copy: a change during the copy
            // is seen at the next look.
            Some(path) => {
                let stamp = FileStamp::of(&path);
                match named.copy_to_memory(Some(&principal.name()?)) {
                    Ok(copy) => (copy, Some((path, stamp))),
                    // Unreadable now (missing, being rewritten): the file
                    // is used as it is, so clients get libkrb5's
                    // KRB-ERROR, and the copy is tried again in a second.
                    Err(e) => {
                        crate::log!(
                            2,
                            "auksd : keytab {} not copied into memory: {e}",
                            st.keytab
                        );
                        (named, Some((path, None)))
                    }
                }
            }
            None => (named, None),
        };
        Ok(Ident {
            keytab,
            principal,
            keytab_name: st.keytab.clone(),
            principal_name: st.server_principal.clone(),
            file,
            checked: Cell::new(Instant::now()),
        })
    }

    fn is_for(&self, st: &State) -> bool {
        self.keytab_name == st.keytab
            && self.principal_name == st.server_principal
            && self.keytab_file_unchanged()
    }

    /// False when the keytab file (looked at no more than once per
    /// [`KEYTAB_CHECK_EVERY`]) is not the one that was copied.
    fn keytab_file_unchanged(&self) -> bool {
        let Some((path, stamp)) = &self.file else {
            return true;
        };
        if self.checked.get().elapsed() < KEYTAB_CHECK_EVERY {
            return true;
        }
        self.checked.set(Instant::now());
        stamp.is_some() && FileStamp::of(path) == *stamp
    }
}

struct Worker<'a> {
    shared: &'a Arc<Shared>,
    st: &'a State,
    ctx: &'a Context,
    id: &'a Ident<'a>,
}

/// A reply, or a reply already encoded (DUMP).
enum Answer {
    Reply(Reply),
    Encoded(Zeroizing<Vec<u8>>),
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

/// The audited operation of a request (`None`: ping, list, close).
fn op_of(req: &Request) -> Option<Op> {
    match req {
        Request::Get(_) => Some(Op::Get),
        Request::Add(_) => Some(Op::Add),
        Request::Remove(_) => Some(Op::Remove),
        Request::Dump => Some(Op::Dump),
        Request::Ping | Request::List | Request::Close => None,
    }
}

/// The outcome of a reply, and the reason text of an error reply (sent to
/// the client anyway, so never secret).
fn outcome_of(r: &Reply) -> (Outcome, Option<String>) {
    let Reply::Error(e) = r else {
        return (Outcome::Ok, None);
    };
    let outcome = match e.code {
        Some(reason::NOT_FOUND) => Outcome::NotFound,
        Some(reason::NOT_AUTHORIZED | reason::PRINCIPAL_MISMATCH | reason::ACL_DENIED) => {
            Outcome::Denied
        }
        Some(reason::INTERNAL | reason::UNLINK_FAILED) | None => Outcome::Error,
        Some(_) => Outcome::Rejected,
    };
    (outcome, e.reason.clone())
}

/// The reply and log note of a refusal.
fn refused(r: Refusal) -> (Reply, String) {
    (err_reply(r.code, r.text), r.note)
}

impl Worker<'_> {
    /// Run `io`, a wait for the client, telling the pool so that queued
    /// work gets another thread if the wait lasts.
    fn waiting<R>(&self, io: impl FnOnce() -> R) -> R {
        /// Ends the wait even if `io` panics.
        struct Waiting<'a>(&'a Shared, Option<Blocked>);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if let Some(b) = self.1.take() {
                    self.0.pool.block_end(b);
                }
            }
        }
        let _w = Waiting(self.shared, Some(self.shared.pool.block_begin()));
        io()
    }

    fn session(&self, conn: Conn) {
        let start = Instant::now();
        let peer_ip = conn.peer.map_or_else(|| "?".into(), |a| a.to_string());
        let st = self.st;
        let (mut s, client) = match Session::accept(
            self.ctx,
            conn.stream,
            &conn.ap_req,
            conn.early,
            conn.owe_version_ok,
            &self.id.keytab,
            &self.id.principal,
            self.shared.replay_check(st),
            st.conf.common.nat,
            IO_TIMEOUT,
        ) {
            Ok(v) => v,
            Err(e) => {
                crate::log!(2, "auksd : {peer_ip} : authentication failed: {e}");
                self.shared
                    .dropped(conn.peer, DropReason::AuthFailed, &e.to_string());
                return;
            }
        };
        s.set_deadline(Some(start + SESSION_DEADLINE));
        let Some(role) = st.acl.role_for(&client, Some(s.peer().ip())) else {
            // Answered at once, without waiting for the request.
            let r = authz::no_role(&client);
            crate::log!(
                1,
                "auksd : {client} from {peer_ip} : request failed : {}",
                r.note
            );
            if s.send(&proto::encode_reply(&err_reply(r.code, r.text)))
                .is_ok()
            {
                let _ = self.waiting(|| s.recv_within(MAX_REQUEST, NO_ROLE_DRAIN));
            }
            return;
        };
        for n in 0..MAX_REQUESTS_PER_SESSION {
            let plain = match self.waiting(|| s.recv(MAX_REQUEST)) {
                Ok(p) => p,
                Err(SessionError::Closed { .. }) => return,
                Err(e) => {
                    if n == 0 {
                        let why = if matches!(e, SessionError::TimedOut { .. }) {
                            Rejected::Timeout
                        } else {
                            Rejected::Malformed
                        };
                        self.shared.metrics.rejected(why);
                    }
                    crate::log!(2, "auksd : {client} from {peer_ip} : session ended: {e}");
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
                        "auksd : {client} from {peer_ip} : request failed : {}: {e}",
                        if unknown {
                            "unknown request type"
                        } else {
                            "request is corrupted"
                        }
                    );
                    let _ = s.send(&proto::encode_reply(&err_reply(code, e.to_string())));
                    self.shared.metrics.rejected(Rejected::Malformed);
                    if unknown {
                        continue;
                    }
                    return;
                }
            };
            let what = type_name(&req);
            let op = op_of(&req);
            let t0 = Instant::now();
            let (answer, uid, note) = self.handle(role, &client, req);
            let (answer, outcome, why) = match answer {
                Answer::Reply(r) => {
                    let (outcome, why) = outcome_of(&r);
                    (proto::encode_reply(&r), outcome, why)
                }
                Answer::Encoded(b) => (b, Outcome::Ok, None),
            };
            let ok = outcome == Outcome::Ok;
            // As before: the C-style head names the uid of GET and REMOVE
            // only ("add request succeed" is what log readers grep for).
            let uid_txt = match (op, uid) {
                (Some(Op::Get | Op::Remove), Some(u)) => format!(" uid={u}"),
                _ => String::new(),
            };
            let head = format!(
                "auksd : {client} from {peer_ip} : {what} request{uid_txt} {} : {note}",
                if ok { "succeed" } else { "failed" }
            );
            match (op, conn.peer.or_else(|| Some(s.peer().ip()))) {
                // The C-style line keeps its place; the SIEM-parsable
                // audit fields follow it on the same line.
                (Some(op), Some(addr)) => {
                    let a = Audit {
                        op,
                        principal: &client,
                        addr,
                        uid,
                        outcome,
                        reason: why.as_deref(),
                    };
                    crate::log!(1, "{head} : {}", audit::line(&a));
                }
                _ => crate::log!(2, "{head}"),
            }
            let sent = self.waiting(|| s.send(&answer));
            let outcome = if sent.is_ok() {
                outcome
            } else {
                Outcome::Error
            };
            self.shared.metrics.request(op, outcome, t0.elapsed());
            if let Err(e) = sent {
                crate::log!(
                    1,
                    "auksd : {client} from {peer_ip} : cannot send the {what} reply: {e}"
                );
                return;
            }
        }
    }

    /// Apply the authorization matrix (§5.3) and the repository policy.
    /// Returns the answer, the uid concerned (when known) and a log note.
    fn handle(&self, role: Role, client: &str, req: Request) -> (Answer, Option<u32>, String) {
        let uid = match &req {
            Request::Get(u) | Request::Remove(u) => Some(*u),
            _ => None,
        };
        if let Request::Add(data) = req {
            let (r, uid, n) = self.add(role, client, data);
            return (Answer::Reply(r), uid, n);
        }
        let (a, n) = self.handle_other(role, client, req);
        (a, uid, n)
    }

    fn handle_other(&self, role: Role, client: &str, req: Request) -> (Answer, String) {
        let now = chrono::Utc::now().timestamp();
        let repo = &self.st.repo;
        let reply = |(r, n): (Reply, String)| (Answer::Reply(r), n);
        match req {
            Request::Ping | Request::List => reply((Reply::Ping, format!("role {role}"))),
            Request::Add(_) => reply((Reply::Ping, String::new())),
            Request::Get(uid) => {
                let stored = repo.get(self.ctx, uid);
                reply(
                    match authz::get(role, client, uid, stored.as_deref(), now) {
                        Err(r) => refused(r),
                        Ok(r) => (Reply::Get(r.clone()), format!("principal {}", r.principal)),
                    },
                )
            }
            Request::Remove(uid) => reply(
                match repo.remove(self.ctx, uid, |stored| {
                    authz::remove(role, client, uid, stored)
                }) {
                    Ok(r) => (Reply::Remove, format!("principal {}", r.principal)),
                    Err(RepoError::Refused(r)) => refused(r),
                    Err(e @ RepoError::NotFound) => {
                        (err_reply(reason::NOT_FOUND, e.to_string()), e.to_string())
                    }
                    Err(e) => (
                        err_reply(reason::UNLINK_FAILED, e.to_string()),
                        e.to_string(),
                    ),
                },
            ),
            Request::Dump => {
                if let Err(r) = authz::dump(role) {
                    return reply(refused(r));
                }
                self.dump()
            }
            Request::Close => reply((Reply::Ping, String::new())),
        }
    }

    /// DUMP: every stored credential, however many (the reply grows with
    /// the repository, up to what one KRB-PRIV can carry).
    fn dump(&self) -> (Answer, String) {
        let Some(all) = self.st.repo.dump(DUMP_LOAD_WAIT) else {
            let (r, n) = (
                err_reply(
                    reason::INTERNAL,
                    "the repository is still being loaded: try again later",
                ),
                "repository still loading".to_string(),
            );
            return (Answer::Reply(r), n);
        };
        let len = proto::dump_reply_len(all.iter().map(AsRef::as_ref));
        if all.len() > proto::MAX_DUMP_RECORDS || len > proto::MAX_DUMP_MESSAGE {
            let text = format!(
                "{} credentials ({len} bytes) do not fit in one DUMP reply",
                all.len()
            );
            return (
                Answer::Reply(err_reply(reason::INTERNAL, text.clone())),
                text,
            );
        }
        let bytes = proto::encode_dump_reply(&all);
        (Answer::Encoded(bytes), format!("{} credentials", all.len()))
    }

    fn add(
        &self,
        role: Role,
        client: &str,
        data: Zeroizing<Vec<u8>>,
    ) -> (Reply, Option<u32>, String) {
        let (rec, file) = match cred::record_and_file(self.ctx, data) {
            Ok(r) => r,
            Err(e) => {
                let (r, n) = refused(refusal_of(&e));
                return (r, None, n);
            }
        };
        let uid = rec.uid;
        if let Err(r) = authz::add_received(role, client, &rec) {
            let (r, n) = refused(r);
            return (r, Some(uid), n);
        }
        let (r, n) = self.store(role, rec, file);
        (r, Some(uid), n)
    }

    /// Store an authorized received credential (`file`: its cache file's
    /// bytes, when made).
    fn store(
        &self,
        role: Role,
        rec: crate::proto::CredRecord,
        file: Option<Zeroizing<Vec<u8>>>,
    ) -> (Reply, String) {
        let now = chrono::Utc::now().timestamp();
        let uid = rec.uid;
        let principal = rec.principal.clone();
        let times = format!(
            "end {} renewable until {}",
            fmt_time(rec.endtime),
            fmt_time(rec.renew_till)
        );
        let r = self.st.repo.add(self.ctx, rec, file, |new, stored| {
            authz::add_over(role, new, stored, now)
        });
        match r {
            Ok((AddOutcome::Stored, _)) => (Reply::Add, format!("uid={uid} principal {principal} stored, {times}")),
            Ok((AddOutcome::Replaced, _)) => (Reply::Add, format!("uid={uid} principal {principal} replaced the stored one, {times}")),
            Ok((AddOutcome::Unchanged, _)) => (Reply::Add, format!("uid={uid} principal {principal}: the same credential is already stored, {times}")),
            Ok((AddOutcome::KeptStored, None)) => (
                Reply::Add,
                format!("uid={uid} principal {principal}: kept the stored credential, which is fresher ({times} for the received one)"),
            ),
            Ok((AddOutcome::KeptStored, Some(_))) => (
                err_reply(
                    reason::NOT_FRESHER,
                    format!("not stored: uid {uid} holds a fresher credential of another principal"),
                ),
                format!("uid={uid} stored credential is fresher"),
            ),
            Err(RepoError::Refused(r)) => refused(r),
            Err(e) => (err_reply(reason::INTERNAL, format!("auksd cannot store the credential: {e}")), format!("uid={uid} principal {principal}: {e}")),
        }
    }
}
