//! `POST /api/wallets` `{"userId": "..."}`

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::{authenticate, idempotent};
use crate::api::context::{command_meta, discard_body, parse_json, read_json_bytes};
use crate::api::idempotency::recorded;
use crate::app::App;
use crate::domain::wallet::WalletKind;
use crate::domain::UserId;
use crate::service::wallets::CreatedWallet;
use crate::service::{ServiceError, WalletService};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ServerWalletCreateRequest)]
struct CreateRequest {
    /// 1–128 printable ASCII characters (0x20–0x7E), not starting with `0x` or `sila:`.
    #[schema(
        example = "user_123",
        pattern = r"^(?!0[xX]|[sS][iI][lL][aA]:)[\x20-\x7e]{1,128}$"
    )]
    user_id: String,
}

#[utoipa::path(
    post,
    path = "/api/wallets",
    operation_id = "createServerWallet",
    tag = "server-wallets",
    summary = "Create the server wallet of a userId",
    security(("api_key" = [])),
    request_body = CreateRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request"),
    ),
    responses(
        (status = 200, description = "The created wallet", body = super::schema::ServerWallet),
        (status = 400, description = "Bad request: body, field or path identifier not valid for the endpoint", body = super::schema::ServerWalletError),
        (status = 401, description = "Missing or unknown API key (`WWW-Authenticate: Bearer`)", body = super::schema::ServerWalletError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 409, description = "Wallet exists for this userId (body carries `walletId`); same Idempotency-Key still running; too many concurrent changes", body = super::schema::ServerWalletError),
        (status = 413, description = "Body larger than `WALLETD_MAX_BODY`", body = super::schema::ServerWalletError),
        (status = 415, description = "Content-Type is not JSON", body = super::schema::ServerWalletError),
        (status = 422, description = "Idempotency-Key reused with a different request; wallet key not held by walletd", body = super::schema::ServerWalletError),
        (status = 500, description = "No master key configured, or an internal error", body = super::schema::ServerWalletError),
        (status = 503, description = "Store or MPC cosigner unavailable, or no MPC key ready (`Retry-After`, `retryAfter`)", body = super::schema::ServerWalletError, headers(("Retry-After" = Option<u64>, description = "seconds; on 503 only when no MPC key was ready"))),
    ),
)]
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
            .create_custodial(user_id.clone(), WalletKind::Server, None, &meta)
            .await
        {
            Ok(w) => created_body(&w),
            // A retry of a create whose first attempt committed but never answered
            // (crash) gets that attempt's answer, from the event log: the read
            // side may not show the wallet yet (another process committed it,
            // or the projector trails), and a 404 here would be stored as the
            // key's answer for good.
            Err(ServiceError::ServerWalletExists { wallet_id })
                if service.created_by(wallet_id, &meta).await? =>
            {
                match recorded::created_wallet(&app.db, &meta, &user_id, None).await? {
                    Some(w) => created_body(&w),
                    None => return Err(ServiceError::ServerWalletExists { wallet_id }.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        Ok::<(StatusCode, Value), ApiError>((StatusCode::OK, body))
    })
    .await
}

/// The create answer of the API document.
fn created_body(w: &CreatedWallet) -> Value {
    json!({
        "success": true,
        "userId": w.user_id.as_str(),
        "address": w.address.to_checksum(),
        "walletId": w.wallet_id.to_string(),
        "publicKey": w.public_key,
    })
}
