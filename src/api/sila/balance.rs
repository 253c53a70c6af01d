//! `get_sila_balance`: an address's SILA balance. Public in Sila's API (a
//! token balance is public on its chain): the body is `{"address": ...}`,
//! no header, no signature required (signatures sent are ignored).

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use walletd_projections::sila_queries;

use super::envelope::{self, Fields};
use super::errors::{Reply, SilaApiError};
use super::schema::{GetSilaBalanceRequest, SilaBalanceReply, SilaErrors};
use crate::app::App;
use crate::domain::{Address, WalletId};
use crate::service::ledger::LedgerService;

#[utoipa::path(
    post,
    path = "/0.2/get_sila_balance",
    tag = "sila",
    summary = "An address's SILA balance (public: no signature)",
    security(()),
    request_body = GetSilaBalanceRequest,
    responses(
        (status = 200, description = "The balance; 0 for an address walletd does not know", body = SilaBalanceReply),
        SilaErrors,
    ),
)]
pub async fn get_sila_balance(
    app: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let env = match envelope::read(&req, payload, app.settings.max_body).await {
        Ok(env) => env,
        Err((reference, e)) => return e.respond(reference.as_deref()),
    };
    let reference = env.reference.as_deref();
    match balance(&app, &env).await {
        Ok(reply) => reply.respond(reference, started),
        Err(e) => e.respond(reference),
    }
}

async fn balance(app: &App, env: &envelope::Envelope) -> Result<Reply, SilaApiError> {
    let f = Fields::top(&env.body);
    let text = f
        .str("address")?
        .ok_or_else(|| SilaApiError::field("address", "is required"))?;
    let address =
        Address::parse(text).map_err(|e| SilaApiError::field("address", e.to_string()))?;
    let wallet = sila_queries::sila_wallet_by_address(&app.db, &address.to_lower_hex()).await?;
    let balance = match wallet.as_ref().and_then(|w| WalletId::parse(&w.wallet_id)) {
        Some(id) => LedgerService::new(app)
            .balance(id, app.settings.assets.sila())
            .await?
            .minor(),
        None => 0,
    };
    Ok(Reply::success(json!({
        // As sent: clients compare it with what they asked for.
        "address": text,
        "sila_balance": u64::try_from(balance).map_or_else(|_| json!(balance.to_string()), |b| json!(b)),
    })))
}
