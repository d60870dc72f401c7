//! The listener: TLS (rustls) or, on loopback only, plain HTTP; HTTP/1.1
//! per connection with header and handshake deadlines; a bounded number of
//! connections and of requests in progress; one audit line per request.

use super::api::{self, Audit};
use super::error::ApiError;
use super::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Deadline of the TLS handshake and of the request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Build the TLS acceptor from PEM files (errors name the file).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_cert {}: no certificate in the file",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert/tls_key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    st: Arc<State>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let max_conns = st.cfg.max_concurrent_requests.saturating_mul(4).max(16);
    let conns = Arc::new(tokio::sync::Semaphore::new(max_conns));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    super::event(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&conns).try_acquire_owned() else {
            super::event(&format!(
                "connection from {peer} refused: {max_conns} connections open"
            ));
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let st = Arc::clone(&st);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acc) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(stream)).await {
                        Ok(Ok(s)) => connection(st, TokioIo::new(s), peer).await,
                        Ok(Err(e)) => {
                            super::event(&format!("TLS handshake with {peer} failed: {e}"))
                        }
                        Err(_) => super::event(&format!("TLS handshake with {peer} timed out")),
                    }
                }
                None => connection(st, TokioIo::new(stream), peer).await,
            }
        });
    }
}

async fn connection<I>(st: Arc<State>, io: I, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // A connection lives at most this long (keep-alive included).
    let limit = st.cfg.backend_timeout * 4 + Duration::from_secs(60);
    let svc = service_fn(move |req| {
        let st = Arc::clone(&st);
        async move { Ok::<_, std::convert::Infallible>(handle(st, req, peer).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(io, svc);
    let _ = tokio::time::timeout(limit, conn).await;
}

async fn handle(st: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let mut audit = Audit {
        action: "-",
        ..Audit::default()
    };
    let permit = match tokio::time::timeout(st.cfg.backend_timeout, st.permits.acquire()).await {
        Ok(Ok(p)) => Some(p),
        _ => None,
    };
    let result = match permit {
        Some(_) => api::route(&st, req, peer, &mut audit).await,
        None => Err(ApiError::Busy),
    };
    let (resp, outcome) = match result {
        Ok(r) => {
            let s = r.status().as_u16();
            (r, s.to_string())
        }
        Err(e) => (
            api::error_response(&e),
            format!("{} {}", e.status().as_u16(), e.code()),
        ),
    };
    super::audit_line(peer, &audit, &outcome, start.elapsed());
    resp
}
