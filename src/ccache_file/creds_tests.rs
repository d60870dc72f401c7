//! Differential tests of [`super::read_creds`] and
//! [`super::encode_krb_cred`]: FILE ccaches built here field by field are
//! read by libkrb5 into `krb5_creds`, which libkrb5 stores in a fresh
//! FILE ccache; our reader must find in that file every field libkrb5
//! reports and the values built, and our KRB-CRED must be the bytes of
//! `krb5_mk_ncred` (`crate::krb5::encode_krb_cred`) over the same creds,
//! and be read back by `krb5_rd_cred`.

use super::krb_cred::{der, field, int, seq, Node};
use super::test_builder::{CcFile, Fields};
use super::*;
use crate::krb5::{self, Ccache, Context, Creds};
use std::path::Path;

/// A principal to write: name type, components, realm.
#[derive(Clone)]
struct Name(i32, Vec<&'static str>, &'static str);

fn name(t: i32, s: &'static str) -> Name {
    let (comps, realm) = s.rsplit_once('@').unwrap();
    Name(t, comps.split('/').collect(), realm)
}

/// A credential to write.
#[derive(Clone)]
struct Spec {
    client: Name,
    server: Name,
    enctype: u16,
    key: Vec<u8>,
    times: [u32; 4],
    is_skey: u8,
    flags: u32,
    addresses: Vec<(u16, Vec<u8>)>,
    authdata: Vec<(u16, Vec<u8>)>,
    ticket: Vec<u8>,
    second: Vec<u8>,
}

const NT_PRINCIPAL: i32 = 1;
const NT_SRV_INST: i32 = 2;
const NT_SRV_HST: i32 = 3;
const NT_ENTERPRISE: i32 = 10;
const NT_MS_PRINCIPAL: i32 = -128;

const AUTH: u32 = 1_764_000_000;
const END: u32 = 1_764_036_000;
const RENEW: u32 = 1_764_604_800;
const FLAGS: u32 = 0x40e1_0000; // forwardable, renewable, initial, pre-auth, ...

/// A Ticket in DER as MIT encodes it (what `krb5_mk_ncred` re-encodes
/// to the same bytes): `[APPLICATION 1] { [0] 5, [1] realm, [2] sname,
/// [3] EncryptedData { [0] etype, [1] kvno, [2] cipher } }`.
fn ticket(server: &Name, cipher: &[u8]) -> Vec<u8> {
    let names = server.1.iter().map(|c| Node::Bytes(0x1b, c.as_bytes()));
    let sname = seq(vec![
        field(0, int(server.0)),
        field(1, seq(names.collect())),
    ]);
    let enc = seq(vec![
        field(0, int(18)),
        field(1, int(3)),
        field(2, Node::Bytes(0x04, cipher)),
    ]);
    let body = seq(vec![
        field(0, int(5)),
        field(1, Node::Bytes(0x1b, server.2.as_bytes())),
        field(2, sname),
        field(3, enc),
    ]);
    der(&Node::Wrap(0x61, vec![body]))
}

/// A plain TGT-like credential of `client` for `server`.
fn spec(client: Name, server: Name, key: u8) -> Spec {
    let t = ticket(&server, &[key ^ 0x5a; 70]);
    Spec {
        client,
        server,
        enctype: 18,
        key: vec![key; 32],
        times: [AUTH, 0, END, 0],
        is_skey: 0,
        flags: FLAGS,
        addresses: vec![],
        authdata: vec![],
        ticket: t,
        second: vec![],
    }
}

/// Files of these tests, written from [`Name`]s and [`Spec`]s.
trait Build: Sized {
    fn new(v: u16, offset: Option<(i32, i32)>, default: &Name) -> Self;
    fn princ(&mut self, n: &Name);
    fn cred(self, s: &Spec) -> Self;
    fn creds(self, specs: &[Spec]) -> Self;
}

impl Build for CcFile {
    fn new(v: u16, offset: Option<(i32, i32)>, default: &Name) -> Self {
        let mut f = CcFile::header(v, offset);
        f.princ(default);
        f
    }

