//! The server-wallet API (seed 000): create, get, sign (EIP-191 messages,
//! EIP-712 typed data, transactions). Bearer API keys.
//! Every error is `{"success": false, "error": "<message>"}`.

pub mod schema;

mod create;
mod errors;
mod get;
mod sign;
mod sign_transaction;
mod sign_typed_data;
mod signing;

use actix_web::web;

pub use errors::ApiError;

/// This API's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create::create,
    get::get,
    sign::sign,
    sign_typed_data::sign_typed_data,
    sign_transaction::sign_transaction,
))]
pub struct ApiDoc;

crate::api::route_table! { configure_operations, ROUTES;
    post "/api/wallets" => create::create,
    get "/api/wallets/{id}" => get::get,
    post "/api/wallets/{id}/sign" => sign::sign,
    post "/api/wallets/{id}/sign-typed-data" => sign_typed_data::sign_typed_data,
    post "/api/wallets/{id}/sign-transaction" => sign_transaction::sign_transaction,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(configure_operations);
    // Any other method on these paths is 405 in this dialect's error shape;
    // registered after every operation so that those match first.
    let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
    paths.dedup();
    for path in paths {
        cfg.route(path, web::route().to(errors::method_not_allowed));
    }
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
