//! What the three sign endpoints share: authenticate, read the body, run under
//! the Idempotency-Key, build the payload, resolve the wallet, sign, answer.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::errors::ApiError;
use super::get::resolve_for_command;
use super::{authenticate, idempotent};
use crate::api::context::{command_meta, read_json_bytes};
use crate::api::idempotency::recorded;
use crate::app::App;
use crate::domain::eth::SignPayload;
use crate::service::wallets::Signed;
use crate::service::WalletService;

/// Signs with wallet `id` the payload `build` makes of the body, and answers
/// `success`, `address` and `walletId` plus the fields of the object `answer`
/// gives.
pub(super) async fn sign_with(
    app: &App,
    req: &HttpRequest,
    id: String,
    payload: web::Payload,
    build: impl Fn(&[u8]) -> Result<SignPayload, ApiError>,
    answer: impl Fn(&Signed) -> Result<Value, ApiError>,
) -> HttpResponse {
    let principal = match authenticate(app, req).await {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let body = match read_json_bytes(req, payload, app.settings.max_body).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).response(),
    };
    idempotent(app, req, &principal, &body, || async {
        // Validated before the wallet is looked up: a bad body is a 4xx for
        // any wallet.
        let payload = build(&body)?;
        let target = resolve_for_command(app, &id).await?;
        let wallet_id = target.wallet_id;
        let meta = command_meta(req, &principal);
        // A retry whose first attempt signed and committed (crash before the
        // answer was stored) gets that signature, not a second one.
        let signed = match recorded::signature(&app.db, wallet_id, &meta, &payload).await? {
            Some(signed) => signed,
            None => {
                WalletService::new(app)
                    .sign_payload(wallet_id, payload, &meta)
                    .await?
            }
        };
        let Value::Object(mut fields) = answer(&signed)? else {
            return Err(ApiError::new(500, "internal error"));
        };
        fields.insert("success".into(), json!(true));
        fields.insert("address".into(), json!(target.address));
        fields.insert("walletId".into(), json!(wallet_id.to_string()));
        Ok::<(StatusCode, Value), ApiError>((StatusCode::OK, Value::Object(fields)))
    })
    .await
}

/// `0x`-hex of bytes.
pub(super) fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}