    fn princ(&mut self, n: &Name) {
        self.principal(n.0, &n.1, n.2);
    }

    fn cred(mut self, s: &Spec) -> Self {
        self.princ(&s.client);
        self.princ(&s.server);
        self.fields(&Fields {
            enctype: s.enctype,
            key: &s.key,
            times: s.times,
            is_skey: s.is_skey,
            flags: s.flags,
            addresses: &s.addresses,
            authdata: &s.authdata,
            ticket: &s.ticket,
            second: &s.second,
        });
        self
    }

    fn creds(self, specs: &[Spec]) -> Self {
        specs.iter().fold(self, Build::cred)
    }
}

/// What libkrb5 reads of `bytes` (configuration entries left out, as
/// `Ccache::creds` does), and the FILE ccache it writes of them.
fn libkrb5<'c>(ctx: &'c Context, bytes: &[u8], dir: &Path) -> (Vec<Creds<'c>>, Vec<u8>) {
    let (src, out) = (dir.join("src"), dir.join("out"));
    std::fs::write(&src, bytes).unwrap();
    let cc = Ccache::resolve(ctx, &format!("FILE:{}", src.display())).unwrap();
    let mut creds = cc.creds().unwrap();
    let _ = std::fs::remove_file(&out);
    let copy = Ccache::resolve(ctx, &format!("FILE:{}", out.display())).unwrap();
    copy.initialize(&cc.principal().unwrap()).unwrap();
    for c in &mut creds {
        copy.store(c).unwrap();
    }
    (creds, std::fs::read(&out).unwrap())
}

fn assert_name(p: &Principal<'_>, n: &Name, what: &str) {
    let comps: Vec<&[u8]> = n.1.iter().map(|c| c.as_bytes()).collect();
    assert!(p.is(n.2.as_bytes(), &comps), "{what}: {p:?}");
    assert_eq!(p.name_type, n.0, "{what}: name type");
}

/// Every field of `c` is what `s` wrote (`v`: the format it was read in).
fn assert_spec(c: &FileCred<'_>, s: &Spec, v: u16, what: &str) {
    let nt = |n: &Name| Name(if v == 1 { 0 } else { n.0 }, n.1.clone(), n.2);
    assert_name(&c.client, &nt(&s.client), what);
    assert_name(&c.server, &nt(&s.server), what);
    assert_eq!(c.key_enctype, i32::from(s.enctype as i16), "{what}");
    assert!(c.key == s.key, "{what}: key");
    let times = [c.authtime, c.starttime, c.endtime, c.renew_till];
    assert_eq!(times, s.times, "{what}");
    assert_eq!(c.is_skey, s.is_skey != 0, "{what}");
    assert_eq!(c.flags, s.flags, "{what}");
    let pairs = |l: &[(u16, Vec<u8>)]| -> Vec<(u16, Vec<u8>)> { l.to_vec() };
    let ours = |l: &[(u16, &[u8])]| -> Vec<(u16, Vec<u8>)> {
        l.iter().map(|&(t, d)| (t, d.to_vec())).collect()
    };
    assert_eq!(ours(&c.addresses), pairs(&s.addresses), "{what}");
    assert_eq!(ours(&c.authdata), pairs(&s.authdata), "{what}");
    assert_eq!(c.ticket, &s.ticket[..], "{what}");
    assert_eq!(c.second_ticket, &s.second[..], "{what}");
}

fn strings(p: &Principal<'_>) -> (String, Vec<String>) {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (s(p.realm), p.components.iter().map(|c| s(c)).collect())
}

