//! auks-gateway: a Kerberized Slurm job from a laptop over one HTTPS call.
//!
//! Per request: HTTP Basic user + password (over TLS) → a TGT for
//! `user@REALM` from the KDC, verified against the gateway's keytab
//! ([`login`]) → ADD of that TGT to auksd as the user → a short Slurm JWT
//! ([`jwt`]) → slurmrestd ([`slurm`]) with `--auks=done` semantics through
//! the job environment ([`jobs`]). A job is never submitted when its
//! credential could not be stored in auksd.
//!
//! This module tree belongs to the `auks-gateway` binary only (it is not
//! part of the library, so the SPANK plugin cdylib does not link tokio,
//! hyper or rustls). Blocking libkrb5/AUKS calls run on tokio's blocking
//! pool under the backend deadline.

pub mod api;
pub mod basic;
pub mod config;
pub mod error;
pub mod jobs;
pub mod jwt;
pub mod limiter;
pub mod login;
pub mod probe;
pub mod server;
pub mod slurm;

use auks::config::ClientConfig;
use config::GatewayConfig;
use jwt::JwtSigner;
use limiter::Limiter;
use login::LoginSettings;
use slurm::RestClient;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request needs, shared by all connections.
pub struct State {
    pub cfg: GatewayConfig,
    pub login: LoginSettings,
    pub auks: ClientConfig,
    pub jwt: JwtSigner,
    pub rest: RestClient,
    pub limiter: Limiter,
    pub permits: tokio::sync::Semaphore,
    /// The gateway's own account name (for its health-check token).
    pub self_user: String,
    /// The last health report and when it was made: `GET /v1/health` needs
    /// no authentication, so its backend probes (an AS exchange among them)
    /// run at most once per [`api::HEALTH_CACHE`].
    pub health: tokio::sync::Mutex<Option<(std::time::Instant, u16, serde_json::Value)>>,
}

/// A start-up failure, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("auks.conf: {0}")]
    AuksConf(String),
    #[error("key `keytab`: {0}")]
    Keytab(String),
    #[error("key `jwt_key`: {0}")]
    JwtKey(String),
    #[error("{0}")]
    Tls(String),
    #[error("key `openapi_version`: {0}")]
    OpenApi(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// An operational log line (never a secret).
pub fn event(text: &str) {
    eprintln!("{} auks-gateway: {}", now(), text);
}

/// The audit line of one request: time, client, user, action, job,
/// outcome, duration (and a detail for failures; never a secret).
pub fn audit_line(peer: SocketAddr, a: &api::Audit, outcome: &str, took: Duration) {
    let mut line = format!(
        "{} auks-gateway: audit client={} user={} action={} job={} outcome=\"{}\" duration_ms={}",
        now(),
        peer.ip(),
        a.user.as_deref().unwrap_or("-"),
        a.action,
        a.job.map_or_else(|| "-".to_string(), |j| j.to_string()),
        outcome,
        took.as_millis()
    );
    if let Some(n) = &a.note {
        line.push_str(&format!(" detail=\"{}\"", n.replace('"', "'")));
    }
    eprintln!("{line}");
}

/// Check everything that can be checked before listening.
pub fn prepare(
    cfg: GatewayConfig,
) -> Result<(State, Option<tokio_rustls::TlsAcceptor>), StartError> {
    let auks = ClientConfig::load(Some(&cfg.auks_conf))
        .map_err(|e| StartError::AuksConf(e.to_string()))?;
    for w in &auks.warnings {
        event(&format!("auks.conf warning: {w}"));
    }
    let login = LoginSettings {
        realm: cfg.realm.clone(),
        keytab: cfg.keytab.clone(),
        verify_principal: cfg.verify_principal.clone(),
        ticket_lifetime: cfg.ticket_lifetime,
        renew_lifetime: cfg.renew_lifetime,
    };
    login::check_keytab(&login).map_err(StartError::Keytab)?;
    let jwt = JwtSigner::load(&cfg.jwt_key, cfg.jwt_lifespan)
        .map_err(|e| StartError::JwtKey(format!("{}: {e}", cfg.jwt_key.display())))?;
    let tls = match &cfg.tls {
        Some((c, k)) => Some(server::tls_acceptor(c, k).map_err(StartError::Tls)?),
        None => None,
    };
    let self_user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "nobody".into());
    let rest = RestClient {
        endpoint: cfg.slurmrestd.clone(),
        version: cfg.openapi_version.clone(),
        timeout: cfg.backend_timeout,
    };
    let limiter = Limiter::new(
        cfg.login_failures_before_backoff,
        cfg.login_backoff_base,
        cfg.login_backoff_max,
    );
    let permits = tokio::sync::Semaphore::new(cfg.max_concurrent_requests);
    Ok((
        State {
            cfg,
            login,
            auks,
            jwt,
            rest,
            limiter,
            permits,
            self_user,
            health: tokio::sync::Mutex::new(None),
        },
        tls,
    ))
}

/// At start: slurmrestd must serve the configured OpenAPI version. If it
/// serves others only, the start fails naming them; if it cannot be asked
/// (down), the gateway starts and `/v1/health` reports it.
pub async fn check_openapi(st: &State) -> Result<(), StartError> {
    let tok = st.jwt.token(&st.self_user).map_err(StartError::JwtKey)?;
    match st.rest.check_version((&st.self_user, &tok)).await {
        Ok(Ok(())) => {
            event(&format!(
                "slurmrestd at {} serves OpenAPI {}",
                st.rest.endpoint, st.rest.version
            ));
            Ok(())
        }
        Ok(Err(served)) => Err(StartError::OpenApi(format!(
            "slurmrestd at {} does not serve {} (it serves: {}); start slurmrestd with \
             `-s openapi/{}` or set openapi_version to one it serves",
            st.rest.endpoint,
            st.rest.version,
            if served.is_empty() {
                "nothing".into()
            } else {
                served.join(", ")
            },
            st.rest.version
        ))),
        Err(e) => {
            event(&format!(
                "warning: cannot check slurmrestd's OpenAPI version now ({e}); \
                 submissions fail with 502/503 until it is up"
            ));
            Ok(())
        }
    }
}

/// Start: checks, listen, serve until SIGTERM/SIGINT.
pub async fn run(cfg: GatewayConfig) -> Result<(), StartError> {
    let listen = cfg.listen;
    let (state, tls) = prepare(cfg)?;
    check_openapi(&state).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    event(&format!(
        "listening on {}://{local} (auksd from {}, slurmrestd {} {})",
        if tls.is_some() { "https" } else { "http" },
        state.auks.path.display(),
        state.rest.endpoint,
        state.rest.version
    ));
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        event("stopping (signal)");
    };
    server::serve(Arc::new(state), listener, tls, shutdown).await;
    Ok(())
}
