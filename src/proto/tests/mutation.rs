//! Seeded mutation run over the codec: 200 000 inputs (random bytes and mutated
//! valid messages), each fed to [`crate::proto::roundtrip::check`], the oracle the
//! fuzz target shares; a share of them must still decode.

use super::*;
use crate::proto::roundtrip;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn small_corpus() -> Vec<Vec<u8>> {
    let mut c: Vec<Vec<u8>> = Vec::new();
    let r = sample();
    let mut r2 = rec("bob@R", 5, b"");
    r2.crossrealm = true;
    for (x, cap, len) in [(&r, 7, 7), (&r, 16, 7), (&r2, 0, 0), (&r2, 3, 0)] {
        let raw = raw_record(x, cap, len, 0);
        c.push(raw.clone());
        c.push(with_type(24, &raw));
        let mut d = 2i32.to_be_bytes().to_vec();
        d.extend(&raw);
        d.extend(&raw);
        c.push(with_type(26, &d));
        let p = with_type(7, &raw);
        let mut b = (p.len() as u64).to_le_bytes().to_vec();
        b.extend(&p);
        c.push(b);
        let mut b = (p.len() as u64).to_be_bytes().to_vec();
        b.extend(&p);
        c.push(b);
    }
    for q in all_requests().iter().take(4) {
        c.push(encode_request(q).to_vec());
    }
    for q in [
        Request::Get(7),
        Request::Remove(8),
        Request::Close,
        Request::Dump,
    ] {
        c.push(encode_request(&q).to_vec());
    }
    for q in all_replies() {
        if !matches!(q, Reply::Get(_) | Reply::Dump(_)) {
            c.push(encode_reply(&q).to_vec());
        }
    }
    c
}

const INTERESTING: [i32; 14] = [
    0,
    1,
    -1,
    7,
    21,
    24,
    26,
    128,
    129,
    130,
    32768,
    32769,
    i32::MIN,
    i32::MAX,
];

fn mutate(rng: &mut XorShift, buf: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf[i] ^= 1 << rng.below(8);
            }
            1 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf[i] = rng.next() as u8;
            }
            2 => {
                let n = rng.below(buf.len() + 1);
                buf.truncate(n);
            }
            3 => {
                for _ in 0..rng.below(8) {
                    buf.push(rng.next() as u8);
                }
            }
            4 if buf.len() >= 4 => {
                let i = rng.below(buf.len() - 3);
                let v = INTERESTING[rng.below(INTERESTING.len())];
                buf[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            5 if buf.len() >= 4 => {
                // Overwrite an aligned record field.
                let i = (rng.below(buf.len() / 4)) * 4;
                let v = INTERESTING[rng.below(INTERESTING.len())];
                buf[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ if buf.len() >= 8 => {
                // Fix up a send-blob prefix to the new length.
                let n = (buf.len() - 8) as u64;
                let p = if rng.below(2) == 0 {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                };
                buf[..8].copy_from_slice(&p);
            }
            _ => {}
        }
    }
}

#[test]
fn randomized_robustness() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let corpus = small_corpus();
    let mut decoded = 0usize;
    for i in 0..200_000 {
        let buf = if i % 4 == 0 {
            let len = rng.below(64);
            let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 4 && rng.below(2) == 0 {
                // Plausible type, random body.
                b[..3].fill(0);
                b[3] = [0u8, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25, 26][rng.below(15)];
            }
            b
        } else {
            let mut b = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut b);
            b
        };
        decoded += roundtrip::check(&buf);
    }
    // A decent share of mutated inputs must still be valid messages.
    assert!(decoded > 20_000, "only {decoded} decoded");
    // Full-size messages, fewer iterations.
    let big = [
        encode_reply(&Reply::Get(sample())).to_vec(),
        encode_send_blob(&sample()).to_vec(),
        encode_reply(&Reply::Dump(vec![sample(), sample()])).to_vec(),
    ];
    for _ in 0..300 {
        let mut b = big[rng.below(big.len())].clone();
        mutate(&mut rng, &mut b);
        roundtrip::check(&b);
    }
}
