//! The client's half of the sendauth handshake without libkrb5, for a
//! service ticket whose session key is AES-SHA1 (the enctypes
//! [`auks_kcrypto`] implements): the AP-REQ (RFC 4120 §5.5.1) and the
//! check of the server's AP-REP (§5.5.2).
//!
//! It builds what `krb5_mk_req_extended` builds for `krb5_sendauth` with
//! `AP_OPTS_MUTUAL_REQUIRED | AP_OPTS_USE_SUBKEY` and no checksum data:
//! an authenticator naming the ticket's client, the time in seconds and
//! microseconds, a fresh random subkey of the session key's enctype and a
//! random initial sequence number, encrypted under the session key (key
//! usage 11). The AP-REP must decrypt under the session key (usage 12)
//! and echo the authenticator's time exactly; its sequence number is the
//! server's first, a subkey in it replaces ours. The bytes on the wire
//! are those of libkrb5 (a C auksd reads them with `krb5_recvauth`); what
//! changes is the cost: libkrb5 derived the two usage keys from scratch
//! for every session (its n-fold alone was a tenth of the client's CPU
//! under load), copied the ticket and principals several times and
//! allocated for each field.
//!
//! The session's KRB-PRIV keys and sequence numbers then live in
//! [`super::priv_rust`]: libkrb5's auth context gets the subkey (its own
//! `krb5_mk_priv` and `krb5_rd_priv` are refused for such a session, their
//! sequence numbers would be wrong).

use std::ops::Range;

use zeroize::Zeroizing;

use super::ap_parts::{
    app_seq, cons, encrypted, encrypted_data, field, int_field, kerberos_time, key, open,
    seq_number, signed_field, tlv, DerBuf,
};
use super::context::Context;
use super::creds::Creds;
use super::der::Der;
use super::error::{Error, Result};
use super::ffi;
use super::principal::raw_parts;
use auks_kcrypto::UsageKey;

/// Key usage of the authenticator (RFC 4120 §7.5.1).
const USAGE_AUTHENTICATOR: u32 = 11;
/// Key usage of the AP-REP's encrypted part.
pub(super) const USAGE_AP_REP: u32 = 12;
/// `ap-options`: mutual-required (bit 2), as 32 bits the way MIT sends them.
const AP_OPTIONS: [u8; 5] = [0x00, 0x20, 0x00, 0x00, 0x00];

fn bad(what: &str) -> Error {
    Error::local("krb5_rd_rep", format!("malformed AP-REP: {what}"))
}

/// What the client keeps between its AP-REQ and the server's AP-REP.
pub(super) struct Sent {
    etype: i32,
    session_key: Zeroizing<Vec<u8>>,
    ctime: [u8; 15],
    cusec: u32,
}

#[cfg(test)]
impl Sent {
    /// What a client sent (for the tests of an AP-REP).
    pub(super) fn for_tests(
        etype: i32,
        key: Zeroizing<Vec<u8>>,
        ctime: Vec<u8>,
        cusec: u32,
    ) -> Sent {
        Sent {
            etype,
            session_key: key,
            ctime: ctime.try_into().unwrap(),
            cusec,
        }
    }
}

/// The AP-REQ and what goes with it.
pub(super) struct Request {
    pub(super) ap_req: Vec<u8>,
    /// The subkey (of the session key's enctype) both sides use next.
    pub(super) subkey: Zeroizing<Vec<u8>>,
    pub(super) etype: i32,
    /// Our first sequence number.
    pub(super) seq: u32,
    pub(super) sent: Sent,
}

/// What the AP-REP says.
pub(super) struct Reply {
    /// The server's first sequence number (0 when absent, as MIT reads it).
    pub(super) seq: u32,
    /// A subkey replacing ours (enctype, bytes).
    pub(super) subkey: Option<(i32, Zeroizing<Vec<u8>>)>,
}

/// The session key of `creds` when [`auks_kcrypto`] handles its enctype.
pub(super) fn rust_session_key(creds: &Creds<'_>) -> Option<(i32, Zeroizing<Vec<u8>>)> {
    let kb = &creds.raw.keyblock;
    if !auks_kcrypto::handles(kb.enctype) || kb.contents.is_null() {
        return None;
    }
    // SAFETY: the keyblock's contents hold `length` bytes owned by the
    // creds, alive for this borrow; copied into a buffer wiped on drop.
    let key = unsafe { std::slice::from_raw_parts(kb.contents, kb.length as usize) };
    Some((kb.enctype, Zeroizing::new(key.to_vec())))
}

/// A principal as (realm, name type, components).
type NameParts<'c> = (&'c [u8], i32, Vec<&'c [u8]>);

