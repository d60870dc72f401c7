//! The handshake made in Rust ([`super::ap_client`], [`super::ap_server`])
//! against libkrb5's own, on AP-REQs built here from a service key of our
//! own (no KDC): what the Rust server accepts, `krb5_rd_req` accepts, with
//! the same client name; what it refuses is left to libkrb5, which refuses
//! every broken case too; libkrb5's `krb5_rd_rep` reads the Rust AP-REP.

use std::ptr;

use zeroize::Zeroizing;

use super::address::KrbAddr;
use super::ap_parts::{cons, field, int_field, kerberos_time, tlv};
use super::ap_server;
use super::auth_context::AuthContext;
use super::context::Context;
use super::creds::fake::{creds, Fake};
use super::ffi;
use super::keytab::Keytab;
use super::principal::Principal;
use auks_kcrypto::{UsageKey, AES256_SHA1, HEADER, TRAILER};

const SERVER: &str = "auks/test.host@TEST.REALM";
const KVNO: u32 = 3;

fn gtime(secs: i64) -> Vec<u8> {
    kerberos_time(secs).unwrap().to_vec()
}

fn gstr(s: &str) -> Vec<u8> {
    tlv(0x1b, s.as_bytes()).to_vec()
}

fn pname(comps: &[&str]) -> Vec<u8> {
    let names: Vec<Vec<u8>> = comps.iter().map(|c| gstr(c)).collect();
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
    cons(0x30, &[&int_field(0, 1), &field(1, &cons(0x30, &names))]).to_vec()
}

fn seal(etype: i32, key: &[u8], usage: u32, plain: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; HEADER + plain.len() + TRAILER];
    m[HEADER..HEADER + plain.len()].copy_from_slice(plain);
    UsageKey::new(etype, key, usage)
        .unwrap()
        .seal(&mut m)
        .unwrap();
    m
}

fn enc_data(etype: i32, kvno: Option<u32>, cipher: &[u8]) -> Vec<u8> {
    let mut parts = vec![int_field(0, etype as u32)];
    if let Some(k) = kvno {
        parts.push(int_field(1, k));
    }
    parts.push(field(2, &tlv(0x04, cipher)));
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    cons(0x30, &parts).to_vec()
}

/// One AP-REQ's ingredients; each case changes one.
#[derive(Clone)]
struct Case {
    service_key: Vec<u8>,
    /// The key the ticket is really encrypted with.
    ticket_key: Vec<u8>,
    session_key: Vec<u8>,
    sname: Vec<&'static str>,
    client: Vec<&'static str>,
    auth_client: Vec<&'static str>,
    flags: u8,
    start: Option<i64>,
    end: i64,
    caddr: bool,
    authdata: Option<u32>,
    ctime: i64,
    mutual: bool,
    subkey: bool,
    flip_ticket: bool,
}

impl Case {
    fn good(now: i64) -> Case {
        let key = |b: u8| (0..32).map(|i| b ^ (i as u8)).collect::<Vec<u8>>();
        Case {
            service_key: key(0x5a),
            ticket_key: key(0x5a),
            session_key: key(0x33),
            sname: vec!["auks", "test.host"],
            client: vec!["alice"],
            auth_client: vec!["alice"],
            flags: 0x40,
            start: None,
            end: now + 3600,
            caddr: false,
            authdata: Some(1),
            ctime: now,
            mutual: true,
            subkey: true,
            flip_ticket: false,
        }
    }

