//! This dialect's error bodies: `{"error": "<message>"}`, with the exact texts
//! the API document gives for 401, 403 and 500.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use crate::api::context::BodyError;
use crate::api::idempotency::IdempotencyRefusal;
use crate::service::ServiceError;

#[derive(Debug)]
pub struct JwtApiError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl JwtApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    pub fn forbidden() -> Self {
        Self::new(403, "Forbidden: Insufficient permissions")
    }

    pub fn not_found() -> Self {
        Self::new(404, "Wallet not found")
    }

    pub fn body(&self) -> serde_json::Value {
        match self.retry_after {
            Some(secs) => json!({ "error": self.message, "retryAfter": secs }),
            None => json!({ "error": self.message }),
        }
    }

    pub fn response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(secs) = self.retry_after {
            b.insert_header(("Retry-After", secs.to_string()));
        }
        b.json(self.body())
    }
}

impl From<BodyError> for JwtApiError {
    fn from(e: BodyError) -> Self {
        // The document knows 400 for bad input; keep 413 and 415 distinct.
        let status = match e.status() {
            413 | 415 => e.status(),
            _ => 400,
        };
        JwtApiError::new(status, e.message())
    }
}

impl From<IdempotencyRefusal> for JwtApiError {
    fn from(e: IdempotencyRefusal) -> Self {
        let (status, message) = e.status_and_message();
        JwtApiError::new(status, message)
    }
}

impl From<ServiceError> for JwtApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => JwtApiError::not_found(),
            ServiceError::NotConfigured(detail) => {
                tracing::error!(%detail, "server configuration error");
                JwtApiError::new(500, "Server configuration error")
            }
            ServiceError::Contended => JwtApiError::new(409, "Too many concurrent changes; retry"),
            ServiceError::Unavailable(detail) => {
                tracing::error!(%detail, "store unavailable");
                JwtApiError::new(503, "Service temporarily unavailable")
            }
            other => {
                tracing::error!(error = %other, "request failed");
                JwtApiError::new(500, "Internal error")
            }
        }
    }
}
