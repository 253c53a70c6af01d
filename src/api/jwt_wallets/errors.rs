//! This dialect's error bodies: `{"error": "<message>"}`, with the exact texts
//! the API document gives for 401, 403 and 500.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use crate::api::context::BodyError;
use crate::api::idempotency::IdempotencyRefusal;
use crate::service::ledger::LedgerError;
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

/// The ledger's refusals as this dialect answers them, with the reason the
/// security log records for a refusal the client caused (`None`: not the
/// client's doing, nothing to record). The one mapping every money
/// endpoint uses.
pub(crate) fn ledger_error(e: LedgerError) -> (JwtApiError, Option<&'static str>) {
    use crate::domain::account::AccountError as A;
    match e {
        LedgerError::WalletNotFound(_) => (JwtApiError::not_found(), Some("wallet_not_found")),
        LedgerError::Refused(refusal) => match refusal {
            A::InsufficientFunds { .. } => (
                JwtApiError::new(422, "Insufficient funds"),
                Some("insufficient_funds"),
            ),
            A::Frozen { .. } => (
                JwtApiError::new(409, "Wallet is frozen and cannot move funds"),
                Some("wallet_frozen"),
            ),
            A::Deleted { .. } => (
                JwtApiError::new(409, "Wallet is deleted and cannot move funds"),
                Some("wallet_deleted"),
            ),
            A::NotWhitelisted { .. } => (
                JwtApiError::new(403, "Wallet is not whitelisted yet and cannot move funds"),
                Some("not_whitelisted"),
            ),
            A::DuplicateMovement { .. } => (
                JwtApiError::new(
                    422,
                    "Idempotency-Key was already used with a different request",
                ),
                Some("idempotency_mismatch"),
            ),
            A::SelfTransfer => (
                JwtApiError::new(400, "a transfer needs two different wallets"),
                None,
            ),
            A::AmountNotPositive => (
                JwtApiError::new(400, "amount must be greater than zero"),
                None,
            ),
            A::Overflow { .. } => (
                JwtApiError::new(
                    422,
                    "the balance would exceed the largest representable amount",
                ),
                Some("balance_overflow"),
            ),
            // The wallet holds the asset with other decimals (the asset
            // list changed under it), or a routing or bookkeeping bug:
            // walletd's fault, never the client's.
            other @ (A::AssetMismatch { .. }
            | A::WrongAccount { .. }
            | A::NotInFlight { .. }
            | A::TransferMismatch { .. }) => {
                tracing::error!(error = %other, "ledger refused a movement walletd built");
                (JwtApiError::new(500, "Internal error"), None)
            }
        },
        LedgerError::Contended => {
            let mut e = JwtApiError::new(503, "Too many concurrent changes to this wallet; retry");
            e.retry_after = Some(1);
            (e, None)
        }
        LedgerError::Unavailable(detail) => {
            tracing::error!(%detail, "ledger unavailable");
            let mut e = JwtApiError::new(503, "Service temporarily unavailable");
            e.retry_after = Some(1);
            (e, None)
        }
        LedgerError::Internal(detail) => {
            tracing::error!(%detail, "ledger failed");
            (JwtApiError::new(500, "Internal error"), None)
        }
    }
}
