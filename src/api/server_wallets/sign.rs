//! `POST /api/wallets/{walletIdOrAddress}/sign` `{"message": "..."}`: EIP-191.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::get::resolve;
use super::{authenticate, idempotent};
use crate::api::context::{command_meta, parse_json, read_json_bytes};
use crate::app::App;
use crate::domain::WalletId;
use crate::service::WalletService;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    message: String,
}

pub async fn sign(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let principal = match authenticate(&app, &req).await {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let body = match read_json_bytes(&req, payload, app.settings.max_body).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).response(),
    };
    let id = path.into_inner();
    idempotent(&app, &req, &principal, &body, || async {
        let request: SignRequest = parse_json(&body)?;
        if request.message.is_empty() {
            return Err(ApiError::new(400, "message must not be empty"));
        }
        let row = resolve(&app, &id).await?;
        let wallet_id =
            WalletId::parse(&row.wallet_id).ok_or_else(|| ApiError::new(500, "internal error"))?;
        let meta = command_meta(&req, &principal);
        let signed = WalletService::new(&app)
            .sign_message(wallet_id, request.message.into_bytes(), &meta)
            .await?;
        Ok::<(StatusCode, Value), ApiError>((
            StatusCode::OK,
            json!({
                "success": true,
                "signature": signed.signature.to_hex(),
                "messageHash": format!("0x{}", hex::encode(signed.digest)),
                "address": row.address,
                "walletId": row.wallet_id,
            }),
        ))
    })
    .await
}