/// `c` agrees with what libkrb5 reports of `k`.
fn assert_libkrb5(c: &FileCred<'_>, k: &Creds<'_>, what: &str) {
    let kp = |p: krb5::Principal<'_>| (p.realm(), p.components());
    assert_eq!(
        strings(&c.client),
        kp(k.client_principal().unwrap()),
        "{what}"
    );
    assert_eq!(
        strings(&c.server),
        kp(k.server_principal().unwrap()),
        "{what}"
    );
    let start = if c.starttime != 0 {
        c.starttime
    } else {
        c.authtime
    };
    assert_eq!(k.starttime(), i64::from(start), "{what}: start");
    assert_eq!(k.endtime(), i64::from(c.endtime), "{what}: end");
    assert_eq!(k.renew_till(), i64::from(c.renew_till), "{what}: renew");
    assert_eq!(k.flags() as u32, c.flags, "{what}: flags");
    assert_eq!(k.has_addresses(), !c.addresses.is_empty(), "{what}");
    assert_eq!(k.ticket(), c.ticket, "{what}: ticket");
}

/// The time stamp (seconds, usec) at the end of an unencrypted KRB-CRED
/// made by libkrb5: `[2] KerberosTime, [3] INTEGER` closing the
/// EncKrbCredPart, itself the end of the message.
fn stamp_of(der: &[u8]) -> (u32, i32) {
    for n in 1..=4usize {
        // [2] { GeneralizedTime }: 2 + 2 + 15 bytes.
        let Some(at) = der.len().checked_sub(4 + n + 19) else {
            continue;
        };
        let (t, u) = (&der[at..at + 19], &der[at + 19..]);
        if t[..4] == [0xa2, 0x11, 0x18, 0x0f] && u[..4] == [0xa3, 2 + n as u8, 0x02, n as u8] {
            let s = std::str::from_utf8(&t[4..]).unwrap();
            let secs = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%SZ")
                .unwrap()
                .and_utc()
                .timestamp();
            let neg = u[4] & 0x80 != 0;
            let usec = u[4..]
                .iter()
                .fold(if neg { -1i32 } else { 0 }, |v, b| (v << 8) | i32::from(*b));
            return (secs as u32, usec);
        }
    }
    panic!("no time stamp at the end of {der:02x?}");
}

/// Our KRB-CRED of `ours` is libkrb5's of `theirs` (given its time
/// stamp, which is its clock's), and libkrb5 reads it back into the same
/// credentials.
fn assert_krb_cred(ctx: &Context, ours: &[&FileCred<'_>], theirs: &mut [Creds<'_>], what: &str) {
    let mut refs: Vec<&mut Creds<'_>> = theirs.iter_mut().collect();
    let lib = krb5::encode_krb_cred(ctx, &mut refs).unwrap();
    let stamp = stamp_of(&lib);
    // libkrb5's clock: the system's, plus a KDC offset of a few seconds.
    let now = chrono::Utc::now().timestamp();
    assert!((i64::from(stamp.0) - now).abs() < 30, "{what}: {stamp:?}");
    assert!((0..=1_000_000).contains(&stamp.1), "{what}: {stamp:?}");
    let mine = encode_krb_cred_at(ours, stamp);
    if *mine != *lib {
        let at = mine
            .iter()
            .zip(lib.iter())
            .take_while(|(a, b)| a == b)
            .count();
        let around = |v: &[u8]| v[at.saturating_sub(40)..(at + 40).min(v.len())].to_vec();
        panic!(
            "{what}: KRB-CRED differs at byte {at} (lengths {} and {})\nours    {:02x?}\nlibkrb5 {:02x?}",
            mine.len(),
            lib.len(),
            around(&mine),
            around(&lib)
        );
    }
    let mut back = krb5::decode_krb_cred(ctx, &mine).unwrap();
    assert_eq!(back.len(), ours.len(), "{what}");
    for (c, k) in ours.iter().zip(&back) {
        assert_libkrb5(c, k, what);
    }
    let mut refs: Vec<&mut Creds<'_>> = back.iter_mut().collect();
    let again = krb5::encode_krb_cred(ctx, &mut refs).unwrap();
    let mine = encode_krb_cred_at(ours, stamp_of(&again));
    assert!(*again == *mine, "{what}: decoded and encoded again");
    // Stamped with the system clock, read back too.
    let now = encode_krb_cred(ours);
    assert_eq!(krb5::decode_krb_cred(ctx, &now).unwrap().len(), ours.len());
    assert_eq!(krb5::compare_credentials(&now, &lib), Some(true), "{what}");
}

