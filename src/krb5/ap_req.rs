//! The one part of an AP-REQ a replay cache of our own needs: the
//! authenticator's ciphertext. It is what libkrb5's own replay cache keys
//! on: the outer fields of an AP-REQ (its options) are not encrypted, so a
//! replay could change them, but not the authenticator without the session
//! key.

use super::der::Der;
use super::error::{Error, Result};

/// `AP-REQ ::= [APPLICATION 14] SEQUENCE { pvno [0], msg-type [1],
/// ap-options [2], ticket [3], authenticator [4] EncryptedData }`,
/// `EncryptedData ::= SEQUENCE { etype [0], kvno [1] OPTIONAL, cipher [2]
/// OCTET STRING }`: the bytes of `cipher`.
pub fn authenticator_cipher(ap_req: &[u8]) -> Result<&[u8]> {
    let bad = || Error::local("AP-REQ", "malformed message: authenticator not found");
    let mut top = Der::new(ap_req, 0..ap_req.len());
    let app = top.element(0x6e, "AP-REQ").map_err(|_| bad())?;
    let mut app = Der::new(ap_req, app);
    let seq = app.element(0x30, "AP-REQ").map_err(|_| bad())?;
    let mut d = Der::new(ap_req, seq);
    d.int_field(0, "pvno").map_err(|_| bad())?;
    d.int_field(1, "msg-type").map_err(|_| bad())?;
    d.field(2, 0x03, "ap-options").map_err(|_| bad())?;
    d.field(3, 0x61, "ticket").map_err(|_| bad())?;
    let enc = d.field(4, 0x30, "authenticator").map_err(|_| bad())?;
    let mut e = Der::new(ap_req, enc);
    e.int_field(0, "etype").map_err(|_| bad())?;
    if e.has(1) {
        e.int_field(1, "kvno").map_err(|_| bad())?;
    }
    let cipher = e.field(2, 0x04, "cipher").map_err(|_| bad())?;
    ap_req.get(cipher).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AP-REQ of the given authenticator cipher (and optional kvno),
    /// with a dummy ticket.
    fn ap_req(cipher: &[u8], kvno: bool) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if content.len() < 0x80 {
                v.push(content.len() as u8);
            } else {
                v.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
            }
            v.extend(content);
            v
        }
        let int = |n: u8, v: u8| tlv(0xa0 | n, &tlv(0x02, &[v]));
        let mut enc = int(0, 18);
        if kvno {
            enc.extend(int(1, 2));
        }
        enc.extend(tlv(0xa2, &tlv(0x04, cipher)));
        let mut seq = int(0, 5);
        seq.extend(int(1, 14));
        seq.extend(tlv(0xa2, &tlv(0x03, &[0, 0x20, 0, 0, 0])));
        seq.extend(tlv(0xa3, &tlv(0x61, &[0x30, 0])));
        seq.extend(tlv(0xa4, &tlv(0x30, &enc)));
        tlv(0x6e, &tlv(0x30, &seq))
    }

    #[test]
    fn the_authenticator_cipher_is_found_with_or_without_kvno() {
        let c: Vec<u8> = (0..200u8).collect();
        assert_eq!(authenticator_cipher(&ap_req(&c, false)).unwrap(), &c[..]);
        assert_eq!(authenticator_cipher(&ap_req(&c, true)).unwrap(), &c[..]);
    }

    #[test]
    fn malformed_ap_reqs_are_errors() {
        let good = ap_req(b"cipher", true);
        for cut in 0..good.len() {
            assert!(authenticator_cipher(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_tag = good.clone();
        wrong_tag[0] = 0x6f;
        assert!(authenticator_cipher(&wrong_tag).is_err());
        assert!(authenticator_cipher(b"").is_err());
    }
}
