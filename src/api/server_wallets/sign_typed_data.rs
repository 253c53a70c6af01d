//! `POST /api/wallets/{walletIdOrAddress}/sign-typed-data` `{"typedData": {...}}`:
//! EIP-712 (`eth_signTypedData_v4` JSON).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::get::resolve;
use super::{authenticate, idempotent};
use crate::api::context::{command_meta, parse_json, read_json_bytes};
use crate::app::App;
use crate::custody::payload::TypedDataPayload;
use crate::custody::SignPayload;
use crate::domain::WalletId;
use crate::service::WalletService;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignTypedDataRequest {
    #[serde(rename = "typedData")]
    typed_data: Value,
}

pub async fn sign_typed_data(
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
        let request: SignTypedDataRequest = parse_json(&body)?;
        let typed = TypedDataPayload::from_json(request.typed_data)?;
        let row = resolve(&app, &id).await?;
        let wallet_id =
            WalletId::parse(&row.wallet_id).ok_or_else(|| ApiError::new(500, "internal error"))?;
        let meta = command_meta(&req, &principal);
        let signed = WalletService::new(&app)
            .sign_payload(wallet_id, SignPayload::TypedData(typed), &meta)
            .await?;
        Ok::<(StatusCode, Value), ApiError>((
            StatusCode::OK,
            json!({
                "success": true,
                "signature": signed.signature.to_hex(),
                "digest": format!("0x{}", hex::encode(signed.digest)),
                "address": row.address,
                "walletId": row.wallet_id,
            }),
        ))
    })
    .await
}
