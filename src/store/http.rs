//! The HTTP/1.1 transport to etcd's v3 JSON API (its gRPC gateway): one
//! POST of a JSON body, a JSON reply read with `Content-Length` or chunked
//! framing, keep-alive connections, plain TCP or TLS (rustls, optional client
//! certificate). Every read and write has a deadline and every length read
//! from the network is bounded before anything is allocated for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::StoreError;

/// Largest response body accepted (one page of a range, a watch event).
pub const MAX_BODY: usize = 64 << 20;
/// Largest header block accepted.
const MAX_HEADERS: usize = 16 << 10;
/// Largest chunk-size line or header line.
const MAX_LINE: usize = 4096;

/// One etcd client URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `http://host:port` or `https://host:port` (IPv6 in brackets).
    pub fn parse(url: &str) -> Result<Endpoint, StoreError> {
        let bad = |why: &str| StoreError::Config(format!("etcd endpoint {url}: {why}"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("expected http:// or https://"));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, p) = r
                .split_once("]:")
                .ok_or_else(|| bad("expected [addr]:port"))?;
            (h.to_string(), p)
        } else {
            let (h, p) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected host:port"))?;
            (h.to_string(), p)
        };
        let port = port.parse().map_err(|_| bad("invalid port"))?;
        if host.is_empty() || host.contains('/') {
            return Err(bad("invalid host"));
        }
        Ok(Endpoint { tls, host, port })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.tls { "https" } else { "http" };
        write!(f, "{s}://{}", self.authority())
    }
}

