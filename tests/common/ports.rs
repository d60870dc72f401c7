//! Ports the tests need to be CLOSED (nothing listening): fail-over to a dead server,
//! a client that cannot connect. A daemon under test never gets its port from here:
//! auksd binds port 0 and reports the port the OS chose (see `auksd.rs`); the KDC,
//! which cannot report it, retries another port when its bind fails (see `realm.rs`).

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
