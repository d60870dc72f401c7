//! The unencrypted KRB-CRED AUKS forwards, made in Rust from credentials
//! read by [`super::read_creds`]: [`encode_krb_cred_at`] writes the bytes
//! `crate::krb5::encode_krb_cred` has libkrb5 write (`krb5_mk_ncred` with
//! an auth context of flags 0 and no key) when libkrb5's clock reads the
//! same time, byte for byte (tested against it), so that srun can send its
//! TGT without loading libkrb5.
//!
//! ```text
//! KRB-CRED ::= [APPLICATION 22] SEQUENCE { [0] pvno 5, [1] msg-type 22,
//!     [2] tickets SEQUENCE OF Ticket, [3] enc-part EncryptedData }
//! EncryptedData ::= SEQUENCE { [0] etype 0, [2] cipher OCTET STRING }
//!     (no kvno; ENCTYPE_NULL: the cipher is the DER of the part)
//! EncKrbCredPart ::= [APPLICATION 29] SEQUENCE {
//!     [0] ticket-info SEQUENCE OF KrbCredInfo,
//!     [2] timestamp KerberosTime, [3] usec INTEGER }
//!     (no nonce and no addresses with flags 0 and no addresses set)
//! KrbCredInfo ::= SEQUENCE { [0] key EncryptionKey, [1] prealm, [2] pname,
//!     [3] flags, [4] authtime, [5] starttime, [6] endtime, [7] renew-till,
//!     [8] srealm, [9] sname, [10] caddr }
//! ```
//!
//! The time stamp: `krb5_mk_ncred` (MIT `mk_cred.c`, 1.20 and later alike)
//! "historically always sets the timestamp", whatever the auth context's
//! flags: `krb5_us_timeofday`, the system clock plus the KDC time offset
//! the context holds (the one libkrb5 read in the ccache's header, with
//! `kdc_timesync`, the default). The message thus differs from one second,
//! or microsecond, to the next; [`encode_krb_cred_at`] takes the time,
//! [`kdc_time_of_day`] computes it as libkrb5 does, [`encode_krb_cred`]
//! uses the system clock alone. The receiver of an unencrypted KRB-CRED
//! (auksd: `krb5_rd_cred`, flags 0) does not check it.
//!
//! MIT's encoder (`asn1_k_encode.c`, `cred_info`, `enc_cred_part`) always
//! writes the key (`SEQUENCE { [0] keytype, [1] keyvalue }`, even empty)
//! and the four names, and leaves out the flags when 0, each time when 0
//! (a start time of 0 is not replaced by the auth time), and the addresses
//! when there are none; in the EncKrbCredPart, the nonce when 0 (it is the
//! sequence number, 0 without `DO_SEQUENCE`), the time stamp and usec when
//! the time stamp is 0 (the usec is written when 0). Flags are a 32-bit
//! BIT STRING (`03 05 00` and 4 bytes, even when trailing bytes are 0);
//! times are GeneralizedTime `YYYYMMDDHHMMSSZ` of the 32-bit unsigned
//! value (years up to 2106); integers are minimal two's complement (the
//! key's enctype as read, sign-extended; address types unsigned, as
//! libkrb5 reads them); realms and components are GeneralStrings of the
//! file's bytes; the EncryptedData has no kvno. `is_skey`, the
//! authorization data and the second ticket have no place in a KRB-CRED.
//!
//! The tickets are the ccache's bytes as they are. libkrb5 decodes each
//! and encodes it again: the same bytes for a ticket in DER as MIT encodes
//! it (what a KDC sends), but libkrb5 refuses a ticket it cannot decode
//! (an empty one, say), where this writes it as it is.
//!
//! Session keys: the message is written once into a [`Zeroizing`] buffer
//! sized up front (no reallocation leaves a copy behind); the tree it is
//! written from borrows the key, never copies it.

use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::creds::{FileCred, Principal};

