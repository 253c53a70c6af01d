//! `POST /api/wallets/{walletIdOrAddress}/sign-transaction` `{"transaction": {...}}`:
//! EIP-1559 or legacy (EIP-155); answers the signed raw transaction and its hash.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::signing::{hex0x, sign_with};
use crate::api::context::parse_json;
use crate::app::App;
use crate::domain::eth::{SignPayload, TransactionPayload};
use crate::service::wallets::Signed;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignTransactionRequest {
    /// `type` (`eip1559` or `legacy`), `chainId`, `nonce`, `to`, `value`,
    /// `data`, `gas` (or `gasLimit`), and `maxFeePerGas` and
    /// `maxPriorityFeePerGas` (eip1559) or `gasPrice` (legacy). Numbers are
    /// JSON integers or decimal or `0x` strings.
    #[schema(value_type = Object)]
    transaction: Value,
}

#[utoipa::path(
    post,
    path = "/api/wallets/{id}/sign-transaction",
    operation_id = "signTransaction",
    tag = "server-wallets",
    summary = "Sign a transaction (EIP-1559 or legacy EIP-155)",
    security(("api_key" = [])),
    request_body = SignTransactionRequest,
    params(
        ("id" = String, Path, description = "a walletId (UUID), an address (0x + 40 hex digits) or a userId"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request"),
    ),
    responses(
        (status = 200, description = "The signed transaction", body = super::schema::TransactionSignature),
        super::schema::SignErrors,
    ),
)]
pub async fn sign_transaction(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let build = |body: &[u8]| {
        let request: SignTransactionRequest = parse_json(body)?;
        Ok(SignPayload::Transaction(TransactionPayload::from_json(
            request.transaction,
        )?))
    };
    let answer = |signed: &Signed| {
        let transaction = signed
            .transaction
            .as_ref()
            .ok_or_else(|| ApiError::new(500, "internal error"))?;
        Ok(json!({
            "signedTransaction": hex0x(&transaction.raw),
            "transactionHash": hex0x(&transaction.hash),
            "signature": signed.signature.to_hex(),
        }))
    };
    sign_with(&app, &req, path.into_inner(), payload, build, answer).await
}
