//! The client's half of an AUKS session without libkrb5: the AP-REQ, the
//! check of the AP-REP and the KRB-PRIV messages of both directions, for
//! a service ticket whose session key is AES-SHA1 (what [`auks_kcrypto`]
//! implements). srun's ADD runs it on a thread of its own while srun
//! gets its allocation (`crate::spank::quickadd`): libkrb5 would have to
//! be loaded and read the environment there, which srun changes at the
//! same time.
//!
//! The bytes are those of the libkrb5-backed session ([`super::AuthContext`]
//! with its handshake in [`super::ap_client`]): the same AP-REQ (mutual
//! authentication, a random subkey and first sequence number), KRB-PRIV
//! under the subkey (usage 13) with sequence numbers, a sender address and
//! a receiver address, checked on receipt as `krb5_rd_priv` checks them.

use std::ops::Range;

use zeroize::Zeroizing;

use super::address::KrbAddr;
use super::ap_client::{self, ClientName, Sent};
use super::ap_parts::{cons, field, int_field, tlv};
use super::der::int_bytes;
use super::error::{Error, Result};
use super::ffi;
use super::priv_in_place::{parse_enc_part, parse_krb_priv};
use auks_kcrypto::{UsageKey, HEADER, TRAILER};

const OP: &str = "KRB-PRIV";

fn bad(what: &str) -> Error {
    Error::local(OP, format!("malformed KRB-PRIV: {what}"))
}

/// A service ticket read without libkrb5 (from a FILE ccache).
pub struct PlainTicket<'t> {
    pub client: ClientName<'t>,
    /// The ticket, DER as the KDC issued it.
    pub ticket: &'t [u8],
    /// The session key's enctype and bytes.
    pub etype: i32,
    pub key: &'t [u8],
}

/// One direction's state: the usage-13 keys, the next sequence number,
/// the address the messages carry.
struct Direction {
    keys: UsageKey,
    etype: i32,
    seq: u32,
}

/// The client side of one session.
pub struct PlainClient {
    /// What the AP-REP must answer (None once it was checked).
    sent: Option<Sent>,
    send: Direction,
    /// Set by the AP-REP.
    recv: Option<Direction>,
    /// Our subkey, kept for the receiving direction until the AP-REP says
    /// whether the server replaces it.
    subkey: Zeroizing<Vec<u8>>,
    local: (i32, Vec<u8>),
    remote: (i32, Vec<u8>),
}

impl PlainClient {
    /// Whether the session key of a ticket of `etype` is handled here.
    pub fn handles(etype: i32) -> bool {
        auks_kcrypto::handles(etype)
    }

    /// The AP-REQ presenting `t` at `now` (Unix seconds, microseconds;
    /// the KDC offset of the ccache already applied), and the session
    /// whose KRB-PRIV carry `local` and `remote` (the socket's, or the
    /// NAT placeholder for both).
    pub fn start(
        t: &PlainTicket<'_>,
        now: (i64, u32),
        local: KrbAddr,
        remote: KrbAddr,
    ) -> Result<(PlainClient, Vec<u8>)> {
        if !Self::handles(t.etype) {
            return Err(Error::local(
                "krb5_mk_req",
                "session key of an enctype not handled without libkrb5",
            ));
        }
        let key = Zeroizing::new(t.key.to_vec());
        let req = ap_client::mk_req_for(&t.client, t.ticket, t.etype, key, now)?;
        let keys = UsageKey::new(req.etype, &req.subkey, ffi::KRB5_KEYUSAGE_KRB_PRIV_ENCPART)
            .ok_or_else(|| Error::local("krb5_mk_req", "subkey of the wrong length"))?;
        let client = PlainClient {
            sent: Some(req.sent),
            send: Direction {
                keys,
                etype: req.etype,
                seq: req.seq,
            },
            recv: None,
            subkey: req.subkey,
            local: local.parts(),
            remote: remote.parts(),
        };
        Ok((client, req.ap_req))
    }

