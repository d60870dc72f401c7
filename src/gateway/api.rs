//! The HTTP API, versioned under `/v1`: routing, authentication, the five
//! operations, and the audit record of each request.
//!
//! | method and path        | auth  | does                                     |
//! |------------------------|-------|------------------------------------------|
//! | `GET /v1/health`       | none  | is the KDC / auksd / slurmrestd reachable |
//! | `POST /v1/jobs`        | Basic | verified TGT → auksd ADD → JWT → submit  |
//! | `GET /v1/jobs`         | Basic | the caller's jobs                        |
//! | `GET /v1/jobs/{id}`    | Basic | state, exit code, reason (own jobs only) |
//! | `DELETE /v1/jobs/{id}` | Basic | cancel (own jobs only)                   |

use super::basic;
use super::error::{ApiError, Backend};
use super::jobs::{JobRequest, JobSummary};
use super::login::{self, VerifiedLogin};
use super::slurm::{self, RestReply};
use super::State;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the audit line says about a request.
#[derive(Debug, Default)]
pub struct Audit {
    pub user: Option<String>,
    pub action: &'static str,
    pub job: Option<u32>,
    /// Extra outcome detail for the log (never a secret).
    pub note: Option<String>,
}

type Resp = Response<Full<Bytes>>;

/// A JSON response.
pub fn json_response(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()),
    )));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The response of an error (with `Retry-After` / `WWW-Authenticate`).
pub fn error_response(e: &ApiError) -> Resp {
    let mut r = json_response(e.status(), &e.body());
    if let Some(s) = e.retry_after() {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
    }
    if matches!(e, ApiError::Unauthorized) {
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"auks-gateway\", charset=\"UTF-8\""),
        );
    }
    r
}

/// Route one request.
pub async fn route(
    st: &Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
    audit: &mut Audit,
) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let method = req.method().clone();
    match (segs.as_slice(), &method) {
        (["v1", "health"], &Method::GET) => {
            audit.action = "health";
            health(st).await
        }
        (["v1", "jobs"], &Method::POST) => {
            audit.action = "submit";
            submit(st, req, peer, audit).await
        }
        (["v1", "jobs"], &Method::GET) => {
            audit.action = "list";
            list(st, &req, peer, audit).await
        }
        (["v1", "jobs", id], &Method::GET) => {
            audit.action = "status";
            let id = job_id(id)?;
            audit.job = Some(id);
            status(st, &req, peer, audit, id).await
        }
        (["v1", "jobs", id], &Method::DELETE) => {
            audit.action = "cancel";
            let id = job_id(id)?;
            audit.job = Some(id);
            cancel(st, &req, peer, audit, id).await
        }
        (["v1", "health"] | ["v1", "jobs"] | ["v1", "jobs", _], _) => {
            audit.action = "-";
            Err(ApiError::MethodNotAllowed(method.to_string()))
        }
        _ => {
            audit.action = "-";
            Err(ApiError::NoRoute(slurm::short(&path)))
        }
    }
}

fn job_id(s: &str) -> Result<u32, ApiError> {
    s.parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("{:?} is not a job id", slurm::short(s))))
}

/// Run blocking Kerberos/AUKS work off the async threads, under a deadline.
async fn blocking<T: Send + 'static>(
    backend: Backend,
    timeout: Duration,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(ApiError::Internal(format!("worker failed: {e}"))),
        Err(_) => Err(ApiError::Timeout {
            backend,
            message: format!("no answer within {timeout:?}"),
        }),
    }
}

/// Basic credentials → rate limit → verified password login.
async fn authenticate<B>(
    st: &Arc<State>,
    req: &Request<B>,
    peer: SocketAddr,
    audit: &mut Audit,
) -> Result<VerifiedLogin, ApiError> {
    let creds = basic::parse(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes()))
        .ok_or(ApiError::Unauthorized)?;
    audit.user = Some(creds.user.clone());
    let ip = peer.ip();
    if let Err(wait) = st.limiter.check(&creds.user, ip) {
        return Err(ApiError::RateLimited(wait));
    }
    let settings = st.login.clone();
    let user = creds.user.clone();
    let res = blocking(Backend::Kdc, st.cfg.backend_timeout, move || {
        let mut reason = None;
        // the password is moved here and zeroized when `creds` drops
        let r = login::login(&settings, &creds.user, &creds.password, &mut reason);
        Ok((r, reason))
    })
    .await?;
    match res {
        (Ok(l), _) => {
            st.limiter.success(&user, ip);
            audit.user = Some(l.local_name.clone());
            Ok(l)
        }
        (Err(ApiError::Unauthorized), reason) => {
            let lock = st.limiter.failure(&user, ip);
            audit.note = Some(format!(
                "login refused: {}{}",
                reason.unwrap_or_else(|| "bad credentials".into()),
                lock.map(|d| format!("; locked out for {} s", d.as_secs()))
                    .unwrap_or_default()
            ));
            Err(ApiError::Unauthorized)
        }
        (Err(e), _) => Err(e),
    }
}

