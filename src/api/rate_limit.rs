//! Per-user rate limits shared by every walletd process on one database.
//!
//! A sliding log in the store: each granted request is a row
//! `(bucket, subject, at_ms)` in `rate_limit_grants`, and a request is granted
//! when fewer than `limit` rows of its subject lie inside the window. Check
//! and insert happen in one transaction that holds the subject's lock (a
//! PostgreSQL advisory transaction lock; SQLite has one writer), so any number
//! of processes together grant at most `limit` per window, in any window, not
//! merely per calendar minute. A refused request writes nothing. A granted
//! request whose work then fails gives its grant back ([`SharedLimit::give_back`]),
//! so failures do not use up the allowance.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Row;
use walletd_projections::{with_db, Db};

/// Class of the two-key advisory locks taken here; the two-key space is
/// separate from the single-key locks of the projector and the scheduler.
const LOCK_CLASS: i32 = 0x7761_6c6c; // "wall"

pub struct SharedLimit {
    bucket: &'static str,
    limit: u32,
    window_ms: i64,
}

/// A granted request, to give back if its work fails.
#[derive(Debug)]
pub struct Grant {
    id: i64,
}

#[derive(Debug)]
pub enum Decision {
    Granted(Grant),
    /// Refused; the earliest grant leaves the window after this many seconds.
    Refused {
        retry_after_secs: u64,
    },
}

impl SharedLimit {
    /// `limit` requests per subject in any 60 seconds.
    pub fn per_minute(bucket: &'static str, limit: u32) -> Self {
        Self {
            bucket,
            limit,
            window_ms: 60_000,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Takes one grant for `subject`, or says after how many seconds to retry.
    pub async fn take(&self, db: &Db, subject: &str) -> Result<Decision, sqlx::Error> {
        let now = now_ms();
        let cutoff = now - self.window_ms;
        let is_postgres = matches!(db, Db::Postgres(_));
        with_db!(db, pool => {
            let mut tx = pool.begin().await?;
            if is_postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind(LOCK_CLASS)
                    .bind(format!("{}:{subject}", self.bucket))
                    .execute(&mut *tx)
                    .await?;
            } else {
                // A write first, so this SQLite transaction holds the write
                // lock from here on instead of upgrading (and deadlocking) later.
                sqlx::query("DELETE FROM rate_limit_grants WHERE bucket = $1 AND subject = $2 AND at_ms <= $3")
                    .bind(self.bucket)
                    .bind(subject)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?;
            }
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM rate_limit_grants
                  WHERE bucket = $1 AND subject = $2 AND at_ms > $3",
            )
            .bind(self.bucket)
            .bind(subject)
            .bind(cutoff)
            .fetch_one(&mut *tx)
            .await?;
            let used: i64 = row.try_get("n")?;
            let oldest: Option<i64> = row.try_get("oldest")?;
            if used >= i64::from(self.limit) {
                tx.rollback().await?;
                let free_at = oldest.unwrap_or(now) + self.window_ms;
                return Ok(Decision::Refused {
                    retry_after_secs: retry_after_secs(free_at - now),
                });
            }
            if is_postgres {
                sqlx::query("DELETE FROM rate_limit_grants WHERE bucket = $1 AND subject = $2 AND at_ms <= $3")
                    .bind(self.bucket)
                    .bind(subject)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?;
            }
            let id: i64 = sqlx::query(
                "INSERT INTO rate_limit_grants (bucket, subject, at_ms) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(self.bucket)
            .bind(subject)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            tx.commit().await?;
            Ok(Decision::Granted(Grant { id }))
        })
    }

    /// Returns a grant whose request did not happen after all. Best effort: a
    /// grant that cannot be returned expires with its window.
    pub async fn give_back(&self, db: &Db, grant: Grant) {
        let result = with_db!(db, pool => {
            sqlx::query("DELETE FROM rate_limit_grants WHERE id = $1")
                .bind(grant.id)
                .execute(pool)
                .await
                .map(drop)
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not give back a rate-limit grant; it expires with its window");
        }
    }
}

/// Deletes up to `batch` grants older than every window (`older_than_ms`
/// before now); returns how many.
pub async fn prune(db: &Db, older_than_ms: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let cutoff = now_ms() - older_than_ms;
    let n = with_db!(db, pool => {
        sqlx::query(
            "DELETE FROM rate_limit_grants WHERE id IN
               (SELECT id FROM rate_limit_grants WHERE at_ms <= $1 LIMIT $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whole seconds, rounded up, at least 1.
fn retry_after_secs(ms: i64) -> u64 {
    let ms = u64::try_from(ms.max(0)).unwrap_or(0);
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(-5), 1);
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
        assert_eq!(retry_after_secs(59_999), 60);
    }
}
