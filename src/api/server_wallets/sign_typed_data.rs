//! `POST /api/wallets/{walletIdOrAddress}/sign-typed-data` `{"typedData": {...}}`:
//! EIP-712, domain required.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::signing::{hex0x, sign_with};
use crate::api::context::parse_json;
use crate::app::App;
use crate::domain::eth::{SignPayload, TypedDataPayload};
use crate::service::wallets::Signed;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignTypedDataRequest {
    /// The `eth_signTypedData_v4` object: `types`, `primaryType`, `domain`
    /// (required, not empty) and `message`; nothing else.
    #[serde(rename = "typedData")]
    #[schema(value_type = Object)]
    typed_data: Value,
}

#[utoipa::path(
    post,
    path = "/api/wallets/{id}/sign-typed-data",
    operation_id = "signTypedData",
    tag = "server-wallets",
    summary = "Sign EIP-712 typed data",
    security(("api_key" = [])),
    request_body = SignTypedDataRequest,
    params(
        ("id" = String, Path, description = "a walletId (UUID), an address (0x + 40 hex digits) or a userId"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request"),
    ),
    responses(
        (status = 200, description = "The signature and digest", body = super::schema::TypedDataSignature),
        super::schema::SignErrors,
    ),
)]
pub async fn sign_typed_data(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let build = |body: &[u8]| {
        let request: SignTypedDataRequest = parse_json(body)?;
        Ok(SignPayload::TypedData(TypedDataPayload::from_json(
            request.typed_data,
        )?))
    };
    let answer = |signed: &Signed| {
        Ok(json!({
            "signature": signed.signature.to_hex(),
            "digest": hex0x(&signed.digest),
        }))
    };
    sign_with(&app, &req, path.into_inner(), payload, build, answer).await
}
