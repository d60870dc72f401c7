//! Several requests over one authenticated session. A daemon, the C one
//! as ours, serves requests until the client sends CLOSE (spec §2.7);
//! `auksdrenewer` ADDs back thousands of renewed credentials in a pass,
//! and a session per ADD costs a TCP connection, an AP-REQ the daemon
//! decrypts and records in its replay cache, and an AP-REP, for a request
//! of a few hundred bytes.
//!
//! A kept session serves at most [`KEPT_REQUESTS`] requests and is not
//! used once [`KEPT_FOR`] old (our auksd ends a session after 64 requests
//! or 30 s, and holds a worker for it meanwhile). A request that fails on a
//! session that already served one is sent again on a new session: only
//! ADD goes through here, and storing the same credential twice is
//! harmless.

use super::{Answer, Client, Open, Result};
use crate::krb5::Context;
use crate::proto::{self, Request};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Requests one kept session serves before it is closed.
pub const KEPT_REQUESTS: usize = 16;
/// Age after which a kept session is closed rather than used again.
pub const KEPT_FOR: Duration = Duration::from_secs(5);

/// A session kept open between requests (see the module text). Dropping
/// it sends CLOSE.
pub struct KeptSession<'a> {
    ctx: &'a Context,
    open: Option<Kept<'a>>,
    keep_for: Duration,
    opened: usize,
}

struct Kept<'a> {
    open: Open<'a>,
    served: usize,
    since: Instant,
}

impl<'a> KeptSession<'a> {
    /// No session yet: the first request opens one.
    pub fn new(ctx: &'a Context) -> Self {
        KeptSession {
            ctx,
            open: None,
            keep_for: KEPT_FOR,
            opened: 0,
        }
    }

    /// How many sessions this has opened (authenticated) so far.
    pub fn opened(&self) -> usize {
        self.opened
    }

    /// Use a session until it is `age` old instead of [`KEPT_FOR`].
    pub fn keep_for(mut self, age: Duration) -> Self {
        self.keep_for = age;
        self
    }

    /// The session to use now, if one is open and still young.
    fn take_usable(&mut self) -> Option<Kept<'a>> {
        let k = self.open.take()?;
        if k.served < KEPT_REQUESTS && k.since.elapsed() < self.keep_for {
            Some(k)
        } else {
            close(k);
            None
        }
    }
}

impl Drop for KeptSession<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.open.take() {
            close(k);
        }
    }
}

/// How long CLOSE may take to send when a kept session ends.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

fn close(mut k: Kept<'_>) {
    // Its own deadline: the last request's may be long past.
    k.open
        .session
        .set_deadline(Some(Instant::now() + CLOSE_WITHIN));
    let _ = k.open.session.send(&proto::encode_request(&Request::Close));
}

impl Client {
    /// ADD a KRB-CRED (as [`Client::add`]) over `kept`'s session, opened
    /// (with the usual fail-over) when there is none to use.
    pub fn add_kept(&self, kept: &mut KeptSession<'_>, data: Zeroizing<Vec<u8>>) -> Result<()> {
        let data = self.prepare_for_add(data)?;
        Self::added(&self.request_kept(kept, &Request::Add(data))?)
    }

    fn request_kept(&self, kept: &mut KeptSession<'_>, req: &Request) -> Result<Answer> {
        if let Some(mut k) = kept.take_usable() {
            // Each request has its own `Timeout`.
            let deadline = self.connect_timeout().map(|t| Instant::now() + t);
            k.open.deadline = deadline;
            k.open.session.set_deadline(deadline);
            match k.open.exchange(req, self).and_then(super::decode) {
                Ok(reply) => {
                    let ans = k.open.answer(Ok(reply));
                    k.served += 1;
                    kept.open = Some(k);
                    return ans;
                }
                // Closed by the daemon, timed out, or a reply that could
                // not be read: this session is over; a new one follows.
                Err(e) => crate::log!(
                    2,
                    "auks api : {}: kept session ended ({e}): opening another",
                    k.open.endpoint
                ),
            }
        }
        let ctx = kept.ctx;
        self.fail_over(|ep| {
            let since = Instant::now();
            let (open, r) = self.first_exchange(ctx, ep, req)?;
            let r = r.and_then(super::decode);
            let ok = r.is_ok();
            let ans = open.answer(r);
            kept.opened += 1;
            if ok {
                kept.open = Some(Kept {
                    open,
                    served: 1,
                    since,
                });
            }
            Ok(ans)
        })
    }
}
