//! Unit tests of the credential record: its compact and full layouts, the capacities
//! older C versions used, and the records that must be rejected.

use super::*;

#[test]
fn compact_record_layout() {
    let r = sample();
    let mut out = vec![0xEE; 3];
    encode_record(&r, &mut out);
    assert_eq!(out.len(), 3 + MIN_RECORD_LEN + 7);
    assert_eq!(out.len(), 3 + compact_record_len(&r));
    let b = &out[3..];
    assert_eq!(b[0..4], [0, 0, 0, 129]);
    let plen = r.principal.len();
    assert_eq!(&b[4..4 + plen], r.principal.as_bytes());
    assert!(b[4 + plen..133].iter().all(|&x| x == 0));
    // capacity = length = 7, then the data and the status
    assert_eq!(b[157..161], 7u32.to_be_bytes());
    assert_eq!(b[161..165], 7u32.to_be_bytes());
    assert_eq!(&b[165..172], &r.data[..]);
    assert_eq!(b[172..], [0, 0, 0, 0]);
    assert_eq!(decode_record(b).unwrap(), (r.clone(), MIN_RECORD_LEN + 7));
    // A GET_REPLY carries the compact record.
    let rep = encode_reply(&Reply::Get(r.clone()));
    assert_eq!(rep.len(), 4 + MIN_RECORD_LEN + 7);
    assert_eq!(decode_reply(&rep).unwrap(), Reply::Get(r));
}

#[test]
fn full_record_layout_and_zero_padding() {
    let r = sample();
    let mut out = vec![0xEE; 3];
    encode_record_full(&r, &mut out);
    assert_eq!(out.len(), 3 + RECORD_LEN);
    let b = &out[3..];
    assert_eq!(b[0..4], [0, 0, 0, 129]);
    let plen = r.principal.len();
    assert_eq!(&b[4..4 + plen], r.principal.as_bytes());
    assert!(b[4 + plen..133].iter().all(|&x| x == 0));
    assert_eq!(b[133..137], 1000u32.to_be_bytes());
    assert_eq!(b[137..141], 1_700_000_000u32.to_be_bytes());
    assert_eq!(b[149..153], [0, 0, 0, 1]);
    assert_eq!(b[153..157], [0, 0, 0, 0]);
    assert_eq!(b[157..161], [0, 0, 0x80, 0]);
    assert_eq!(b[161..165], 7u32.to_be_bytes());
    assert_eq!(&b[165..172], &r.data[..]);
    assert!(b[172..165 + MAX_CRED_DATA].iter().all(|&x| x == 0));
    assert_eq!(b[165 + MAX_CRED_DATA..], [0, 0, 0, 0]);
    let (d, used) = decode_record(&out[3..]).unwrap();
    assert_eq!(used, RECORD_LEN);
    assert_eq!(d, r);
    // decode_record ignores what follows.
    let mut longer = out[3..].to_vec();
    longer.extend_from_slice(b"xyz");
    assert_eq!(decode_record(&longer).unwrap().1, RECORD_LEN);
}

#[test]
fn debug_hides_data() {
    let mut r = sample();
    r.data = Zeroizing::new(b"SECRETSECRET".to_vec());
    let s = format!("{r:?}");
    assert!(s.contains("<12 bytes>"), "{s}");
    assert!(!s.contains("83, 69"), "{s}");
    assert!(s.contains("alice@EXAMPLE.ORG"));
    let s = format!("{:?}", Request::Add(r.data.clone()));
    assert_eq!(s, "Add(<12 bytes>)");
    let s = format!("{:?}", Reply::Get(r));
    assert!(s.contains("<12 bytes>") && !s.contains("69"), "{s}");
}

