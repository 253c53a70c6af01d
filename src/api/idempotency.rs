//! `Idempotency-Key`: the first response to a (caller, key) is stored durably
//! and replayed to retries; the same key with a different request is refused.
//!
//! A key is claimed by inserting a pending row before the work runs. While the
//! work runs its process renews the claim every [`RENEW_EVERY`], so a slow
//! request keeps it; a claim nobody renews for [`STALE_AFTER_SECS`] (its
//! process died) is taken over by a retry. The response row itself is not
//! what stops a command from running twice: a crash can fall between the
//! commit and saving the response, and expired rows are pruned after
//! [`KEEP_FOR_SECS`]. Every event records the request's key in its metadata,
//! so before acting each command looks for the events an earlier attempt
//! committed under the same caller and key ([`recorded`]) and answers from
//! them; creates under a key also get an id derived from (caller, key), so two
//! attempts running at once collide on the event store's primary key.

pub mod recorded;

use std::future::Future;
use std::time::Duration;

use actix_web::http::StatusCode;
use serde_json::Value;
use sha3::{Digest, Sha3_256};
use sqlx::Row;
use walletd_projections::{with_db, Db};

use crate::domain::Timestamp;

/// A pending claim not renewed for this long belongs to a dead process.
pub const STALE_AFTER_SECS: i64 = 60;

/// How often a running request renews its claim.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// Rows older than this are pruned ([`prune`]); a retry after that runs the
/// request again, which finds what the first attempt recorded.
pub const KEEP_FOR_SECS: u64 = 24 * 3600;

pub enum Outcome {
    /// Run the request and then call [`finish`]; the claim's time stamp,
    /// which identifies this claim when it is renewed.
    Proceed(String),
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
        return Ok(Outcome::Proceed(now.to_text()));
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
                Outcome::Proceed(now.to_text())
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

/// Renews a pending claim whose time stamp is still `claimed_at`; returns the
/// new stamp, or `None` if the claim is no longer ours.
async fn renew(
    db: &Db,
    scope: &str,
    key: &str,
    claimed_at: &str,
) -> Result<Option<String>, sqlx::Error> {
    let now = Timestamp::now().to_text();
    let renewed = with_db!(db, pool => {
        sqlx::query(
            "UPDATE idempotency_keys SET created_at = $3
              WHERE scope = $1 AND key = $2 AND created_at = $4 AND status_code IS NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(&now)
        .bind(claimed_at)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok((renewed == 1).then_some(now))
}

/// Runs `work` while renewing the claim stamped `claimed_at`.
async fn run_claimed<Fut>(
    db: &Db,
    scope: &str,
    key: &str,
    mut claimed_at: String,
    work: Fut,
) -> (StatusCode, Value)
where
    Fut: Future<Output = (StatusCode, Value)>,
{
    let mut work = std::pin::pin!(work);
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticker.tick() => match renew(db, scope, key, &claimed_at).await {
                Ok(Some(stamp)) => claimed_at = stamp,
                // Taken over after all (this process stalled past the stale
                // limit): the work goes on; the event log settles duplicates.
                Ok(None) => tracing::warn!("an Idempotency-Key claim was taken over while its request ran"),
                Err(e) => tracing::warn!(error = %e, "could not renew an Idempotency-Key claim"),
            },
        }
    }
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
        Outcome::Proceed(claimed_at) => {
            let (status, body) = run_claimed(db, scope, key, claimed_at, work()).await;
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

/// Deletes up to `batch` rows claimed or answered more than `older_than_secs`
/// ago; returns how many.
pub async fn prune(db: &Db, older_than_secs: u64, batch: i64) -> Result<u64, sqlx::Error> {
    let secs = i64::try_from(older_than_secs).unwrap_or(i64::MAX / 2_000_000);
    let cutoff = Timestamp::from_datetime(chrono::Utc::now() - chrono::Duration::seconds(secs));
    let n = with_db!(db, pool => {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE (scope, key) IN
               (SELECT scope, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        )
        .bind(cutoff.to_text())
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
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
