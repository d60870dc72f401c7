//! The slurmrestd client: HTTP/1.1 over TCP or a unix socket, one
//! connection per call, every call under the backend timeout, replies
//! bounded in size. Authentication is Slurm's JWT pass-through
//! (`X-SLURM-USER-NAME` / `X-SLURM-USER-TOKEN`); the OpenAPI version (the
//! `openapi/v0.0.38` plugin of Slurm 22.05 by default) is checked at start.

use super::config::RestEndpoint;
use super::error::{ApiError, Backend};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;

/// Largest slurmrestd reply read (a job list of a big cluster fits).
const MAX_REPLY: usize = 64 << 20;

/// A slurmrestd endpoint and API version.
#[derive(Debug, Clone)]
pub struct RestClient {
    pub endpoint: RestEndpoint,
    pub version: String,
    pub timeout: Duration,
}

/// A reply: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct RestReply {
    pub status: StatusCode,
    pub json: Value,
    pub text: String,
}

fn unavailable(m: impl Into<String>) -> ApiError {
    ApiError::Unavailable {
        backend: Backend::Slurmrestd,
        message: m.into(),
    }
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadGateway {
        backend: Backend::Slurmrestd,
        message: m.into(),
    }
}

impl RestClient {
    /// `/slurm/<version>/<tail>`.
    pub fn path(&self, tail: &str) -> String {
        format!("/slurm/{}/{tail}", self.version)
    }

    /// One call; `auth` = (user name, token).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<&Value>,
    ) -> Result<RestReply, ApiError> {
        match tokio::time::timeout(self.timeout, self.call_inner(method, path, auth, body)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Timeout {
                backend: Backend::Slurmrestd,
                message: format!("no answer from {} within {:?}", self.endpoint, self.timeout),
            }),
        }
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<&Value>,
    ) -> Result<RestReply, ApiError> {
        let host = match &self.endpoint {
            RestEndpoint::Tcp { host, port } => format!("{host}:{port}"),
            RestEndpoint::Unix(_) => "localhost".into(),
        };
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", host)
            .header("Accept", "application/json")
            .header("Connection", "close");
        if let Some((user, token)) = auth {
            b = b
                .header("X-SLURM-USER-NAME", user)
                .header("X-SLURM-USER-TOKEN", token);
        }
        let payload = match body {
            Some(v) => {
                b = b.header("Content-Type", "application/json");
                Bytes::from(serde_json::to_vec(v).map_err(|e| ApiError::Internal(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let req = b
            .body(Full::new(payload))
            .map_err(|e| ApiError::Internal(format!("building the slurmrestd request: {e}")))?;
        let connect_err =
            |e: std::io::Error| unavailable(format!("cannot connect to {}: {e}", self.endpoint));
        let resp = match &self.endpoint {
            RestEndpoint::Tcp { host, port } => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                self.exchange(TokioIo::new(s), req).await?
            }
            RestEndpoint::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(connect_err)?;
                self.exchange(TokioIo::new(s), req).await?
            }
        };
        Ok(resp)
    }

    async fn exchange<I>(&self, io: I, req: Request<Full<Bytes>>) -> Result<RestReply, ApiError>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| unavailable(format!("HTTP handshake with {}: {e}", self.endpoint)))?;
        let conn_task = tokio::spawn(conn);
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| bad(format!("{} closed the connection: {e}", self.endpoint)))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_REPLY)
            .collect()
            .await
            .map_err(|e| bad(format!("reading the reply of {}: {e}", self.endpoint)))?
            .to_bytes();
        conn_task.abort();
        let text = String::from_utf8_lossy(&body).into_owned();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok(RestReply { status, json, text })
    }

    /// Check that slurmrestd serves our OpenAPI version: `Ok(Err(list))`
    /// when it does not (with the versions it serves), `Err` when it cannot
    /// be asked.
    pub async fn check_version(
        &self,
        auth: (&str, &str),
    ) -> Result<Result<(), Vec<String>>, ApiError> {
        let r = self
            .call(Method::GET, "/openapi/v3", Some(auth), None)
            .await?;
        if !r.status.is_success() {
            return Err(bad(format!(
                "GET /openapi/v3 answered {}: {}",
                r.status,
                short(&r.text)
            )));
        }
        let Some(paths) = r.json.get("paths").and_then(Value::as_object) else {
            return Err(bad("GET /openapi/v3 returned no `paths`"));
        };
        let want = format!("/slurm/{}/job/submit", self.version);
        if paths.contains_key(&want) {
            return Ok(Ok(()));
        }
        let mut served: Vec<String> = paths
            .keys()
            .filter_map(|p| p.strip_prefix("/slurm/"))
            .filter_map(|p| p.split('/').next())
            .map(str::to_string)
            .collect();
        served.sort();
        served.dedup();
        Ok(Err(served))
    }
}

/// Slurm's error texts from a reply (`errors[].error` / `description`).
pub fn slurm_errors(r: &RestReply) -> String {
    let list: Vec<String> = r
        .json
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let text = e
                        .get("error")
                        .and_then(Value::as_str)
                        .or_else(|| e.get("description").and_then(Value::as_str))?;
                    let num = error_number(e);
                    Some(match num {
                        Some(n) if n != 0 => format!("{text} (Slurm error {n})"),
                        _ => text.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        format!("HTTP {}: {}", r.status, short(&r.text))
    } else {
        list.join("; ")
    }
}

/// Slurm's error number of one `errors[]` entry (`error_code` in v0.0.38,
/// `errno` in v0.0.36/37, `error_number` from v0.0.39 on).
pub fn error_number(e: &Value) -> Option<i64> {
    ["error_code", "errno", "error_number"]
        .iter()
        .find_map(|k| e.get(*k).and_then(Value::as_i64))
}

/// The first 300 characters of a text, on one line.
pub fn short(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_are_collected() {
        let r = RestReply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            json: json!({"errors":[{"error":"Invalid authentication credential","error_code":1007}]}),
            text: String::new(),
        };
        assert_eq!(
            slurm_errors(&r),
            "Invalid authentication credential (Slurm error 1007)"
        );
        let r = RestReply {
            status: StatusCode::UNAUTHORIZED,
            json: Value::Null,
            text: "Authentication failure\n".into(),
        };
        assert_eq!(
            slurm_errors(&r),
            "HTTP 401 Unauthorized: Authentication failure"
        );
    }
}