    /// Check the server's AP-REP: it must answer our authenticator. Its
    /// sequence number is the first the server sends; a subkey in it
    /// replaces ours for what the server sends.
    pub fn rd_rep(&mut self, ap_rep: &[u8]) -> Result<()> {
        let sent = self
            .sent
            .as_ref()
            .ok_or_else(|| Error::local("krb5_rd_rep", "AP-REP already checked"))?;
        let reply = ap_client::rd_rep(sent, ap_rep)?;
        let (etype, key) = match &reply.subkey {
            Some((e, k)) => (*e, k.as_slice()),
            None => (self.send.etype, self.subkey.as_slice()),
        };
        let keys = UsageKey::new(etype, key, ffi::KRB5_KEYUSAGE_KRB_PRIV_ENCPART)
            .ok_or_else(|| Error::local("krb5_rd_rep", "AP-REP subkey of the wrong length"))?;
        self.recv = Some(Direction {
            keys,
            etype,
            seq: reply.seq,
        });
        self.sent = None;
        Ok(())
    }

    /// `plain` as the next KRB-PRIV to the server.
    pub fn seal(&mut self, plain: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let d = &mut self.send;
        let address = |n: u8, (t, a): &(i32, Vec<u8>)| {
            field(
                n,
                &cons(0x30, &[&int_field(0, *t as u32), &field(1, &tlv(0x04, a))]),
            )
        };
        let user_data = field(0, &tlv(0x04, plain));
        // MIT omits a sequence number of 0.
        let seq = match d.seq {
            0 => Zeroizing::new(Vec::new()),
            n => field(3, &tlv(0x02, &int_bytes(n))),
        };
        let part = tlv(
            0x7c,
            &cons(
                0x30,
                &[
                    &user_data,
                    &seq,
                    &address(4, &self.local),
                    &address(5, &self.remote),
                ],
            ),
        );
        let mut sealed = Zeroizing::new(vec![0u8; HEADER + part.len() + TRAILER]);
        sealed[HEADER..HEADER + part.len()].copy_from_slice(&part);
        d.keys
            .seal(&mut sealed)
            .map_err(|_| Error::local(OP, "no random bytes for the confounder"))?;
        let enc = cons(
            0x30,
            &[
                &int_field(0, d.etype as u32),
                &field(2, &tlv(0x04, &sealed)),
            ],
        );
        let msg = tlv(
            0x75,
            &cons(
                0x30,
                &[&int_field(0, 5), &int_field(1, 21), &field(3, &enc)],
            ),
        );
        d.seq = d.seq.wrapping_add(1);
        Ok(msg)
    }

    /// Open the next KRB-PRIV from the server (after the AP-REP): its
    /// user data. Refused unless its sequence number is the next one, its
    /// sender address the server's and its receiver address, if any, ours.
    pub fn open(&mut self, msg: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let d = self
            .recv
            .as_mut()
            .ok_or_else(|| Error::local(OP, "message received before the AP-REP"))?;
        let (etype, cipher) = parse_krb_priv(msg)?;
        if etype != i64::from(d.etype) {
            return Err(Error::local(
                OP,
                "message enctype differs from the session key's",
            ));
        }
        let mut plain = Zeroizing::new(msg.get(cipher).ok_or_else(|| bad("cipher"))?.to_vec());
        let r = d.keys.open(&mut plain).map_err(|_| {
            Error::local(
                OP,
                "integrity check failed (wrong key, or altered on the way)",
            )
        })?;
        let part = parse_enc_part(&plain, r)?;
        if part.seq.unwrap_or(0) as u32 != d.seq {
            return Err(Error::local(OP, "sequence number out of order"));
        }
        let same = |(t, r): &(i64, Range<usize>), (wt, wa): &(i32, Vec<u8>)| {
            *t == i64::from(*wt) && plain.get(r.clone()) == Some(wa.as_slice())
        };
        if !same(&part.sender, &self.remote) {
            return Err(Error::local(OP, "sender address does not match the peer's"));
        }
        if let Some(r) = &part.receiver {
            if !same(r, &self.local) {
                return Err(Error::local(OP, "receiver address is not ours"));
            }
        }
        d.seq = d.seq.wrapping_add(1);
        let data = plain.get(part.user_data).ok_or_else(|| bad("user-data"))?;
        Ok(Zeroizing::new(data.to_vec()))
    }
}
