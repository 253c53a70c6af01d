//! `GET /api/wallet/{id}/transactions?page=&limit=&type=&from=&to=`: the
//! wallet's movements, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use walletd_projections::ledger_queries::{self, MovementPage};

use super::auth::authorize;
use super::money::transaction;
use super::primary::visible_wallet;
use super::schema::{JwtError, TransactionPage};
use super::{query, JwtApiError, Paging};
use crate::app::App;
use crate::auth::roles::Role;
use crate::domain::Timestamp;
use crate::service::ServiceError;

/// The movement kinds a wallet's history holds.
const TYPES: &[&str] = &["issue", "transfer_in", "transfer_out", "return", "redeem"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionsQuery {
    page: Option<String>,
    limit: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/wallet/{id}/transactions",
    operation_id = "jwtWalletTransactions",
    tag = "jwt-wallets",
    summary = "A wallet's movements, newest first (owner or ADMIN)",
    security(("jwt" = [])),
    params(
        ("id" = String, Path, description = "walletId (UUID)"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "default 1"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "default 20"),
        ("type" = Option<String>, Query, description = "`issue`, `transfer_in`, `transfer_out`, `return` or `redeem`"),
        ("from" = Option<String>, Query, description = "RFC 3339 time or date (midnight UTC), inclusive, on `createdAt`"),
        ("to" = Option<String>, Query, description = "RFC 3339 time or date (midnight UTC), exclusive, on `createdAt`"),
    ),
    responses(
        (status = 200, description = "A page of movements", body = TransactionPage),
        (status = 400, description = "Bad label, JSON, field or query parameter", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "Wallet not found (or not the caller's)", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn transactions(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    match run(&app, &req, &path.into_inner()).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

/// A time bound in the stored `at` form, so that text order is time order.
fn time_bound(name: &str, v: Option<String>) -> Result<Option<String>, JwtApiError> {
    let Some(text) = v else { return Ok(None) };
    let parsed = Timestamp::parse(&text).or_else(|| {
        chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Timestamp::from_datetime(t.and_utc()))
    });
    parsed
        .map(|t| Some(t.to_text()))
        .ok_or_else(|| JwtApiError::new(400, format!("{name} must be an RFC 3339 time or date")))
}

async fn run(app: &App, req: &HttpRequest, id: &str) -> Result<Value, JwtApiError> {
    let user = authorize(app, req, "wallet.transactions", Role::Visitor).await?;
    let q: TransactionsQuery = query(req)?;
    let (page, _) = Paging {
        page: q.page,
        per_page: None,
    }
    .resolve()?;
    let limit = match q.limit {
        None => 20,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| JwtApiError::new(400, "limit must be from 1 to 100"))?,
    };
    if let Some(kind) = &q.kind {
        if !TYPES.contains(&kind.as_str()) {
            return Err(JwtApiError::new(
                400,
                "type must be one of issue, transfer_in, transfer_out, return, redeem",
            ));
        }
    }
    let from = time_bound("from", q.from)?;
    let to = time_bound("to", q.to)?;
    let wallet_id = visible_wallet(app, &user, id).await?.to_string();
    let filter = MovementPage {
        kind: q.kind.as_deref(),
        from_at: from.as_deref(),
        to_at: to.as_deref(),
        offset: (page - 1) * limit,
        limit,
        ..MovementPage::default()
    };
    let rows = ledger_queries::wallet_movements(&app.db, &wallet_id, &filter)
        .await
        .map_err(ServiceError::from)?;
    let total = ledger_queries::count_page(&app.db, &wallet_id, &filter)
        .await
        .map_err(ServiceError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        // A transfer that came back carries the reason on its `return` row.
        let reason = if row.kind == "transfer_out" && row.status == "returned" {
            ledger_queries::movement_rows(&app.db, &row.movement_id)
                .await
                .map_err(ServiceError::from)?
                .into_iter()
                .find(|r| r.kind == "return")
                .and_then(|r| r.reason)
        } else {
            None
        };
        out.push(transaction(row, reason.as_deref()));
    }
    Ok(json!({
        "transactions": out,
        "total": total,
        "page": page,
        "limit": limit,
    }))
}