/// Read a JSON body within the configured bound.
async fn read_body(st: &State, req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let max = st.cfg.max_body_bytes;
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    Limited::new(req.into_body(), max)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::TooLarge(max)
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })
}

fn declared_too_large(st: &State, req: &Request<Incoming>) -> Result<(), ApiError> {
    let len = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match len {
        Some(n) if n > st.cfg.max_body_bytes as u64 => {
            Err(ApiError::TooLarge(st.cfg.max_body_bytes))
        }
        _ => Ok(()),
    }
}

fn token(st: &State, user: &str) -> Result<zeroize::Zeroizing<String>, ApiError> {
    st.jwt.token(user).map_err(ApiError::Internal)
}

/// One slurmrestd call to `/slurm/<version>/<tail>` as `user`, with a token
/// minted for it.
async fn rest_as(
    st: &State,
    user: &str,
    method: Method,
    tail: &str,
    body: Option<&Value>,
) -> Result<RestReply, ApiError> {
    let tok = token(st, user)?;
    st.rest
        .call(method, &st.rest.path(tail), Some((user, &tok)), body)
        .await
}

/// Map a non-success slurmrestd reply.
fn rest_failure(what: &str, r: &RestReply) -> ApiError {
    let errs = slurm::slurm_errors(r);
    let user_fault = r
        .json
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            // ESLURM_* 2000..2999: the job request itself (partition,
            // limits, ...), the caller's to fix
            a.iter()
                .any(|e| slurm::error_number(e).is_some_and(|n| (2000..3000).contains(&n)))
        });
    if user_fault {
        ApiError::InvalidJob(format!("Slurm refused the job: {errs}"))
    } else {
        ApiError::BadGateway {
            backend: Backend::Slurmrestd,
            message: format!("slurmrestd rejected the {what}: {errs}"),
        }
    }
}

fn has_errors(r: &RestReply) -> bool {
    r.json
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

async fn submit(
    st: &Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
    audit: &mut Audit,
) -> Result<Resp, ApiError> {
    declared_too_large(st, &req)?;
    let login = authenticate(st, &req, peer, audit).await?;
    let body = read_body(st, req).await?;
    let job = JobRequest::from_json(&body)?;
    let conf = st.auks.clone();
    let login = Arc::new(login);
    let l2 = Arc::clone(&login);
    blocking(Backend::Auksd, st.cfg.backend_timeout, move || {
        login::add_to_auksd(&conf, &l2)
    })
    .await?;
    let payload = job.to_slurm(&login.local_name, &login.home);
    let sent = rest_as(
        st,
        &login.local_name,
        Method::POST,
        "job/submit",
        Some(&payload),
    )
    .await;
    let stored_note = || {
        format!(
            "the credential of {} (uid {}) was added to auksd but no job was submitted",
            login.principal, login.uid
        )
    };
    let r = match sent {
        Ok(r) => r,
        Err(e) => {
            audit.note = Some(format!("{}: {e}", stored_note()));
            return Err(e);
        }
    };
    let id = r
        .json
        .get("job_id")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0);
    match id {
        Some(id) if r.status.is_success() && !has_errors(&r) => {
            audit.job = Some(id);
            Ok(json_response(
                StatusCode::CREATED,
                &json!({ "job_id": id, "user": login.local_name }),
            ))
        }
        _ => {
            let e = rest_failure("job", &r);
            audit.note = Some(format!("{}: {e}", stored_note()));
            Err(e)
        }
    }
}

