//! The server's half of the sendauth handshake without libkrb5, for the
//! usual AP-REQ: an AES-SHA1 ticket for our service, addressless, issued
//! in our realm, with an AES-SHA1 session key. Anything else — another
//! enctype, a ticket with addresses or transited realms, authorization
//! data other than AD-IF-RELEVANT, a principal name that would need
//! escaping, and every check that fails — is left to `krb5_rd_req`
//! ([`verify`] returns `None`), which then gives its verdict and its
//! error code. So this path only ever accepts what libkrb5 accepts; what
//! it saves is the work libkrb5 repeats for every session: the service
//! key's usage keys derived again (and its slow n-fold), the keytab entry
//! copied out, the ticket, authenticator and principals decoded into
//! freshly allocated structures, the PAC verified although AUKS never
//! reads it (libkrb5 ignores a PAC that fails verification, see
//! `mspac_verify`), and the AP-REP's keys derived again.
//!
//! The checks, as `krb5_rd_req` makes them (RFC 4120 §3.2.3): the ticket
//! names our service principal and decrypts under its key (key usage 2),
//! is not flagged invalid, and is valid now within the clock skew; the
//! authenticator decrypts under the ticket's session key (usage 11),
//! names the ticket's client and is within the clock skew; every enctype
//! is one krb5.conf permits. Replays are the caller's (AUKS's own replay
//! cache, keyed on the authenticator's ciphertext); when libkrb5's replay
//! cache is in use the fast path is not taken at all.
//!
//! The AP-REP ([`mk_rep`]) echoes the authenticator's time under the
//! session key (usage 12) with our first sequence number, as
//! `krb5_mk_rep` does.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::ap_client::USAGE_AP_REP;
use super::ap_parts::{
    app_seq, cons, encrypted, encrypted_data, field, int_field, key, open, time, tlv,
};
use super::context::{Context, SKEW_UNREADABLE};
use super::der::{int_bytes, Der};
use super::error::Result;
use super::ffi;
use super::keytab::Keytab;
use super::principal::{raw_parts, Principal};
use auks_kcrypto::UsageKey;

const USAGE_TICKET: u32 = 2;
const USAGE_AUTHENTICATOR: u32 = 11;
/// Characters `krb5_unparse_name` escapes: a name holding one is left to
/// libkrb5.
const ESCAPED: &[u8] = b"/@\\\0\n\t\x08";

/// What a keytab object keeps for this path: the ticket keys (usage 2)
/// derived once per (principal, kvno, enctype), the permitted enctypes and
/// the clock skew, read once.
#[derive(Default)]
pub(super) struct ServiceCache {
    inner: Mutex<Option<Cached>>,
    /// Every AP-REQ is left to libkrb5 ([`Keytab::libkrb5_only`]).
    pub(super) off: AtomicBool,
}

struct Cached {
    permitted: Vec<i32>,
    skew: i64,
    keys: Vec<(Vec<u8>, UsageKey)>,
}

/// A verified AP-REQ.
pub(super) struct Accepted {
    pub(super) client: String,
    pub(super) mutual: bool,
    /// The key of the session's KRB-PRIV: the authenticator's subkey, else
    /// the session key.
    pub(super) subkey: (i32, Zeroizing<Vec<u8>>),
    /// The client's first sequence number (0 when absent).
    pub(super) remote_seq: u32,
    pub(super) rep: RepState,
}

/// What the AP-REP needs.
pub(super) struct RepState {
    pub(super) etype: i32,
    pub(super) session_key: Zeroizing<Vec<u8>>,
    pub(super) ctime: Vec<u8>,
    pub(super) ctime_secs: i64,
    pub(super) cusec: u32,
}

/// `PrincipalName`: its components (the name type is not compared, as
/// `krb5_principal_compare` does not).
fn name(buf: &[u8], r: Range<usize>) -> Option<Vec<&[u8]>> {
    let mut d = Der::new(buf, r);
    d.int_field(0, "").ok()?;
    let seq = d.field(1, 0x30, "").ok()?;
    let mut s = Der::new(buf, seq);
    let mut out = Vec::new();
    while !s.at_end() {
        out.push(buf.get(s.element(0x1b, "").ok()?)?);
    }
    (d.at_end() && !out.is_empty()).then_some(out)
}