/// The whole check of one file: read it, have libkrb5 read and rewrite
/// it, read the rewrite; everything agrees, for every credential alone,
/// the TGTs and all of them.
fn check(ctx: &Context, dir: &Path, f: &CcFile, specs: &[Spec], what: &str) {
    let direct = read_creds(&f.out).unwrap();
    assert_eq!(direct.version, f.v, "{what}");
    assert_eq!(direct.creds.len(), specs.len(), "{what}");
    for (c, s) in direct.creds.iter().zip(specs) {
        assert_spec(c, s, f.v, what);
    }
    let (mut theirs, rewritten) = libkrb5(ctx, &f.out, dir);
    let cc = read_creds(&rewritten).unwrap();
    assert_eq!(cc.version, 4, "{what}");
    assert_eq!(cc.time_offset, direct.time_offset, "{what}");
    assert_eq!(cc.default, direct.default, "{what}");
    let kept: Vec<&Spec> = specs
        .iter()
        .filter(|s| s.server.2 != "X-CACHECONF:")
        .collect();
    assert_eq!(cc.creds.len(), kept.len(), "{what}");
    assert_eq!(theirs.len(), kept.len(), "{what}");
    for ((c, s), k) in cc.creds.iter().zip(kept).zip(&theirs) {
        assert_spec(c, s, if f.v == 1 { 1 } else { 4 }, what);
        assert_libkrb5(c, k, what);
    }
    // Each alone: libkrb5 re-reads its own file for a fresh creds list.
    for i in 0..cc.creds.len() {
        let (mut again, _) = libkrb5(ctx, &rewritten, dir);
        let mut one = vec![again.swap_remove(i)];
        assert_krb_cred(ctx, &[&cc.creds[i]], &mut one, &format!("{what}: #{i}"));
    }
    let all: Vec<&FileCred<'_>> = cc.creds.iter().collect();
    assert_krb_cred(ctx, &all, &mut theirs, &format!("{what}: all"));
}

fn me() -> Name {
    name(NT_PRINCIPAL, "bob@A.ORG")
}

fn local_tgt() -> Spec {
    spec(me(), name(NT_SRV_INST, "krbtgt/A.ORG@A.ORG"), 1)
}

/// A cross-realm TGT with a start time, renewable, address-bound, with
/// authorization data.
fn cross_tgt() -> Spec {
    let mut s = spec(me(), name(NT_SRV_INST, "krbtgt/B.ORG@A.ORG"), 2);
    s.times = [AUTH, AUTH + 60, END, RENEW];
    s.addresses = vec![(2, vec![192, 0, 2, 7]), (24, vec![0xfe; 16])];
    s.authdata = vec![(1, b"if-relevant".to_vec()), (0xff80, b"neg".to_vec())];
    s
}

#[test]
fn one_and_two_tgts_in_every_format() {
    let ctx = Context::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for v in 1..=4 {
        let one = [local_tgt()];
        let f = CcFile::new(v, None, &me()).creds(&one);
        check(&ctx, dir.path(), &f, &one, &format!("v{v} one"));
        let two = [local_tgt(), cross_tgt()];
        let f = CcFile::new(v, Some((-3, 250_000)), &me()).creds(&two);
        check(&ctx, dir.path(), &f, &two, &format!("v{v} two"));
        let cc = read_creds(&f.out).unwrap();
        let (l, x) = cc.tgts();
        assert_spec(l.unwrap(), &two[0], v, "local");
        assert_spec(x.unwrap(), &two[1], v, "cross");
        let expect = if v == 4 { Some((-3, 250_000)) } else { None };
        assert_eq!(cc.time_offset, expect);
    }
}

