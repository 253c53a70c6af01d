//! The JWT-role wallet API (seed 001): create, list, primary, history, the
//! admin audit, and money (balance, transfer, transactions, issue, redeem).
//! Bearer JWTs with roles; every error is `{"error": "<message>"}`.

mod audit;
mod auth;
mod balance;
mod create;
mod errors;
mod history;
mod list;
mod money;
mod movements;
mod primary;
pub mod schema;
mod transactions;
mod transfer;
mod wallet_json;

use actix_web::web;

pub(crate) use auth::authorize;

/// This API's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create::create,
    list::list,
    primary::set_primary,
    history::history,
    audit::audit,
    balance::balance,
    transfer::transfer,
    transactions::transactions,
    movements::issue,
    movements::redeem,
))]
pub struct ApiDoc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use crate::api::idempotency::{self, IdempotencyRefusal};
use crate::auth::jwt::JwtUser;
use walletd_projections::Db;

/// Runs a JWT POST under its `Idempotency-Key` (scoped to the caller): the
/// first answer is stored and replayed to retries of the same request.
pub(crate) async fn idempotent<F, Fut>(
    db: &Db,
    req: &HttpRequest,
    user: &JwtUser,
    body: &[u8],
    work: F,
) -> Result<(StatusCode, Value), IdempotencyRefusal>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Value, JwtApiError>>,
{
    idempotent_status(db, req, user, body, || async {
        work().await.map(|v| (StatusCode::OK, v))
    })
    .await
}

/// [`idempotent`] for work that chooses its success status (201, 202): the
/// status is stored and replayed with the body.
pub(crate) async fn idempotent_status<F, Fut>(
    db: &Db,
    req: &HttpRequest,
    user: &JwtUser,
    body: &[u8],
    work: F,
) -> Result<(StatusCode, Value), IdempotencyRefusal>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Value), JwtApiError>>,
{
    let key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let hash = idempotency::request_hash(req.method().as_str(), req.path(), body);
    idempotency::run(db, &user.principal.actor, key, &hash, || async {
        match work().await {
            Ok(answer) => answer,
            Err(e) => (e.status, e.body()),
        }
    })
    .await
}
pub use errors::JwtApiError;

/// The HTTP answer for an [`idempotent_status`] result. An error answer
/// keeps its `Retry-After` header (its body carries `retryAfter`), also
/// when it is replayed.
pub(crate) fn respond(result: Result<(StatusCode, Value), IdempotencyRefusal>) -> HttpResponse {
    match result {
        Ok((status, body)) if status.is_client_error() || status.is_server_error() => {
            let mut e = JwtApiError::new(
                status.as_u16(),
                body["error"].as_str().unwrap_or("Request failed"),
            );
            e.retry_after = body["retryAfter"].as_u64();
            e.response()
        }
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(refusal) => JwtApiError::from(refusal).response(),
    }
}

crate::api::route_table! { configure, ROUTES;
    post "/api/wallet/create" => create::create,
    get "/api/wallet/list" => list::list,
    post "/api/wallet/primary" => primary::set_primary,
    get "/api/wallet/{id}/history" => history::history,
    get "/api/admin/audit" => audit::audit,
    get "/api/wallet/{id}/balance" => balance::balance,
    post "/api/wallet/transfer" => transfer::transfer,
    get "/api/wallet/{id}/transactions" => transactions::transactions,
    post "/api/wallet/{id}/issue" => movements::issue,
    post "/api/wallet/{id}/redeem" => movements::redeem,
}

/// Parses the query string into `T`, answering 400 in this dialect's shape.
pub(crate) fn query<T: serde::de::DeserializeOwned>(
    req: &actix_web::HttpRequest,
) -> Result<T, JwtApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| JwtApiError::new(400, format!("invalid query string: {e}")))
}

/// Deepest page the paged endpoints serve. Beyond it `(page - 1) * perPage`
/// could overflow, and an OFFSET that deep would scan the whole table anyway;
/// narrow the query (`from` / `to` on the audit) instead.
pub(crate) const MAX_PAGE: i64 = 1_000_000;

/// Page parameters shared by the paged endpoints: `page` 1–[`MAX_PAGE`], `perPage` 1–100.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Paging {
    // Text, parsed here, so that a number too large for i64 gets the same
    // answer naming the parameter as any other page out of range.
    pub(crate) page: Option<String>,
    pub(crate) per_page: Option<String>,
}

impl Paging {
    pub(crate) fn resolve(&self) -> Result<(i64, i64), JwtApiError> {
        fn bounded(
            v: &Option<String>,
            default: i64,
            max: i64,
            name: &str,
        ) -> Result<i64, JwtApiError> {
            let Some(text) = v else { return Ok(default) };
            text.parse::<i64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| JwtApiError::new(400, format!("{name} must be from 1 to {max}")))
        }
        let page = bounded(&self.page, 1, MAX_PAGE, "page")?;
        let per_page = bounded(&self.per_page, 20, 100, "perPage")?;
        Ok((page, per_page))
    }
}