/// Builds the TLS client configuration: the CA bundle that signs the etcd
/// servers' certificates and, optionally, our client certificate and key.
pub fn tls_config(
    ca: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, StoreError> {
    let tls_err = |what: &Path, e: &dyn std::fmt::Display| {
        StoreError::Config(format!("etcd TLS file {}: {e}", what.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| tls_err(ca, &e))? {
        let c = c.map_err(|e| tls_err(ca, &e))?;
        roots.add(c).map_err(|e| tls_err(ca, &e))?;
    }
    if roots.is_empty() {
        return Err(tls_err(ca, &"no certificate found"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let cfg = match (cert, key) {
        (Some(c), Some(k)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(c)
                .map_err(|e| tls_err(c, &e))?
                .collect::<Result<_, _>>()
                .map_err(|e| tls_err(c, &e))?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(|e| tls_err(k, &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_err(c, &e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One keep-alive connection to one endpoint.
pub struct Conn {
    io: BufReader<Stream>,
    authority: String,
}

/// How a response body is framed.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A response whose body is read piece by piece (a watch stream).
pub struct Body<'a> {
    conn: &'a mut Conn,
    framing: Framing,
    /// Bytes left in the current chunk (chunked) or body (length).
    left: usize,
    done: bool,
}

/// Text of the error of a read or write that reached its deadline.
pub const TIMED_OUT: &str = "etcd did not answer in time";

fn io_err(e: std::io::Error) -> StoreError {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    match e.kind() {
        WouldBlock | TimedOut => StoreError::Unavailable(TIMED_OUT.into()),
        _ => StoreError::Unavailable(format!("etcd connection: {e}")),
    }
}

fn proto_err(why: impl Into<String>) -> StoreError {
    StoreError::Protocol(why.into())
}

impl Conn {
    /// Connects to `ep` within `timeout` (TLS handshake included).
    pub fn connect(
        ep: &Endpoint,
        tls: Option<&Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Conn, StoreError> {
        let addrs: Vec<_> = (ep.host.as_str(), ep.port)
            .to_socket_addrs()
            .map_err(|e| StoreError::Unavailable(format!("{ep}: {e}")))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            let why = last.map_or("no address".to_string(), |e| e.to_string());
            StoreError::Unavailable(format!("{ep}: {why}"))
        })?;
        tcp.set_nodelay(true).map_err(io_err)?;
        tcp.set_read_timeout(Some(timeout)).map_err(io_err)?;
        tcp.set_write_timeout(Some(timeout)).map_err(io_err)?;
        let stream = if ep.tls {
            let cfg = tls.ok_or_else(|| {
                StoreError::Config(format!("{ep}: https endpoint but no EtcdCAFile"))
            })?;
            let name = ServerName::try_from(ep.host.clone())
                .map_err(|e| StoreError::Config(format!("{ep}: {e}")))?;
            let conn = rustls::ClientConnection::new(cfg.clone(), name)
                .map_err(|e| StoreError::Unavailable(format!("{ep}: TLS: {e}")))?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            while s.conn.is_handshaking() {
                s.conn
                    .complete_io(&mut s.sock)
                    .map_err(|e| StoreError::Unavailable(format!("{ep}: TLS handshake: {e}")))?;
            }
            Stream::Tls(Box::new(s))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Conn {
            io: BufReader::with_capacity(64 << 10, stream),
            authority: ep.authority(),
        })
    }

    /// Sets the time one read or write may block.
    pub fn set_timeout(&self, t: Duration) -> Result<(), StoreError> {
        let t = t.max(Duration::from_millis(1));
        let s = self.io.get_ref().tcp();
        s.set_read_timeout(Some(t)).map_err(io_err)?;
        s.set_write_timeout(Some(t)).map_err(io_err)
    }

    /// POSTs `body` to `path` and returns the status and the response body
    /// framing, leaving the body to be read.
    pub fn post(&mut self, path: &str, body: &[u8]) -> Result<(u16, Body<'_>), StoreError> {
        self.post_with(path, body, &[])
    }

    /// [`Conn::post`] with extra header lines (`name: value`, no CRLF).
    pub fn post_with(
        &mut self,
        path: &str,
        body: &[u8],
        headers: &[&str],
    ) -> Result<(u16, Body<'_>), StoreError> {
        let mut req = Vec::with_capacity(body.len() + 200);
        write!(
            req,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
            self.authority,
        )
        .map_err(io_err)?;
        for h in headers {
            if h.contains(['\r', '\n']) {
                return Err(proto_err("header with a line break"));
            }
            write!(req, "{h}\r\n").map_err(io_err)?;
        }
        write!(req, "Content-Length: {}\r\n\r\n", body.len()).map_err(io_err)?;
        req.extend_from_slice(body);
        let s = self.io.get_mut();
        s.write_all(&req).map_err(io_err)?;
        s.flush().map_err(io_err)?;
        self.read_head()
    }

    /// POSTs and reads the whole body (bounded by [`MAX_BODY`]).
    pub fn post_all(&mut self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), StoreError> {
        let (status, mut b) = self.post(path, body)?;
        let mut out = Vec::new();
        b.read_to_end_bounded(&mut out, MAX_BODY)?;
        Ok((status, out))
    }

    fn read_line(&mut self, out: &mut String) -> Result<(), StoreError> {
        out.clear();
        let mut raw = Vec::new();
        let n = (&mut self.io)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut raw)
            .map_err(io_err)?;
        if n == 0 {
            return Err(StoreError::Unavailable("etcd closed the connection".into()));
        }
        if !raw.ends_with(b"\n") {
            return Err(proto_err("HTTP line too long"));
        }
        *out = String::from_utf8(raw).map_err(|_| proto_err("HTTP line is not UTF-8"))?;
        while out.ends_with(['\r', '\n']) {
            out.pop();
        }
        Ok(())
    }

    fn read_head(&mut self) -> Result<(u16, Body<'_>), StoreError> {
        let mut line = String::new();
        self.read_line(&mut line)?;
        let status: u16 = line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| line.strip_prefix("HTTP/1.0 "))
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| proto_err(format!("bad HTTP status line {line:?}")))?;
        let mut framing = Framing::UntilClose;
        let mut total = 0;
        loop {
            self.read_line(&mut line)?;
            total += line.len() + 2;
            if total > MAX_HEADERS {
                return Err(proto_err("HTTP headers too long"));
            }
            if line.is_empty() {
                break;
            }
            let Some((k, v)) = line.split_once(':') else {
                return Err(proto_err("bad HTTP header line"));
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                let n: usize = v.parse().map_err(|_| proto_err("bad Content-Length"))?;
                if n > MAX_BODY {
                    return Err(proto_err(format!("response of {n} bytes is too large")));
                }
                framing = Framing::Length(n);
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.eq_ignore_ascii_case("chunked")
            {
                framing = Framing::Chunked;
            }
        }
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Ok((
            status,
            Body {
                done: matches!(framing, Framing::Length(0)),
                conn: self,
                framing,
                left,
            },
        ))
    }
}

impl Body<'_> {
    /// Reads the next piece of the body into `buf` (appending); `Ok(0)` at
    /// the end.
    fn read_some(&mut self, buf: &mut Vec<u8>, room: usize) -> Result<usize, StoreError> {
        if self.done {
            return Ok(0);
        }
        if matches!(self.framing, Framing::Chunked) && self.left == 0 {
            let mut line = String::new();
            self.conn.read_line(&mut line)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(size, 16).map_err(|_| proto_err("bad chunk size"))?;
            if n > MAX_BODY {
                return Err(proto_err("chunk too large"));
            }
            if n == 0 {
                // Trailers, up to the empty line.
                loop {
                    self.conn.read_line(&mut line)?;
                    if line.is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(0);
            }
            self.left = n;
        }
        let want = match self.framing {
            Framing::UntilClose => room.min(64 << 10),
            _ => self.left.min(room).min(64 << 10),
        };
        if want == 0 {
            return Err(proto_err(format!("response larger than {MAX_BODY} bytes")));
        }
        let start = buf.len();
        buf.resize(start + want, 0);
        let n = match self.conn.io.read(&mut buf[start..]) {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(start);
                return Err(io_err(e));
            }
        };
        buf.truncate(start + n);
        if n == 0 {
            if matches!(self.framing, Framing::UntilClose) {
                self.done = true;
                return Ok(0);
            }
            return Err(StoreError::Unavailable("etcd closed the connection".into()));
        }
        if !matches!(self.framing, Framing::UntilClose) {
            self.left -= n;
            if self.left == 0 {
                match self.framing {
                    Framing::Length(_) => self.done = true,
                    _ => {
                        let mut crlf = [0u8; 2];
                        self.conn.io.read_exact(&mut crlf).map_err(io_err)?;
                        if &crlf != b"\r\n" {
                            return Err(proto_err("chunk not followed by CRLF"));
                        }
                    }
                }
            }
        }
        Ok(n)
    }

    /// Reads the rest of the body, at most `max` bytes.
    pub fn read_to_end_bounded(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), StoreError> {
        while self.read_some(out, max - out.len())? > 0 {}
        Ok(())
    }

    /// Reads up to the next `\n` of a newline-delimited stream (the watch
    /// and keep-alive streams): one JSON message, or `None` at the end.
    /// `pending` keeps bytes read past the line between calls.
    pub fn next_line(
        &mut self,
        pending: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        loop {
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let rest = pending.split_off(i + 1);
                let mut line = std::mem::replace(pending, rest);
                line.pop();
                return Ok(Some(line));
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Unavailable("etcd stream idle".into()));
            }
            let room = MAX_BODY.saturating_sub(pending.len());
            if self.read_some(pending, room)? == 0 {
                return Ok(if pending.is_empty() {
                    None
                } else {
                    Some(std::mem::take(pending))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("https://127.0.0.1:2379/").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (true, "127.0.0.1", 2379));
        let e = Endpoint::parse("http://[::1]:23").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "::1", 23));
        assert_eq!(e.to_string(), "http://[::1]:23");
        assert!(Endpoint::parse("127.0.0.1:2379").is_err());
        assert!(Endpoint::parse("http://a:b").is_err());
        assert!(Endpoint::parse("http://:1").is_err());
    }

    /// A one-shot server answering `reply` to the first request.
    fn serve(reply: &'static [u8]) -> Endpoint {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
        });
        Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap()
    }

    #[test]
    fn chunked_and_length_bodies() {
        let t = Duration::from_secs(5);
        let ep = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        let mut c = Conn::connect(&ep, None, t).unwrap();
        assert_eq!(c.post_all("/x", b"{}").unwrap(), (200, b"hello".to_vec()));

        let ep = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{a}\n\r\n3\r\n{b}\r\n1\r\n\n\r\n0\r\n\r\n");
        let mut c = Conn::connect(&ep, None, t).unwrap();
        let (st, mut body) = c.post("/w", b"{}").unwrap();
        assert_eq!(st, 200);
        let mut p = Vec::new();
        let dl = Instant::now() + t;
        assert_eq!(body.next_line(&mut p, dl).unwrap().unwrap(), b"{a}");
        assert_eq!(body.next_line(&mut p, dl).unwrap().unwrap(), b"{b}");
        assert_eq!(body.next_line(&mut p, dl).unwrap(), None);
    }

    #[test]
    fn oversized_and_garbage_are_refused() {
        let t = Duration::from_secs(5);
        let ep = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n");
        let mut c = Conn::connect(&ep, None, t).unwrap();
        assert!(matches!(
            c.post_all("/x", b"{}"),
            Err(StoreError::Protocol(_))
        ));
        let ep = serve(b"SSH-2.0-x\r\n\r\n");
        let mut c = Conn::connect(&ep, None, t).unwrap();
        assert!(matches!(
            c.post_all("/x", b"{}"),
            Err(StoreError::Protocol(_))
        ));
        let ep = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        let mut c = Conn::connect(&ep, None, t).unwrap();
        assert!(matches!(
            c.post_all("/x", b"{}"),
            Err(StoreError::Protocol(_))
        ));
    }
}
