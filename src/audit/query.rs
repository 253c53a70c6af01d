//! The admin audit view: wallet events and refusals, newest first.

use serde_json::{json, Value};
use sqlx::Row;
use walletd_projections::{with_db, Db};

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub wallet_id: Option<String>,
    /// An event type (`WalletCreated`) or a refused action (`wallet.create`).
    pub action: Option<String>,
    /// Inclusive lower bound, RFC 3339 (normalised).
    pub from: Option<String>,
    /// Exclusive upper bound, RFC 3339 (normalised).
    pub to: Option<String>,
}

pub struct AuditPage {
    pub entries: Vec<Value>,
    pub total: i64,
}

/// All sources projected onto one shape; the filters apply to the union. A
/// refusal row counts `count` refusals seen from `first_at` to `at`.
const UNION: &str = "
SELECT 'event' AS source, occurred_at AS at, seq AS id, actor, role, auth_method,
       event_type AS action, NULL AS status, NULL AS reason, wallet_id, user_id,
       request_id, client_addr, payload AS detail, NULL AS count, NULL AS first_at
  FROM audit_log
UNION ALL
SELECT 'refusal' AS source, at, id, subject AS actor, role, auth_method,
       action, status, reason, NULL AS wallet_id, subject AS user_id,
       request_id, client_addr, path AS detail, count, COALESCE(first_at, at) AS first_at
  FROM security_log
UNION ALL
SELECT 'refusal' AS source, at, id, NULL AS actor, NULL AS role, auth_method,
       action, status, reason, NULL AS wallet_id, NULL AS user_id,
       request_id, client_addr, path AS detail, count, first_at
  FROM refusal_counts";

const WHERE: &str = "
 WHERE ($1 IS NULL OR user_id = $1)
   AND ($2 IS NULL OR wallet_id = $2)
   AND ($3 IS NULL OR action = $3)
   AND ($4 IS NULL OR at >= $4)
   AND ($5 IS NULL OR at < $5)";

pub async fn page(
    db: &Db,
    f: &AuditFilter,
    page: i64,
    per_page: i64,
) -> Result<AuditPage, sqlx::Error> {
    let count_sql = format!("SELECT COUNT(*) AS n FROM ({UNION}) u {WHERE}");
    let page_sql = format!(
        "SELECT source, at, id, actor, role, auth_method, action, status, reason, wallet_id, user_id,
                request_id, client_addr, detail, count, first_at
           FROM ({UNION}) u {WHERE}
          ORDER BY at DESC, source, id DESC
          LIMIT $6 OFFSET $7"
    );
    // Saturating: callers cap `page`, and no page may wrap into a negative OFFSET.
    let offset = page
        .max(1)
        .saturating_sub(1)
        .saturating_mul(per_page.max(0));
    with_db!(db, pool => {
        let total: i64 = sqlx::query(&count_sql)
            .bind(&f.user_id)
            .bind(&f.wallet_id)
            .bind(&f.action)
            .bind(&f.from)
            .bind(&f.to)
            .fetch_one(pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&page_sql)
            .bind(&f.user_id)
            .bind(&f.wallet_id)
            .bind(&f.action)
            .bind(&f.from)
            .bind(&f.to)
            .bind(per_page)
            .bind(offset)
            .fetch_all(pool)
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let source: String = r.try_get("source")?;
            let detail: Option<String> = r.try_get("detail")?;
            let mut e = json!({
                "source": source,
                "at": r.try_get::<String, _>("at")?,
                "actor": r.try_get::<Option<String>, _>("actor")?,
                "role": r.try_get::<Option<String>, _>("role")?,
                "authMethod": r.try_get::<Option<String>, _>("auth_method")?,
                "action": r.try_get::<String, _>("action")?,
                "userId": r.try_get::<Option<String>, _>("user_id")?,
                "walletId": r.try_get::<Option<String>, _>("wallet_id")?,
                "requestId": r.try_get::<Option<String>, _>("request_id")?,
                "clientAddr": r.try_get::<Option<String>, _>("client_addr")?,
            });
            if source == "event" {
                e["seq"] = json!(r.try_get::<i64, _>("id")?);
                e["data"] = detail
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or(Value::Null);
            } else {
                e["status"] = json!(r.try_get::<Option<i32>, _>("status")?);
                e["reason"] = json!(r.try_get::<Option<String>, _>("reason")?);
                e["path"] = json!(detail);
                e["count"] = json!(r.try_get::<Option<i64>, _>("count")?.unwrap_or(1));
                e["firstAt"] = json!(r.try_get::<Option<String>, _>("first_at")?);
            }
            entries.push(e);
        }
        Ok(AuditPage { entries, total })
    })
}
