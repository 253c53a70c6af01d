use walletd_projections::{with_db, Db};

use crate::domain::Timestamp;

/// One refused request.
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

pub struct SecurityLog;

impl SecurityLog {
    /// Appends a refusal. A failure to record is logged, not raised: the client
    /// still gets its refusal.
    pub async fn record(db: &Db, r: &Refusal) {
        let at = Timestamp::now().to_text();
        let result: Result<(), sqlx::Error> = with_db!(db, pool => {
            sqlx::query(
                "INSERT INTO security_log (at, subject, role, auth_method, action, status, reason, path, request_id, client_addr)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&at)
            .bind(&r.subject)
            .bind(&r.role)
            .bind(r.auth_method)
            .bind(r.action)
            .bind(i32::from(r.status))
            .bind(&r.reason)
            .bind(&r.path)
            .bind(&r.request_id)
            .bind(&r.client_addr)
            .execute(pool)
            .await
            .map(|_| ())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record a refused request in the security log");
        }
    }
}