#[test]
fn times_flags_keys_and_name_types() {
    let ctx = Context::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut specs = vec![];
    // starttime and renew-till, each 0 or not; flags 0; times past 2038
    // and at the end of the unsigned range.
    for (i, times) in [
        [AUTH, 0, END, 0],
        [AUTH, AUTH + 1, END, 0],
        [AUTH, 0, END, RENEW],
        [2_208_988_800, 2_208_988_801, 2_208_999_999, u32::MAX],
        [1, 0, 2, 0],
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = spec(me(), name(NT_SRV_HST, "host/n1.a.org@A.ORG"), i as u8);
        s.times = times;
        s.flags = [FLAGS, 0, 1, 0xffff_ffff, 0x0000_0100][i];
        specs.push(s);
    }
    // Name types: unknown, enterprise, MS principal (negative), a
    // principal of one and of three components; other key sizes and
    // enctypes, an enctype beyond 15 bits, an empty key; is_skey and a
    // second ticket.
    let mut s = spec(
        name(NT_ENTERPRISE, "bob\\@a.org@A.ORG"),
        name(0, "HTTP/www.a.org/extra@A.ORG"),
        7,
    );
    s.enctype = 23;
    s.key = vec![7; 16];
    specs.push(s);
    let mut s = spec(
        name(NT_MS_PRINCIPAL, "BOB@A.ORG"),
        name(NT_PRINCIPAL, "svc@B.ORG"),
        8,
    );
    s.enctype = 0xff80;
    s.key = vec![];
    s.is_skey = 1;
    s.second = ticket(&name(NT_SRV_INST, "krbtgt/A.ORG@A.ORG"), b"2nd");
    specs.push(s);
    // A single address; address types above 15 bits.
    let mut s = spec(me(), name(NT_SRV_INST, "krbtgt/C.ORG@A.ORG"), 9);
    s.addresses = vec![(0x8003, vec![10, 1, 2, 3])];
    specs.push(s);
    // A long ticket (long-form DER lengths everywhere above it).
    let mut s = spec(me(), name(NT_SRV_HST, "nfs/fs.a.org@A.ORG"), 10);
    s.ticket = ticket(&s.server, &[0xab; 70_000]);
    specs.push(s);
    for v in [4, 1] {
        let f = CcFile::new(v, None, &me()).creds(&specs);
        check(&ctx, dir.path(), &f, &specs, &format!("v{v} fields"));
    }
}

#[test]
fn tgts_are_chosen_as_extract_with_does() {
    let tgt = |end: u32, key: u8| {
        let mut s = local_tgt();
        s.times[2] = end;
        s.key = vec![key; 32];
        s
    };
    let cross = |realm: &'static str, key: u8| {
        let mut s = cross_tgt();
        s.server = Name(NT_SRV_INST, vec!["krbtgt", realm], "A.ORG");
        s.key = vec![key; 32];
        s
    };
    let foreign = spec(me(), name(NT_SRV_INST, "krbtgt/A.ORG@B.ORG"), 30);
    let service = spec(me(), name(NT_SRV_HST, "host/n@A.ORG"), 31);
    let f = CcFile::new(4, None, &me()).creds(&[
        service,
        cross("B.ORG", 1),
        tgt(END, 2),
        foreign,
        cross("C.ORG", 3),
        tgt(END - 10, 4),
    ]);
    let cc = read_creds(&f.out).unwrap();
    assert_eq!(cc.creds.len(), 6);
    let (l, x) = cc.tgts();
    assert_eq!(l.unwrap().key, &[4; 32], "the last local TGT");
    assert_eq!(x.unwrap().key, &[1; 32], "the first cross-realm TGT");
    let t = tgt_endtime_of(&f.out).unwrap();
    assert_eq!(t.endtime, Some(i64::from(END - 10)));
    let none = CcFile::new(4, None, &me()).creds(&[cross("B.ORG", 1)]);
    let cc = read_creds(&none.out).unwrap();
    assert!(matches!(cc.tgts(), (None, Some(_))));
    let p = &cc.creds[0].server;
    assert!(p.is(b"A.ORG", &[b"krbtgt", b"B.ORG"]));
    assert!(!p.is(b"A.ORG", &[b"krbtgt"]));
    assert!(!p.is(b"B.ORG", &[b"krbtgt", b"B.ORG"]));
    assert_eq!(p.tgt_realms(), Some((&b"B.ORG"[..], &b"A.ORG"[..])));
}

