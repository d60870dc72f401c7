//! The API's errors: one enum, each variant with its HTTP status, a stable
//! machine-readable code and a human message, sent as
//! `{"error": code, "message": text}`. Backend failures name the backend
//! (KDC, auksd, slurmrestd) in both.

use hyper::StatusCode;
use std::time::Duration;

/// A backend the gateway depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Kdc,
    Auksd,
    Slurmrestd,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Kdc => "kdc",
            Backend::Auksd => "auksd",
            Backend::Slurmrestd => "slurmrestd",
        }
    }
}

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (bad JSON, bad header, bad path parameter).
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request whose job description is not acceptable.
    #[error("{0}")]
    InvalidJob(String),
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("unsupported content type: send application/json")]
    UnsupportedMediaType,
    /// Missing, malformed or wrong credentials (one answer for all).
    #[error("authentication failed: wrong user name or password")]
    Unauthorized,
    #[error("job {0} belongs to another user")]
    Forbidden(u32),
    #[error("job {0} not found")]
    NotFound(u32),
    #[error("no such resource: {0}")]
    NoRoute(String),
    #[error("method {0} not allowed here")]
    MethodNotAllowed(String),
    /// Too many failed logins for this user or address.
    #[error("too many failed logins: retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// The gateway is at its concurrent request limit.
    #[error("the gateway is busy: retry shortly")]
    Busy,
    /// A backend answered with an error or an unusable reply.
    #[error("{} failed: {message}", .backend.name())]
    BadGateway { backend: Backend, message: String },
    /// A backend could not be reached.
    #[error("{} unavailable: {message}", .backend.name())]
    Unavailable { backend: Backend, message: String },
    /// A backend did not answer in time.
    #[error("{} timed out: {message}", .backend.name())]
    Timeout { backend: Backend, message: String },
    /// The gateway itself is misconfigured or failed.
    #[error("internal gateway error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidJob(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable code for programs (`"error"` field).
    pub fn code(&self) -> String {
        match self {
            ApiError::BadRequest(_) => "bad_request".into(),
            ApiError::InvalidJob(_) => "invalid_job".into(),
            ApiError::TooLarge(_) => "body_too_large".into(),
            ApiError::UnsupportedMediaType => "unsupported_media_type".into(),
            ApiError::Unauthorized => "unauthorized".into(),
            ApiError::Forbidden(_) => "forbidden".into(),
            ApiError::NotFound(_) | ApiError::NoRoute(_) => "not_found".into(),
            ApiError::MethodNotAllowed(_) => "method_not_allowed".into(),
            ApiError::RateLimited(_) => "rate_limited".into(),
            ApiError::Busy => "busy".into(),
            ApiError::BadGateway { backend, .. } => format!("{}_error", backend.name()),
            ApiError::Unavailable { backend, .. } => format!("{}_unavailable", backend.name()),
            ApiError::Timeout { backend, .. } => format!("{}_timeout", backend.name()),
            ApiError::Internal(_) => "internal".into(),
        }
    }

    /// `Retry-After` seconds, when the client should retry later.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited(d) => Some(d.as_secs().max(1)),
            ApiError::Busy => Some(1),
            _ => None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code(), "message": self.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_name_the_backend() {
        let e = ApiError::Unavailable {
            backend: Backend::Auksd,
            message: "connection refused".into(),
        };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code(), "auksd_unavailable");
        assert!(e.to_string().starts_with("auksd unavailable"));
        let b = e.body();
        assert_eq!(b["error"], "auksd_unavailable");
    }

    #[test]
    fn rate_limit_has_retry_after() {
        let e = ApiError::RateLimited(Duration::from_millis(200));
        assert_eq!(e.retry_after(), Some(1));
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(ApiError::Unauthorized.retry_after(), None);
    }
}
