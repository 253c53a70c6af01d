//! `POST /api/wallets` `{"userId": "..."}`

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::get::resolve;
use super::{authenticate, idempotent};
use crate::api::context::{command_meta, discard_body, parse_json, read_json_bytes};
use crate::app::App;
use crate::domain::wallet::WalletKind;
use crate::domain::UserId;
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
            .create_custodial(user_id, WalletKind::Server, None, &meta)
            .await
        {
            Ok(w) => created_body(
                w.user_id.as_str(),
                &w.address.to_checksum(),
                &w.wallet_id.to_string(),
                Some(&w.public_key),
            ),
            // A retry of a create whose first attempt committed but never answered
            // (crash) gets that attempt's answer.
            Err(ServiceError::ServerWalletExists { wallet_id })
                if service.created_by(wallet_id, &meta).await? =>
            {
                let w = resolve(&app, &wallet_id.to_string()).await?;
                created_body(
                    &w.user_id,
                    &w.address,
                    &w.wallet_id,
                    w.public_key.as_deref(),
                )
            }
            Err(e) => return Err(e.into()),
        };
        Ok::<(StatusCode, Value), ApiError>((StatusCode::OK, body))
    })
    .await
}

/// The create answer of the API document.
fn created_body(user_id: &str, address: &str, wallet_id: &str, public_key: Option<&str>) -> Value {
    json!({
        "success": true,
        "userId": user_id,
        "address": address,
        "walletId": wallet_id,
        "publicKey": public_key,
    })
}
