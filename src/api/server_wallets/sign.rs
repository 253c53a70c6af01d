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
