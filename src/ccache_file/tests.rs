//! Differential tests: FILE ccaches built byte by byte here (checked to be
//! what libkrb5 itself writes), read by [`super::tgt_endtime_of`] and by
//! libkrb5 with the algorithm of `spank/remote/credential.rs`; the two
//! must agree, on valid files, truncations and mutated bytes.

use super::test_builder::{CcFile, Fields};
use super::*;
use crate::krb5::{Ccache, Context};
use std::path::Path;

const END: u32 = 0x7A5B_3C2D; // 2035, four non-zero bytes
const LATER: u32 = 0x7B6C_4D3E;
const PAST: u32 = 0x5A4B_3C2D; // 2017
const AUTH: u32 = 0x5C1D_2E3F;

/// The principals and credentials of these tests, by name.
trait Build {
    fn new(v: u16, offset: Option<(i32, i32)>, default: &str) -> Self;
    fn parts(&mut self, comps: &[&str], realm: &str);
    fn princ(&mut self, name: &str);
    fn body(&mut self, times: [u32; 4], key: &[u8], ticket: &[u8]);
    fn cred(self, client: &str, server: &str, end: u32) -> Self;
    fn config(self, client: &str, key: &str, value: &[u8]) -> Self;
}

impl Build for CcFile {
    fn new(v: u16, offset: Option<(i32, i32)>, default: &str) -> Self {
        let mut c = CcFile::header(v, offset);
        c.princ(default);
        c
    }

    /// A principal of name type 2 if it has two components, else 1.
    fn parts(&mut self, comps: &[&str], realm: &str) {
        self.principal(if comps.len() == 2 { 2 } else { 1 }, comps, realm);
    }

    fn princ(&mut self, name: &str) {
        let (comps, realm) = name.rsplit_once('@').unwrap();
        self.parts(&comps.split('/').collect::<Vec<_>>(), realm);
    }

    /// The rest of a credential after its server: with a key, an
    /// address and authdata, or (empty key) none of them.
    fn body(&mut self, times: [u32; 4], key: &[u8], ticket: &[u8]) {
        let n = usize::from(!key.is_empty());
        self.fields(&Fields {
            enctype: if key.is_empty() { 0 } else { 18 },
            key,
            times,
            is_skey: 0,
            flags: if key.is_empty() { 0 } else { 0x40e1_0000 },
            addresses: &vec![(2, vec![127, 0, 0, 1]); n],
            authdata: &vec![(1, b"ad".to_vec()); n],
            ticket,
            second: b"",
        });
    }

    fn cred(mut self, client: &str, server: &str, end: u32) -> Self {
        self.princ(client);
        self.princ(server);
        self.body(
            [AUTH, AUTH + 1, end, end + 100],
            &[0x5A; 32],
            b"ticket bytes",
        );
        self
    }

    /// A configuration entry, as krb5_cc_set_config writes it.
    fn config(mut self, client: &str, key: &str, value: &[u8]) -> Self {
        self.princ(client);
        let tgt = format!("krbtgt/{0}@{0}", client.rsplit_once('@').unwrap().1);
        self.parts(&["krb5_ccache_conf_data", key, &tgt], "X-CACHECONF:");
        self.body([0; 4], &[], value);
        self
    }
}

