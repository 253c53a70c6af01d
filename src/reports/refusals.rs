//! Refused requests by reason. Refusals are not events (a request that
//! changed nothing must not let its sender write to the ledger), so this
//! report reads the security log (refusals of an authenticated caller, kept
//! for ever) and the refusal counts (refusals of nobody in particular, kept
//! for `WALLETD_REFUSAL_RETENTION_DAYS`), as of a time.

use serde_json::json;
use sqlx::Row;
use walletd_projections::{with_db, Db};

use super::table::Table;
use super::ReportError;

/// Later than any time walletd writes: no cut.
pub const NO_CUT: &str = "9999-12-31T23:59:59.999999Z";

/// Counted refusals whose window ended at or before `until` (RFC 3339 as
/// walletd writes it: comparable as text).
pub async fn table(db: &Db, until: &str) -> Result<Table, ReportError> {
    let sql = "
SELECT kept, auth_method, action, CAST(status AS BIGINT) AS status, reason,
       CAST(SUM(count) AS BIGINT) AS refused,
       MIN(first_at) AS first_at, MAX(at) AS last_at
  FROM (SELECT 'evidence' AS kept, auth_method, action, status, reason, count,
               COALESCE(first_at, at) AS first_at, at
          FROM security_log WHERE at <= $1
        UNION ALL
        SELECT 'noise' AS kept, auth_method, action, status, reason, count, first_at, at
          FROM refusal_counts WHERE at <= $1) r
 GROUP BY kept, auth_method, action, status, reason
 ORDER BY kept, auth_method, action, status, reason";
    let mut t = Table::new(&[
        "kept",
        "auth_method",
        "action",
        "status",
        "reason",
        "refused",
        "first_at",
        "last_at",
    ]);
    with_db!(db, pool => {
        for r in sqlx::query(sql).bind(until).fetch_all(pool).await? {
            t.push(vec![
                json!(r.try_get::<String, _>("kept")?),
                json!(r.try_get::<String, _>("auth_method")?),
                json!(r.try_get::<String, _>("action")?),
                json!(r.try_get::<i64, _>("status")?),
                json!(r.try_get::<String, _>("reason")?),
                json!(r.try_get::<i64, _>("refused")?),
                json!(r.try_get::<String, _>("first_at")?),
                json!(r.try_get::<String, _>("last_at")?),
            ]);
        }
    });
    Ok(t)
}
