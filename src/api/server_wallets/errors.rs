//! The one mapping from domain and request errors to this dialect's bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::api::context::BodyError;
use crate::api::idempotency::IdempotencyRefusal;
use crate::domain::eth::PayloadError;
use crate::domain::wallet::WalletError;
use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "missing or invalid API key")
    }

    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("success".into(), Value::Bool(false));
        m.insert("error".into(), Value::String(self.message.clone()));
        m.extend(self.extra.clone());
        Value::Object(m)
    }

    pub fn response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(secs) = self.extra.get("retryAfter").and_then(Value::as_u64) {
            b.insert_header(("Retry-After", secs.to_string()));
        }
        b.json(self.body())
    }
}

/// A JSON answer; a 503 whose body names `retryAfter` (seconds) also
/// carries it as `Retry-After`.
pub fn json_response(status: StatusCode, body: Value) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        if let Some(secs) = body.get("retryAfter").and_then(Value::as_u64) {
            b.insert_header(("Retry-After", secs.to_string()));
        }
    }
    b.json(body)
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        // Seed 000 documents 400 Bad Request for any body that is not valid
        // for the endpoint, wrong shape included; 422 is kept for the
        // semantic refusals below.
        let status = match e {
            BodyError::Shape(_) => 400,
            _ => e.status(),
        };
        ApiError::new(status, e.message())
    }
}

impl From<PayloadError> for ApiError {
    fn from(e: PayloadError) -> Self {
        match e {
            PayloadError::Shape(m) => ApiError::new(400, format!("invalid request body: {m}")),
            PayloadError::Invalid(m) => ApiError::new(400, m),
        }
    }
}

impl From<IdempotencyRefusal> for ApiError {
    fn from(e: IdempotencyRefusal) -> Self {
        let (status, message) = e.status_and_message();
        ApiError::new(status, message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::ServerWalletExists { wallet_id } => {
                ApiError::new(409, "a server wallet already exists for this userId")
                    .with("walletId", json!(wallet_id.to_string()))
            }
            ServiceError::NotFound => ApiError::new(404, "wallet not found"),
            ServiceError::Rejected(WalletError::NotCustodial(_)) => ApiError::new(
                422,
                "this wallet's key is not held by walletd, so it cannot sign for it",
            ),
            ServiceError::Rejected(WalletError::KeyFrozen { .. }) => ApiError::new(
                409,
                "this wallet's key is frozen: the MPC protocol reported a misbehaving party, \
                 so walletd will not sign with it again; nothing was signed",
            ),
            ServiceError::Rejected(e) => ApiError::new(409, e.to_string()),
            ServiceError::Contended => ApiError::new(409, e.to_string()),
            ServiceError::NotConfigured(detail) => {
                tracing::error!(%detail, "server configuration error");
                ApiError::new(500, "Server configuration error")
            }
            ServiceError::Unavailable(detail) => {
                tracing::error!(%detail, "store unavailable");
                ApiError::new(503, "service temporarily unavailable")
            }
            ServiceError::CosignerUnavailable(detail) => {
                tracing::error!(%detail, "MPC cosigner unavailable");
                ApiError::new(
                    503,
                    "the signing cosigner is unavailable; nothing was signed, retry later",
                )
            }
            ServiceError::NoKeyReady { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                tracing::warn!(
                    retry_after = secs,
                    "a create found no MPC key ready in time"
                );
                ApiError::new(
                    503,
                    "no wallet key is ready yet; nothing was created, retry after the time in Retry-After",
                )
                .with("retryAfter", json!(secs))
            }
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(500, "internal error")
            }
        }
    }
}

pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ApiError::new(405, format!("method {} is not allowed here", req.method())).response()
}
