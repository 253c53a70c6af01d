//! `GET /api/wallets/{walletIdOrAddress}`: by wallet id, address or user id.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::Arc;

use walletd_projections::queries::WalletLookup;

use super::authenticate;
use super::errors::ApiError;
use crate::api::amounts::wire_amount;
use crate::app::App;
use crate::auth::ownership::Dialect;
use crate::domain::{Address, UserId, WalletId};
use crate::service::identity_cache::WalletIdentity;
use crate::service::WalletService;

#[utoipa::path(
    get,
    path = "/api/wallets/{id}",
    operation_id = "getServerWallet",
    tag = "server-wallets",
    summary = "Get a server wallet by walletId, address or userId",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "a walletId (UUID), an address (0x + 40 hex digits) or a userId"),
    ),
    responses(
        (status = 200, description = "The wallet, with `createdAt` and `balances`", body = super::schema::ServerWallet),
        (status = 400, description = "Bad request: body, field or path identifier not valid for the endpoint", body = super::schema::ServerWalletError),
        (status = 401, description = "Missing or unknown API key (`WWW-Authenticate: Bearer`)", body = super::schema::ServerWalletError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such wallet (or a wallet of another API)", body = super::schema::ServerWalletError),
        (status = 503, description = "Store or MPC cosigner unavailable, or no MPC key ready (`Retry-After`, `retryAfter`)", body = super::schema::ServerWalletError, headers(("Retry-After" = Option<u64>, description = "seconds; on 503 only when no MPC key was ready"))),
    ),
)]
pub async fn get(app: web::Data<App>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(e) = authenticate(&app, &req).await {
        return e.response();
    }
    let answer = async {
        let row = resolve(&app, &path.into_inner()).await?;
        let balances = balances(&app, &row).await?;
        Ok::<_, ApiError>(wallet_body(&row, balances))
    };
    match answer.await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => e.response(),
    }
}

pub(super) fn wallet_body(
    row: &WalletIdentity,
    balances: Vec<serde_json::Value>,
) -> serde_json::Value {
    json!({
        "success": true,
        "userId": row.user_id,
        "address": row.address,
        "walletId": row.wallet_id,
        "publicKey": row.public_key,
        "createdAt": row.created_at,
        "balances": balances,
    })
}

/// Every asset the wallet has held, with its balance as a decimal string of
/// major units without trailing zeros (`"1.5"`, `"0"`), by asset code.
async fn balances(app: &App, row: &WalletIdentity) -> Result<Vec<serde_json::Value>, ApiError> {
    let rows = walletd_projections::ledger_queries::wallet_balances(&app.db, &row.wallet_id)
        .await
        .map_err(crate::service::ServiceError::from)?;
    Ok(rows
        .into_iter()
        .map(|b| json!({ "asset": b.asset, "balance": wire_amount(b.balance, b.decimals) }))
        .collect())
}

/// What the path's identifier names: a UUID is a wallet id (or, failing
/// that, a user id that looks like one); `0x…` must be an address; anything
/// else is a user id.
enum Name {
    Id(WalletId),
    Address(Address),
    User(UserId),
}

impl Name {
    fn parse(id: &str) -> Result<Self, ApiError> {
        if let Some(wallet_id) = WalletId::parse(id) {
            Ok(Name::Id(wallet_id))
        } else if id.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x")) {
            Address::parse(id).map(Name::Address).map_err(|_| {
                ApiError::new(
                    400,
                    "malformed address: expected 0x followed by 40 hex digits",
                )
            })
        } else {
            UserId::parse(id)
                .map(Name::User)
                .map_err(|e| ApiError::new(400, e.to_string()))
        }
    }
}

fn not_found() -> ApiError {
    ApiError::new(404, "wallet not found")
}

/// The wallet `id` names, as the read side shows it.
pub(super) async fn resolve(app: &App, id: &str) -> Result<Arc<WalletIdentity>, ApiError> {
    let name = Name::parse(id)?;
    projected(app, id, &name).await?.ok_or_else(not_found)
}

async fn projected(
    app: &App,
    id: &str,
    name: &Name,
) -> Result<Option<Arc<WalletIdentity>>, ApiError> {
    let service = WalletService::new(app);
    // Wallets of the other dialects are not this API's: "not found", as if
    // they did not exist.
    let own = |w: Option<Arc<WalletIdentity>>| {
        w.filter(|w| Dialect::ServerWallets.owns(&w.kind, &w.user_id))
    };
    let found = match name {
        Name::Id(wallet_id) => match own(service
            .identity(WalletLookup::WalletId(&wallet_id.to_string()))
            .await?)
        {
            Some(w) => Some(w),
            None => service.identity(WalletLookup::ServerWalletOf(id)).await?,
        },
        Name::Address(address) => {
            service
                .identity(WalletLookup::Address(&address.to_lower_hex()))
                .await?
        }
        Name::User(user) => {
            service
                .identity(WalletLookup::ServerWalletOf(user.as_str()))
                .await?
        }
    };
    Ok(own(found))
}

/// A wallet a command acts on.
pub(super) struct Target {
    pub wallet_id: WalletId,
    /// EIP-55.
    pub address: String,
}

/// The wallet `id` names, for a command. The read side may not show a
/// committed wallet yet (another process created it, or a long transaction
/// elsewhere holds the projector back), and a command's answer may be stored
/// for good under its Idempotency-Key; so "not found" is decided by the event
/// store. What the read side does show needs no second look: a server
/// wallet's identity never changes and it is never deleted.
pub(super) async fn resolve_for_command(app: &App, id: &str) -> Result<Target, ApiError> {
    let name = Name::parse(id)?;
    if let Some(w) = projected(app, id, &name).await? {
        let wallet_id =
            WalletId::parse(&w.wallet_id).ok_or_else(|| ApiError::new(500, "internal error"))?;
        return Ok(Target {
            wallet_id,
            address: w.address.clone(),
        });
    }
    let service = WalletService::new(app);
    let candidates = match name {
        Name::Id(wallet_id) => vec![
            Some(wallet_id),
            UserId::parse(id)
                .ok()
                .map(|u| WalletId::for_server_wallet(&u)),
        ],
        Name::Address(address) => vec![service.address_holder(&address).await?],
        Name::User(user) => vec![Some(WalletId::for_server_wallet(&user))],
    };
    for wallet_id in candidates.into_iter().flatten() {
        if let Some(w) = service.committed(wallet_id).await? {
            if Dialect::ServerWallets.owns(w.kind.as_str(), w.user_id.as_str()) {
                return Ok(Target {
                    wallet_id: w.wallet_id,
                    address: w.address.to_checksum(),
                });
            }
        }
    }
    Err(not_found())
}
