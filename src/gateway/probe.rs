//! Reachability probe of auksd for `GET /v1/health`: a TCP connection to
//! the primary, then the secondary daemon of auks.conf (no request is sent,
//! so the gateway needs no ACL role of its own).

use auks::config::{ClientConfig, Endpoint};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A numeric port, or a TCP service name from /etc/services.
fn port_of(port: &str) -> Option<u16> {
    if let Ok(n) = port.trim().parse() {
        return Some(n);
    }
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|line| {
        let mut it = line.split('#').next()?.split_whitespace();
        let name = it.next()?;
        let pp = it.next()?;
        let aliases: Vec<&str> = it.collect();
        ((name == port || aliases.contains(&port)) && pp.ends_with("/tcp"))
            .then(|| pp.trim_end_matches("/tcp").parse().ok())
            .flatten()
    })
}

fn try_endpoint(ep: &Endpoint, timeout: Duration) -> Result<(), String> {
    let host = ep.connect_address();
    if host.is_empty() {
        return Err("not configured".into());
    }
    let port = port_of(&ep.port).ok_or_else(|| format!("unknown port {:?}", ep.port))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?;
    let mut last = format!("{host}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(last)
}

/// `Ok` when the primary or the secondary auksd accepts a connection.
pub fn auksd(conf: &ClientConfig, timeout: Duration) -> Result<(), String> {
    let p = try_endpoint(&conf.common.primary, timeout);
    if p.is_ok() {
        return p;
    }
    let s = try_endpoint(&conf.common.secondary, timeout);
    match (p, s) {
        (_, Ok(())) => Ok(()),
        (Err(a), Err(b)) => Err(format!("primary {a}; secondary {b}")),
        (Ok(()), _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port_of("12345"), Some(12345));
        assert_eq!(port_of("no-such-service-qq"), None);
    }
}