/// [`encode_krb_cred_at`] stamped with the system clock (without a KDC
/// time offset: see [`kdc_time_of_day`] for libkrb5's stamp).
pub fn encode_krb_cred(creds: &[&FileCred<'_>]) -> Zeroizing<Vec<u8>> {
    encode_krb_cred_at(creds, kdc_time_of_day(SystemTime::now(), None))
}

/// The time `krb5_us_timeofday` reports at `now` to a context holding
/// the KDC time offset `time_offset` ([`super::FileCcache::time_offset`]
/// of the ccache it read): (seconds, microseconds), with libkrb5's carry
/// rule (a sum of exactly 1 000 000 microseconds is kept as it is).
pub fn kdc_time_of_day(now: SystemTime, time_offset: Option<(i32, i32)>) -> (u32, i32) {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    // krb5_timestamp: the low 32 bits of the seconds.
    let (mut sec, mut usec) = (d.as_secs() as u32, d.subsec_micros() as i32);
    if let Some((s, us)) = time_offset {
        usec = usec.wrapping_add(us);
        if usec > 1_000_000 {
            usec -= 1_000_000;
            sec = sec.wrapping_add(1);
        }
        if usec < 0 {
            usec = usec.wrapping_add(1_000_000);
            sec = sec.wrapping_sub(1);
        }
        sec = sec.wrapping_add(s as u32);
    }
    (sec, usec)
}

/// Serialise `creds` as the unencrypted KRB-CRED libkrb5 makes of them
/// when its clock reads `(timestamp, usec)` (see the module doc; a
/// timestamp of 0 is left out, with the usec, as MIT's encoder does),
/// tickets and ticket-info in the order given. libkrb5 refuses an empty
/// list; this writes a KRB-CRED without tickets.
pub fn encode_krb_cred_at(
    creds: &[&FileCred<'_>],
    (timestamp, usec): (u32, i32),
) -> Zeroizing<Vec<u8>> {
    let tickets = creds.iter().map(|c| Node::Raw(c.ticket)).collect();
    let infos = creds.iter().map(|c| cred_info(c)).collect();
    let mut part = vec![field(0, seq(infos))];
    if timestamp != 0 {
        part.push(field(2, Node::Small(0x18, time(timestamp))));
        part.push(field(3, int(usec)));
    }
    let part = Node::Wrap(0x7d, vec![seq(part)]);
    let enc = seq(vec![
        field(0, int(0)), // ENCTYPE_NULL
        field(2, Node::Wrap(0x04, vec![part])),
    ]);
    let msg = Node::Wrap(
        0x76,
        vec![seq(vec![
            field(0, int(5)),
            field(1, int(22)),
            field(2, seq(tickets)),
            field(3, enc),
        ])],
    );
    let size = msg.size();
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    msg.write(&mut out);
    debug_assert_eq!(out.len(), size);
    out
}

/// One KrbCredInfo, with MIT's omissions.
fn cred_info<'a>(c: &FileCred<'a>) -> Node<'a> {
    let key = seq(vec![
        field(0, int(c.key_enctype)),
        field(1, Node::Bytes(0x04, c.key)),
    ]);
    let mut info = vec![field(0, key)];
    info.extend(principal(1, &c.client));
    if c.flags != 0 {
        let mut bits = Small::default();
        bits.push(&[0]); // no unused bits
        bits.push(&c.flags.to_be_bytes());
        info.push(field(3, Node::Small(0x03, bits)));
    }
    for (n, t) in [
        (4, c.authtime),
        (5, c.starttime),
        (6, c.endtime),
        (7, c.renew_till),
    ] {
        if t != 0 {
            info.push(field(n, Node::Small(0x18, time(t))));
        }
    }
    info.extend(principal(8, &c.server));
    if !c.addresses.is_empty() {
        let addrs = c.addresses.iter().map(|&(t, a)| {
            seq(vec![
                field(0, int(i32::from(t))),
                field(1, Node::Bytes(0x04, a)),
            ])
        });
        info.push(field(10, seq(addrs.collect())));
    }
    seq(info)
}

/// `[n] Realm, [n + 1] PrincipalName { [0] name-type, [1] name-string }`.
fn principal<'a>(n: u8, p: &Principal<'a>) -> [Node<'a>; 2] {
    let names = p.components.iter().map(|c| Node::Bytes(0x1b, c));
    [
        field(n, Node::Bytes(0x1b, p.realm)),
        field(
            n + 1,
            seq(vec![
                field(0, int(p.name_type)),
                field(1, seq(names.collect())),
            ]),
        ),
    ]
}