    fn ap_req(&self, now: i64) -> Vec<u8> {
        let ekey = cons(
            0x30,
            &[
                &int_field(0, AES256_SHA1 as u32),
                &field(1, &tlv(0x04, &self.session_key)),
            ],
        );
        let transited = cons(0x30, &[&int_field(0, 1), &field(1, &tlv(0x04, &[]))]);
        let mut parts = vec![
            field(0, &tlv(0x03, &[0, self.flags, 0, 0, 0])),
            field(1, &ekey),
            field(2, &gstr("TEST.REALM")),
            field(3, &pname(&self.client)),
            field(4, &transited),
            field(5, &tlv(0x18, &gtime(now - 60))),
        ];
        if let Some(s) = self.start {
            parts.push(field(6, &tlv(0x18, &gtime(s))));
        }
        parts.push(field(7, &tlv(0x18, &gtime(self.end))));
        if self.caddr {
            let a = cons(
                0x30,
                &[&int_field(0, 2), &field(1, &tlv(0x04, &[127, 0, 0, 1]))],
            );
            parts.push(field(9, &cons(0x30, &[&a])));
        }
        if let Some(t) = self.authdata {
            let ad = cons(0x30, &[&int_field(0, t), &field(1, &tlv(0x04, &[0x30, 0]))]);
            parts.push(field(10, &cons(0x30, &[&ad])));
        }
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let etp = tlv(0x63, &cons(0x30, &parts));
        let mut tcipher = seal(AES256_SHA1, &self.ticket_key, 2, &etp);
        if self.flip_ticket {
            tcipher[40] ^= 1;
        }
        let ticket = tlv(
            0x61,
            &cons(
                0x30,
                &[
                    &int_field(0, 5),
                    &field(1, &gstr("TEST.REALM")),
                    &field(2, &pname(&self.sname)),
                    &field(3, &enc_data(AES256_SHA1, Some(KVNO), &tcipher)),
                ],
            ),
        );
        let mut a = vec![
            int_field(0, 5),
            field(1, &gstr("TEST.REALM")),
            field(2, &pname(&self.auth_client)),
            int_field(4, 123_456),
            field(5, &tlv(0x18, &gtime(self.ctime))),
        ];
        if self.subkey {
            let sk = cons(
                0x30,
                &[
                    &int_field(0, AES256_SHA1 as u32),
                    &field(1, &tlv(0x04, &[9u8; 32])),
                ],
            );
            a.push(field(6, &sk));
        }
        a.push(int_field(7, 77));
        let a: Vec<&[u8]> = a.iter().map(|p| p.as_slice()).collect();
        let auth = tlv(0x62, &cons(0x30, &a));
        let acipher = seal(AES256_SHA1, &self.session_key, 11, &auth);
        let opts = [0, if self.mutual { 0x20 } else { 0 }, 0, 0, 0];
        tlv(
            0x6e,
            &cons(
                0x30,
                &[
                    &int_field(0, 5),
                    &int_field(1, 14),
                    &field(2, &tlv(0x03, &opts)),
                    &field(3, &ticket),
                    &field(4, &enc_data(AES256_SHA1, None, &acipher)),
                ],
            ),
        )
        .to_vec()
    }
}

/// The ticket (DER) an AP-REQ carries.
fn ticket_of(req: &[u8]) -> Vec<u8> {
    let mut d = super::der::Der::new(req, 0..req.len());
    let app = d.element(0x6e, "").unwrap();
    let mut a = super::der::Der::new(req, app);
    let seq = a.element(0x30, "").unwrap();
    let mut s = super::der::Der::new(req, seq);
    s.int_field(0, "").unwrap();
    s.int_field(1, "").unwrap();
    s.field(2, 0x03, "").unwrap();
    let t = s.element(0xa3, "").unwrap();
    req[t].to_vec()
}

/// A MEMORY keytab holding `key` for [`SERVER`].
fn keytab<'c>(ctx: &'c Context, key: &[u8], n: usize) -> Keytab<'c> {
    let kt = Keytab::resolve(ctx, &format!("MEMORY:ap-tests-{}-{n}", std::process::id())).unwrap();
    let sp = Principal::parse(ctx, SERVER).unwrap();
    let mut bytes = key.to_vec();
    let mut entry = ffi::krb5_keytab_entry {
        principal: sp.raw,
        vno: KVNO,
        key: ffi::krb5_keyblock {
            magic: 0,
            enctype: AES256_SHA1,
            length: bytes.len() as u32,
            contents: bytes.as_mut_ptr(),
        },
        ..Default::default()
    };
    // SAFETY: valid handles; the entry borrows the principal and the key,
    // which the MEMORY keytab copies.
    ctx.check("krb5_kt_add_entry", unsafe {
        ffi::lib().krb5_kt_add_entry(ctx.raw, kt.raw, &mut entry)
    })
    .unwrap();
    kt
}