/// What libkrb5 reports for `bytes`, with `tgt_endtime` of
/// credential.rs, and its clock after reading (it applies the offset).
fn libkrb5(bytes: &[u8], path: &Path) -> Result<(Option<i64>, i64), String> {
    std::fs::write(path, bytes).unwrap();
    let ctx = Context::new().unwrap();
    let err = |e: crate::krb5::Error| e.to_string();
    let cc = Ccache::resolve(&ctx, &format!("FILE:{}", path.display())).map_err(err)?;
    let realm = cc.principal().map_err(err)?.realm();
    let (mut local, mut cross) = (None, None);
    for c in cc.creds().map_err(err)? {
        match c.tgt_realms() {
            Some((target, issuer)) if issuer == realm && target == realm => {
                local = Some(c.endtime())
            }
            Some((_, issuer)) if issuer == realm && cross.is_none() => cross = Some(c.endtime()),
            _ => {}
        }
    }
    Ok((local.map(|l| cross.map_or(l, |x: i64| x.min(l))), ctx.now()))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Both readers agree on `bytes` (same end time and clock, or both
/// fail); returns ours.
fn agree(bytes: &[u8], path: &Path, what: &str) -> Result<TgtEnd, CcacheFileError> {
    let before = unix_now();
    let theirs = libkrb5(bytes, path);
    let after = unix_now();
    let ours = tgt_endtime_of(bytes);
    match (&ours, &theirs) {
        (Ok(o), Ok((end, now))) => {
            assert_eq!(o.endtime, *end, "{what}: end time");
            // time(), libkrb5's clock, is coarse: up to a tick behind.
            let (lo, hi) = (o.kdc_now(before - 1), o.kdc_now(after));
            assert!(
                lo <= *now && *now <= hi,
                "{what}: {now} not in [{lo}, {hi}]"
            );
        }
        (Err(_), Err(_)) => {}
        _ => panic!("{what}: ours {ours:?}, libkrb5 {theirs:?}"),
    }
    ours
}

fn end_of(c: &CcFile, path: &Path, what: &str) -> Option<i64> {
    agree(&c.out, path, what).unwrap().endtime
}

const ME: &str = "bob@A.ORG";
const TGT: &str = "krbtgt/A.ORG@A.ORG";
const CROSS: &str = "krbtgt/B.ORG@A.ORG";

#[test]
fn tgt_end_times_agree_with_libkrb5() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    for v in 1..=4 {
        let new = || CcFile::new(v, Some((-3, 250_000)), ME);
        let local = new().cred(ME, TGT, END);
        assert_eq!(end_of(&local, &p, "local"), Some(i64::from(END)));
        let both = new().cred(ME, TGT, LATER).cred(ME, CROSS, END);
        assert_eq!(end_of(&both, &p, "local+cross"), Some(i64::from(END)));
        let cross_first = new().cred(ME, CROSS, LATER).cred(ME, TGT, END);
        assert_eq!(
            end_of(&cross_first, &p, "cross first"),
            Some(i64::from(END))
        );
        let two_cross = new().cred(ME, TGT, LATER + 9).cred(ME, CROSS, LATER).cred(
            ME,
            "krbtgt/C.ORG@A.ORG",
            END,
        );
        assert_eq!(
            end_of(&two_cross, &p, "first cross"),
            Some(i64::from(LATER))
        );
        let two = new().cred(ME, TGT, LATER).cred(ME, TGT, END);
        assert_eq!(end_of(&two, &p, "two local: last"), Some(i64::from(END)));
        let expired = new().cred(ME, TGT, PAST);
        let e = agree(&expired.out, &p, "expired").unwrap();
        assert_eq!(e.endtime, Some(i64::from(PAST)));
        assert!(e.endtime.unwrap() < e.kdc_now(unix_now()));
        let service = new().cred(ME, "host/n1.a.org@A.ORG", END);
        assert_eq!(end_of(&service, &p, "service only"), None);
        let foreign = new()
            .cred(ME, "krbtgt/B.ORG@B.ORG", END)
            .cred(ME, CROSS, END);
        assert_eq!(end_of(&foreign, &p, "foreign TGTs only"), None);
        let three = new().cred(ME, "krbtgt/A.ORG/x@A.ORG", END);
        assert_eq!(end_of(&three, &p, "3 components"), None);
        let conf =
            new()
                .config(ME, "pa_type", b"2")
                .cred(ME, TGT, END)
                .config(ME, "fast_avail", b"yes");
        assert_eq!(end_of(&conf, &p, "config entries"), Some(i64::from(END)));
        assert_eq!(end_of(&new(), &p, "empty"), None);
    }
}

#[test]
fn headers_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    let v3 = CcFile::new(3, None, ME).cred(ME, TGT, END);
    assert_eq!(agree(&v3.out, &p, "v3").unwrap().time_offset, None);
    assert_eq!(v3.out[..2], [5, 3]);
    let v4 = CcFile::new(4, Some((86_400, 999_999)), ME).cred(ME, TGT, END);
    let t = agree(&v4.out, &p, "v4 offset").unwrap();
    assert_eq!(t.time_offset, Some((86_400, 999_999)));
    assert_eq!(t.kdc_now(1_000), 87_400);
    assert_eq!(
        agree(&CcFile::new(4, None, ME).out, &p, "no tag")
            .unwrap()
            .time_offset,
        None
    );
    // An unknown tag is skipped, a malformed time offset is an error.
    let body = &CcFile::new(4, None, ME).cred(ME, TGT, END).out[4..];
    let mut unknown = vec![5, 4, 0, 6, 0, 9, 0, 2, 0xAB, 0xCD];
    unknown.extend_from_slice(body);
    assert_eq!(
        agree(&unknown, &p, "unknown tag").unwrap().endtime,
        Some(i64::from(END))
    );
    let mut bad = vec![5, 4, 0, 8, 0, 1, 0, 4, 0, 0, 0, 1];
    bad.extend_from_slice(body);
    assert!(matches!(
        agree(&bad, &p, "offset length"),
        Err(CcacheFileError::Format(_))
    ));
    for version in [[5, 5], [5, 0], [4, 4], [0x0b, 0xad]] {
        let mut f = v3.out.clone();
        f[..2].copy_from_slice(&version);
        let e = agree(&f, &p, "version").unwrap_err();
        assert!(matches!(e, CcacheFileError::BadVersion(_)), "{e}");
    }
}

