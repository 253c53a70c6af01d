//! The Sila dialect's answers: `{success, reference, message, status,
//! validation_details}` on failure, the endpoint's fields plus `reference`,
//! `success`, `status` and `response_time_ms` on success.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::{Map, Value};

use crate::api::context::BodyError;
use crate::domain::account::AccountError;
use crate::domain::user::UserError;
use crate::service::ledger::LedgerError;
use crate::service::sila_users::SilaError;

#[derive(Debug)]
pub struct SilaApiError {
    pub status: u16,
    pub message: String,
    /// Field path (dotted) → problem, for format errors.
    pub details: Vec<(String, String)>,
}

impl SilaApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// 400 for one bad field.
    pub fn field(path: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self {
            status: 400,
            message: format!("Bad request format: {path}: {problem}"),
            details: vec![(path.to_string(), problem)],
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    fn details_json(&self) -> Value {
        if self.details.is_empty() {
            return Value::Null;
        }
        let mut root = Map::new();
        for (path, problem) in &self.details {
            let mut node = &mut root;
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    node.insert(part.to_string(), Value::String(problem.clone()));
                    break;
                }
                let next = node
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !next.is_object() {
                    *next = Value::Object(Map::new());
                }
                match next {
                    Value::Object(m) => node = m,
                    _ => break,
                }
            }
        }
        Value::Object(root)
    }

    pub fn respond(&self, reference: Option<&str>) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        HttpResponse::build(status).json(serde_json::json!({
            "success": false,
            "reference": reference,
            "message": self.message,
            "status": "FAILURE",
            "validation_details": self.details_json(),
        }))
    }
}

impl From<BodyError> for SilaApiError {
    fn from(e: BodyError) -> Self {
        // Sila answers every malformed body with 400; size and type keep
        // their HTTP meaning.
        let status = match e.status() {
            413 | 415 => e.status(),
            _ => 400,
        };
        Self::new(status, e.message())
    }
}

impl From<SilaError> for SilaApiError {
    fn from(e: SilaError) -> Self {
        let message = e.to_string();
        match e {
            SilaError::User(UserError::SignerNotAWallet) => Self::new(403, message),
            SilaError::User(UserError::NicknameTaken(_)) => {
                let mut err = Self::new(400, message.clone());
                err.details.push(("wallet.nickname".into(), message));
                err
            }
            SilaError::User(_) | SilaError::AddressTaken(_) | SilaError::Replayed => {
                Self::new(400, message)
            }
            SilaError::InvalidProof => Self::new(403, message),
            SilaError::Contended => Self::new(409, message),
            SilaError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "sila request failed: store unavailable");
                Self::new(503, "Service temporarily unavailable; retry")
            }
            SilaError::NotConfigured(detail) => {
                tracing::error!(error = %detail, "sila request failed: configuration");
                Self::new(500, "Server configuration error")
            }
            SilaError::Internal(detail) => {
                tracing::error!(error = %detail, "sila request failed");
                Self::new(500, "Internal error")
            }
        }
    }
}

/// Every refusal of a movement, in Sila's words: the client's mistakes and
/// the wallets' state are 400, walletd's own trouble 409/503/500.
impl From<LedgerError> for SilaApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Refused(refusal) => match refusal {
                AccountError::InsufficientFunds {
                    available,
                    requested,
                    ..
                } => Self::new(
                    400,
                    format!(
                        "Insufficient funds: {} SILA requested, {} SILA available.",
                        requested.minor(),
                        available.minor()
                    ),
                ),
                AccountError::NotWhitelisted { .. } => Self::new(
                    400,
                    "This wallet is not yet whitelisted. If its user has just passed KYC or \
                     the address was just registered, allow a few minutes for it to be added \
                     to our whitelist, then retry.",
                ),
                AccountError::Frozen { .. } => {
                    Self::new(400, "This wallet is frozen and cannot move funds.")
                }
                AccountError::Deleted { .. } => {
                    Self::new(400, "This wallet is deleted and cannot move funds.")
                }
                AccountError::DuplicateMovement { .. } => Self::new(
                    400,
                    "header.reference was already used for a different transaction; \
                     use a new reference for a new transaction.",
                ),
                AccountError::AmountNotPositive => {
                    Self::field("amount", "must be a positive whole number of SILA")
                }
                AccountError::Overflow { .. } => {
                    Self::field("amount", "is too large for the destination's balance")
                }
                AccountError::SelfTransfer => Self::new(
                    400,
                    "The destination is the signing wallet itself; name another wallet.",
                ),
                e @ (AccountError::WrongAccount { .. }
                | AccountError::AssetMismatch { .. }
                | AccountError::NotInFlight { .. }
                | AccountError::TransferMismatch { .. }) => {
                    tracing::error!(error = %e, "sila movement refused: walletd is inconsistent");
                    Self::new(500, "Internal error")
                }
            },
            // The wallets are resolved from the user before the movement, so
            // a wallet missing now was removed meanwhile.
            LedgerError::WalletNotFound(_) => Self::new(400, "The wallet no longer exists."),
            LedgerError::Contended => SilaError::Contended.into(),
            LedgerError::Unavailable(detail) => SilaError::Unavailable(detail).into(),
            LedgerError::Internal(detail) => SilaError::Internal(detail).into(),
        }
    }
}

impl From<sqlx::Error> for SilaApiError {
    fn from(e: sqlx::Error) -> Self {
        SilaError::Unavailable(e.to_string()).into()
    }
}

/// An endpoint's answer: its own fields, and whether it reports success. A
/// 200 may report `success: false` (a taken handle, KYC not passed).
pub struct Reply {
    pub ok: bool,
    pub fields: Value,
}

impl Reply {
    pub fn success(fields: Value) -> Self {
        Self { ok: true, fields }
    }

    pub fn negative(fields: Value) -> Self {
        Self { ok: false, fields }
    }

    /// The fields plus the envelope every Sila answer carries.
    pub fn respond(self, reference: Option<&str>, started: Instant) -> HttpResponse {
        respond_with(self.ok, reference, started, self.fields)
    }
}

fn respond_with(
    ok: bool,
    reference: Option<&str>,
    started: Instant,
    fields: Value,
) -> HttpResponse {
    let mut body = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    body.insert("success".into(), Value::Bool(ok));
    body.insert(
        "status".into(),
        Value::String(if ok { "SUCCESS" } else { "FAILURE" }.into()),
    );
    body.insert(
        "reference".into(),
        reference.map_or(Value::Null, |r| Value::String(r.into())),
    );
    body.insert(
        "response_time_ms".into(),
        Value::String(started.elapsed().as_millis().to_string()),
    );
    HttpResponse::Ok().json(Value::Object(body))
}
