//! Where counted refusals are stored.
//!
//! A refusal of an authenticated principal (a valid token whose role or rate
//! did not suffice: 403, 429) names who was refused: that is evidence, and it
//! goes to the append-only `security_log`, never changed or deleted. A refusal
//! of nobody in particular (no or a bad credential: 401, a Sila signature that
//! does not check out) names only a source address: that is noise worth
//! keeping for a while, and it goes to `refusal_counts`, whose rows are
//! deleted after the configured retention ([`prune_noise`]).

use walletd_projections::{with_db, Db};

use crate::domain::Timestamp;

/// One refused request, as the API layer reports it.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The authenticated user, when the token was valid (403, 429).
    pub subject: Option<String>,
    pub role: Option<String>,
    pub auth_method: &'static str,
    /// What was attempted, e.g. `wallet.create`.
    pub action: &'static str,
    pub status: u16,
    /// Why, e.g. `expired`, `insufficient_role`, `rate_limited`.
    pub reason: String,
    pub path: String,
    pub request_id: String,
    pub client_addr: Option<String>,
}

/// Refusals with the same source, subject, action, status and reason, counted
/// over one window: one stored row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusalTally {
    pub subject: Option<String>,
    pub role: Option<String>,
    pub auth_method: &'static str,
    pub action: &'static str,
    pub status: u16,
    pub reason: String,
    pub client_addr: Option<String>,
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    /// The first refused request's path and id: a sample to find it in the
    /// request log.
    pub path: String,
    pub request_id: String,
}

impl RefusalTally {
    /// Evidence (kept forever) rather than noise (kept for the retention).
    pub fn is_evidence(&self) -> bool {
        self.subject.is_some()
    }
}

/// Rows per INSERT statement: 12 parameters each stays well inside both
/// backends' parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

pub struct SecurityLog;

impl SecurityLog {
    /// Appends tallies in one transaction: evidence to `security_log`, noise
    /// to `refusal_counts`.
    pub async fn append(db: &Db, tallies: &[RefusalTally]) -> Result<(), sqlx::Error> {
        if tallies.is_empty() {
            return Ok(());
        }
        let (evidence, noise): (Vec<&RefusalTally>, Vec<&RefusalTally>) =
            tallies.iter().partition(|t| t.is_evidence());
        with_db!(db, pool => {
            let mut tx = pool.begin().await?;
            for chunk in evidence.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO security_log (first_at, at, count, subject, role, auth_method,
                                               action, status, reason, path, request_id, client_addr) ",
                );
                q.push_values(chunk, |mut row, t| {
                    row.push_bind(t.first_at.to_text())
                        .push_bind(t.last_at.to_text())
                        .push_bind(count_value(t.count))
                        .push_bind(t.subject.clone())
                        .push_bind(t.role.clone())
                        .push_bind(t.auth_method)
                        .push_bind(t.action)
                        .push_bind(i32::from(t.status))
                        .push_bind(t.reason.clone())
                        .push_bind(t.path.clone())
                        .push_bind(t.request_id.clone())
                        .push_bind(t.client_addr.clone());
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in noise.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO refusal_counts (first_at, at, count, auth_method, action, status,
                                                 reason, path, request_id, client_addr) ",
                );
                q.push_values(chunk, |mut row, t| {
                    row.push_bind(t.first_at.to_text())
                        .push_bind(t.last_at.to_text())
                        .push_bind(count_value(t.count))
                        .push_bind(t.auth_method)
                        .push_bind(t.action)
                        .push_bind(i32::from(t.status))
                        .push_bind(t.reason.clone())
                        .push_bind(t.path.clone())
                        .push_bind(t.request_id.clone())
                        .push_bind(t.client_addr.clone());
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

fn count_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Deletes up to `batch` noise rows last seen before `before`; returns how
/// many. The security log itself is never pruned.
pub async fn prune_noise(db: &Db, before: &Timestamp, batch: i64) -> Result<u64, sqlx::Error> {
    let n = with_db!(db, pool => {
        sqlx::query(
            "DELETE FROM refusal_counts WHERE id IN
               (SELECT id FROM refusal_counts WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind(before.to_text())
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
}
