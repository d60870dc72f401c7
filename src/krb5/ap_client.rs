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

use super::context::Context;
use super::creds::Creds;
use super::der::{int_bytes, tlv_len, Der as Reader};
use super::error::{Error, Result};
use super::ffi;
use super::principal::raw_parts;
use auks_kcrypto::{UsageKey, HEADER, TRAILER};

/// Key usage of the authenticator (RFC 4120 §7.5.1).
const USAGE_AUTHENTICATOR: u32 = 11;
/// Key usage of the AP-REP's encrypted part.
const USAGE_AP_REP: u32 = 12;
/// `ap-options`: mutual-required (bit 2), as 32 bits the way MIT sends them.
const AP_OPTIONS: [u8; 5] = [0x00, 0x20, 0x00, 0x00, 0x00];

fn bad(what: &str) -> Error {
    Error::local("krb5_rd_rep", format!("malformed AP-REP: {what}"))
}

/// DER bytes that may hold a key (wiped when dropped).
type Der = Zeroizing<Vec<u8>>;

/// One DER element: tag, length, contents (a secret if `contents` is).
pub(super) fn tlv(tag: u8, contents: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(tlv_len(contents.len())));
    super::der::put_header(&mut out, tag, contents.len());
    out.extend_from_slice(contents);
    out
}

/// A SEQUENCE (or application tag `tag`) of the concatenated `parts`.
pub(super) fn cons(tag: u8, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let body: Zeroizing<Vec<u8>> = Zeroizing::new(parts.concat());
    tlv(tag, &body)
}

/// Context-tagged field `[n]` holding `inner`.
pub(super) fn field(n: u8, inner: &[u8]) -> Zeroizing<Vec<u8>> {
    tlv(0xa0 | n, inner)
}

pub(super) fn int_field(n: u8, v: u32) -> Zeroizing<Vec<u8>> {
    field(n, &tlv(0x02, &int_bytes(v)))
}

/// An INTEGER field of a signed value (a principal's name type).
fn signed_field(n: u8, v: i32) -> Zeroizing<Vec<u8>> {
    let b = v.to_be_bytes();
    let mut skip = 0;
    while skip < 3 {
        let (x, next) = (b[skip], b[skip + 1]);
        if (x == 0 && next & 0x80 == 0) || (x == 0xff && next & 0x80 != 0) {
            skip += 1;
        } else {
            break;
        }
    }
    field(n, &tlv(0x02, &b[skip..]))
}

/// KerberosTime: GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn kerberos_time(secs: i64) -> Result<[u8; 15]> {
    let t = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| Error::local("krb5_mk_req", "clock out of range"))?;
    let s = t.format("%Y%m%d%H%M%SZ").to_string();
    s.as_bytes()
        .try_into()
        .map_err(|_| Error::local("krb5_mk_req", "clock out of range"))
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

/// PrincipalName and realm of the client of `creds`, DER-encoded:
/// (`[1] crealm`, `[2] cname`) of an authenticator.
fn client_fields(creds: &Creds<'_>) -> Result<(Der, Der)> {
    let p = creds.raw.client;
    let missing = || Error::local("krb5_mk_req", "credential without a client");
    // SAFETY: NULL or a valid principal owned by the creds, alive while
    // they are.
    let (realm, comps) = unsafe { raw_parts(p) }.ok_or_else(missing)?;
    // SAFETY: non-NULL (raw_parts returned it), as above.
    let name_type = unsafe { (*p).type_ };
    let names: Vec<Zeroizing<Vec<u8>>> = comps.iter().map(|c| tlv(0x1b, c)).collect();
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
    let cname = cons(
        0x30,
        &[&signed_field(0, name_type), &field(1, &cons(0x30, &names))],
    );
    Ok((field(1, &tlv(0x1b, realm)), field(2, &cname)))
}

