//! The server-wallet API (seed 000): create, get, sign (EIP-191 messages,
//! EIP-712 typed data, transactions). Bearer API keys.
//! Every error is `{"success": false, "error": "<message>"}`.

mod create;
mod errors;
mod get;
mod sign;
mod sign_transaction;
mod sign_typed_data;
mod signing;

use actix_web::web;

pub use errors::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/wallets", web::post().to(create::create))
        .route("/api/wallets/{id}", web::get().to(get::get))
        .route("/api/wallets/{id}/sign", web::post().to(sign::sign))
        .route(
            "/api/wallets/{id}/sign-typed-data",
            web::post().to(sign_typed_data::sign_typed_data),
        )
        .route(
            "/api/wallets/{id}/sign-transaction",
            web::post().to(sign_transaction::sign_transaction),
        )
        .route("/api/wallets", web::route().to(errors::method_not_allowed))
        .route(
            "/api/wallets/{id}",
            web::route().to(errors::method_not_allowed),
        )
        .route(
            "/api/wallets/{id}/sign",
            web::route().to(errors::method_not_allowed),
        )
        .route(
            "/api/wallets/{id}/sign-typed-data",
            web::route().to(errors::method_not_allowed),
        )
        .route(
            "/api/wallets/{id}/sign-transaction",
            web::route().to(errors::method_not_allowed),
        );
}

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use crate::api::idempotency;
use crate::app::App;
use crate::auth::Principal;

/// `Authorization: Bearer <api key>`; refusals are counted for the security log.
pub(crate) async fn authenticate(app: &App, req: &HttpRequest) -> Result<Principal, ApiError> {
    let refused = |reason: &str| {
        app.refusals.record(crate::audit::Refusal {
            subject: None,
            role: None,
            auth_method: "api_key",
            action: "server_wallets",
            status: 401,
            reason: reason.to_string(),
            path: req.path().to_string(),
            request_id: crate::api::context::request_id(req),
            client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        });
        ApiError::unauthorized()
    };
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or_else(|| refused("missing_api_key"))?;
    match app.api_keys.authenticate(token).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(refused("unknown_api_key")),
        Err(e) => {
            tracing::error!(error = %e, "api key lookup failed");
            Err(ApiError::new(503, "service temporarily unavailable"))
        }
    }
}

/// Runs a POST handler's work under the `Idempotency-Key` protocol.
pub(crate) async fn idempotent<F, Fut>(
    app: &App,
    req: &HttpRequest,
    principal: &Principal,
    body: &[u8],
    work: F,
) -> HttpResponse
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let hash = idempotency::request_hash(req.method().as_str(), req.path(), body);
    let scope = principal.actor.as_str();
    let result = idempotency::run(&app.db, scope, key, &hash, || async {
        match work().await {
            Ok(ok) => ok,
            Err(e) => (e.status, e.body()),
        }
    })
    .await;
    match result {
        Ok((status, body)) => errors::json_response(status, body),
        Err(refusal) => ApiError::from(refusal).response(),
    }
}
