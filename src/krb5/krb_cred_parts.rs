//! What auksd and its client ask of an unencrypted KRB-CRED, read without
//! libkrb5: whether two carry the same credentials or different tickets
//! ([`compare_credentials`]), and whether its tickets name addresses
//! ([`without_addresses`]).
//! An ADD of the TGT auksd already stores (every `srun --auks=yes` of a
//! job array sends it) is recognised by comparing the received KRB-CRED
//! with the stored one; decoding both with
//! `krb5_rd_cred` was two of the three decodes of such an ADD, about an
//! eighth of auksd's instructions for it.
//! Their bytes differ even then: libkrb5 puts the time the message was
//! made in it (EncKrbCredPart `timestamp` and `usec`). The tickets and the
//! ticket-info (keys, names, flags, times) are what this compares.
//!
//! ```text
//! KRB-CRED ::= [APPLICATION 22] SEQUENCE { [0] pvno 5, [1] msg-type 22,
//!     [2] tickets SEQUENCE OF Ticket, [3] enc-part EncryptedData }
//! EncryptedData ::= SEQUENCE { [0] etype (0: the cipher is the plain
//!     DER of the part), [1] kvno OPTIONAL, [2] cipher OCTET STRING }
//! EncKrbCredPart ::= [APPLICATION 29] SEQUENCE {
//!     [0] ticket-info SEQUENCE OF KrbCredInfo, [1] nonce, [2] timestamp,
//!     [3] usec, [4] s-address, [5] r-address (all OPTIONAL) }
//! ```

use std::ops::Range;

use subtle::ConstantTimeEq;

use super::der::Der;

const WHAT: &str = "KRB-CRED";

/// Where the tickets and the ticket-info of an unencrypted KRB-CRED are,
/// each a non-empty run of whole elements (Tickets, KrbCredInfo
/// sequences). `None`: not such a KRB-CRED by this strict reader.
fn parts(der: &[u8]) -> Option<(Range<usize>, Range<usize>)> {
    let mut top = Der::new(der, 0..der.len());
    let app = top.element(0x76, WHAT).ok()?;
    if !top.at_end() {
        return None;
    }
    let seq = Der::new(der, app).element(0x30, WHAT).ok()?;
    let mut d = Der::new(der, seq);
    if d.int_field(0, WHAT).ok()? != 5 || d.int_field(1, WHAT).ok()? != 22 {
        return None;
    }
    let tickets = d.field(2, 0x30, WHAT).ok()?;
    let enc = d.field(3, 0x30, WHAT).ok()?;
    if !d.at_end() {
        return None;
    }
    let mut e = Der::new(der, enc);
    if e.int_field(0, WHAT).ok()? != 0 {
        return None;
    }
    if e.has(1) {
        e.int_field(1, WHAT).ok()?;
    }
    let cipher = e.field(2, 0x04, WHAT).ok()?;
    if !e.at_end() {
        return None;
    }
    let mut c = Der::new(der, cipher);
    let part = c.element(0x7d, WHAT).ok()?;
    if !c.at_end() {
        return None;
    }
    let pseq = Der::new(der, part).element(0x30, WHAT).ok()?;
    let infos = Der::new(der, pseq).field(0, 0x30, WHAT).ok()?;
    let count = |r: &Range<usize>, tag: u8| -> Option<usize> {
        let mut d = Der::new(der, r.clone());
        let mut n = 0;
        while !d.at_end() {
            d.element(tag, WHAT).ok()?;
            n += 1;
        }
        Some(n)
    };
    let n = count(&tickets, 0x61)?;
    (n > 0 && count(&infos, 0x30)? == n).then_some((tickets, infos))
}

