//! `GET /api/wallets/{walletIdOrAddress}`: by wallet id, address or user id.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::Arc;

use walletd_projections::queries::WalletLookup;

use super::authenticate;
use super::errors::ApiError;
use crate::app::App;
use crate::auth::ownership::Dialect;
use crate::domain::{Address, UserId, WalletId};
use crate::service::identity_cache::WalletIdentity;
use crate::service::WalletService;

pub async fn get(app: web::Data<App>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(e) = authenticate(&app, &req).await {
        return e.response();
    }
    match resolve(&app, &path.into_inner()).await {
        Ok(row) => HttpResponse::Ok().json(wallet_body(&row)),
        Err(e) => e.response(),
    }
}

pub(super) fn wallet_body(row: &WalletIdentity) -> serde_json::Value {
    json!({
        "success": true,
        "userId": row.user_id,
        "address": row.address,
        "walletId": row.wallet_id,
        "publicKey": row.public_key,
        "createdAt": row.created_at,
    })
}

/// Interprets the identifier: a UUID is a wallet id (or, failing that, a user
/// id that looks like one); `0x…` must be an address; anything else a user id.
pub(super) async fn resolve(app: &App, id: &str) -> Result<Arc<WalletIdentity>, ApiError> {
    let service = WalletService::new(app);
    // Wallets of the other dialects are not this API's: "not found", as if
    // they did not exist.
    let own = |w: Option<Arc<WalletIdentity>>| {
        w.filter(|w| Dialect::ServerWallets.owns(&w.kind, &w.user_id))
    };
    let found = if let Some(wallet_id) = WalletId::parse(id) {
        match own(service
            .identity(WalletLookup::WalletId(&wallet_id.to_string()))
            .await?)
        {
            Some(w) => Some(w),
            None => service.identity(WalletLookup::ServerWalletOf(id)).await?,
        }
    } else if id.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x")) {
        let address = Address::parse(id).map_err(|_| {
            ApiError::new(
                400,
                "malformed address: expected 0x followed by 40 hex digits",
            )
        })?;
        service
            .identity(WalletLookup::Address(&address.to_lower_hex()))
            .await?
    } else {
        let user = UserId::parse(id).map_err(|e| ApiError::new(400, e.to_string()))?;
        service
            .identity(WalletLookup::ServerWalletOf(user.as_str()))
            .await?
    };
    own(found).ok_or_else(|| ApiError::new(404, "wallet not found"))
}
