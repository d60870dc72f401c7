//! The unauthenticated part of recvauth, parsed incrementally by the
//! daemon's dispatcher: the two version frames, then the AP-REQ frame.

use super::frame::take_frame;
use super::{
    Result, SessionError, APPL_VERSION, MAX_HANDSHAKE_MSG, MAX_VERSION_MSG, SENDAUTH_VERSION,
};

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

impl Preauth {
    /// Most bytes of a request sent with the AP-REQ that are kept here
    /// (the rest stays in the socket for the session).
    pub const MAX_EARLY: usize = 8192;
    /// Most bytes a client can make us buffer before authentication: the
    /// versions, the AP-REQ and the start of a request sent with it.
    pub const MAX_BUFFER: usize =
        2 * (4 + MAX_VERSION_MSG) + 4 + MAX_HANDSHAKE_MSG + Self::MAX_EARLY;

    pub fn new() -> Self {
        Preauth::default()
    }

    /// Add received bytes and say what to do next. Errors (oversized
    /// frames) mean "close the connection". Bytes after the AP-REQ (a
    /// client that sends its request without waiting for the AP-REP) are
    /// kept for the session: [`Preauth::take_early`].
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
            Some((req, used)) => {
                self.buf.drain(..used);
                Ok(PreauthStep::ApReq(req))
            }
        }
    }

    /// After [`PreauthStep::ApReq`]: what the client sent after its AP-REQ
    /// (unauthenticated, read by the session once the AP-REQ is verified).
    pub fn take_early(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Compare a received version string with the expected one.
fn nul_terminated_eq(got: &[u8], want_with_nul: &[u8]) -> bool {
    // MIT compares with strcmp: everything up to the first NUL must match.
    let end = got.iter().position(|&b| b == 0).unwrap_or(got.len());
    got[..end] == want_with_nul[..want_with_nul.len() - 1] && end < got.len()
}

#[cfg(test)]
mod tests {
    use super::super::frame::push_frame;
    use super::*;

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
        assert!(p.take_early().is_empty());
    }

    #[test]
    fn bytes_after_the_ap_req_are_kept_for_the_session() {
        let mut all = frame(SENDAUTH_VERSION);
        all.extend(frame(APPL_VERSION));
        all.extend(frame(b"AP-REQ bytes"));
        all.extend(b"request, ");
        let mut p = Preauth::new();
        assert_eq!(p.feed(&all).unwrap(), PreauthStep::SendOk);
        assert_eq!(
            p.feed(&[]).unwrap(),
            PreauthStep::ApReq(b"AP-REQ bytes".to_vec())
        );
        assert_eq!(p.take_early(), b"request, ");
        // An AP-REQ as large as allowed and a read's worth of request.
        let mut p = Preauth::new();
        let mut big = frame(SENDAUTH_VERSION);
        big.extend(frame(APPL_VERSION));
        assert_eq!(p.feed(&big).unwrap(), PreauthStep::SendOk);
        let mut req = frame(&vec![7u8; MAX_HANDSHAKE_MSG]);
        req.extend(vec![9u8; Preauth::MAX_EARLY]);
        let (head, tail) = req.split_at(req.len() - Preauth::MAX_EARLY - 100);
        assert_eq!(p.feed(head).unwrap(), PreauthStep::NeedMore);
        assert!(
            matches!(p.feed(tail).unwrap(), PreauthStep::ApReq(r) if r.len() == MAX_HANDSHAKE_MSG)
        );
        assert_eq!(p.take_early().len(), Preauth::MAX_EARLY);
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