/// How two unencrypted KRB-CREDs compare by this strict reader, each read
/// once: `Some(true)` when they carry the same tickets and ticket-info
/// byte for byte, whatever else differs (their time stamps); `Some(false)`
/// when their tickets differ byte for byte (an ADD of a renewed TGT: they
/// hold different credentials whatever their ticket-info says; a ticket
/// encoded in two ways, which `krb5_rd_cred` would decode and re-encode
/// alike, would only be taken for a new one and stored again); `None`
/// when either is not read by it, or only the ticket-info differs:
/// compare their decoded credentials then. The ticket-info holds session
/// keys, and one side is a stored credential: it is compared in constant
/// time. The tickets are ciphertext under keys only the KDC and the
/// services hold: compared as bytes.
pub fn compare_credentials(a: &[u8], b: &[u8]) -> Option<bool> {
    let ((ta, ia), (tb, ib)) = (parts(a)?, parts(b)?);
    if a[ta] != b[tb] {
        return Some(false);
    }
    bool::from(a[ia].ct_eq(&b[ib])).then_some(true)
}

/// Whether no ticket-info of the unencrypted KRB-CRED `der` names client
/// addresses (KrbCredInfo `caddr`, field 10, present even if empty counts
/// as naming them). `None` when this strict reader does not take `der`:
/// decode it with libkrb5 then. Every ADD asks (§4.3: an address-bound
/// TGT is exchanged for an addressless one first); decoding the KRB-CRED
/// with `krb5_rd_cred` for it was a tenth of the client's instructions.
pub fn without_addresses(der: &[u8]) -> Option<bool> {
    let (_, infos) = parts(der)?;
    let mut list = Der::new(der, infos);
    while !list.at_end() {
        let mut info = Der::new(der, list.element(0x30, WHAT).ok()?);
        while !info.at_end() {
            let tag = info.peek()?;
            info.element(tag, WHAT).ok()?;
            if tag == 0xaa {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// Hand-built KRB-CREDs for unit tests (here and the repository's).
#[cfg(test)]
pub(crate) mod build {
    use super::super::der::put_header;

    pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        put_header(&mut v, tag, content.len());
        v.extend_from_slice(content);
        v
    }

    pub(crate) fn int(n: u8, v: u8) -> Vec<u8> {
        tlv(0xa0 | n, &tlv(0x02, &[v]))
    }

    /// A KRB-CRED of `etype` (0: unencrypted) with the given tickets,
    /// ticket-info and EncKrbCredPart fields after the ticket-info.
    pub(crate) fn krb_cred(tickets: &[&[u8]], infos: &[&[u8]], etype: u8, rest: &[u8]) -> Vec<u8> {
        let t: Vec<u8> = tickets.iter().flat_map(|t| tlv(0x61, t)).collect();
        let i: Vec<u8> = infos.iter().flat_map(|i| tlv(0x30, i)).collect();
        let mut part = tlv(0xa0, &tlv(0x30, &i));
        part.extend_from_slice(rest);
        let part = tlv(0x7d, &tlv(0x30, &part));
        let mut enc = int(0, etype);
        enc.extend(tlv(0xa2, &tlv(0x04, &part)));
        let mut body = int(0, 5);
        body.extend(int(1, 22));
        body.extend(tlv(0xa2, &tlv(0x30, &t)));
        body.extend(tlv(0xa3, &tlv(0x30, &enc)));
        tlv(0x76, &tlv(0x30, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::build::{int, krb_cred, tlv};
    use super::*;

    fn stamp(s: &[u8; 15], usec: u8) -> Vec<u8> {
        let mut v = tlv(0xa2, &tlv(0x18, s));
        v.extend(int(3, usec));
        v
    }

    /// The same tickets and ticket-info, by [`compare_credentials`].
    fn same(a: &[u8], b: &[u8]) -> bool {
        compare_credentials(a, b) == Some(true)
    }

    #[test]
    fn only_the_time_stamp_differs() {
        let a = krb_cred(&[b"tkt"], &[b"key,times"], 0, &stamp(b"20261130221300Z", 7));
        let b = krb_cred(&[b"tkt"], &[b"key,times"], 0, &stamp(b"20261130221301Z", 9));
        assert_ne!(a, b);
        assert!(same(&a, &b));
        assert!(same(&a, &a));
    }

    #[test]
    fn another_ticket_or_key_is_not_the_same() {
        let a = krb_cred(&[b"tkt"], &[b"key,times"], 0, &[]);
        assert!(!same(&a, &krb_cred(&[b"tkT"], &[b"key,times"], 0, &[])));
        assert!(!same(&a, &krb_cred(&[b"tkt"], &[b"KEY,times"], 0, &[])));
        let two = krb_cred(&[b"tkt", b"x"], &[b"key,times", b"y"], 0, &[]);
        assert!(!same(&a, &two));
        assert!(same(&two, &two.clone()));
    }

    #[test]
    fn different_tickets_are_told_without_decoding() {
        let a = krb_cred(&[b"tkt"], &[b"key,times"], 0, &stamp(b"20261130221300Z", 7));
        // a renewed ticket: other ticket bytes, whatever the ticket-info
        let renewed = krb_cred(&[b"tkT"], &[b"key,times"], 0, &[]);
        assert_eq!(compare_credentials(&a, &renewed), Some(false));
        assert_eq!(compare_credentials(&renewed, &a), Some(false));
        let two = krb_cred(&[b"tkt", b"x"], &[b"key,times", b"y"], 0, &[]);
        assert_eq!(
            compare_credentials(&a, &two),
            Some(false),
            "one ticket more"
        );
        // the same tickets and ticket-info: the same, whatever the stamp
        let again = krb_cred(&[b"tkt"], &[b"key,times"], 0, &[]);
        assert_eq!(compare_credentials(&a, &again), Some(true));
        // the same tickets, other ticket-info: not told here
        let info = krb_cred(&[b"tkt"], &[b"KEY,times"], 0, &[]);
        assert_eq!(compare_credentials(&a, &info), None);
        // what this reader does not take: libkrb5 decides
        let enc = krb_cred(&[b"tkT"], &[b"key,times"], 18, &[]);
        assert_eq!(compare_credentials(&a, &enc), None);
        assert_eq!(compare_credentials(&enc, &a), None);
        assert_eq!(compare_credentials(&a, &[1, 2, 3]), None);
    }

    #[test]
    fn what_this_reader_does_not_take_is_never_the_same() {
        let a = krb_cred(&[b"tkt"], &[b"key,times"], 0, &[]);
        // an encrypted KRB-CRED, no ticket, a count mismatch, garbage,
        // a truncated message, bytes after it
        let enc = krb_cred(&[b"tkt"], &[b"key,times"], 18, &[]);
        let none = krb_cred(&[], &[], 0, &[]);
        let odd = krb_cred(&[b"tkt"], &[b"key,times", b"more"], 0, &[]);
        let mut after = a.clone();
        after.push(0);
        for bad in [
            &enc,
            &none,
            &odd,
            &after,
            &a[..a.len() - 1].to_vec(),
            &vec![1, 2, 3],
        ] {
            assert!(!same(bad, bad), "{bad:02x?}");
            assert!(!same(&a, bad));
        }
    }

    #[test]
    fn addresses_are_found_in_any_ticket_info() {
        let key = tlv(0xa0, b"k");
        let realm = tlv(0xa1, b"R");
        let caddr = tlv(0xaa, &tlv(0x30, &[]));
        let plain: Vec<u8> = [key.clone(), realm.clone()].concat();
        let bound: Vec<u8> = [key, realm, caddr].concat();
        let one = krb_cred(&[b"tkt"], &[&plain], 0, &[]);
        assert_eq!(without_addresses(&one), Some(true));
        let bound_one = krb_cred(&[b"tkt"], &[&bound], 0, &[]);
        assert_eq!(without_addresses(&bound_one), Some(false));
        let second = krb_cred(&[b"t1", b"t2"], &[&plain, &bound], 0, &[]);
        assert_eq!(without_addresses(&second), Some(false));
        // not taken by the reader: libkrb5 decides
        let enc = krb_cred(&[b"tkt"], &[&plain], 18, &[]);
        let broken = krb_cred(&[b"tkt"], &[&[0xa0, 0x05, 1]], 0, &[]);
        for bad in [&enc, &broken, &one[..one.len() - 1].to_vec(), &vec![1, 2]] {
            assert_eq!(without_addresses(bad), None, "{bad:02x?}");
        }
    }
}
