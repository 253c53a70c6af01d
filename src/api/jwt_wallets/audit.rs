//! `GET /api/admin/audit` (ADMIN): wallet events and refused attempts (each
//! entry a count of refusals from one source for one reason), newest first,
//! filtered by `userId`, `walletId`, `action`, `from`, `to` (RFC 3339).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authorize;
use super::schema::{AuditPage, JwtError};
use super::{query, JwtApiError, Paging};
use crate::app::App;
use crate::audit::{query as audit_query, AuditFilter};
use crate::auth::roles::Role;
use crate::domain::Timestamp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuditQuery {
    user_id: Option<String>,
    wallet_id: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/audit",
    operation_id = "adminAudit",
    tag = "jwt-wallets",
    summary = "Wallet events and refused attempts, newest first (ADMIN)",
    security(("jwt" = [])),
    params(
        ("userId" = Option<String>, Query),
        ("walletId" = Option<String>, Query),
        ("action" = Option<String>, Query),
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339, inclusive, on `at`"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive, on `at`"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "default 1"),
        ("perPage" = Option<i64>, Query, minimum = 1, maximum = 100, description = "default 20"),
    ),
    responses(
        (status = 200, description = "A page of the audit", body = AuditPage),
        (status = 400, description = "Bad label, JSON, field or query parameter", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Role too low, or another user's data without ADMIN", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn audit(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    match run(&app, &req).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

fn time_bound(name: &str, v: Option<String>) -> Result<Option<String>, JwtApiError> {
    v.map(|s| {
        Timestamp::parse(&s)
            .map(|t| t.to_text())
            .ok_or_else(|| JwtApiError::new(400, format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

async fn run(app: &App, req: &HttpRequest) -> Result<Value, JwtApiError> {
    authorize(app, req, "audit.read", Role::Admin).await?;
    let q: AuditQuery = query(req)?;
    let (page, per_page) = Paging {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve()?;
    let filter = AuditFilter {
        user_id: q.user_id,
        wallet_id: q.wallet_id,
        action: q.action,
        from: time_bound("from", q.from)?,
        to: time_bound("to", q.to)?,
    };
    // Refusals counted by this process so far are written first, so the
    // answer includes them; other processes' follow within a flush interval.
    if let Err(e) = app.refusals.flush(&app.db).await {
        tracing::warn!(error = %e, "could not write refusal counts before an audit read");
    }
    let result = audit_query::page(&app.db, &filter, page, per_page)
        .await
        .map_err(crate::service::ServiceError::from)?;
    Ok(json!({
        "page": page,
        "perPage": per_page,
        "total": result.total,
        "entries": result.entries,
    }))
}
