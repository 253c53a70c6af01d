//! `GET /api/wallet/{id}/balance`: the wallet's ETH balance.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authorize;
use super::errors::ledger_error;
use super::money::wire_amount;
use super::primary::visible_wallet;
use super::schema::{JwtError, WalletBalance};
use super::{query, JwtApiError};
use crate::app::App;
use crate::auth::roles::Role;
use crate::service::ledger::LedgerService;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

#[utoipa::path(
    get,
    path = "/api/wallet/{id}/balance",
    operation_id = "jwtWalletBalance",
    tag = "jwt-wallets",
    summary = "A wallet's balance (owner or ADMIN)",
    security(("jwt" = [])),
    params(
        ("id" = String, Path, description = "walletId (UUID)"),
    ),
    responses(
        (status = 200, description = "The balance, a decimal string of ETH", body = WalletBalance),
        (status = 400, description = "Bad label, JSON, field or query parameter", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "Wallet not found (or not the caller's)", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn balance(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    match run(&app, &req, &path.into_inner()).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

async fn run(app: &App, req: &HttpRequest, id: &str) -> Result<Value, JwtApiError> {
    let user = authorize(app, req, "wallet.balance", Role::Visitor).await?;
    query::<NoQuery>(req)?;
    let wallet_id = visible_wallet(app, &user, id).await?;
    let eth = app.settings.assets.eth();
    let balance = LedgerService::new(app)
        .balance(wallet_id, eth)
        .await
        .map_err(|e| ledger_error(e).0)?;
    Ok(json!({
        "walletId": wallet_id.to_string(),
        "currency": eth.code().as_str(),
        "balance": wire_amount(balance.minor(), eth.decimals()),
    }))
}
