//! `GET /api/wallet/list[?userId=…]`: the caller's wallets (ADMIN: anyone's).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::{authorize, refuse};
use super::money::wire_amount;
use super::schema::{JwtError, JwtWalletList};
use super::{query, wallet_json, JwtApiError};
use crate::app::App;
use crate::auth::ownership::Dialect;
use crate::auth::roles::Role;
use crate::domain::UserId;
use walletd_projections::ledger_queries;

const ACTION: &str = "wallet.list";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    user_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/wallet/list",
    operation_id = "listJwtWallets",
    tag = "jwt-wallets",
    summary = "List wallets (any role; another user: ADMIN)",
    security(("jwt" = [])),
    params(
        ("userId" = Option<String>, Query, description = "another user (ADMIN only)"),
    ),
    responses(
        (status = 200, description = "The wallets, oldest first", body = JwtWalletList),
        (status = 400, description = "Bad label, JSON, field or query parameter", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Role too low, or another user's data without ADMIN", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn list(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    match run(&app, &req).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

async fn run(app: &App, req: &HttpRequest) -> Result<serde_json::Value, JwtApiError> {
    let user = authorize(app, req, ACTION, Role::Visitor).await?;
    let q: ListQuery = query(req)?;
    let owner = match q.user_id {
        Some(other) if other != user.user_id.as_str() => {
            if user.role != Role::Admin {
                return Err(refuse(
                    app,
                    req,
                    ACTION,
                    &user,
                    JwtApiError::forbidden(),
                    "other_user_requires_admin",
                )
                .await);
            }
            UserId::parse(&other).map_err(|e| JwtApiError::new(400, e.to_string()))?
        }
        _ => user.user_id.clone(),
    };
    let rows = walletd_projections::queries::user_wallets(&app.db, owner.as_str())
        .await
        .map_err(crate::service::ServiceError::from)?;
    // A JWT subject and a server-wallet userId may be the same text; only the
    // JWT API's own wallets are listed.
    let own: Vec<_> = rows
        .iter()
        .filter(|w| Dialect::JwtWallets.owns(&w.kind, &w.user_id))
        .collect();
    // One query for every listed wallet's balance, not one per wallet.
    let ids: Vec<String> = own.iter().map(|w| w.wallet_id.clone()).collect();
    let eth = app.settings.assets.eth();
    let balances = ledger_queries::balances_of(&app.db, &ids, eth.code().as_str())
        .await
        .map_err(crate::service::ServiceError::from)?;
    let wallets: Vec<_> = own
        .into_iter()
        .map(|w| {
            let minor = balances.get(&w.wallet_id).copied().unwrap_or(0);
            wallet_json::from_row(w, &wire_amount(minor, eth.decimals()))
        })
        .collect();
    Ok(json!({ "wallets": wallets, "total": wallets.len() }))
}
