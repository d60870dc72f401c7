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
//! implementation suffers from. A client session sends its first request
//! with the AP-REQ ([`Session::connect_by`]), and the server then sends its
//! AP-REP with the first reply: the bytes of the C exchange, one round trip
//! sooner.
//!
//! - [`frame`]: length-prefixed frames read and written under a deadline;
//! - [`preauth`]: the server's incremental parser of the unauthenticated
//!   versions and AP-REQ;
//! - [`handshake`]: the client and server sides of sendauth/recvauth;
//! - [`channel`]: the [`Session`] type, KRB-PRIV messages once authenticated;
//! - [`plain`]: one client request without libkrb5 (srun's ADD thread).

mod channel;
mod frame;
mod handshake;
pub mod plain;
mod preauth;
pub mod replay;

pub use channel::Session;
pub use frame::read_frame;
pub use preauth::{Preauth, PreauthStep};
pub use replay::{ReplayCache, ReplayError};

use crate::krb5;
use std::io;

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

/// The replay check of a server session (spec §2.3, `ReplayCache`).
#[derive(Clone, Copy)]
pub enum ReplayCheck<'r> {
    /// `ReplayCache = no`.
    Off,
    /// The daemon's own ([`ReplayCache`]), libkrb5's when it says so.
    Own(&'r ReplayCache),
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