impl Cached {
    fn new(ctx: &Context) -> Option<Cached> {
        let skew = ctx.clock_skew();
        if skew == SKEW_UNREADABLE {
            return None;
        }
        let mut list: *mut ffi::krb5_enctype = std::ptr::null_mut();
        // SAFETY: valid context; list receives a zero-terminated array
        // freed below.
        let code = unsafe { ffi::lib().krb5_get_permitted_enctypes(ctx.raw, &mut list) };
        if code != 0 || list.is_null() {
            return None;
        }
        let mut permitted = Vec::new();
        // SAFETY: a zero-terminated array owned by us, read up to its end
        // (bounded), then freed once.
        unsafe {
            let mut i = 0;
            while i < 256 && *list.add(i) != 0 {
                permitted.push(*list.add(i));
                i += 1;
            }
            ffi::lib().krb5_free_enctypes(ctx.raw, list);
        }
        Some(Cached {
            permitted,
            skew,
            keys: Vec::new(),
        })
    }

    /// The ticket keys of (server, kvno, etype), derived on first use.
    fn ticket_key(
        &mut self,
        keytab: &Keytab<'_>,
        server: &Principal<'_>,
        id: Vec<u8>,
        kvno: u32,
        etype: i32,
    ) -> Option<&UsageKey> {
        if let Some(i) = self.keys.iter().position(|(k, _)| *k == id) {
            return self.keys.get(i).map(|(_, k)| k);
        }
        let mut entry = ffi::krb5_keytab_entry::default();
        // SAFETY: valid handles; entry receives owned contents, freed (and
        // its key wiped by libkrb5) below.
        let code = unsafe {
            ffi::lib().krb5_kt_get_entry(
                keytab.ctx.raw,
                keytab.raw,
                server.raw,
                kvno,
                etype,
                &mut entry,
            )
        };
        if code != 0 {
            return None;
        }
        let kb = &entry.key;
        // SAFETY: the entry's key holds `length` bytes (or is NULL),
        // read before the entry is freed.
        let keys = unsafe {
            let bytes: &[u8] = if kb.contents.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(kb.contents, kb.length as usize)
            };
            let k = (kb.enctype == etype)
                .then(|| UsageKey::new(etype, bytes, USAGE_TICKET))
                .flatten();
            ffi::lib().krb5_free_keytab_entry_contents(keytab.ctx.raw, &mut entry);
            k
        }?;
        // A keytab of a few keys: a handful of entries at most.
        if self.keys.len() >= 16 {
            self.keys.clear();
        }
        self.keys.push((id, keys));
        self.keys.last().map(|(_, k)| k)
    }
}

