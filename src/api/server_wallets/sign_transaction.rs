//! `POST /api/wallets/{walletIdOrAddress}/sign-transaction` `{"transaction": {...}}`:
//! EIP-1559 or legacy (EIP-155); answers the signed raw transaction and its hash.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::get::resolve;
use super::{authenticate, idempotent};
use crate::api::context::{command_meta, parse_json, read_json_bytes};
use crate::app::App;
use crate::custody::payload::TransactionPayload;
use crate::custody::SignPayload;
use crate::domain::WalletId;
use crate::service::WalletService;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignTransactionRequest {
    transaction: Value,
}

pub async fn sign_transaction(
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
        let request: SignTransactionRequest = parse_json(&body)?;
        let tx = TransactionPayload::from_json(request.transaction)?;
        let row = resolve(&app, &id).await?;
        let wallet_id =
            WalletId::parse(&row.wallet_id).ok_or_else(|| ApiError::new(500, "internal error"))?;
        let meta = command_meta(&req, &principal);
        let signed = WalletService::new(&app)
            .sign_payload(wallet_id, SignPayload::Transaction(tx), &meta)
            .await?;
        let transaction = signed
            .transaction
            .ok_or_else(|| ApiError::new(500, "internal error"))?;
        Ok::<(StatusCode, Value), ApiError>((
            StatusCode::OK,
            json!({
                "success": true,
                "signedTransaction": format!("0x{}", hex::encode(&transaction.raw)),
                "transactionHash": format!("0x{}", hex::encode(transaction.hash)),
                "signature": signed.signature.to_hex(),
                "address": row.address,
                "walletId": row.wallet_id,
            }),
        ))
    })
    .await
}