/// The client principal of `creds`.
fn client_of<'c>(creds: &'c Creds<'_>) -> Result<NameParts<'c>> {
    let p = creds.raw.client;
    let missing = || Error::local("krb5_mk_req", "credential without a client");
    // SAFETY: NULL or a valid principal owned by the creds, alive while
    // they are.
    let (realm, comps) = unsafe { raw_parts(p) }.ok_or_else(missing)?;
    // SAFETY: non-NULL (raw_parts returned it), as above.
    let name_type = unsafe { (*p).type_ };
    Ok((realm, name_type, comps))
}

/// PrincipalName and realm of a client, DER-encoded: (`[1] crealm`,
/// `[2] cname`) of an authenticator.
fn client_fields(realm: &[u8], name_type: i32, comps: &[&[u8]]) -> (DerBuf, DerBuf) {
    let names: Vec<DerBuf> = comps.iter().map(|c| tlv(0x1b, c)).collect();
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
    let cname = cons(
        0x30,
        &[&signed_field(0, name_type), &field(1, &cons(0x30, &names))],
    );
    (field(1, &tlv(0x1b, realm)), field(2, &cname))
}

/// Build the AP-REQ for `creds` (whose session key is `etype`/`key`, from
/// [`rust_session_key`]).
pub(super) fn mk_req(
    ctx: &Context,
    creds: &Creds<'_>,
    etype: i32,
    key: Zeroizing<Vec<u8>>,
) -> Result<Request> {
    let (mut secs, mut usecs): (ffi::krb5_timestamp, ffi::krb5_int32) = (0, 0);
    // SAFETY: writes two numbers.
    ctx.check("krb5_us_timeofday", unsafe {
        ffi::lib().krb5_us_timeofday(ctx.raw, &mut secs, &mut usecs)
    })?;
    let (realm, name_type, comps) = client_of(creds)?;
    let client = ClientName {
        realm,
        name_type,
        components: &comps,
    };
    let now = (super::data::ts(secs), u32::try_from(usecs).unwrap_or(0));
    mk_req_for(&client, creds.ticket(), etype, key, now)
}

/// A client principal, as its parts.
pub struct ClientName<'n> {
    pub realm: &'n [u8],
    pub name_type: i32,
    pub components: &'n [&'n [u8]],
}

/// Build the AP-REQ presenting `ticket` (DER) of `client`, whose session
/// key is `etype`/`key`, at `now` (seconds, microseconds): no libkrb5.
pub(super) fn mk_req_for(
    client: &ClientName<'_>,
    ticket: &[u8],
    etype: i32,
    key: Zeroizing<Vec<u8>>,
    (secs, usecs): (i64, u32),
) -> Result<Request> {
    if ticket.is_empty() {
        return Err(Error::local("krb5_mk_req", "credential without a ticket"));
    }
    let mut subkey = Zeroizing::new(vec![0u8; key.len()]);
    getrandom::fill(&mut subkey).map_err(|_| Error::local("krb5_mk_req", "no random bytes"))?;
    let seq = seq_number("krb5_mk_req")?;
    let ctime = kerberos_time(secs)?;
    let cusec = usecs;
    let (crealm, cname) = client_fields(client.realm, client.name_type, client.components);
    let enc_key = cons(
        0x30,
        &[&int_field(0, etype as u32), &field(1, &tlv(0x04, &subkey))],
    );
    let body = cons(
        0x30,
        &[
            &int_field(0, 5),
            &crealm,
            &cname,
            &int_field(4, cusec),
            &field(5, &tlv(0x18, &ctime)),
            &field(6, &enc_key),
            &int_field(7, seq),
        ],
    );
    let auth = tlv(0x62, &body);
    let authenticator = encrypted_data("krb5_mk_req", etype, &key, USAGE_AUTHENTICATOR, &auth)?;
    let req = cons(
        0x30,
        &[
            &int_field(0, 5),
            &int_field(1, 14),
            &field(2, &tlv(0x03, &AP_OPTIONS)),
            &field(3, ticket),
            &field(4, &authenticator),
        ],
    );
    let ap_req = tlv(0x6e, &req).to_vec();
    Ok(Request {
        ap_req,
        subkey,
        etype,
        seq,
        sent: Sent {
            etype,
            session_key: key,
            ctime,
            cusec,
        },
    })
}