/// (Rust's verdict, libkrb5's verdict) on `case`: the client name each
/// accepted.
fn verdicts(case: &Case, n: usize) -> (Option<String>, Result<String, String>) {
    let ctx = Context::new().unwrap();
    let now = ctx.now();
    let req = case.ap_req(now);
    let sp = Principal::parse(&ctx, SERVER).unwrap();
    let kt = keytab(&ctx, &case.service_key, n);
    let rust = ap_server::verify(&ctx, &req, &sp, &kt, now).map(|a| a.client);
    let lib_kt = keytab(&ctx, &case.service_key, n + 1000);
    lib_kt.libkrb5_only();
    let mut ac = AuthContext::for_session(&ctx).unwrap();
    ac.set_replay_cache(false, &sp).unwrap();
    let lib = ac
        .rd_req(&req, &sp, &lib_kt)
        .map(|(c, _)| c)
        .map_err(|e| e.to_string());
    (rust, lib)
}

#[test]
fn what_rust_accepts_libkrb5_accepts_and_broken_requests_are_refused_by_both() {
    let now = Context::new().unwrap().now();
    let good = Case::good(now);
    let mut cases: Vec<(&str, Case, bool)> = vec![("good", good.clone(), true)];
    let mut add = |name: &'static str, f: &dyn Fn(&mut Case), lib_accepts: bool| {
        let mut c = good.clone();
        f(&mut c);
        cases.push((name, c, lib_accepts));
    };
    add("no subkey", &|c| c.subkey = false, true);
    add("no authorization data", &|c| c.authdata = None, true);
    add("a start time", &|c| c.start = Some(now - 30), true);
    add("expired", &|c| c.end = now - 1000, false);
    add("not yet valid", &|c| c.start = Some(now + 1000), false);
    add("flagged invalid", &|c| c.flags = 0x41, false);
    add(
        "authenticator of another client",
        &|c| c.auth_client = vec!["mallory"],
        false,
    );
    add(
        "authenticator out of the skew",
        &|c| c.ctime = now - 1000,
        false,
    );
    add("ticket altered", &|c| c.flip_ticket = true, false);
    add(
        "ticket under another key",
        &|c| c.ticket_key = vec![1; 32],
        false,
    );
    for (n, (name, case, lib_accepts)) in cases.iter().enumerate() {
        let (rust, lib) = verdicts(case, n);
        if *lib_accepts {
            assert_eq!(lib.as_deref(), Ok("alice@TEST.REALM"), "{name}: libkrb5");
            assert_eq!(rust.as_deref(), Some("alice@TEST.REALM"), "{name}: Rust");
        } else {
            assert!(lib.is_err(), "{name}: libkrb5 accepted it");
            assert_eq!(rust, None, "{name}: Rust accepted it");
        }
    }
}

#[test]
fn unusual_requests_are_left_to_libkrb5() {
    let now = Context::new().unwrap().now();
    let good = Case::good(now);
    let mut cases = Vec::new();
    let mut add = |name: &'static str, f: &dyn Fn(&mut Case)| {
        let mut c = good.clone();
        f(&mut c);
        cases.push((name, c));
    };
    // libkrb5 accepts a ticket under our key whatever service it names
    // (the keytab decides); the Rust path wants our own name.
    add("ticket for another service name", &|c| {
        c.sname = vec!["host", "test.host"]
    });
    add("ticket with addresses", &|c| c.caddr = true);
    add("authorization data of another type", &|c| {
        c.authdata = Some(128)
    });
    add("mutual authentication not asked", &|c| c.mutual = false);
    add("a component that needs escaping", &|c| {
        c.client = vec!["a@b"];
        c.auth_client = vec!["a@b"];
    });
    for (n, (name, case)) in cases.iter().enumerate() {
        let (rust, _lib) = verdicts(case, 100 + n);
        assert_eq!(rust, None, "{name}");
    }
}

