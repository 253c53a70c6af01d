//! `GET /api/wallet/{id}/history?page=&perPage=`: a wallet's events, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::authorize;
use super::primary::visible_wallet;
use super::{query, JwtApiError, Paging};
use crate::app::App;
use crate::auth::roles::Role;

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