/// Build the AP-REQ for `creds` (whose session key is `etype`/`key`, from
/// [`rust_session_key`]).
pub(super) fn mk_req(
    ctx: &Context,
    creds: &Creds<'_>,
    etype: i32,
    key: Zeroizing<Vec<u8>>,
) -> Result<Request> {
    let ticket = creds.ticket();
    if ticket.is_empty() {
        return Err(Error::local("krb5_mk_req", "credential without a ticket"));
    }
    let mut subkey = Zeroizing::new(vec![0u8; key.len()]);
    let mut seq = [0u8; 4];
    getrandom::fill(&mut subkey)
        .and_then(|()| getrandom::fill(&mut seq))
        .map_err(|_| Error::local("krb5_mk_req", "no random bytes"))?;
    // As libkrb5: 30 bits, never read as negative by any peer.
    let seq = u32::from_be_bytes(seq) & 0x3fff_ffff;
    let (mut secs, mut usecs): (ffi::krb5_timestamp, ffi::krb5_int32) = (0, 0);
    // SAFETY: writes two numbers.
    ctx.check("krb5_us_timeofday", unsafe {
        ffi::lib().krb5_us_timeofday(ctx.raw, &mut secs, &mut usecs)
    })?;
    let ctime = kerberos_time(super::data::ts(secs))?;
    let cusec = u32::try_from(usecs).unwrap_or(0);
    let (crealm, cname) = client_fields(creds)?;
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
    let mut sealed = Zeroizing::new(vec![0u8; HEADER + auth.len() + TRAILER]);
    sealed[HEADER..HEADER + auth.len()].copy_from_slice(&auth);
    UsageKey::new(etype, &key, USAGE_AUTHENTICATOR)
        .ok_or_else(|| Error::local("krb5_mk_req", "session key of the wrong length"))?
        .seal(&mut sealed)
        .map_err(|_| Error::local("krb5_mk_req", "no random bytes for the confounder"))?;
    let authenticator = cons(
        0x30,
        &[&int_field(0, etype as u32), &field(2, &tlv(0x04, &sealed))],
    );
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
    let mut top = Reader::new(ap_rep, 0..ap_rep.len());
    let app = top.element(0x6f, "not an AP-REP").map_err(|_| bad("tag"))?;
    if !top.at_end() {
        return Err(bad("bytes after the message"));
    }
    let mut app = Reader::new(ap_rep, app);
    let seq = app.element(0x30, "AP-REP").map_err(|_| bad("sequence"))?;
    let mut d = Reader::new(ap_rep, seq);
    let pvno = d.int_field(0, "pvno").map_err(|_| bad("pvno"))?;
    let mt = d.int_field(1, "msg-type").map_err(|_| bad("msg-type"))?;
    if pvno != 5 || mt != 15 {
        return Err(bad("version or message type"));
    }
    let enc = d.field(2, 0x30, "enc-part").map_err(|_| bad("enc-part"))?;
    let mut e = Reader::new(ap_rep, enc);
    let etype = e.int_field(0, "etype").map_err(|_| bad("etype"))?;
    if e.has(1) {
        e.int_field(1, "kvno").map_err(|_| bad("kvno"))?;
    }
    let cipher = e.field(2, 0x04, "cipher").map_err(|_| bad("cipher"))?;
    if etype != i64::from(sent.etype) {
        return Err(Error::local(
            "krb5_rd_rep",
            "AP-REP enctype differs from the session key's",
        ));
    }
    let mut plain = Zeroizing::new(ap_rep.get(cipher).ok_or_else(|| bad("cipher"))?.to_vec());
    let keys = UsageKey::new(sent.etype, &sent.session_key, USAGE_AP_REP)
        .ok_or_else(|| bad("session key"))?;
    let r = keys.open(&mut plain).map_err(|_| {
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
    let mut top = Reader::new(buf, r);
    let app = top
        .element(0x7b, "EncAPRepPart")
        .map_err(|_| bad("encrypted part"))?;
    let mut app = Reader::new(buf, app);
    let seq = app
        .element(0x30, "EncAPRepPart")
        .map_err(|_| bad("encrypted part"))?;
    let mut d = Reader::new(buf, seq);
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
        let mut k = Reader::new(buf, k);
        let t = k.int_field(0, "keytype").map_err(|_| bad("subkey"))?;
        let v = k.field(1, 0x04, "keyvalue").map_err(|_| bad("subkey"))?;
        let t = i32::try_from(t).map_err(|_| bad("subkey type"))?;
        let v = Zeroizing::new(buf.get(v).ok_or_else(|| bad("subkey"))?.to_vec());
        if UsageKey::new(t, &v, 13).is_none() {
            return Err(Error::local(
                "krb5_rd_rep",
                "AP-REP subkey of an enctype this client does not handle here",
            ));
        }
        Some((t, v))
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
    use super::*;

    #[test]
    fn kerberos_time_is_generalized_time() {
        assert_eq!(&kerberos_time(0).unwrap(), b"19700101000000Z");
        assert_eq!(&kerberos_time(1_764_585_600).unwrap(), b"20251201104000Z");
    }

    #[test]
    fn signed_name_types_are_minimal() {
        assert_eq!(&signed_field(0, 1)[..], &[0xa0, 3, 2, 1, 1]);
        assert_eq!(&signed_field(0, -128)[..], &[0xa0, 3, 2, 1, 0x80]);
        assert_eq!(&signed_field(0, 128)[..], &[0xa0, 4, 2, 2, 0, 0x80]);
        assert_eq!(&signed_field(0, -129)[..], &[0xa0, 4, 2, 2, 0xff, 0x7f]);
    }

    fn sent() -> Sent {
        Sent {
            etype: auks_kcrypto::AES256_SHA1,
            session_key: Zeroizing::new(vec![7u8; 32]),
            ctime: *b"20261201101010Z",
            cusec: 4242,
        }
    }

    /// An AP-REP under `s`'s key echoing (ctime, cusec), with a seq.
    fn ap_rep(s: &Sent, ctime: &[u8], cusec: u32, seq: Option<u32>) -> Vec<u8> {
        let mut parts = vec![field(0, &tlv(0x18, ctime)), int_field(1, cusec)];
        if let Some(q) = seq {
            parts.push(int_field(3, q));
        }
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let enc = tlv(0x7b, &cons(0x30, &parts));
        let mut sealed = vec![0u8; HEADER + enc.len() + TRAILER];
        sealed[HEADER..HEADER + enc.len()].copy_from_slice(&enc);
        UsageKey::new(s.etype, &s.session_key, USAGE_AP_REP)
            .unwrap()
            .seal(&mut sealed)
            .unwrap();
        let ed = cons(
            0x30,
            &[
                &int_field(0, s.etype as u32),
                &field(2, &tlv(0x04, &sealed)),
            ],
        );
        tlv(
            0x6f,
            &cons(0x30, &[&int_field(0, 5), &int_field(1, 15), &field(2, &ed)]),
        )
        .to_vec()
    }

    #[test]
    fn an_ap_rep_echoing_the_authenticator_is_accepted() {
        let s = sent();
        let r = rd_rep(&s, &ap_rep(&s, &s.ctime, s.cusec, Some(0x3000_0001))).unwrap();
        assert_eq!(r.seq, 0x3000_0001);
        assert!(r.subkey.is_none());
        let r = rd_rep(&s, &ap_rep(&s, &s.ctime, s.cusec, None)).unwrap();
        assert_eq!(r.seq, 0);
    }

    #[test]
    fn wrong_time_key_or_bytes_are_refused() {
        let s = sent();
        assert!(rd_rep(&s, &ap_rep(&s, b"20261201101011Z", s.cusec, None)).is_err());
        assert!(rd_rep(&s, &ap_rep(&s, &s.ctime, s.cusec + 1, None)).is_err());
        let mut other = sent();
        other.session_key = Zeroizing::new(vec![8u8; 32]);
        assert!(rd_rep(&s, &ap_rep(&other, &s.ctime, s.cusec, None)).is_err());
        let good = ap_rep(&s, &s.ctime, s.cusec, Some(1));
        for cut in 0..good.len() {
            assert!(rd_rep(&s, &good[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 1;
        assert!(rd_rep(&s, &flipped).is_err());
    }
}