#[test]
fn libkrb5_reads_the_rust_ap_rep_and_rust_reads_libkrb5s() {
    let ctx = Context::new().unwrap();
    let now = ctx.now();
    let case = Case::good(now);
    let sp = Principal::parse(&ctx, SERVER).unwrap();
    let kt = keytab(&ctx, &case.service_key, 500);
    // The server's side in Rust; the AP-REP read by libkrb5 on a client
    // auth context holding the session key and the authenticator.
    let req = case.ap_req(now);
    let mut server = AuthContext::for_session(&ctx).unwrap();
    server.set_replay_cache(false, &sp).unwrap();
    server.rd_req(&req, &sp, &kt).unwrap();
    let rep = server.mk_rep().unwrap();
    // A client: the same ticket through our own AP-REQ, answered by
    // libkrb5 (rd_req + mk_rep) and by Rust, each read back.
    let mut c = creds(
        &ctx,
        "alice@TEST.REALM",
        SERVER,
        Fake {
            times: [now as i32, 0, (now + 3600) as i32, 0],
            flags: 0,
        },
    );
    // The ticket of this case, cut out of its AP-REQ.
    let ticket_der = ticket_of(&req);
    // SAFETY: the creds own malloc'd copies of the ticket and the key,
    // freed by krb5_free_cred_contents when `c` is dropped.
    unsafe {
        let t = libc::malloc(ticket_der.len()).cast::<u8>();
        ptr::copy_nonoverlapping(ticket_der.as_ptr(), t, ticket_der.len());
        c.raw.ticket = ffi::krb5_data {
            magic: 0,
            length: ticket_der.len() as u32,
            data: t.cast(),
        };
        let k = libc::malloc(32).cast::<u8>();
        ptr::copy_nonoverlapping(case.session_key.as_ptr(), k, 32);
        c.raw.keyblock = ffi::krb5_keyblock {
            magic: 0,
            enctype: AES256_SHA1,
            length: 32,
            contents: k,
        };
    }
    let (ca, sa) = (
        KrbAddr::Ip("127.0.0.1".parse().unwrap()),
        KrbAddr::Ip("127.0.0.2".parse().unwrap()),
    );
    for lib_server in [false, true] {
        let mut client = AuthContext::for_session(&ctx).unwrap();
        client.set_addrs(ca, sa).unwrap();
        let ours = client.mk_req_with(&mut c).unwrap();
        let kt = keytab(&ctx, &case.service_key, 600 + lib_server as usize);
        if lib_server {
            kt.libkrb5_only();
        }
        let mut server = AuthContext::for_session(&ctx).unwrap();
        server.set_addrs(sa, ca).unwrap();
        server.set_replay_cache(false, &sp).unwrap();
        let (who, mutual) = server.rd_req(&ours, &sp, &kt).unwrap();
        assert_eq!((who.as_str(), mutual), ("alice@TEST.REALM", true));
        let rep = server.mk_rep().unwrap();
        client.rd_rep(&rep).unwrap();
        // Both sides now agree on keys and sequence numbers.
        let msg = client.mk_priv_in_place(b"hello").unwrap();
        let mut msg = msg.to_vec();
        let r = server.rd_priv_in_place(&mut msg).unwrap();
        assert_eq!(&msg[r], b"hello", "libkrb5 server: {lib_server}");
        let back = server.mk_priv_in_place(b"world").unwrap();
        let mut back = back.to_vec();
        let r = client.rd_priv_in_place(&mut back).unwrap();
        assert_eq!(&back[r], b"world", "libkrb5 server: {lib_server}");
    }
    // The Rust AP-REP of the first server, read by a Rust client state
    // with the wrong time: refused.
    let wrong = super::ap_client::Sent::for_tests(
        AES256_SHA1,
        Zeroizing::new(case.session_key.clone()),
        gtime(now - 1),
        123_456,
    );
    assert!(super::ap_client::rd_rep(&wrong, &rep).is_err());
    let right = super::ap_client::Sent::for_tests(
        AES256_SHA1,
        Zeroizing::new(case.session_key.clone()),
        gtime(now),
        123_456,
    );
    let r = super::ap_client::rd_rep(&right, &rep).unwrap();
    assert!(r.subkey.is_none());
}

