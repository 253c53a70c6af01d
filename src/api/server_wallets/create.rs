//! `POST /api/wallets` `{"userId": "..."}`

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::{authenticate, idempotent};
use crate::api::context::{command_meta, discard_body, parse_json, read_json_bytes};
use crate::api::idempotency::recorded;
use crate::app::App;
use crate::domain::wallet::WalletKind;
use crate::domain::UserId;
use crate::service::wallets::CreatedWallet;
use crate::service::{ServiceError, WalletService};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateRequest {
    user_id: String,
}

pub async fn create(app: web::Data<App>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let principal = match authenticate(&app, &req).await {
        Ok(p) => p,
        Err(e) => {
            discard_body(&req, payload, app.settings.max_body).await;
            return e.response();
        }
    };
    let body = match read_json_bytes(&req, payload, app.settings.max_body).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).response(),
    };
    idempotent(&app, &req, &principal, &body, || async {
        let request: CreateRequest = parse_json(&body)?;
        let user_id =
            UserId::parse(&request.user_id).map_err(|e| ApiError::new(400, e.to_string()))?;
        let meta = command_meta(&req, &principal);
        let service = WalletService::new(&app);
        let body = match service
            .create_custodial(user_id.clone(), WalletKind::Server, None, &meta)
            .await
        {
            Ok(w) => created_body(&w),
            // A retry of a create whose first attempt committed but never answered
            // (crash) gets that attempt's answer, from the event log: the read
            // side may not show the wallet yet (another process committed it,
            // or the projector trails), and a 404 here would be stored as the
            // key's answer for good.
            Err(ServiceError::ServerWalletExists { wallet_id })
                if service.created_by(wallet_id, &meta).await? =>
            {
                match recorded::created_wallet(&app.db, &meta, &user_id, None).await? {
                    Some(w) => created_body(&w),
                    None => return Err(ServiceError::ServerWalletExists { wallet_id }.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        Ok::<(StatusCode, Value), ApiError>((StatusCode::OK, body))
    })
    .await
}

/// The create answer of the API document.
fn created_body(w: &CreatedWallet) -> Value {
    json!({
        "success": true,
        "userId": w.user_id.as_str(),
        "address": w.address.to_checksum(),
        "walletId": w.wallet_id.to_string(),
        "publicKey": w.public_key,
    })
}
