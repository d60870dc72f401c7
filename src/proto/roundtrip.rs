//! The round-trip oracle of the codec, shared by the unit tests
//! (`proto::tests`, run by `cargo test`) and the fuzz target
//! (`fuzz/fuzz_targets/decode.rs`): not part of the API.

use super::{
    compact_record_len, decode_record, decode_reply, decode_request, decode_send_blob,
    encode_record, encode_record_full, encode_reply, encode_request, encode_send_blob, RECORD_LEN,
};

/// Feeds `buf` to every decoder; whatever decodes must re-encode and decode back to
/// the same value (records both in the compact and the full encoding). Returns how
/// many decoders accepted `buf`.
///
/// # Panics
/// When a decoded value does not survive the round trip: that is the bug it finds.
pub fn check(buf: &[u8]) -> usize {
    let mut ok = 0;
    if let Ok(req) = decode_request(buf) {
        ok += 1;
        assert_eq!(decode_request(&encode_request(&req)).as_ref(), Ok(&req));
    }
    if let Ok(rep) = decode_reply(buf) {
        ok += 1;
        assert!(rep.validate().is_ok());
        assert_eq!(decode_reply(&encode_reply(&rep)).as_ref(), Ok(&rep));
    }
    if let Ok(rec) = decode_send_blob(buf) {
        ok += 1;
        assert_eq!(decode_send_blob(&encode_send_blob(&rec)).as_ref(), Ok(&rec));
    }
    if let Ok((rec, used)) = decode_record(buf) {
        ok += 1;
        assert!(used <= buf.len());
        let mut out = Vec::new();
        encode_record(&rec, &mut out);
        let n = compact_record_len(&rec);
        assert_eq!(decode_record(&out), Ok((rec.clone(), n)));
        let mut out = Vec::new();
        encode_record_full(&rec, &mut out);
        assert_eq!(decode_record(&out), Ok((rec, RECORD_LEN)));
    }
    ok
}
