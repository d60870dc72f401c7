//! Feeds arbitrary bytes to every decoder of `auks::proto`; whatever decodes
//! must re-encode and decode back to the same value.
#![no_main]

use auks::proto::{
    compact_record_len, decode_record, decode_reply, decode_request, decode_send_blob,
    encode_record, encode_record_full, encode_reply, encode_request, encode_send_blob, RECORD_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_request(data) {
        assert_eq!(decode_request(&encode_request(&req)).as_ref(), Ok(&req));
    }
    if let Ok(rep) = decode_reply(data) {
        assert!(rep.validate().is_ok());
        assert_eq!(decode_reply(&encode_reply(&rep)).as_ref(), Ok(&rep));
    }
    if let Ok(rec) = decode_send_blob(data) {
        assert_eq!(decode_send_blob(&encode_send_blob(&rec)).as_ref(), Ok(&rec));
    }
    if let Ok((rec, used)) = decode_record(data) {
        assert!(used <= data.len());
        let mut out = Vec::new();
        encode_record(&rec, &mut out);
        let n = compact_record_len(&rec);
        assert_eq!(decode_record(&out), Ok((rec.clone(), n)));
        let mut out = Vec::new();
        encode_record_full(&rec, &mut out);
        assert_eq!(decode_record(&out), Ok((rec, RECORD_LEN)));
    }
});
