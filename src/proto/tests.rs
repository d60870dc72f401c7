//! Unit tests of the codec: every message and record against hand-built bytes, the
//! bounds and the C quirks; `mutation` runs seeded mutated inputs through
//! `proto::roundtrip::check` (the same oracle the fuzz target uses).

use super::*;

fn rec(principal: &str, uid: u32, data: &[u8]) -> CredRecord {
    CredRecord {
        principal: principal.to_owned(),
        uid,
        starttime: 1_700_000_000,
        endtime: 1_700_036_000,
        renew_till: 1_700_604_800,
        addressless: true,
        crossrealm: false,
        data: Zeroizing::new(data.to_vec()),
        status: 0,
    }
}

fn sample() -> CredRecord {
    rec("alice@EXAMPLE.ORG", 1000, &[0x76, 0x82, 1, 2, 3, 4, 5])
}

/// Hand-builds a record with an arbitrary capacity and padding byte.
fn raw_record(r: &CredRecord, cap: i32, len: i32, pad: u8) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&129i32.to_be_bytes());
    let mut p = r.principal.as_bytes().to_vec();
    p.push(0);
    p.resize(PRINCIPAL_FIELD, pad);
    v.extend_from_slice(&p);
    v.extend_from_slice(&r.uid.to_be_bytes());
    for t in [r.starttime, r.endtime, r.renew_till] {
        v.extend_from_slice(&(t as u32).to_be_bytes());
    }
    v.extend_from_slice(&i32::from(r.addressless).to_be_bytes());
    v.extend_from_slice(&i32::from(r.crossrealm).to_be_bytes());
    v.extend_from_slice(&cap.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    let mut d = r.data.to_vec();
    d.resize(cap.max(0) as usize, pad);
    v.extend_from_slice(&d);
    v.extend_from_slice(&r.status.to_be_bytes());
    v
}

