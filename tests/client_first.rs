//! The first request of a session goes out with the handshake (versions,
//! AP-REQ and KRB-PRIV request before the daemon's first byte), our auksd
//! answers it, and a daemon that closes such a connection (an older
//! auks-rs auksd did) gets the request again at once, after the AP-REP,
//! on a new connection — and every later request of that client too;
//! with `NAT = yes` as well.
//!
//! A relay between client and daemon counts the frames the client sent
//! before the daemon said anything. One test in this binary: it points
//! the process-wide `KRB5_CONFIG` at the throw-away realm.

mod common;

use auks::client::Client;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

const ALICE_PW: &str = "alice-Pw-1";

/// Complete frames (4-byte length + data) at the start of `buf`.
fn frames(buf: &[u8]) -> usize {
    let (mut n, mut at) = (0, 0);
    while buf.len() >= at + 4 {
        let len = u32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        if buf.len() < at + 4 + len {
            break;
        }
        at += 4 + len;
        n += 1;
    }
    n
}

/// What the client sent before hearing from the daemon: read until it
/// is quiet for 300 ms (it sends all it can at once, then waits).
fn first_flight(c: &mut TcpStream) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("relay: reading the client: {e}"),
        }
    }
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    got
}

/// Relay `conns` connections from `front` to the daemon at `port`, one at
/// a time; the first `refuse` ones are closed after their first flight,
/// as an older auks-rs auksd did. Reports each connection's count of
/// frames in its first flight.
fn relay(front: TcpListener, port: u16, conns: usize, refuse: usize, tx: mpsc::Sender<usize>) {
    for i in 0..conns {
        let (mut client, _) = front.accept().unwrap();
        let first = first_flight(&mut client);
        tx.send(frames(&first)).unwrap();
        if i < refuse {
            drop(client);
            continue;
        }
        let mut daemon = TcpStream::connect(("127.0.0.1", port)).unwrap();
        daemon.write_all(&first).unwrap();
        let (mut c2, mut d2) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut d2);
            let _ = d2.shutdown(Shutdown::Write);
        });
        let _ = std::io::copy(&mut daemon, &mut client);
        let _ = client.shutdown(Shutdown::Write);
        up.join().unwrap();
    }
}

#[test]
fn request_goes_with_the_handshake_and_falls_back_once_refused() {
    let realm = Realm::start();
    std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
    std::env::set_var("KRB5RCACHEDIR", realm.rcache_dir());
    let alice = alice();
    let cc = realm.user_ccache(&alice, ALICE_PW);
    let auksd = Auksd::start(&realm, AuksdOpts::default());
    let client_for = |front: &TcpListener, name: &str| {
        let port = front.local_addr().unwrap().port();
        let conf = auksd.dir().join(name);
        auksd.write_client_conf(&conf, port, port);
        Client::from_config_file(Some(&conf))
            .unwrap()
            .with_auth_ccache(Some(format!("FILE:{}", cc.display())))
    };

    // Our auksd: two versions, the AP-REQ and the request in the first
    // flight, answered.
    let front = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let c = client_for(&front, "first.conf");
    let (tx, rx) = mpsc::channel();
    let port = auksd.port();
    let r = std::thread::spawn(move || relay(front, port, 2, 0, tx));
    c.ping()
        .expect("ping with the request sent with the handshake");
    assert_eq!(rx.recv().unwrap(), 4, "versions, AP-REQ and PING at once");
    let err = c.get(alice.uid).expect_err("nothing stored for alice yet");
    assert!(
        matches!(err, auks::client::ClientError::NotFound { .. }),
        "{err}"
    );
    assert_eq!(rx.recv().unwrap(), 4, "versions, AP-REQ and GET at once");
    r.join().unwrap();

    // A daemon that closes the first such connection: the request is
    // sent again after the AP-REP, then every later one too.
    let front = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let c = client_for(&front, "fallback.conf");
    let (tx, rx) = mpsc::channel();
    let r = std::thread::spawn(move || relay(front, port, 3, 1, tx));
    c.ping().expect("ping after the fallback");
    assert_eq!(rx.recv().unwrap(), 4, "the refused connection");
    assert_eq!(rx.recv().unwrap(), 3, "versions and AP-REQ only, then wait");
    c.ping().expect("second ping");
    assert_eq!(rx.recv().unwrap(), 3, "later requests wait for the AP-REP");
    r.join().unwrap();
    assert!(
        !auksd.log().contains("authentication failed"),
        "{}",
        auksd.log()
    );

    // NAT = yes on both ends: the request sent with the AP-REQ already
    // carries the dummy addresses the daemon expects (spec §2.5).
    let nat = Auksd::start(
        &realm,
        AuksdOpts {
            extra_common: "NAT = yes ;".into(),
            ..AuksdOpts::default()
        },
    );
    let name = format!("FILE:{}", cc.display());
    let c = Client::from_config_file(Some(&nat.conf_path()))
        .unwrap()
        .with_auth_ccache(Some(name.clone()));
    c.ping().expect("ping with NAT = yes");
    c.add_from_ccache(Some(&name)).expect("ADD with NAT = yes");
    let got = c.get(alice.uid).expect("GET with NAT = yes");
    assert_eq!(got.principal, "alice@TEST.REALM");
}
