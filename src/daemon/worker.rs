//! The worker: takes a queued connection whose AP-REQ is complete,
//! authenticates it, then serves its requests, asking [`super::authz`]
//! for every decision and [`super::repo`] for the stored credentials.

use super::authz::{self, Refusal};
use super::fmt_time;
use super::repo::AddOutcome;
use super::Shared;
use crate::acl::Role;
use crate::cred::{self, CredError};
use crate::krb5::{Context, Keytab, Principal};
use crate::proto::{self, reason, ErrorInfo, ProtoError, Reply, Request, MAX_DUMP_RECORDS};
use crate::session::{Session, SessionError, MAX_REQUEST};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Timeout of each read/write once authenticated, and idle time allowed
/// between two requests of a session.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed.
pub const MAX_REQUESTS_PER_SESSION: usize = 64;

/// A queued connection: its socket and the complete AP-REQ the dispatcher
/// read from it.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) ap_req: Vec<u8>,
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

/// Worker thread body: serve queued connections until the queue closes.
pub(super) fn worker(idx: usize, shared: Arc<Shared>, rx: Arc<Mutex<Receiver<Conn>>>) {
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
        let conn = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(c) => c,
                Err(_) => return,
            }
        };
        let w = Worker {
            idx,
            shared: &shared,
            ctx: &ctx,
        };
        // A panic while serving one client must not take the worker down.
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.session(conn, &kt, &sp)));
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

/// The reply and log note of a refusal.
fn refused(r: Refusal) -> (Reply, String) {
    (err_reply(r.code, r.text), r.note)
}

fn internal_lock_error() -> (Reply, String) {
    (err_reply(reason::INTERNAL, "internal error"), "lock".into())
}

impl Worker<'_> {
    fn session(&self, conn: Conn, kt: &Keytab<'_>, sp: &Principal<'_>) {
        let peer_ip = conn
            .stream
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| "?".into());
        let c = &self.shared.conf;
        let (mut s, client) = match Session::accept(
            self.ctx,
            conn.stream,
            &conn.ap_req,
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
                None => refused(authz::no_role(&client)),
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
                    return internal_lock_error();
                };
                match authz::get(role, client, uid, repo.get(uid), now) {
                    Err(r) => refused(r),
                    Ok(r) => (Reply::Get(r.clone()), format!("principal {}", r.principal)),
                }
            }
            Request::Remove(uid) => {
                let Ok(mut repo) = self.shared.repo.lock() else {
                    return internal_lock_error();
                };
                if let Err(r) = authz::remove(role, client, uid, repo.get(uid)) {
                    return refused(r);
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
                if let Err(r) = authz::dump(role) {
                    return refused(r);
                }
                let Ok(repo) = self.shared.repo.lock() else {
                    return internal_lock_error();
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
            Err(e) => return refused(refusal_of(&e)),
        };
        if let Err(r) = authz::add_received(role, client, &rec) {
            return refused(r);
        }
        let Ok(mut repo) = self.shared.repo.lock() else {
            return internal_lock_error();
        };
        let now = chrono::Utc::now().timestamp();
        let uid = rec.uid;
        let principal = rec.principal.clone();
        let times = format!(
            "end {} renewable until {}",
            fmt_time(rec.endtime),
            fmt_time(rec.renew_till)
        );
        let other = match authz::add_over(role, &rec, repo.get(uid), now) {
            Ok(other) => other,
            Err(r) => return refused(r),
        };
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