/// Verify the server's AP-REP against what was sent.
pub(super) fn rd_rep(sent: &Sent, ap_rep: &[u8]) -> Result<Reply> {
    let seq = app_seq(ap_rep, 0..ap_rep.len(), 0x6f).ok_or_else(|| bad("not an AP-REP"))?;
    let mut d = Der::new(ap_rep, seq);
    let pvno = d.int_field(0, "pvno").map_err(|_| bad("pvno"))?;
    let mt = d.int_field(1, "msg-type").map_err(|_| bad("msg-type"))?;
    if pvno != 5 || mt != 15 {
        return Err(bad("version or message type"));
    }
    let enc = d.field(2, 0x30, "enc-part").map_err(|_| bad("enc-part"))?;
    let (etype, _, cipher) = encrypted(ap_rep, enc).ok_or_else(|| bad("enc-part"))?;
    if etype != sent.etype {
        return Err(Error::local(
            "krb5_rd_rep",
            "AP-REP enctype differs from the session key's",
        ));
    }
    let keys = UsageKey::new(sent.etype, &sent.session_key, USAGE_AP_REP)
        .ok_or_else(|| bad("session key"))?;
    let (plain, r) = open(&keys, ap_rep, cipher).ok_or_else(|| {
        Error::local(
            "krb5_rd_rep",
            "AP-REP integrity check failed (not from the service, or altered)",
        )
    })?;
    parse_enc_part(sent, &plain, r)
}

/// `EncAPRepPart ::= [APPLICATION 27] SEQUENCE { ctime [0], cusec [1],
/// subkey [2] OPTIONAL, seq-number [3] OPTIONAL }`.
fn parse_enc_part(sent: &Sent, buf: &[u8], r: Range<usize>) -> Result<Reply> {
    let seq = app_seq(buf, r, 0x7b).ok_or_else(|| bad("encrypted part"))?;
    let mut d = Der::new(buf, seq);
    let ctime = d.field(0, 0x18, "ctime").map_err(|_| bad("ctime"))?;
    let cusec = d.int_field(1, "cusec").map_err(|_| bad("cusec"))?;
    if buf.get(ctime) != Some(&sent.ctime[..]) || cusec != i64::from(sent.cusec) {
        return Err(Error::local(
            "krb5_rd_rep",
            "AP-REP does not answer our authenticator (mutual authentication failed)",
        ));
    }
    let subkey = if d.has(2) {
        let k = d.field(2, 0x30, "subkey").map_err(|_| bad("subkey"))?;
        Some(key(buf, k).ok_or_else(|| {
            Error::local(
                "krb5_rd_rep",
                "AP-REP subkey malformed or of an enctype this client does not handle here",
            )
        })?)
    } else {
        None
    };
    let seq = if d.has(3) {
        d.int_field(3, "seq-number")
            .map_err(|_| bad("seq-number"))? as u32
    } else {
        0
    };
    Ok(Reply { seq, subkey })
}

#[cfg(test)]
mod tests {
    use super::super::ap_server::{mk_rep, RepState};
    use super::*;

    fn sent() -> Sent {
        Sent {
            etype: auks_kcrypto::AES256_SHA1,
            session_key: Zeroizing::new(vec![7u8; 32]),
            ctime: *b"20261201101010Z",
            cusec: 4242,
        }
    }

    /// An AP-REP under `s`'s key echoing (ctime, cusec), with a seq (0:
    /// none), as auksd makes it.
    fn ap_rep(s: &Sent, ctime: &[u8], cusec: u32, seq: u32) -> Vec<u8> {
        let rep = RepState {
            etype: s.etype,
            session_key: s.session_key.clone(),
            ctime: ctime.to_vec(),
            ctime_secs: 0,
            cusec,
        };
        mk_rep(&rep, seq).unwrap()
    }

    #[test]
    fn an_ap_rep_echoing_the_authenticator_is_accepted() {
        let s = sent();
        let r = rd_rep(&s, &ap_rep(&s, &s.ctime, s.cusec, 0x3000_0001)).unwrap();
        assert_eq!(r.seq, 0x3000_0001);
        assert!(r.subkey.is_none());
        let r = rd_rep(&s, &ap_rep(&s, &s.ctime, s.cusec, 0)).unwrap();
        assert_eq!(r.seq, 0);
    }

    #[test]
    fn wrong_time_key_or_bytes_are_refused() {
        let s = sent();
        assert!(rd_rep(&s, &ap_rep(&s, b"20261201101011Z", s.cusec, 0)).is_err());
        assert!(rd_rep(&s, &ap_rep(&s, &s.ctime, s.cusec + 1, 0)).is_err());
        let mut other = sent();
        other.session_key = Zeroizing::new(vec![8u8; 32]);
        assert!(rd_rep(&s, &ap_rep(&other, &s.ctime, s.cusec, 0)).is_err());
        let good = ap_rep(&s, &s.ctime, s.cusec, 1);
        for cut in 0..good.len() {
            assert!(rd_rep(&s, &good[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 1;
        assert!(rd_rep(&s, &flipped).is_err());
    }
}
