//! The client's `Timeout` bounds the KDC part of a request too (issue 12).
//!
//! libkrb5 waits for a KDC by its own timeouts (several seconds per KDC and
//! pass, with nothing in krb5.h to shorten them per context). Here the
//! client's krb5.conf names a "KDC" on loopback that accepts TCP and reads
//! UDP but never answers: an endpoint whose service ticket is not cached
//! must fail within `Timeout = 3` (plus process start-up), then the client
//! fails over to the secondary, whose ticket is cached, and is served.

mod common;

use common::*;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Slack for the process start-up and the machine's load.
const SLACK: Duration = Duration::from_millis(2500);
const TIMEOUT: Duration = Duration::from_secs(3);

/// A TCP and UDP port of 127.0.0.1 that absorbs everything and answers
/// nothing; the threads stop when the flag is set (bounded in time).
fn black_hole(stop: &Arc<AtomicBool>) -> u16 {
    // The same port number for both protocols (MIT tries UDP, then TCP).
    let (tcp, udp) = (0..50)
        .find_map(|_| {
            let t = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
            let p = t.local_addr().ok()?.port();
            let u = UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).ok()?;
            Some((t, u))
        })
        .expect("a TCP+UDP port pair on 127.0.0.1");
    let port = tcp.local_addr().unwrap().port();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let st = Arc::clone(stop);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let t = Instant::now();
        while !st.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(120) {
            let _ = udp.recv_from(&mut buf);
        }
    });
    holding_listener(tcp, stop);
    port
}

/// Accept connections on `l`, read and discard what they send, never
/// answer, until `stop` (or two minutes).
fn holding_listener(l: TcpListener, stop: &Arc<AtomicBool>) {
    l.set_nonblocking(true).unwrap();
    let st = Arc::clone(stop);
    thread::spawn(move || {
        let t = Instant::now();
        let mut held = Vec::new();
        while !st.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(120) {
            if let Ok((s, _)) = l.accept() {
                let _ = s.set_nonblocking(true);
                held.push(s);
            }
            for s in &mut held {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
}

/// The realm's krb5.conf with its KDC replaced by `port`.
fn krb5_conf_with_kdc(realm: &Realm, port: u16, to: &Path) {
    let text = std::fs::read_to_string(realm.krb5_conf()).unwrap();
    let kdc = format!("127.0.0.1:{}", realm.kdc_port());
    assert!(text.contains(&kdc), "the KDC address is in krb5.conf");
    write_file(to, text.replace(&kdc, &format!("127.0.0.1:{port}")), 0o644);
}

#[test]
fn timeout_bounds_the_kdc_then_the_secondary_serves() {
    let realm = Realm::start();
    let auksd = Auksd::start(
        &realm,
        AuksdOpts {
            timeout: 3,
            ..Default::default()
        },
    );
    let dir = temp_dir("kdc-timeout-");
    let cc = dir.path().join("cc");
    realm.ensure_principal("kdcto", "kdcto-pw");
    realm.kinit_password("kdcto", "kdcto-pw", &cc, &["-f"]);
    // A first ping through the real KDC caches the ticket of auksd's
    // principal (the secondary below); the primary's is never cached.
    let direct = dir.path().join("direct.conf");
    auksd.write_client_conf(&direct, auksd.port(), auksd.port());
    assert_ok(&auks(&realm, &direct, &cc, None, &["-p"]));

    let stop = Arc::new(AtomicBool::new(false));
    let kdc = black_hole(&stop);
    let krb5 = dir.path().join("krb5-blackhole.conf");
    krb5_conf_with_kdc(&realm, kdc, &krb5);
    let primary = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let primary_port = primary.local_addr().unwrap().port();
    holding_listener(primary, &stop);
    let uncached = realm.princ("auks/uncached");
    let conf_for = |secondary: u16, name: &str| {
        let p = dir.path().join(name);
        let text = auksd.conf_text(primary_port, secondary).replacen(
            &format!("PrimaryPrincipal = \"{AUKSD_PRINCIPAL}\""),
            &format!("PrimaryPrincipal = \"{uncached}\""),
            1,
        );
        assert!(text.contains(&uncached) && text.contains("Timeout = 3 ;"));
        write_file(&p, text, 0o644);
        p
    };
    let run = |conf: &Path| {
        let t = Instant::now();
        let o = AuksRun::new(&realm, conf)
            .ccache(&cc)
            .env("KRB5_CONFIG", &krb5.display().to_string())
            .args(&["-p"])
            .timeout(Duration::from_secs(60))
            .run();
        (o, t.elapsed())
    };

    // Primary: its ticket needs the silent KDC; the secondary is served.
    let (o, took) = run(&conf_for(auksd.port(), "failover.conf"));
    assert_ok(&o);
    assert!(
        took >= TIMEOUT - Duration::from_millis(300) && took < TIMEOUT + SLACK,
        "the primary's KDC wait must last Timeout = 3 s, then the secondary answers: took {took:?}"
    );

    // No secondary (closed port): the whole request fails within Timeout.
    let (o, took) = run(&conf_for(closed_port(), "nosecondary.conf"));
    stop.store(true, Ordering::SeqCst);
    assert_fail_with(&o, 4, "no answer to the KDC's service ticket request");
    assert!(
        took < TIMEOUT + SLACK,
        "Timeout = 3 must bound the KDC wait: took {took:?}"
    );
}