#[test]
fn the_client_without_libkrb5_talks_to_both_servers() {
    use super::plain_client::{PlainClient, PlainTicket};
    let ctx = Context::new().unwrap();
    let now = ctx.now();
    let case = Case::good(now);
    let sp = Principal::parse(&ctx, SERVER).unwrap();
    let req = case.ap_req(now);
    let ticket_der = ticket_of(&req);
    let comps: [&[u8]; 1] = [b"alice"];
    let t = PlainTicket {
        client: super::ap_client::ClientName {
            realm: b"TEST.REALM",
            name_type: 1,
            components: &comps,
        },
        ticket: &ticket_der,
        etype: AES256_SHA1,
        key: &case.session_key,
    };
    let (ca, sa) = (
        KrbAddr::Ip("127.0.0.1".parse().unwrap()),
        KrbAddr::Ip("127.0.0.2".parse().unwrap()),
    );
    for (n, lib_priv) in [(0usize, false), (1, true)] {
        let (mut client, ap_req) = PlainClient::start(&t, (now, 4242), ca, sa).unwrap();
        // The first request is sealed before the AP-REP, as the session
        // sends it with its AP-REQ.
        let first = client.seal(b"hello").unwrap();
        let kt = keytab(&ctx, &case.service_key, 700 + n);
        let mut server = AuthContext::for_session(&ctx).unwrap();
        server.set_addrs(sa, ca).unwrap();
        server.set_replay_cache(false, &sp).unwrap();
        if lib_priv {
            server.libkrb5_priv_only();
        }
        let (who, mutual) = server.rd_req(&ap_req, &sp, &kt).unwrap();
        assert_eq!((who.as_str(), mutual), ("alice@TEST.REALM", true));
        let rep = server.mk_rep().unwrap();
        if lib_priv {
            let got = server.rd_priv(&first).unwrap();
            assert_eq!(&got[..], b"hello");
        } else {
            let mut m = first.to_vec();
            let r = server.rd_priv_in_place(&mut m).unwrap();
            assert_eq!(&m[r], b"hello");
        }
        // Nothing is opened before the AP-REP.
        let back = if lib_priv {
            server.mk_priv(b"world").unwrap().to_vec()
        } else {
            server.mk_priv_in_place(b"world").unwrap().to_vec()
        };
        assert!(client.open(&back).is_err());
        client.rd_rep(&rep).unwrap();
        assert_eq!(&client.open(&back).unwrap()[..], b"world", "{lib_priv}");
        // The same message again: out of sequence.
        assert!(client.open(&back).is_err());
        // An altered one: refused.
        let mut bent = back.clone();
        let k = bent.len() - 3;
        bent[k] ^= 1;
        assert!(client.open(&bent).is_err());
    }
    // A reply from the wrong address is refused.
    let (mut client, ap_req) = PlainClient::start(&t, (now, 4242), ca, sa).unwrap();
    let kt = keytab(&ctx, &case.service_key, 710);
    let mut server = AuthContext::for_session(&ctx).unwrap();
    server
        .set_addrs(KrbAddr::Ip("127.0.0.9".parse().unwrap()), ca)
        .unwrap();
    server.set_replay_cache(false, &sp).unwrap();
    server.rd_req(&ap_req, &sp, &kt).unwrap();
    client.rd_rep(&server.mk_rep().unwrap()).unwrap();
    let back = server.mk_priv_in_place(b"world").unwrap().to_vec();
    assert!(client.open(&back).is_err());
}