#[test]
fn libkrb5_writes_what_the_tests_build() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    let built = CcFile::new(4, Some((-7, 123_456)), ME)
        .cred(ME, TGT, END)
        .cred(ME, CROSS, LATER)
        .cred(ME, "host/n1.a.org@A.ORG", PAST);
    std::fs::write(&src, &built.out).unwrap();
    // Reading the file sets the context's time offset; libkrb5 writes it.
    let ctx = Context::new().unwrap();
    let cc = Ccache::resolve(&ctx, &format!("FILE:{}", src.display())).unwrap();
    let copy = Ccache::resolve(&ctx, &format!("FILE:{}", out.display())).unwrap();
    copy.initialize(&cc.principal().unwrap()).unwrap();
    let mut creds = cc.creds().unwrap();
    assert_eq!(creds.len(), 3);
    for c in &mut creds {
        copy.store(c).unwrap();
    }
    assert!(std::fs::read(&out).unwrap() == built.out, "bytes differ");
}

#[test]
fn removed_entries_are_skipped_as_libkrb5_does() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    // krb5_cc_remove_cred rewrites an entry in place with auth time -1
    // and end time 0 (MIT >= 1.18 skips it); a removed first cross-realm
    // TGT must not make the result 0.
    let mut c = CcFile::new(4, None, ME).cred(ME, TGT, LATER);
    c.princ(ME);
    c.princ(CROSS);
    c.body([u32::MAX, AUTH, 0, 0], &[1; 16], b"t");
    let c = c.cred(ME, CROSS, END);
    assert_eq!(end_of(&c, &p, "removed cross"), Some(i64::from(END)));
    // A removed local TGT after a valid one.
    let mut c = CcFile::new(4, None, ME).cred(ME, TGT, END);
    c.princ(ME);
    c.princ(TGT);
    c.body([u32::MAX, AUTH, 0, 0], &[1; 16], b"t");
    assert_eq!(end_of(&c, &p, "removed local"), Some(i64::from(END)));
}

