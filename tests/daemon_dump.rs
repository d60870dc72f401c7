//! Our client reads a DUMP as a C auksd sends it (issue 12): every record
//! padded to the full 32 KiB capacity, and more records than the 4 096 our
//! client once accepted. A stand-in daemon (the library's session layer
//! with the real service keytab of a throw-away KDC) sends 4 200 such
//! records, 138 MB; `Client::dump` returns all of them. That reply is
//! decrypted where it was received (one copy of it, not libkrb5's four):
//! the same reply with one ciphertext byte changed on the way is refused.
//!
//! One test in this binary: it points the process-wide `KRB5_CONFIG` at
//! the throw-away realm (libkrb5 reads it in-process).

mod common;

use auks::client::Client;
use auks::krb5::{Context, Keytab, Principal};
use auks::proto::{self, CredRecord, Request};
use auks::session::{Preauth, PreauthStep, Session, GROW_FROM};
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ALICE_PW: &str = "alice-Pw-1";
const N: u32 = 4200;

fn record(i: u32) -> CredRecord {
    CredRecord {
        principal: format!("user{i}@TEST.REALM"),
        uid: 100_000 + i,
        starttime: 1_700_000_000,
        endtime: 1_700_036_000,
        renew_till: 1_700_600_000,
        addressless: true,
        crossrealm: false,
        data: zeroize::Zeroizing::new(vec![(i % 251) as u8; 1200]),
        status: 0,
    }
}

/// A DUMP_REPLY as a C auksd sends it: full-padding records (138 MB).
fn c_like_reply() -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + N as usize * proto::RECORD_LEN);
    out.extend_from_slice(&26i32.to_be_bytes());
    out.extend_from_slice(&(N as i32).to_be_bytes());
    for i in 0..N {
        proto::encode_record_full(&record(i), &mut out);
    }
    out
}

/// A DUMP_REPLY of exactly [`GROW_FROM`] bytes (compact records): the
/// largest plaintext sent through `krb5_mk_priv`, whose KRB-PRIV is larger
/// than [`GROW_FROM`] and so read in place.
fn boundary_reply() -> (Vec<u8>, u32) {
    let mut recs = Vec::new();
    let mut size = 8;
    while size + proto::MIN_RECORD_LEN + 1200 <= GROW_FROM {
        recs.push(record(recs.len() as u32));
        size += proto::MIN_RECORD_LEN + 1200;
    }
    let mut last = record(recs.len() as u32);
    last.data = zeroize::Zeroizing::new(vec![7; GROW_FROM - size - proto::MIN_RECORD_LEN]);
    recs.push(last);
    let reply = proto::encode_reply(&proto::Reply::Dump(recs));
    assert_eq!(reply.len(), GROW_FROM);
    let n = u32::from_be_bytes(reply[4..8].try_into().unwrap());
    (reply.to_vec(), n)
}

/// Serve one connection as an auksd answers DUMP, with `reply`.
fn c_like_daemon(l: TcpListener, keytab: PathBuf, reply: Vec<u8>) {
    let (mut stream, _) = l.accept().unwrap();
    let ctx = Context::new().unwrap();
    let kt = Keytab::resolve(&ctx, &format!("FILE:{}", keytab.display())).unwrap();
    let sp = Principal::parse(&ctx, AUKSD_PRINCIPAL).unwrap();
    let mut pre = Preauth::new();
    let mut buf = [0u8; 4096];
    let ap_req = 'outer: loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "client went away during the handshake");
        let mut step = pre.feed(&buf[..n]).unwrap();
        loop {
            match step {
                PreauthStep::NeedMore => break,
                PreauthStep::SendOk => {
                    stream.write_all(&[0]).unwrap();
                    step = pre.feed(&[]).unwrap();
                }
                PreauthStep::ApReq(r) => break 'outer r,
                PreauthStep::Refuse(b) => panic!("refused {b}"),
            }
        }
    };
    // As a C auksd: libkrb5's krb5_rd_req and krb5_mk_rep, then its
    // krb5_rd_priv and krb5_mk_priv (the client side is auks-rs's own
    // AP-REQ and KRB-PRIV).
    kt.libkrb5_only();
    let (mut s, _client) = Session::accept(
        &ctx,
        stream,
        &ap_req,
        pre.take_early(),
        false,
        &kt,
        &sp,
        auks::session::ReplayCheck::Off,
        false,
        Duration::from_secs(60),
    )
    .unwrap();
    s.libkrb5_priv_only();
    let req = s.recv(proto::MAX_MESSAGE).unwrap();
    assert_eq!(proto::decode_request(&req).unwrap(), Request::Dump);
    s.send(&reply).unwrap();
    drop(reply);
    let _ = s.recv(proto::MAX_MESSAGE); // CLOSE
}