#[test]
fn removed_and_configuration_entries() {
    let ctx = Context::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // krb5_cc_remove_cred marks an entry with auth time -1 and end time 0:
    // libkrb5 (>= 1.18) and read_creds skip it.
    let mut removed = cross_tgt();
    removed.times = [u32::MAX, AUTH, 0, 0];
    let mut conf = spec(
        me(),
        Name(
            0,
            vec!["krb5_ccache_conf_data", "pa_type", "krbtgt/A.ORG@A.ORG"],
            "X-CACHECONF:",
        ),
        0,
    );
    conf.times = [0; 4];
    conf.flags = 0;
    conf.key = vec![];
    conf.enctype = 0;
    conf.ticket = b"2".to_vec();
    let f = CcFile::new(4, None, &me()).creds(&[conf.clone(), removed, local_tgt(), cross_tgt()]);
    let cc = read_creds(&f.out).unwrap();
    assert_eq!(cc.creds.len(), 3, "the removed entry is skipped");
    assert!(cc.creds[0].is_config_entry());
    assert!(!cc.creds[1].is_config_entry());
    check(
        &ctx,
        dir.path(),
        &f,
        &[conf, local_tgt(), cross_tgt()],
        "removed",
    );
    // Any non-zero auth time with end time 0 is a removed entry (Heimdal,
    // MIT >= 1.22), as tgt_endtime_of has it.
    let mut heimdal = local_tgt();
    heimdal.times = [AUTH, 0, 0, 0];
    let f = CcFile::new(4, None, &me()).creds(&[heimdal, cross_tgt()]);
    let cc = read_creds(&f.out).unwrap();
    assert_eq!(cc.creds.len(), 1);
    assert_spec(&cc.creds[0], &cross_tgt(), 4, "after a removed entry");
    // End time 0 with auth time 0 is kept.
    let mut zero = local_tgt();
    zero.times = [0; 4];
    let f = CcFile::new(4, None, &me()).creds(&[zero]);
    assert_eq!(read_creds(&f.out).unwrap().creds.len(), 1);
}

#[test]
fn a_cut_credential_ends_the_list_as_in_libkrb5() {
    let ctx = Context::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    let specs = [local_tgt(), cross_tgt()];
    let f = CcFile::new(4, Some((1, 2)), &me()).creds(&specs);
    let head = CcFile::new(4, Some((1, 2)), &me()).out.len();
    let first = CcFile::new(4, Some((1, 2)), &me())
        .cred(&specs[0])
        .out
        .len();
    for n in 0..f.out.len() {
        let r = read_creds(&f.out[..n]);
        std::fs::write(&p, &f.out[..n]).unwrap();
        let cc = Ccache::resolve(&ctx, &format!("FILE:{}", p.display())).unwrap();
        let lib = cc.principal().and_then(|_| cc.creds());
        if n < head {
            assert!(matches!(r, Err(CcacheFileError::Truncated)), "{n}: {r:?}");
            assert!(lib.is_err(), "{n}");
            continue;
        }
        let r = r.unwrap();
        let want = usize::from(n >= first);
        assert_eq!(r.creds.len(), want, "{n}");
        assert_eq!(lib.unwrap().len(), want, "{n}: libkrb5");
        if want == 1 {
            assert_spec(&r.creds[0], &specs[0], 4, "before the cut");
        }
    }
    assert_eq!(read_creds(&f.out).unwrap().creds.len(), 2);
}

