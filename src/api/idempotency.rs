//! `Idempotency-Key`: the first response to a (caller, key) is stored durably
//! and replayed to retries; the same key with a different request is refused.
//!
//! A key is claimed by inserting a pending row before the work runs. A claim
//! left pending by a crash is taken over after [`STALE_AFTER`], so a retry after a
//! crash runs the request again — safe for walletd's commands, which are
//! themselves idempotent (one server wallet per user) or harmless to repeat.

use std::future::Future;

use actix_web::http::StatusCode;
use serde_json::Value;
use sha3::{Digest, Sha3_256};
use sqlx::Row;
use walletd_projections::{with_db, Db};

use crate::domain::Timestamp;

const STALE_AFTER_SECS: i64 = 60;

pub enum Outcome {
    /// Run the request and then call [`finish`].
    Proceed,
    /// A stored response to replay.
    Replay(StatusCode, Value),
    /// The key was used with a different request (422).
    Mismatch,
    /// The first request with this key is still running (409).
    InFlight,
}

#[derive(Debug)]
pub struct InvalidKey;

/// Keys are 1–255 visible ASCII characters.
pub fn validate(key: &str) -> Result<(), InvalidKey> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidKey);
    }
    Ok(())
}

pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha3_256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

pub async fn begin(db: &Db, scope: &str, key: &str, hash: &str) -> Result<Outcome, sqlx::Error> {
    let now = Timestamp::now();
    let inserted = with_db!(db, pool => {
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(hash)
        .bind(now.to_text())
        .execute(pool)
        .await?
        .rows_affected()
    });
    if inserted == 1 {
        return Ok(Outcome::Proceed);
    }
    let row: Option<(String, Option<i32>, Option<String>, String)> = with_db!(db, pool => {
        match sqlx::query(
            "SELECT request_hash, status_code, response_body, created_at FROM idempotency_keys
              WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(pool)
        .await?
        {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)),
            None => None,
        }
    });
    let Some((stored_hash, status, body, created_at)) = row else {
        // Deleted between our insert and select (a failed first attempt): claim again.
        return Box::pin(begin(db, scope, key, hash)).await;
    };
    if stored_hash != hash {
        return Ok(Outcome::Mismatch);
    }
    match (status, body) {
        (Some(code), Some(body)) => {
            let status = StatusCode::from_u16(code as u16).unwrap_or(StatusCode::OK);
            let value = serde_json::from_str(&body).unwrap_or(Value::Null);
            Ok(Outcome::Replay(status, value))
        }
        _ => {
            let stale = Timestamp::parse(&created_at)
                .map(|t| (now.datetime() - t.datetime()).num_seconds() > STALE_AFTER_SECS)
                .unwrap_or(true);
            if !stale {
                return Ok(Outcome::InFlight);
            }
            // Take over the abandoned claim, unless another retry just did.
            let taken = with_db!(db, pool => {
                sqlx::query(
                    "UPDATE idempotency_keys SET created_at = $3
                      WHERE scope = $1 AND key = $2 AND created_at = $4 AND status_code IS NULL",
                )
                .bind(scope)
                .bind(key)
                .bind(now.to_text())
                .bind(&created_at)
                .execute(pool)
                .await?
                .rows_affected()
            });
            Ok(if taken == 1 {
                Outcome::Proceed
            } else {
                Outcome::InFlight
            })
        }
    }
}

/// Stores the response. Server-side failures (5xx) and rate-limit refusals
/// (429) are not stored: the claim is released so that a retry runs the
/// request again.
pub async fn finish(
    db: &Db,
    scope: &str,
    key: &str,
    status: StatusCode,
    body: &Value,
) -> Result<(), sqlx::Error> {
    with_db!(db, pool => {
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status_code IS NULL")
                .bind(scope)
                .bind(key)
                .execute(pool)
                .await?;
        } else {
            sqlx::query(
                "UPDATE idempotency_keys SET status_code = $3, response_body = $4
                  WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .bind(i32::from(status.as_u16()))
            .bind(body.to_string())
            .execute(pool)
            .await?;
        }
    });
    Ok(())
}

/// Runs `work` under the idempotency protocol when a key is given.
pub async fn run<F, Fut>(
    db: &Db,
    scope: &str,
    key: Option<&str>,
    hash: &str,
    work: F,
) -> Result<(StatusCode, Value), IdempotencyRefusal>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = (StatusCode, Value)>,
{
    let Some(key) = key else {
        return Ok(work().await);
    };
    validate(key).map_err(|_| IdempotencyRefusal::InvalidKey)?;
    match begin(db, scope, key, hash)
        .await
        .map_err(IdempotencyRefusal::Store)?
    {
        Outcome::Proceed => {
            let (status, body) = work().await;
            if let Err(e) = finish(db, scope, key, status, &body).await {
                tracing::warn!(error = %e, "could not store idempotent response");
            }
            Ok((status, body))
        }
        Outcome::Replay(status, body) => Ok((status, body)),
        Outcome::Mismatch => Err(IdempotencyRefusal::Mismatch),
        Outcome::InFlight => Err(IdempotencyRefusal::InFlight),
    }
}

#[derive(Debug)]
pub enum IdempotencyRefusal {
    InvalidKey,
    Mismatch,
    InFlight,
    Store(sqlx::Error),
}

impl IdempotencyRefusal {
    /// Status and message; each API dialect wraps them in its own error body.
    pub fn status_and_message(&self) -> (u16, &'static str) {
        match self {
            IdempotencyRefusal::InvalidKey => (
                400,
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ),
            IdempotencyRefusal::Mismatch => (
                422,
                "Idempotency-Key was already used with a different request",
            ),
            IdempotencyRefusal::InFlight => (
                409,
                "a request with this Idempotency-Key is still being processed",
            ),
            IdempotencyRefusal::Store(e) => {
                tracing::error!(error = %e, "idempotency store unavailable");
                (503, "service temporarily unavailable")
            }
        }
    }
}