/// One DER element to write.
pub(super) enum Node<'a> {
    /// A primitive element of borrowed content (names, the key, addresses).
    Bytes(u8, &'a [u8]),
    /// A primitive element of a short content (integers, times, flags).
    Small(u8, Small),
    /// Elements already in DER, written as they are (a Ticket).
    Raw(&'a [u8]),
    /// A tag around elements (SEQUENCE, context tag, APPLICATION tag, the
    /// OCTET STRING of the EncKrbCredPart).
    Wrap(u8, Vec<Node<'a>>),
}

impl Node<'_> {
    fn content_len(&self) -> usize {
        match self {
            Node::Bytes(_, b) | Node::Raw(b) => b.len(),
            Node::Small(_, s) => s.bytes().len(),
            Node::Wrap(_, kids) => kids.iter().map(Node::size).sum(),
        }
    }

    /// The size of the whole element.
    fn size(&self) -> usize {
        let len = self.content_len();
        match self {
            Node::Raw(_) => len,
            _ => header_len(len) + len,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Node::Bytes(tag, b) => {
                header(out, *tag, b.len());
                out.extend_from_slice(b);
            }
            Node::Small(tag, s) => {
                header(out, *tag, s.bytes().len());
                out.extend_from_slice(s.bytes());
            }
            Node::Raw(b) => out.extend_from_slice(b),
            Node::Wrap(tag, kids) => {
                header(out, *tag, self.content_len());
                for k in kids {
                    k.write(out);
                }
            }
        }
    }
}

/// Up to 15 content bytes (a GeneralizedTime is the longest).
#[derive(Default)]
pub(super) struct Small {
    buf: [u8; 15],
    len: usize,
}

impl Small {
    fn push(&mut self, b: &[u8]) {
        let end = (self.len + b.len()).min(self.buf.len());
        let n = end - self.len;
        self.buf[self.len..end].copy_from_slice(&b[..n]);
        self.len = end;
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(super) fn seq(kids: Vec<Node<'_>>) -> Node<'_> {
    Node::Wrap(0x30, kids)
}

/// `[n]` around `inner`.
pub(super) fn field(n: u8, inner: Node<'_>) -> Node<'_> {
    Node::Wrap(0xa0 | n, vec![inner])
}

/// An INTEGER, minimal two's complement.
pub(super) fn int(v: i32) -> Node<'static> {
    let b = v.to_be_bytes();
    // Drop a leading byte while the next one carries the same sign.
    let mut skip = 0;
    while skip < 3 {
        let (x, next) = (b[skip], b[skip + 1]);
        if !((x == 0 && next & 0x80 == 0) || (x == 0xff && next & 0x80 != 0)) {
            break;
        }
        skip += 1;
    }
    let mut s = Small::default();
    s.push(&b[skip..]);
    Node::Small(0x02, s)
}

/// A KerberosTime: `YYYYMMDDHHMMSSZ` (UTC) of the unsigned 32-bit time.
fn time(t: u32) -> Small {
    let (days, secs) = (t / 86_400, t % 86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = Small::default();
    for (v, width) in [
        (y, 4),
        (m, 2),
        (d, 2),
        (secs / 3600, 2),
        (secs / 60 % 60, 2),
        (secs % 60, 2),
    ] {
        let digits = [v / 1000 % 10, v / 100 % 10, v / 10 % 10, v % 10].map(|x| b'0' + x as u8);
        s.push(&digits[4 - width..]);
    }
    s.push(b"Z");
    s
}

/// (year, month, day) of a count of days since 1970-01-01 (the
/// proleptic Gregorian calendar, H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u32) -> (u32, u32, u32) {
    let z = days + 719_468; // from 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u32::from(m <= 2);
    (y, m, d)
}

/// The size of a DER header (tag and definite length) for `len` bytes.
fn header_len(len: usize) -> usize {
    let n = len_bytes(len);
    if len < 0x80 {
        2
    } else {
        2 + n
    }
}

/// Bytes of a long-form length.
fn len_bytes(len: usize) -> usize {
    (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
}

fn header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let n = len_bytes(len);
        out.push(0x80 | n as u8);
        out.extend_from_slice(&len.to_be_bytes()[std::mem::size_of::<usize>() - n..]);
    }
}

/// The DER of `node` (the tests' tickets).
#[cfg(test)]
pub(super) fn der(node: &Node<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    node.write(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_times_and_lengths_are_der() {
        let enc = |v: i32| {
            let mut o = Vec::new();
            int(v).write(&mut o);
            o
        };
        assert_eq!(enc(0), [2, 1, 0]);
        assert_eq!(enc(5), [2, 1, 5]);
        assert_eq!(enc(127), [2, 1, 0x7f]);
        assert_eq!(enc(128), [2, 2, 0, 0x80]);
        assert_eq!(enc(65_408), [2, 3, 0, 0xff, 0x80]);
        assert_eq!(enc(-1), [2, 1, 0xff]);
        assert_eq!(enc(-128), [2, 1, 0x80]);
        assert_eq!(enc(-129), [2, 2, 0xff, 0x7f]);
        assert_eq!(enc(i32::MIN), [2, 4, 0x80, 0, 0, 0]);
        assert_eq!(enc(i32::MAX), [2, 4, 0x7f, 0xff, 0xff, 0xff]);
        for t in [
            0u32,
            1,
            951_782_400,
            1_764_036_000,
            1 << 31,
            2_208_988_800,
            u32::MAX,
        ] {
            let want = chrono::DateTime::from_timestamp(i64::from(t), 0)
                .unwrap()
                .format("%Y%m%d%H%M%SZ")
                .to_string();
            assert_eq!(time(t).bytes(), want.as_bytes(), "{t}");
        }
        for len in [
            0usize, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0xff_ffff, 0x100_0000,
        ] {
            let mut o = Vec::new();
            header(&mut o, 4, len);
            assert_eq!(o.len(), header_len(len), "{len}");
        }
        let mut o = Vec::new();
        header(&mut o, 4, 0x1234);
        assert_eq!(o, [4, 0x82, 0x12, 0x34]);
    }
}
