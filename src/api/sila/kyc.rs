//! `request_kyc`, `check_kyc`, and the operator's decision endpoint.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use walletd_projections::sila_queries;

use super::endpoint;
use super::errors::{Reply, SilaApiError};
use super::guard::{Accepted, Effect, Needs};
use crate::api::context::{command_meta, parse_json, read_json_bytes};
use crate::api::jwt_wallets::{authorize, JwtApiError};
use crate::app::App;
use crate::auth::roles::Role;
use crate::domain::Handle;
use crate::service::sila_users::SilaUsers;

endpoint!(
    request_kyc,
    "request_kyc",
    Needs::SignedByUser,
    Effect::Writes,
    request_kyc_body
);
endpoint!(
    check_kyc,
    "check_kyc",
    Needs::SignedByUser,
    Effect::Reads,
    check_kyc_body
);

async fn request_kyc_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let handle = a.handle()?;
    let (verification_id, _) = SilaUsers::new(app).request_kyc(handle, &a.meta).await?;
    Ok(Reply::success(json!({
        "message": format!("{handle} submitted for KYC review."),
        "verification_uuid": verification_id.to_string(),
    })))
}

async fn check_kyc_body(_: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let handle = a.handle()?;
    // `accept` has just loaded the user from the event store.
    let status = a.user.as_ref().map_or("unverified", |u| u.kyc().as_str());
    let message = match status {
        "passed" => format!("{handle} has passed ID verification!"),
        "pending" => format!("{handle} is pending ID verification."),
        "failed" => format!("{handle} has failed ID verification."),
        _ => format!("{handle} has not requested ID verification (unverified)."),
    };
    let fields = json!({ "message": message, "verification_status": status });
    Ok(if status == "passed" {
        Reply::success(fields)
    } else {
        Reply::negative(fields)
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    decision: String,
}

/// `POST /api/admin/kyc/{handle}` with an ADMIN JWT: records the provider's
/// decision. An admin route, so it answers in the JWT API's error shape.
pub async fn decide(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    match decide_inner(&app, &req, &path, payload).await {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

async fn decide_inner(
    app: &App,
    req: &HttpRequest,
    handle: &str,
    payload: web::Payload,
) -> Result<HttpResponse, JwtApiError> {
    let admin = authorize(app, req, "kyc_decision", Role::Admin).await?;
    let bytes = read_json_bytes(req, payload, app.settings.max_body).await?;
    let decision: Decision = parse_json(&bytes)?;
    let passed = match decision.decision.as_str() {
        "pass" => true,
        "fail" => false,
        _ => {
            return Err(JwtApiError::new(
                400,
                "decision must be \"pass\" or \"fail\"",
            ))
        }
    };
    let handle = Handle::parse(handle).map_err(|e| JwtApiError::new(400, e.to_string()))?;
    let known = sila_queries::sila_user(&app.db, handle.as_str())
        .await
        .map_err(|_| JwtApiError::new(503, "Service temporarily unavailable"))?;
    if known.is_none() {
        return Err(JwtApiError::new(
            404,
            format!("user {handle} is not registered"),
        ));
    }
    let meta = command_meta(req, &admin.principal);
    let kyc = SilaUsers::new(app)
        .decide_kyc(&handle, passed, &meta)
        .await
        .map_err(|e| match SilaApiError::from(e) {
            // A decision that contradicts the recorded one.
            e if e.status == 400 => JwtApiError::new(409, e.message),
            e => JwtApiError::new(e.status, e.message),
        })?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "user_handle": handle.as_str(),
        "verification_status": kyc.as_str(),
    })))
}
