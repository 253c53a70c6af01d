//! `GET /api/wallet/{id}/history?page=&perPage=`: a wallet's events, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::authorize;
use super::primary::visible_wallet;
use super::schema::{JwtError, WalletHistory};
use super::{query, JwtApiError, Paging};
use crate::app::App;
use crate::auth::roles::Role;

#[utoipa::path(
    get,
    path = "/api/wallet/{id}/history",
    operation_id = "walletHistory",
    tag = "jwt-wallets",
    summary = "A wallet's events, newest first (any role)",
    security(("jwt" = [])),
    params(
        ("id" = String, Path, description = "walletId (UUID)"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "default 1"),
        ("perPage" = Option<i64>, Query, minimum = 1, maximum = 100, description = "default 20"),
    ),
    responses(
        (status = 200, description = "A page of events", body = WalletHistory),
        (status = 400, description = "Bad label, JSON, field or query parameter", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "Wallet not found (or not the caller's)", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn history(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    match run(&app, &req, &path.into_inner()).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

async fn run(app: &App, req: &HttpRequest, id: &str) -> Result<Value, JwtApiError> {
    let user = authorize(app, req, "wallet.history", Role::Visitor).await?;
    let (page, per_page) = query::<Paging>(req)?.resolve()?;
    let wallet_id = visible_wallet(app, &user, id).await?;
    let (entries, total) = walletd_projections::queries::wallet_history(
        &app.db,
        &wallet_id.to_string(),
        page,
        per_page,
    )
    .await
    .map_err(crate::service::ServiceError::from)?;
    let events: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "type": e.event_type,
                "occurredAt": e.occurred_at,
                "actor": e.actor,
                "role": e.role,
                "authMethod": e.auth_method,
                "requestId": e.request_id,
                "clientAddr": e.client_addr,
                "data": serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(json!({
        "walletId": wallet_id.to_string(),
        "page": page,
        "perPage": per_page,
        "total": total,
        "events": events,
    }))
}