async fn list(
    st: &Arc<State>,
    req: &Request<Incoming>,
    peer: SocketAddr,
    audit: &mut Audit,
) -> Result<Resp, ApiError> {
    let login = authenticate(st, req, peer, audit).await?;
    let r = rest_as(st, &login.local_name, Method::GET, "jobs", None).await?;
    if !r.status.is_success() {
        return Err(rest_failure("job list", &r));
    }
    let jobs: Vec<JobSummary> = r
        .json
        .get("jobs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(JobSummary::from_slurm).collect())
        .unwrap_or_default();
    let own: Vec<&JobSummary> = jobs.iter().filter(|j| j.user == login.local_name).collect();
    Ok(json_response(StatusCode::OK, &json!({ "jobs": own })))
}

/// The job `id` if it exists and belongs to the caller.
async fn own_job(st: &State, login: &VerifiedLogin, id: u32) -> Result<JobSummary, ApiError> {
    let tail = format!("job/{id}");
    let r = rest_as(st, &login.local_name, Method::GET, &tail, None).await?;
    let first = r
        .json
        .get("jobs")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(JobSummary::from_slurm);
    match first {
        Some(j) if j.job_id == id => {
            if j.user == login.local_name {
                Ok(j)
            } else {
                Err(ApiError::Forbidden(id))
            }
        }
        _ => {
            let text = slurm::slurm_errors(&r);
            if r.status == StatusCode::NOT_FOUND
                || text.to_ascii_lowercase().contains("invalid job id")
                || (r.status.is_success() && !has_errors(&r))
            {
                Err(ApiError::NotFound(id))
            } else {
                Err(rest_failure("job query", &r))
            }
        }
    }
}

async fn status(
    st: &Arc<State>,
    req: &Request<Incoming>,
    peer: SocketAddr,
    audit: &mut Audit,
    id: u32,
) -> Result<Resp, ApiError> {
    let login = authenticate(st, req, peer, audit).await?;
    let j = own_job(st, &login, id).await?;
    Ok(json_response(StatusCode::OK, &json!(j)))
}

async fn cancel(
    st: &Arc<State>,
    req: &Request<Incoming>,
    peer: SocketAddr,
    audit: &mut Audit,
    id: u32,
) -> Result<Resp, ApiError> {
    let login = authenticate(st, req, peer, audit).await?;
    own_job(st, &login, id).await?;
    let tail = format!("job/{id}");
    let r = rest_as(st, &login.local_name, Method::DELETE, &tail, None).await?;
    if !r.status.is_success() || has_errors(&r) {
        return Err(rest_failure("cancel", &r));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "job_id": id, "cancelled": true }),
    ))
}

/// How long a health report is reused.
pub const HEALTH_CACHE: Duration = Duration::from_secs(2);

/// `GET /v1/health`: the three backends, probed concurrently, at most once
/// per [`HEALTH_CACHE`] (concurrent callers share one probe).
async fn health(st: &Arc<State>) -> Result<Resp, ApiError> {
    let mut cache = st.health.lock().await;
    if let Some((at, status, body)) = cache.as_ref() {
        if at.elapsed() < HEALTH_CACHE {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            return Ok(json_response(status, body));
        }
    }
    let (status, body) = probe_all(st).await;
    *cache = Some((std::time::Instant::now(), status.as_u16(), body.clone()));
    Ok(json_response(status, &body))
}

async fn probe_all(st: &Arc<State>) -> (StatusCode, Value) {
    let t = st.cfg.backend_timeout.min(Duration::from_secs(5));
    let settings = st.login.clone();
    let kdc = blocking(Backend::Kdc, t, move || Ok(login::probe_kdc(&settings)));
    let conf = st.auks.clone();
    let auksd = blocking(Backend::Auksd, t, move || Ok(super::probe::auksd(&conf, t)));
    let rest = async {
        let r = rest_as(st, &st.self_user, Method::GET, "ping", None).await?;
        if r.status.is_success() && !has_errors(&r) {
            Ok(Ok(()))
        } else {
            Ok(Err(format!("answered: {}", slurm::slurm_errors(&r))))
        }
    };
    let (kdc, auksd, rest) = tokio::join!(kdc, auksd, rest);
    let show = |r: Result<Result<(), String>, ApiError>| match r {
        Ok(Ok(())) => json!({"ok": true}),
        Ok(Err(m)) => json!({"ok": false, "message": m}),
        Err(e) => json!({"ok": false, "message": e.to_string()}),
    };
    let all_ok = [&kdc, &auksd, &rest]
        .iter()
        .all(|r| matches!(r, Ok(Ok(()))));
    let body = json!({
        "status": if all_ok { "ok" } else { "degraded" },
        "kdc": show(kdc),
        "auksd": show(auksd),
        "slurmrestd": show(rest),
    });
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
