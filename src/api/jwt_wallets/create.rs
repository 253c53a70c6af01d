//! `POST /api/wallet/create` `{"label"?: string, "userId"?: string (ADMIN only)}`

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{authorize, refuse};
use super::schema::{JwtError, JwtWalletEnvelope};
use super::wallet_json;
use super::JwtApiError;
use crate::api::context::{command_meta, discard_body, parse_json, read_optional_json_bytes};
use crate::api::idempotency::recorded;
use crate::api::rate_limit::Decision;
use crate::app::App;
use crate::auth::roles::Role;
use crate::domain::wallet::WalletKind;
use crate::domain::{Label, UserId};
use crate::service::{ServiceError, WalletService};

const ACTION: &str = "wallet.create";

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = JwtWalletCreateRequest)]
struct CreateRequest {
    /// At most 50 ASCII letters, digits, spaces, hyphens and underscores;
    /// `""` and `null` are no label.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9 _-]{0,50}$")]
    label: Option<String>,
    /// Create for another user: ADMIN only. 1–128 printable ASCII
    /// characters, not starting with `0x` or `sila:`.
    #[serde(default)]
    #[schema(pattern = r"^(?!0[xX]|[sS][iI][lL][aA]:)[\x20-\x7e]{1,128}$")]
    user_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/wallet/create",
    operation_id = "createJwtWallet",
    tag = "jwt-wallets",
    summary = "Create a custodial wallet (SUBSCRIBER+; `userId`: ADMIN only)",
    security(("jwt" = [])),
    request_body(content = Option<CreateRequest>, description = "may be empty"),
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request"),
    ),
    responses(
        (status = 200, description = "The created wallet", body = JwtWalletEnvelope),
        (status = 400, description = "Bad label, JSON, field or query parameter", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Role too low, or another user's data without ADMIN", body = JwtError),
        (status = 409, description = "Same Idempotency-Key still running; too many concurrent changes", body = JwtError),
        (status = 413, description = "Body larger than `WALLETD_MAX_BODY`", body = JwtError),
        (status = 415, description = "Content-Type is not JSON", body = JwtError),
        (status = 422, description = "Idempotency-Key reused with a different request", body = JwtError),
        (status = 429, description = "More than `WALLETD_CREATE_RATE_PER_MINUTE` creates in 60 s (`Retry-After`, `retryAfter`)", body = JwtError, headers(("Retry-After" = u64, description = "seconds until a create is allowed"))),
        (status = 500, description = "No master key configured, or the write failed", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn create(app: web::Data<App>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let user = match authorize(&app, &req, ACTION, Role::Subscriber).await {
        Ok(u) => u,
        Err(e) => {
            discard_body(&req, payload, app.settings.max_body).await;
            return e.response();
        }
    };
    let body = match read_optional_json_bytes(&req, payload, app.settings.max_body).await {
        Ok(b) => b,
        Err(e) => return JwtApiError::from(e).response(),
    };
    let result = super::idempotent(&app.db, &req, &user, &body, || {
        work(&app, &req, &user, &body)
    })
    .await;
    match result {
        Ok((status, body)) if status == StatusCode::TOO_MANY_REQUESTS => {
            let mut e =
                JwtApiError::new(429, body["error"].as_str().unwrap_or("Too many requests"));
            e.retry_after = body["retryAfter"].as_u64();
            e.response()
        }
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(refusal) => JwtApiError::from(refusal).response(),
    }
}

async fn work(
    app: &App,
    req: &HttpRequest,
    user: &crate::auth::jwt::JwtUser,
    body: &[u8],
) -> Result<Value, JwtApiError> {
    let request: CreateRequest = if body.is_empty() {
        CreateRequest {
            label: None,
            user_id: None,
        }
    } else {
        parse_json(body)?
    };
    let owner = match request.user_id {
        None => user.user_id.clone(),
        Some(other) => {
            if user.role != Role::Admin {
                return Err(refuse(
                    app,
                    req,
                    ACTION,
                    user,
                    JwtApiError::forbidden(),
                    "on_behalf_requires_admin",
                )
                .await);
            }
            UserId::parse(&other).map_err(|e| JwtApiError::new(400, e.to_string()))?
        }
    };
    // An empty label is no label: the document's own React example sends "".
    let label = match request.label.as_deref() {
        None | Some("") => None,
        Some(l) => Some(
            Label::parse(l)
                .map_err(|e| JwtApiError::new(400, e.to_string()))?
                .into_string(),
        ),
    };
    let meta = command_meta(req, &user.principal);
    // A retry of a create that committed but never answered (crash, or a
    // stored response since pruned) gets that create's wallet, and does not
    // count against the rate limit again.
    if let Some(w) = recorded::created_wallet(&app.db, &meta, &owner, label.as_deref()).await? {
        return Ok(json!({ "wallet": wallet_json::from_created(&w) }));
    }
    let grant = match app
        .create_limit
        .take(&app.db, user.user_id.as_str())
        .await
        .map_err(ServiceError::from)?
    {
        Decision::Granted(g) => g,
        Decision::Refused { retry_after_secs } => {
            let limit = app.create_limit.limit();
            let mut e = JwtApiError::new(
                429,
                format!("Too many requests: at most {limit} wallet creations per minute"),
            );
            e.retry_after = Some(retry_after_secs);
            return Err(refuse(app, req, ACTION, user, e, "rate_limited").await);
        }
    };
    let result = WalletService::new(app)
        .create_custodial(owner.clone(), WalletKind::Custodial, label.clone(), &meta)
        .await;
    if result.is_err() {
        app.create_limit.give_back(&app.db, grant).await;
    }
    match result {
        Ok(w) => Ok(json!({ "wallet": wallet_json::from_created(&w) })),
        // Under an Idempotency-Key the wallet id derives from (caller, key): an
        // attempt of the same request got there first.
        Err(ServiceError::ServerWalletExists { .. }) if meta.idempotency_key.is_some() => {
            match recorded::created_wallet(&app.db, &meta, &owner, label.as_deref()).await? {
                Some(w) => Ok(json!({ "wallet": wallet_json::from_created(&w) })),
                None => Err(JwtApiError::new(409, "Too many concurrent changes; retry")),
            }
        }
        Err(ServiceError::NotConfigured(detail)) => {
            tracing::error!(%detail, "server configuration error");
            Err(JwtApiError::new(500, "Server configuration error"))
        }
        // The store is down or restarting: retry later, as on every other endpoint.
        Err(e @ ServiceError::Unavailable(_)) => Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "wallet creation failed");
            Err(JwtApiError::new(500, "Failed to create wallet"))
        }
    }
}
