//! `POST /api/wallets/{walletIdOrAddress}/sign` `{"message": "..."}`: EIP-191.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::errors::ApiError;
use super::signing::{hex0x, sign_with};
use crate::api::context::parse_json;
use crate::app::App;
use crate::domain::eth::SignPayload;
use crate::service::wallets::Signed;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SignMessageRequest)]
struct SignRequest {
    /// Not empty; a `0x…` message is signed as its text, not hex-decoded.
    #[schema(min_length = 1)]
    message: String,
}

#[utoipa::path(
    post,
    path = "/api/wallets/{id}/sign",
    operation_id = "signMessage",
    tag = "server-wallets",
    summary = "Sign a message (EIP-191 personal_sign)",
    security(("api_key" = [])),
    request_body = SignRequest,
    params(
        ("id" = String, Path, description = "a walletId (UUID), an address (0x + 40 hex digits) or a userId"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request"),
    ),
    responses(
        (status = 200, description = "The signature", body = super::schema::MessageSignature),
        super::schema::SignErrors,
    ),
)]
pub async fn sign(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let build = |body: &[u8]| {
        let request: SignRequest = parse_json(body)?;
        if request.message.is_empty() {
            return Err(ApiError::new(400, "message must not be empty"));
        }
        Ok(SignPayload::PersonalMessage(request.message.into_bytes()))
    };
    let answer = |signed: &Signed| {
        Ok(json!({
            "signature": signed.signature.to_hex(),
            "messageHash": hex0x(&signed.digest),
        }))
    };
    sign_with(&app, &req, path.into_inner(), payload, build, answer).await
}