#[test]
fn garbage_lengths_and_counts_are_bounded() {
    let ctx = Context::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    let specs = [local_tgt(), cross_tgt()];
    let f = CcFile::new(4, None, &me()).creds(&specs);
    let lib = |bytes: &[u8]| -> Result<usize, String> {
        std::fs::write(&p, bytes).unwrap();
        let cc = Ccache::resolve(&ctx, &format!("FILE:{}", p.display())).unwrap();
        let e = |e: krb5::Error| e.to_string();
        cc.principal().map_err(e)?;
        cc.creds().map(|c| c.len()).map_err(e)
    };
    // Every length field (realm, components, key, addresses, authdata,
    // tickets), larger than the file: an error, as libkrb5's.
    assert!(f.lengths.len() > 20);
    for (i, &at) in f.lengths.iter().enumerate() {
        for bad in [u32::MAX, f.out.len() as u32 + 1] {
            let mut g = f.out.clone();
            g[at..at + 4].copy_from_slice(&bad.to_be_bytes());
            let e = read_creds(&g).unwrap_err();
            assert!(matches!(e, CcacheFileError::Length(..)), "length {i}: {e}");
            assert!(tgt_endtime_of(&g).is_err());
            assert!(lib(&g).is_err(), "length {i}: libkrb5 reads it");
        }
    }
    // Every count (components, addresses, authdata), huge: read up to the
    // end of the file, never trusted to size anything; the same outcome
    // as libkrb5 (an error in the default principal, else the list ends
    // or a length is found wrong).
    assert!(f.counts.len() > 8);
    for (i, &at) in f.counts.iter().enumerate() {
        for bad in [u32::MAX, 0x7fff_ffff, 0x0100_0000] {
            let mut g = f.out.clone();
            g[at..at + 4].copy_from_slice(&bad.to_be_bytes());
            let ours = read_creds(&g).map(|c| c.creds.len());
            match (&ours, lib(&g)) {
                (Ok(a), Ok(b)) => assert_eq!(*a, b, "count {i} = {bad:#x}"),
                (Err(_), Err(_)) => {}
                (_, theirs) => panic!("count {i} = {bad:#x}: ours {ours:?}, libkrb5 {theirs:?}"),
            }
        }
    }
    // Random bytes after a valid header: no panic; what is read encodes.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..3000 {
        let mut g = f.out.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % g.len() as u64) as usize;
            g[at] = next() as u8;
        }
        if i % 3 == 0 {
            g.truncate((next() % g.len() as u64) as usize);
        }
        if let Ok(cc) = read_creds(&g) {
            let all: Vec<&FileCred<'_>> = cc.creds.iter().collect();
            let _ = encode_krb_cred(&all);
        }
    }
}

#[test]
fn an_empty_list_still_encodes() {
    // libkrb5 refuses to encode no credential; this writes the envelope.
    let der = encode_krb_cred(&[]);
    assert_eq!(der[0], 0x76);
    assert!(krb5::compare_credentials(&der, &der).is_none());
}

#[test]
fn the_time_stamp_is_libkrb5s_clock() {
    use std::time::{Duration, UNIX_EPOCH};
    let at = |s: u64, us: u64| UNIX_EPOCH + Duration::from_micros(s * 1_000_000 + us);
    assert_eq!(kdc_time_of_day(at(1000, 5), None), (1000, 5));
    assert_eq!(kdc_time_of_day(at(1000, 5), Some((-3, 7))), (997, 12));
    assert_eq!(kdc_time_of_day(at(1000, 999_999), Some((2, 2))), (1003, 1));
    // libkrb5 carries above 1 000 000 only.
    assert_eq!(
        kdc_time_of_day(at(1000, 999_999), Some((0, 1))),
        (1000, 1_000_000)
    );
    assert_eq!(kdc_time_of_day(at(1000, 5), Some((0, -6))), (999, 999_999));
    // The system clock, no offset.
    let f = CcFile::new(4, None, &me()).creds(&[local_tgt()]);
    let cc = read_creds(&f.out).unwrap();
    let before = chrono::Utc::now().timestamp() as u32;
    let (s, us) = stamp_of(&encode_krb_cred(&[&cc.creds[0]]));
    let after = chrono::Utc::now().timestamp() as u32;
    assert!(before <= s && s <= after && (0..1_000_000).contains(&us));
    // A time stamp of 0 is left out with its usec, as MIT's encoder does.
    let bare = encode_krb_cred_at(&[&cc.creds[0]], (0, 5));
    let full = encode_krb_cred_at(&[&cc.creds[0]], (1, 5));
    assert_eq!(full.len(), bare.len() + 19 + 5);
}