/// Verify `ap_req` for `server` with `keytab` at time `now`; `None`: not
/// for this path (libkrb5 decides).
pub(super) fn verify(
    ctx: &Context,
    ap_req: &[u8],
    server: &Principal<'_>,
    keytab: &Keytab<'_>,
    now: i64,
) -> Option<Accepted> {
    // AP-REQ ::= [APPLICATION 14] SEQUENCE { pvno [0], msg-type [1],
    // ap-options [2], ticket [3], authenticator [4] }
    if keytab.service.off.load(Ordering::Relaxed) {
        return None;
    }
    let seq = app_seq(ap_req, 0..ap_req.len(), 0x6e)?;
    let mut d = Der::new(ap_req, seq);
    if d.int_field(0, "").ok()? != 5 || d.int_field(1, "").ok()? != 14 {
        return None;
    }
    let opts = ap_req.get(d.field(2, 0x03, "").ok()?)?;
    let first = *opts.get(1)?;
    // use-session-key (user to user): libkrb5's.
    if first & 0x40 != 0 {
        return None;
    }
    // Without mutual-required libkrb5 derives our sequence number from
    // the client's: its own path.
    if first & 0x20 == 0 {
        return None;
    }
    let mutual = true;
    let ticket = d.field(3, 0x61, "").ok()?;
    let auth = d.field(4, 0x30, "").ok()?;
    if !d.at_end() {
        return None;
    }
    // Ticket ::= [APPLICATION 1] SEQUENCE { tkt-vno [0], realm [1],
    // sname [2], enc-part [3] } (the [APPLICATION 1] already taken).
    let mut t = Der::new(ap_req, ticket);
    let tseq = t.element(0x30, "").ok()?;
    let mut t = Der::new(ap_req, tseq);
    if t.int_field(0, "").ok()? != 5 {
        return None;
    }
    let realm = ap_req.get(t.field(1, 0x1b, "").ok()?)?;
    let sname = name(ap_req, t.field(2, 0x30, "").ok()?)?;
    let (etype, kvno, cipher) = encrypted(ap_req, t.field(3, 0x30, "").ok()?)?;
    // SAFETY: a valid principal of ours, alive for this call.
    let (srealm, scomps) = unsafe { raw_parts(server.raw) }?;
    if realm != srealm || sname != scomps {
        return None;
    }
    let mut guard = keytab.service.inner.lock().ok()?;
    if guard.is_none() {
        *guard = Cached::new(ctx);
    }
    let cache = guard.as_mut()?;
    if !cache.permitted.contains(&etype) {
        return None;
    }
    let skew = cache.skew;
    // (principal, kvno, enctype), NUL-separated (a name that holds a NUL
    // is left to libkrb5 below).
    let mut id = srealm.to_vec();
    for c in &scomps {
        id.push(0);
        id.extend_from_slice(c);
    }
    id.push(0);
    id.extend_from_slice(&int_bytes(kvno.unwrap_or(0)));
    id.push(0);
    id.extend_from_slice(&int_bytes(etype as u32));
    let tkeys = cache.ticket_key(keytab, server, id, kvno.unwrap_or(0), etype)?;
    let (tplain, tr) = open(tkeys, ap_req, cipher)?;
    // The worker's own keytab copy: its lock is never contended.
    let permitted = &cache.permitted;
    let part = enc_ticket_part(&tplain, tr, now, skew)?;
    if !permitted.contains(&part.key.0) {
        return None;
    }
    // The authenticator, under the session key.
    let (aetype, _, acipher) = encrypted(ap_req, auth)?;
    if aetype != part.key.0 {
        return None;
    }
    let akeys = UsageKey::new(part.key.0, &part.key.1, USAGE_AUTHENTICATOR)?;
    let (aplain, ar) = open(&akeys, ap_req, acipher)?;
    let a = authenticator(&aplain, ar, now, skew)?;
    let crealm = tplain.get(part.crealm.clone())?;
    let comps = name(&tplain, part.cname.clone())?;
    if a.crealm != crealm || name(&aplain, a.cname.clone())? != comps {
        return None;
    }
    if let Some((t, _)) = &a.subkey {
        if !permitted.contains(t) {
            return None;
        }
    }
    // The client's name as krb5_unparse_name writes it, when nothing in
    // it needs escaping.
    if comps
        .iter()
        .chain([&crealm])
        .any(|c| c.iter().any(|b| ESCAPED.contains(b)))
    {
        return None;
    }
    let mut client = comps.join(&b'/');
    client.push(b'@');
    client.extend_from_slice(crealm);
    let client = String::from_utf8(client).ok()?;
    let subkey = a.subkey.unwrap_or_else(|| (part.key.0, part.key.1.clone()));
    Some(Accepted {
        client,
        mutual,
        subkey,
        remote_seq: a.seq,
        rep: RepState {
            etype: part.key.0,
            session_key: part.key.1,
            ctime: a.ctime,
            ctime_secs: a.ctime_secs,
            cusec: a.cusec,
        },
    })
}

struct TicketPart {
    key: (i32, Zeroizing<Vec<u8>>),
    crealm: Range<usize>,
    cname: Range<usize>,
}

