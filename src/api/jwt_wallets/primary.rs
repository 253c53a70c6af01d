//! `POST /api/wallet/primary` `{"walletId"}`: make a wallet its owner's primary.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use walletd_projections::queries::WalletLookup;

use super::auth::authorize;
use super::money::wire_amount;
use super::schema::{JwtError, JwtWalletEnvelope};
use super::{wallet_json, JwtApiError};
use crate::api::context::{command_meta, discard_body, parse_json, read_json_bytes};
use crate::api::idempotency::recorded;
use crate::app::App;
use crate::auth::jwt::JwtUser;
use crate::auth::ownership::Dialect;
use crate::auth::roles::Role;
use crate::domain::WalletId;
use crate::service::ledger::LedgerService;
use crate::service::WalletService;

const ACTION: &str = "wallet.primary";

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrimaryRequest {
    #[schema(format = "uuid")]
    wallet_id: String,
}

#[utoipa::path(
    post,
    path = "/api/wallet/primary",
    operation_id = "setPrimaryWallet",
    tag = "jwt-wallets",
    summary = "Make a wallet its owner's primary (SUBSCRIBER+)",
    security(("jwt" = [])),
    request_body = PrimaryRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request"),
    ),
    responses(
        (status = 200, description = "The wallet", body = JwtWalletEnvelope),
        (status = 400, description = "Bad label, JSON, field or query parameter", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Role too low, or another user's data without ADMIN", body = JwtError),
        (status = 404, description = "Wallet not found (or not the caller's)", body = JwtError),
        (status = 409, description = "Same Idempotency-Key still running; too many concurrent changes", body = JwtError),
        (status = 413, description = "Body larger than `WALLETD_MAX_BODY`", body = JwtError),
        (status = 415, description = "Content-Type is not JSON", body = JwtError),
        (status = 422, description = "Idempotency-Key reused with a different request", body = JwtError),
        (status = 500, description = "No master key configured, or the write failed", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn set_primary(
    app: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let user = match authorize(&app, &req, ACTION, Role::Subscriber).await {
        Ok(u) => u,
        Err(e) => {
            discard_body(&req, payload, app.settings.max_body).await;
            return e.response();
        }
    };
    let body = match read_json_bytes(&req, payload, app.settings.max_body).await {
        Ok(b) => b,
        Err(e) => return JwtApiError::from(e).response(),
    };
    let result = super::idempotent(&app.db, &req, &user, &body, || {
        run(&app, &req, &user, &body)
    })
    .await;
    match result {
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(refusal) => JwtApiError::from(refusal).response(),
    }
}

/// A wallet the caller may see: their own, or for ADMIN any JWT user's; never
/// a wallet of another dialect. Anything else is "not found", so that wallet
/// ids of other users cannot be probed.
///
/// The read side may not show a committed wallet yet (another process created
/// it, or a long transaction elsewhere holds the projector back), and a keyed
/// answer is stored for good; so a miss there is decided by the event store.
pub(crate) async fn visible_wallet(
    app: &App,
    user: &JwtUser,
    id: &str,
) -> Result<WalletId, JwtApiError> {
    let wallet_id = WalletId::parse(id).ok_or_else(JwtApiError::not_found)?;
    let service = WalletService::new(app);
    let (kind, owner) = match service
        .find(WalletLookup::WalletId(&wallet_id.to_string()))
        .await?
    {
        Some(row) => (row.kind, row.user_id),
        None => match service.committed(wallet_id).await? {
            Some(w) => (w.kind.as_str().to_string(), w.user_id.as_str().to_string()),
            None => return Err(JwtApiError::not_found()),
        },
    };
    if !Dialect::JwtWallets.owns(&kind, &owner)
        || (owner != user.user_id.as_str() && user.role != Role::Admin)
    {
        return Err(JwtApiError::not_found());
    }
    Ok(wallet_id)
}

async fn run(
    app: &App,
    req: &HttpRequest,
    user: &JwtUser,
    body: &[u8],
) -> Result<serde_json::Value, JwtApiError> {
    let request: PrimaryRequest = parse_json(body)?;
    let wallet_id = visible_wallet(app, user, &request.wallet_id).await?;
    let meta = command_meta(req, &user.principal);
    let service = WalletService::new(app);
    // A retry of a request whose default was recorded (crash before the
    // answer was stored) does not record it again.
    if !recorded::default_set(&app.db, wallet_id, &meta).await? {
        service.set_default(wallet_id, &meta).await?;
    }
    let row = service
        .find(WalletLookup::WalletId(&wallet_id.to_string()))
        .await?
        .ok_or_else(JwtApiError::not_found)?;
    let eth = app.settings.assets.eth();
    let balance = LedgerService::new(app)
        .balance(wallet_id, eth)
        .await
        .map_err(|e| super::errors::ledger_error(e).0)?;
    let balance = wire_amount(balance.minor(), eth.decimals());
    Ok(json!({ "wallet": wallet_json::from_row(&row, &balance) }))
}