#[test]
fn old_capacities_decode() {
    for cap in [0i32, 7, 2048, 4096, 32768] {
        let r = sample();
        let len = if cap < 7 { 0 } else { 7 };
        let mut want = r.clone();
        want.data = Zeroizing::new(r.data[..len as usize].to_vec());
        let raw = raw_record(&want, cap, len, 0xCC);
        assert_eq!(raw.len(), MIN_RECORD_LEN + cap as usize);
        let msg = with_type(24, &raw);
        assert_eq!(decode_reply(&msg).unwrap(), Reply::Get(want.clone()));
        let (d, used) = decode_record(&raw).unwrap();
        assert_eq!((d, used), (want.clone(), raw.len()));
        // Re-encoding normalises to a compact record.
        let enc = encode_reply(&Reply::Get(want.clone()));
        assert_eq!(enc.len(), 4 + MIN_RECORD_LEN + len as usize);
        assert_eq!(decode_reply(&enc).unwrap(), Reply::Get(want));
    }
}

#[test]
fn garbage_after_principal_nul_is_ignored() {
    let r = sample();
    let raw = raw_record(&r, 16, 7, b'Z');
    assert_eq!(decode_record(&raw).unwrap().0, r);
}

#[test]
fn bad_records_rejected() {
    let r = sample();
    let good = raw_record(&r, 2048, 7, 0);
    assert!(decode_record(&good).is_ok());

    for size in [128i32, 130, 0, -1] {
        let mut b = good.clone();
        b[0..4].copy_from_slice(&size.to_be_bytes());
        assert_eq!(
            decode_record(&b).unwrap_err(),
            ProtoError::BadPrincipalFieldSize(size)
        );
    }
    // 129 non-NUL principal bytes.
    let mut b = good.clone();
    b[4..133].fill(b'a');
    assert_eq!(
        decode_record(&b).unwrap_err(),
        ProtoError::PrincipalNotTerminated
    );
    // 128 chars + NUL is the maximum and fine.
    let mut b = good.clone();
    b[4..132].fill(b'a');
    b[132] = 0;
    assert_eq!(decode_record(&b).unwrap().0.principal, "a".repeat(128));
    // Invalid UTF-8.
    let mut b = good.clone();
    b[4] = 0xff;
    assert_eq!(decode_record(&b).unwrap_err(), ProtoError::PrincipalNotUtf8);
    // Capacity negative / too large.
    for cap in [-5i32, -1, i32::MIN, 32769, i32::MAX] {
        let mut b = good.clone();
        b[157..161].copy_from_slice(&cap.to_be_bytes());
        let e = decode_record(&b).unwrap_err();
        assert_eq!(e, ProtoError::BadDataCapacity(cap));
        if cap == -5 {
            assert_eq!(
                e.to_string(),
                "credential data capacity -5 is invalid (must be 0..=32768)"
            );
        }
    }
    // Length > capacity, negative length.
    for len in [2049i32, 32768, -1, i32::MIN] {
        let mut b = good.clone();
        b[161..165].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            decode_record(&b).unwrap_err(),
            ProtoError::BadDataLength {
                length: len,
                capacity: 2048
            }
        );
    }
    // Capacity larger than what is present.
    let mut b = good.clone();
    b[157..161].copy_from_slice(&4096i32.to_be_bytes());
    assert!(matches!(
        decode_record(&b).unwrap_err(),
        ProtoError::Truncated {
            what: "credential data",
            ..
        }
    ));
}

#[test]
fn invalid_record_is_poisoned_not_truncated() {
    let mut r = sample();
    r.principal = "x".repeat(200);
    let result = std::panic::catch_unwind(|| {
        let mut out = Vec::new();
        encode_record(&r, &mut out);
        out
    });
    if cfg!(debug_assertions) {
        assert!(result.is_err());
    } else {
        let out = result.unwrap();
        assert_eq!(out.len(), MIN_RECORD_LEN);
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(
            decode_record(&out).unwrap_err(),
            ProtoError::BadPrincipalFieldSize(0)
        );
    }
}

#[test]
fn reserve_keeps_contents() {
    let mut v = vec![1u8, 2, 3];
    v.shrink_to_fit();
    encode_record(&sample(), &mut v);
    assert_eq!(&v[..3], &[1, 2, 3]);
    assert_eq!(v.len(), 3 + compact_record_len(&sample()));
    let mut v = vec![1u8, 2, 3];
    v.shrink_to_fit();
    encode_record_full(&sample(), &mut v);
    assert_eq!(&v[..3], &[1, 2, 3]);
    assert_eq!(v.len(), 3 + RECORD_LEN);
}
