//! Feeds arbitrary bytes to every decoder of `auks::proto`; whatever decodes
//! must re-encode and decode back to the same value. The check itself is
//! `auks::proto::roundtrip::check`, which the unit tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    auks::proto::roundtrip::check(data);
});
