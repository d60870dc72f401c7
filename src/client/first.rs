//! The first request of a session, sent with the handshake: versions,
//! AP-REQ and request leave in one segment, and the daemon's answer to
//! the AP-REQ comes back with its reply. One round trip and two wake-ups
//! of each side fewer than waiting for the AP-REP as `krb5_sendauth`
//! does; the bytes on the wire are the same (see [`Session::connect_by`]
//! for why it is safe).
//!
//! An auks-rs auksd older than this change closes a connection that sends
//! anything after its AP-REQ before the AP-REP. A connection closed
//! before the daemon's first byte is therefore tried once more at once,
//! with the request after the AP-REP, and so are all later requests to
//! that endpoint from this client.

use super::{attempt_of, Attempt, Client, Open};
use crate::config::Endpoint;
use crate::krb5::{Context, Plaintext};
use crate::proto::Request;
use crate::session::SessionError;
use std::sync::atomic::Ordering;

/// A session whose first request was sent, and its reply.
type First<'a> = (Open<'a>, Result<Plaintext<'a>, SessionError>);

impl Client {
    /// Open a session to `ep` and make `req` its first request. `Err`: the
    /// attempt failed before authentication completed (try the next
    /// endpoint); errors after it are the reply's.
    pub(super) fn first_exchange<'a>(
        &self,
        ctx: &'a Context,
        ep: &Endpoint,
        req: &Request,
    ) -> Result<First<'a>, Attempt> {
        let bit = self.endpoint_bit(ep);
        let with_handshake = self.after_ap_rep.load(Ordering::Relaxed) & bit == 0;
        if with_handshake {
            let mut open = self.open(ctx, ep)?;
            let r = open.exchange(req, self);
            match r {
                Ok(_) => return Ok((open, r)),
                Err(_) if open.session.authenticated() => return Ok((open, r)),
                Err(SessionError::Closed { .. }) => {
                    self.after_ap_rep.fetch_or(bit, Ordering::Relaxed);
                    crate::log!(
                        2,
                        "auks api : {}: connection closed before the answer to a request \
                         sent with the handshake (an older auks-rs auksd): sending it \
                         after the handshake",
                        open.endpoint
                    );
                }
                Err(e) => return Err(attempt_of(e)),
            }
        }
        let mut open = self.open(ctx, ep)?;
        open.session.finish_handshake().map_err(attempt_of)?;
        let r = open.exchange(req, self);
        Ok((open, r))
    }

    /// `ep`'s bit in [`Client::after_ap_rep`].
    fn endpoint_bit(&self, ep: &Endpoint) -> u8 {
        if std::ptr::eq(ep, &self.conf.common.primary) {
            1
        } else {
            2
        }
    }
}
