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
