//! The JWT-role wallet API (seed 001): create, list, primary, history, and the
//! admin audit. Bearer JWTs with roles; every error is `{"error": "<message>"}`.

mod audit;
mod auth;
mod create;
mod errors;
mod history;
mod list;
mod primary;
pub mod schema;
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
))]
pub struct ApiDoc;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
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
    let key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let hash = idempotency::request_hash(req.method().as_str(), req.path(), body);
    idempotency::run(db, &user.principal.actor, key, &hash, || async {
        match work().await {
            Ok(v) => (StatusCode::OK, v),
            Err(e) => (e.status, e.body()),
        }
    })
    .await
}
pub use errors::JwtApiError;

crate::api::route_table! { configure, ROUTES;
    post "/api/wallet/create" => create::create,
    get "/api/wallet/list" => list::list,
    post "/api/wallet/primary" => primary::set_primary,
    get "/api/wallet/{id}/history" => history::history,
    get "/api/admin/audit" => audit::audit,
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
