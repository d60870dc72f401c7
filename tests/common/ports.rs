//! Ports the tests need to be CLOSED (nothing listening): fail-over to a dead server,
//! a client that cannot connect. A daemon under test never gets its port from here:
//! auksd binds port 0 and reports the port the OS chose (see `auksd.rs`); the KDC,
//! which cannot report it, retries another port when its bind fails (see `realm.rs`).

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};

/// `n` distinct TCP ports of 127.0.0.1 with nothing listening on them (bound to port 0
/// together, then released): connecting to one is refused, unless some other program
/// happens to take it meanwhile, which is as unlikely as for any ephemeral port.
pub fn closed_ports(n: usize) -> Vec<u16> {
    // keep the listeners open while choosing so the kernel hands out distinct ports
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// One closed port (see [`closed_ports`]).
pub fn closed_port() -> u16 {
    closed_ports(1)[0]
}

/// This host's IPv4 connections to `port` (/proc/net/tcp), the client side
/// in any state, by their local address and port. Any state: a connection
/// taken in `FIN_WAIT2` before a test and seen in `TIME_WAIT` after it (a
/// probe that the daemon had not closed yet) is the same connection, not a
/// new one. Loopback may reuse the port of a connection in TIME_WAIT, so a
/// count of new ones can be lower than the connections made.
pub fn connections_to(port: u16) -> HashSet<String> {
    let t = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let hex = format!(":{port:04X}");
    t.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(2)?.ends_with(&hex).then(|| f[1].to_string())
        })
        .collect()
}