/// `EncTicketPart ::= [APPLICATION 3] SEQUENCE { flags [0], key [1],
/// crealm [2], cname [3], transited [4], authtime [5], starttime [6]
/// OPTIONAL, endtime [7], renew-till [8] OPTIONAL, caddr [9] OPTIONAL,
/// authorization-data [10] OPTIONAL }`, checked.
fn enc_ticket_part(buf: &[u8], r: Range<usize>, now: i64, skew: i64) -> Option<TicketPart> {
    let seq = app_seq(buf, r, 0x63)?;
    let mut d = Der::new(buf, seq);
    let flags = buf.get(d.field(0, 0x03, "").ok()?)?;
    // invalid (bit 7)
    if flags.len() < 2 || flags[1] & 0x01 != 0 {
        return None;
    }
    let key = key(buf, d.field(1, 0x30, "").ok()?)?;
    let crealm = d.field(2, 0x1b, "").ok()?;
    let cname = d.field(3, 0x30, "").ok()?;
    // transited: none (a ticket of our own realm)
    let tr = d.field(4, 0x30, "").ok()?;
    let mut tr = Der::new(buf, tr);
    tr.int_field(0, "").ok()?;
    if !tr.field(1, 0x04, "").ok()?.is_empty() || !tr.at_end() {
        return None;
    }
    let authtime = time(buf.get(d.field(5, 0x18, "").ok()?)?)?;
    let start = if d.has(6) {
        time(buf.get(d.field(6, 0x18, "").ok()?)?)?
    } else {
        authtime
    };
    let end = time(buf.get(d.field(7, 0x18, "").ok()?)?)?;
    if start - now > skew || now - end > skew {
        return None;
    }
    if d.has(8) {
        time(buf.get(d.field(8, 0x18, "").ok()?)?)?;
    }
    if d.has(9) {
        let a = d.field(9, 0x30, "").ok()?;
        if !a.is_empty() {
            return None;
        }
    }
    if d.has(10) {
        // AuthorizationData ::= SEQUENCE OF SEQUENCE { ad-type [0],
        // ad-data [1] }: only AD-IF-RELEVANT (1), which may be ignored.
        let ad = d.field(10, 0x30, "").ok()?;
        let mut ad = Der::new(buf, ad);
        while !ad.at_end() {
            let e = ad.element(0x30, "").ok()?;
            let mut e = Der::new(buf, e);
            if e.int_field(0, "").ok()? != 1 {
                return None;
            }
            e.field(1, 0x04, "").ok()?;
            if !e.at_end() {
                return None;
            }
        }
    }
    d.at_end().then_some(TicketPart { key, crealm, cname })
}

struct AuthPart {
    crealm: Vec<u8>,
    cname: Range<usize>,
    ctime: Vec<u8>,
    ctime_secs: i64,
    cusec: u32,
    subkey: Option<(i32, Zeroizing<Vec<u8>>)>,
    seq: u32,
}

/// `Authenticator ::= [APPLICATION 2] SEQUENCE { authenticator-vno [0],
/// crealm [1], cname [2], cksum [3] OPTIONAL, cusec [4], ctime [5],
/// subkey [6] OPTIONAL, seq-number [7] OPTIONAL, authorization-data [8]
/// OPTIONAL }`, checked (authorization data: libkrb5's).
fn authenticator(buf: &[u8], r: Range<usize>, now: i64, skew: i64) -> Option<AuthPart> {
    let seq = app_seq(buf, r, 0x62)?;
    let mut d = Der::new(buf, seq);
    if d.int_field(0, "").ok()? != 5 {
        return None;
    }
    let crealm = buf.get(d.field(1, 0x1b, "").ok()?)?.to_vec();
    let cname = d.field(2, 0x30, "").ok()?;
    if d.has(3) {
        d.field(3, 0x30, "").ok()?;
    }
    let cusec = u32::try_from(d.int_field(4, "").ok()?).ok()?;
    let ct = d.field(5, 0x18, "").ok()?;
    let ctime = buf.get(ct)?.to_vec();
    let ctime_secs = time(&ctime)?;
    if (ctime_secs - now).abs() > skew || cusec > 999_999 {
        return None;
    }
    let subkey = if d.has(6) {
        Some(key(buf, d.field(6, 0x30, "").ok()?)?)
    } else {
        None
    };
    let seq = if d.has(7) {
        d.int_field(7, "").ok()? as u32
    } else {
        0
    };
    d.at_end().then_some(AuthPart {
        crealm,
        cname,
        ctime,
        ctime_secs,
        cusec,
        subkey,
        seq,
    })
}

/// The AP-REP for a session accepted by [`verify`], with `seq` our first
/// sequence number.
pub(super) fn mk_rep(rep: &RepState, seq: u32) -> Result<Vec<u8>> {
    let mut parts = vec![field(0, &tlv(0x18, &rep.ctime)), int_field(1, rep.cusec)];
    // MIT's encoder omits a zero sequence number.
    if seq != 0 {
        parts.push(int_field(3, seq));
    }
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let enc = tlv(0x7b, &cons(0x30, &parts));
    let ed = encrypted_data(
        "krb5_mk_rep",
        rep.etype,
        &rep.session_key,
        USAGE_AP_REP,
        &enc,
    )?;
    Ok(tlv(
        0x6f,
        &cons(0x30, &[&int_field(0, 5), &int_field(1, 15), &field(2, &ed)]),
    )
    .to_vec())
}