fn with_type(t: i32, body: &[u8]) -> Vec<u8> {
    let mut v = t.to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn all_requests() -> Vec<Request> {
    vec![
        Request::Ping,
        Request::List,
        Request::Add(Zeroizing::new(vec![1, 2, 3])),
        Request::Add(Zeroizing::new(Vec::new())),
        Request::Add(Zeroizing::new(vec![0xAB; MAX_CRED_DATA])),
        Request::Get(1000),
        Request::Get(u32::MAX),
        Request::Remove(0),
        Request::Close,
        Request::Dump,
    ]
}

fn all_replies() -> Vec<Reply> {
    let mut big = sample();
    big.data = Zeroizing::new(vec![7; MAX_CRED_DATA]);
    big.principal = "p".repeat(MAX_PRINCIPAL_LEN);
    big.starttime = 0;
    big.endtime = i64::from(u32::MAX);
    big.crossrealm = true;
    big.status = -5;
    vec![
        Reply::Ping,
        Reply::Error(ErrorInfo::default()),
        Reply::Error(ErrorInfo {
            code: Some(-100002),
            reason: Some("cred with matching uid not found".into()),
        }),
        Reply::Error(ErrorInfo {
            code: Some(1),
            reason: Some(String::new()),
        }),
        Reply::Add,
        Reply::Get(sample()),
        Reply::Get(big.clone()),
        Reply::Get(CredRecord::default()),
        Reply::Remove,
        Reply::Dump(Vec::new()),
        Reply::Dump(vec![sample(), big, rec("bob@X", 1001, b"")]),
    ]
}

#[test]
fn constants() {
    assert_eq!(MIN_RECORD_LEN, 169);
    assert_eq!(RECORD_LEN, 32937);
    assert_eq!(GET_REPLY_LEN, 32941);
    // a request or a non-DUMP reply: one full-capacity record at most;
    // DUMP replies are bounded by their record count instead
    assert_eq!(MAX_MESSAGE, 4 + 32937);
    assert_eq!(MAX_DUMP_RECORDS, 1_000_000);
    for v in [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25, 26] {
        assert_eq!(MsgType::try_from(v).unwrap().as_i32(), v);
    }
    for v in [-1, 8, 19, 27, i32::MAX, i32::MIN] {
        assert_eq!(MsgType::try_from(v), Err(ProtoError::UnknownType(v)));
    }
    assert!(MsgType::CredDumpRequest.is_request());
    assert!(!MsgType::PingReply.is_request());
}

#[test]
fn request_round_trips_and_bytes() {
    for r in all_requests() {
        let enc = encode_request(&r);
        assert_eq!(decode_request(&enc).unwrap(), r);
    }
    assert_eq!(&encode_request(&Request::Ping)[..], [0, 0, 0, 0]);
    assert_eq!(&encode_request(&Request::List)[..], [0, 0, 0, 1]);
    assert_eq!(&encode_request(&Request::Close)[..], [0, 0, 0, 5]);
    assert_eq!(&encode_request(&Request::Dump)[..], [0, 0, 0, 6]);
    assert_eq!(
        &encode_request(&Request::Get(0x01020304))[..],
        [0, 0, 0, 3, 1, 2, 3, 4]
    );
    assert_eq!(
        &encode_request(&Request::Remove(u32::MAX))[..],
        [0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(
        &encode_request(&Request::Add(Zeroizing::new(vec![9, 8])))[..],
        [0, 0, 0, 2, 0, 0, 0, 2, 9, 8]
    );
}

#[test]
fn reply_round_trips_and_sizes() {
    for r in all_replies() {
        let enc = encode_reply(&r);
        assert_eq!(decode_reply(&enc).unwrap(), r, "{r:?}");
        let expected = match &r {
            Reply::Get(rec) => Some(4 + MIN_RECORD_LEN + rec.data.len()),
            Reply::Dump(v) => Some(8 + v.iter().map(compact_record_len).sum::<usize>()),
            Reply::Error(ErrorInfo { code: None, .. }) => Some(4),
            Reply::Error(_) => None,
            _ => Some(4),
        };
        if let Some(n) = expected {
            assert_eq!(enc.len(), n);
        }
    }
    assert_eq!(
        &encode_reply(&Reply::Error(ErrorInfo::default()))[..],
        [0, 0, 0, 0x15]
    );
    assert_eq!(&encode_reply(&Reply::Ping)[..], [0, 0, 0, 20]);
    assert_eq!(&encode_reply(&Reply::Add)[..], [0, 0, 0, 23]);
    assert_eq!(&encode_reply(&Reply::Remove)[..], [0, 0, 0, 25]);
    assert_eq!(
        &encode_reply(&Reply::Dump(vec![]))[..],
        [0, 0, 0, 26, 0, 0, 0, 0]
    );
}

#[test]
fn truncation_message_text() {
    let e = decode_request(&[0, 0, 0, 3]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "message truncated: expected 4 more bytes for uid, 0 available"
    );
    assert_eq!(
        decode_request(&[0, 0, 0, 3, 1, 2]).unwrap_err(),
        ProtoError::Truncated {
            what: "uid",
            needed: 4,
            available: 2
        }
    );
    assert!(matches!(
        decode_request(&[]).unwrap_err(),
        ProtoError::Truncated { .. }
    ));
    assert!(matches!(
        decode_reply(&[0, 0]).unwrap_err(),
        ProtoError::Truncated { .. }
    ));
}

#[test]
fn every_truncation_of_get_and_dump_errors() {
    let get = encode_reply(&Reply::Get(sample()));
    for n in 0..get.len() {
        assert!(decode_reply(&get[..n]).is_err(), "prefix {n}");
    }
    assert!(decode_reply(&get).is_ok());
    let dump = encode_reply(&Reply::Dump(vec![sample(), rec("b@R", 2, &[1; 100])]));
    assert_eq!(dump.len(), 8 + 2 * MIN_RECORD_LEN + 7 + 100);
    for n in 0..dump.len() {
        assert!(decode_reply(&dump[..n]).is_err(), "prefix {n}");
    }
    assert!(decode_reply(&dump).is_ok());
    let blob = encode_send_blob(&sample());
    for n in 0..blob.len() {
        assert!(decode_send_blob(&blob[..n]).is_err(), "prefix {n}");
    }
    for r in all_requests() {
        let enc = encode_request(&r);
        for n in 0..enc.len() {
            assert!(decode_request(&enc[..n]).is_err());
        }
    }
}

#[test]
fn trailing_bytes_rejected() {
    for r in all_requests() {
        let mut enc = encode_request(&r).to_vec();
        enc.push(0);
        assert_eq!(decode_request(&enc), Err(ProtoError::TrailingBytes(1)));
    }
    for r in all_replies() {
        if matches!(r, Reply::Error(_)) {
            continue;
        }
        let mut enc = encode_reply(&r).to_vec();
        enc.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_reply(&enc), Err(ProtoError::TrailingBytes(3)));
    }
    let mut blob = encode_send_blob(&sample()).to_vec();
    blob.push(0);
    let n = (blob.len() - 8) as u64;
    blob[..8].copy_from_slice(&n.to_le_bytes());
    assert_eq!(decode_send_blob(&blob), Err(ProtoError::TrailingBytes(1)));
}

#[test]
fn wrong_direction_and_unknown_types() {
    assert_eq!(
        decode_request(&[0, 0, 0, 7]),
        Err(ProtoError::UnknownType(7))
    );
    assert_eq!(
        decode_request(&[0, 0, 0, 99]),
        Err(ProtoError::UnknownType(99))
    );
    assert_eq!(
        decode_request(&[0, 0, 0, 20]),
        Err(ProtoError::UnexpectedType {
            got: MsgType::PingReply,
            expected: "request"
        })
    );
    assert_eq!(
        decode_reply(&[0, 0, 0, 3, 0, 0, 0, 0]),
        Err(ProtoError::UnexpectedType {
            got: MsgType::GetRequest,
            expected: "reply"
        })
    );
    assert_eq!(
        decode_reply(&[0, 0, 0, 22]),
        Err(ProtoError::UnknownType(22))
    );
    assert_eq!(
        decode_reply(&[0xff, 0xff, 0xff, 0xff]),
        Err(ProtoError::UnknownType(-1))
    );
}

#[test]
fn add_length_checks() {
    assert_eq!(
        decode_request(&[0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfb]),
        Err(ProtoError::BadAddLength(-5))
    );
    let mut m = with_type(2, &32769i32.to_be_bytes());
    m.extend(vec![0; 32769]);
    assert_eq!(decode_request(&m), Err(ProtoError::BadAddLength(32769)));
    assert!(matches!(
        decode_request(&with_type(2, &[0, 0, 0, 10, 1, 2])),
        Err(ProtoError::Truncated {
            needed: 10,
            available: 2,
            ..
        })
    ));
    // C sends `[2]` alone for an empty ADD; we require the length.
    assert!(decode_request(&[0, 0, 0, 2]).is_err());
}

#[test]
fn dump_count_checks() {
    for c in [-1i32, i32::MIN, 1_000_001, i32::MAX] {
        assert_eq!(
            decode_reply(&with_type(26, &c.to_be_bytes())),
            Err(ProtoError::BadDumpCount(c))
        );
    }
    assert_eq!(
        decode_reply(&with_type(26, &4096i32.to_be_bytes())),
        Err(ProtoError::DumpCountExceedsMessage {
            count: 4096,
            needed: 4096 * 169,
            available: 0
        })
    );
    // Count says 2, one record present.
    let mut body = 2i32.to_be_bytes().to_vec();
    body.extend(raw_record(&sample(), 400, 7, 0));
    assert!(matches!(
        decode_reply(&with_type(26, &body)),
        Err(ProtoError::Truncated { .. })
    ));
    // Count says 1, two records present.
    let mut body = 1i32.to_be_bytes().to_vec();
    body.extend(raw_record(&sample(), 0, 0, 0));
    body.extend(raw_record(&sample(), 0, 0, 0));
    assert_eq!(
        decode_reply(&with_type(26, &body)),
        Err(ProtoError::TrailingBytes(MIN_RECORD_LEN))
    );
    // Small-capacity records in a dump.
    let mut body = 3i32.to_be_bytes().to_vec();
    let mut r0 = sample();
    r0.data = Zeroizing::new(Vec::new());
    for _ in 0..3 {
        body.extend(raw_record(&r0, 0, 0, 0));
    }
    assert_eq!(
        decode_reply(&with_type(26, &body)),
        Ok(Reply::Dump(vec![r0.clone(), r0.clone(), r0]))
    );
}

#[test]
fn error_reply_extension() {
    let plain = [0u8, 0, 0, 21];
    assert_eq!(decode_reply(&plain), Ok(Reply::Error(ErrorInfo::default())));
    let info = ErrorInfo {
        code: Some(-300205),
        reason: Some("requester is not authorized to do that".into()),
    };
    let enc = encode_reply(&Reply::Error(info.clone()));
    assert_eq!(enc.len(), 12 + 38);
    assert_eq!(&enc[..4], &plain);
    assert_eq!(decode_reply(&enc), Ok(Reply::Error(info.clone())));
    // Extra bytes after a well-formed extension are ignored.
    let mut longer = enc.to_vec();
    longer.extend_from_slice(b"future");
    assert_eq!(decode_reply(&longer), Ok(Reply::Error(info)));
    // Malformed extensions fall back to the plain error.
    let bad: [&[u8]; 6] = [
        &[0, 0, 0, 21, 1],
        &[0, 0, 0, 21, 0, 0, 0, 1],
        &[0, 0, 0, 21, 0, 0, 0, 1, 0, 0],
        &[0, 0, 0, 21, 0, 0, 0, 1, 0, 0, 0, 5, b'a'],
        &[0, 0, 0, 21, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 21, 0, 0, 0, 1, 0, 0, 4, 1],
    ];
    for b in bad {
        assert_eq!(decode_reply(b), Ok(Reply::Error(ErrorInfo::default())));
    }
    // Code only / reason only normalise to Some/Some.
    let enc = encode_reply(&Reply::Error(ErrorInfo {
        code: Some(7),
        reason: None,
    }));
    assert_eq!(
        decode_reply(&enc),
        Ok(Reply::Error(ErrorInfo {
            code: Some(7),
            reason: Some(String::new())
        }))
    );
    let enc = encode_reply(&Reply::Error(ErrorInfo {
        code: None,
        reason: Some("x".into()),
    }));
    assert_eq!(
        decode_reply(&enc),
        Ok(Reply::Error(ErrorInfo {
            code: Some(0),
            reason: Some("x".into())
        }))
    );
    // Long reasons are cut at a char boundary to 1024 bytes.
    let long = "é".repeat(600); // 1200 bytes
    let enc = encode_reply(&Reply::Error(ErrorInfo {
        code: Some(1),
        reason: Some(long),
    }));
    match decode_reply(&enc) {
        Ok(Reply::Error(ErrorInfo {
            reason: Some(s), ..
        })) => assert_eq!(s, "é".repeat(512)),
        other => panic!("{other:?}"),
    }
    // Invalid UTF-8 is replaced, code kept.
    let m = [0, 0, 0, 21, 0, 0, 0, 9, 0, 0, 0, 2, b'a', 0xff];
    assert_eq!(
        decode_reply(&m),
        Ok(Reply::Error(ErrorInfo {
            code: Some(9),
            reason: Some("a\u{fffd}".into())
        }))
    );
}

#[test]
fn send_blob_both_endiannesses() {
    let r = sample();
    let le = encode_send_blob(&r);
    let p = (4 + RECORD_LEN) as u64;
    assert_eq!(le.len(), 8 + 4 + RECORD_LEN);
    assert_eq!(le[..8], p.to_le_bytes());
    assert_eq!(le[8..12], [0, 0, 0, 7]);
    assert_eq!(decode_send_blob(&le).unwrap(), r);
    let mut be = le.to_vec();
    be[..8].copy_from_slice(&p.to_be_bytes());
    assert_eq!(decode_send_blob(&be).unwrap(), r);
    // Small hand-built record, both orders.
    let mut payload = with_type(7, &raw_record(&r, 2048, 7, 0x55));
    let n = payload.len() as u64;
    for prefix in [n.to_le_bytes(), n.to_be_bytes()] {
        let mut b = prefix.to_vec();
        b.append(&mut payload.clone());
        assert_eq!(decode_send_blob(&b).unwrap(), r);
    }
    // Wrong length.
    let mut b = (n + 1).to_le_bytes().to_vec();
    b.append(&mut payload);
    assert!(matches!(
        decode_send_blob(&b),
        Err(ProtoError::SendBlobLength { .. })
    ));
    // Wrong type.
    let mut b = le.to_vec();
    b[11] = 24;
    assert_eq!(
        decode_send_blob(&b),
        Err(ProtoError::UnexpectedType {
            got: MsgType::GetReply,
            expected: "send blob (CRED_DUMP_REQUEST)"
        })
    );
    b[11] = 99;
    assert_eq!(decode_send_blob(&b), Err(ProtoError::UnknownType(99)));
    assert!(decode_send_blob(&[0; 8]).is_err());
    assert!(decode_send_blob(&[]).is_err());
}

#[test]
fn validation() {
    assert!(sample().validate().is_ok());
    assert!(CredRecord::default().validate().is_ok());
    let mut r = sample();
    r.principal = "a".repeat(129);
    assert_eq!(r.validate(), Err(ProtoError::PrincipalTooLong(129)));
    r.principal = "a\0b".into();
    assert_eq!(r.validate(), Err(ProtoError::PrincipalContainsNul));
    let mut r = sample();
    r.data = Zeroizing::new(vec![0; MAX_CRED_DATA + 1]);
    assert_eq!(r.validate(), Err(ProtoError::CredDataTooLarge(32769)));
    let mut r = sample();
    r.endtime = -1;
    assert!(matches!(
        r.validate(),
        Err(ProtoError::TimeOutOfRange {
            field: "endtime",
            ..
        })
    ));
    r.endtime = i64::from(u32::MAX) + 1;
    assert!(r.validate().is_err());
    // Times after 2038 survive (unsigned on the wire).
    let mut r = sample();
    r.endtime = 4_000_000_000;
    let enc = encode_reply(&Reply::Get(r.clone()));
    assert_eq!(decode_reply(&enc), Ok(Reply::Get(r)));
    assert!(Request::Add(Zeroizing::new(vec![0; 32769]))
        .validate()
        .is_err());
    let many = Reply::Dump(vec![CredRecord::default(); MAX_DUMP_RECORDS + 1]);
    assert_eq!(
        many.validate(),
        Err(ProtoError::TooManyDumpRecords(MAX_DUMP_RECORDS + 1))
    );
}

mod mutation;
mod record;