#[test]
fn removed_entries_of_any_auth_time_are_skipped() {
    // Heimdal marks a removed entry with end time 0 only (MIT >= 1.22
    // skips it too; 1.18 to 1.21 only skip auth time -1).
    let mut c = CcFile::new(4, None, ME).cred(ME, TGT, END);
    c.princ(ME);
    c.princ(TGT);
    c.body([AUTH, 0, 0, 0], &[1; 16], b"t");
    assert_eq!(
        tgt_endtime_of(&c.out).unwrap().endtime,
        Some(i64::from(END))
    );
    let c = c.cred(ME, TGT, LATER);
    assert_eq!(
        tgt_endtime_of(&c.out).unwrap().endtime,
        Some(i64::from(LATER))
    );
}

#[test]
fn truncations_agree_with_libkrb5() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    let full = CcFile::new(4, Some((1, 2)), ME)
        .cred(ME, TGT, LATER)
        .config(ME, "pa_type", b"2")
        .cred(ME, CROSS, END);
    let header_and_default = CcFile::new(4, Some((1, 2)), ME).out.len();
    for n in 0..full.out.len() {
        let r = agree(&full.out[..n], &p, &format!("first {n} bytes"));
        if n < header_and_default {
            assert!(matches!(r, Err(CcacheFileError::Truncated)), "{n}: {r:?}");
        } else {
            assert!(r.is_ok(), "{n}: a cut credential ends the list");
        }
    }
}

#[test]
fn huge_lengths_are_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    let c = CcFile::new(4, None, ME).cred(ME, TGT, END);
    let realm_len = c.out.iter().position(|&b| b == b'A').unwrap() - 4;
    let n = c.out.len();
    let fields = [
        (realm_len, "default realm"),
        (n - 4 - b"ticket bytes".len() - 4, "ticket"),
        (n - 4, "second ticket"),
    ];
    for (at, what) in fields {
        let mut f = c.out.clone();
        f[at..at + 4].copy_from_slice(&[0xff; 4]);
        let e = agree(&f, &p, what).unwrap_err();
        assert!(
            matches!(e, CcacheFileError::Length(u32::MAX, _)),
            "{what}: {e}"
        );
    }
    // A huge count of components is bounded by the file, not trusted.
    let mut f = c.out.clone();
    let count = realm_len - 4;
    f[count..count + 4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    assert!(agree(&f, &p, "count").is_err());
}

#[test]
fn reads_from_the_start_within_the_limit() {
    use std::io::Write;
    let c = CcFile::new(4, None, ME).cred(ME, TGT, END);
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&c.out).unwrap(); // the offset is now at the end
    let t = tgt_endtime(&f, 1 << 20).unwrap();
    assert_eq!(t.endtime, Some(i64::from(END)));
    let len = c.out.len() as u64;
    assert!(tgt_endtime(&f, len).is_ok());
    let e = tgt_endtime(&f, len - 1).unwrap_err();
    assert!(matches!(e, CcacheFileError::TooLong(_)), "{e}");
}

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_files_agree_with_libkrb5() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cc");
    let bases = [
        CcFile::new(4, Some((5, 6)), ME)
            .config(ME, "pa_type", b"2")
            .cred(ME, TGT, LATER)
            .cred(ME, CROSS, END)
            .cred(ME, "host/n1.a.org@A.ORG", END),
        CcFile::new(3, None, ME)
            .cred(ME, CROSS, END)
            .cred(ME, TGT, LATER),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut failed) = (0, 0);
    for i in 0..1500 {
        let base = &bases[i % bases.len()].out;
        let mut f = base.clone();
        let mut what = format!("case {i}:");
        for _ in 0..1 + rng.below(3) {
            let (at, b) = (rng.below(f.len()), rng.next() as u8);
            f[at] = b;
            what += &format!(" [{at}]={b:#04x}");
        }
        if rng.below(4) == 0 {
            f.truncate(rng.below(f.len()));
            what += &format!(" cut at {}", f.len());
        }
        match agree(&f, &p, &what) {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    // Pure garbage: no panic, and an error or nothing.
    for i in 0..300 {
        let mut f: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && f.len() > 2 {
            f[..2].copy_from_slice(&[5, 4]);
        }
        let _ = agree(&f, &p, &format!("garbage {i}"));
    }
    assert!(ok > 300 && failed > 100, "ok {ok}, failed {failed}");
}