/// Relay one connection from `front` to the daemon at `port`, flipping
/// one bit of the daemon's byte number `at` on its way to the client.
fn tampering_relay(front: TcpListener, port: u16, at: usize) {
    let (mut client, _) = front.accept().unwrap();
    let mut daemon = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    for s in [&client, &daemon] {
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    }
    let (mut c2, mut d2) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut d2);
        let _ = d2.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = vec![0u8; 1 << 16];
    let mut seen = 0usize;
    loop {
        let n = match daemon.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if (seen..seen + n).contains(&at) {
            buf[at - seen] ^= 0x01;
        }
        seen += n;
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
    assert!(seen > at, "the relay saw only {seen} bytes");
}

#[test]
fn client_reads_a_c_daemon_dump_of_more_than_4096_padded_records() {
    let realm = Realm::start();
    let alice = alice();
    let alice_cc = realm.user_ccache(&alice, ALICE_PW);
    // For its files. The clients' `Timeout` of 1 s is shorter than the
    // sealing of the 138 MB reply (1.4–1.9 s here): the AP-REP must come
    // before it, not with it.
    let auksd = Auksd::start(
        &realm,
        AuksdOpts {
            timeout: 1,
            ..Default::default()
        },
    );
    let keytab = auksd.keytab_path();
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let conf = auksd.dir().join("c-like.conf");
    auksd.write_client_conf(&conf, port, port);
    // One test in this binary: nothing else reads the environment
    // concurrently, and no libkrb5 context exists yet.
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    std::env::set_var("KRB5RCACHEDIR", realm.rcache_dir());
    // The 138 MB reply is built before the client connects (the stand-in
    // reads the AP-REQ only then).
    let reply = c_like_reply();
    let server = std::thread::spawn(move || c_like_daemon(l, keytab, reply));
    let c = Client::from_config_file(Some(&conf))
        .unwrap()
        .with_auth_ccache(Some(format!("FILE:{}", alice_cc.display())));
    let t = Instant::now();
    let all = c.dump().expect("DUMP of a C-sized reply");
    eprintln!(
        "figure: DUMP of {N} full-padding records ({} MB) read in {:.2} s",
        (8 + N as usize * proto::RECORD_LEN) / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    server.join().expect("stand-in daemon");
    assert_eq!(all.len(), N as usize);
    for (i, r) in all.iter().enumerate() {
        let want = record(i as u32);
        assert_eq!(r.uid, want.uid);
        assert_eq!(r.principal, want.principal);
        assert_eq!(
            &r.data[..],
            &want.data[..],
            "record {i}: data (not padding)"
        );
    }
    drop(all);

    // The same reply with one bit of its ciphertext changed on the way:
    // refused by the integrity check of the in-place decryption.
    let l2 = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let daemon_port = l2.local_addr().unwrap().port();
    let kt2 = auksd.keytab_path();
    let reply2 = c_like_reply();
    let server2 = std::thread::spawn(move || c_like_daemon(l2, kt2, reply2));
    let front = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let front_port = front.local_addr().unwrap().port();
    let conf2 = auksd.dir().join("tampered.conf");
    auksd.write_client_conf(&conf2, front_port, front_port);
    let relay = std::thread::spawn(move || tampering_relay(front, daemon_port, 50_000_000));
    let c2 = Client::from_config_file(Some(&conf2))
        .unwrap()
        .with_auth_ccache(Some(format!("FILE:{}", alice_cc.display())));
    let err = c2
        .dump()
        .expect_err("a tampered DUMP reply must be refused");
    assert_eq!(err.exit_code(), 9, "a protocol error: {err}");
    assert!(err.to_string().contains("integrity check failed"), "{err}");
    relay.join().expect("relay");
    server2.join().expect("second stand-in daemon");

    // Both ways between libkrb5's KRB-PRIV and ours: a reply sealed by
    // krb5_mk_priv (exactly GROW_FROM bytes of plaintext) read in place,
    // and a request sealed in place (send_last) read by krb5_rd_priv in
    // the stand-in daemon (which asserts it is a DUMP request).
    let (reply, n) = boundary_reply();
    let want = proto::decode_reply(&reply).unwrap();
    let l3 = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port3 = l3.local_addr().unwrap().port();
    let kt3 = auksd.keytab_path();
    let server3 = std::thread::spawn(move || c_like_daemon(l3, kt3, reply));
    let ctx = Context::new().unwrap();
    let cc = auks::krb5::Ccache::resolve(&ctx, &format!("FILE:{}", alice_cc.display())).unwrap();
    let mut s = session(&ctx, port3, &cc, Duration::from_secs(60));
    s.send_last(&proto::encode_request(&Request::Dump)).unwrap();
    let plain = s
        .recv_within(proto::MAX_DUMP_MESSAGE, Duration::from_secs(60))
        .unwrap();
    let got = proto::decode_reply(&plain).unwrap();
    assert_eq!(got, want, "the {n} records of the boundary reply");
    drop(s);
    server3.join().expect("third stand-in daemon");
}
