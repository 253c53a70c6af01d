//! `request_kyc`, `check_kyc`, and the operator's decision endpoint.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use walletd_projections::sila_queries;

use super::endpoint;
use super::errors::{Reply, SilaApiError};
use super::guard::{Accepted, Effect, Needs};
use super::schema::{
    CheckKycReply, KycDecisionReply, RequestKycReply, RequestKycRequest, SilaErrors, SilaRequest,
};
use crate::api::context::{command_meta, parse_json, read_json_bytes};
use crate::api::jwt_wallets::schema::JwtError;
use crate::api::jwt_wallets::{authorize, JwtApiError};
use crate::app::App;
use crate::auth::roles::Role;
use crate::domain::Handle;
use crate::service::sila_users::SilaUsers;

endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/request_kyc",
        tag = "sila",
        summary = "Submit the user for KYC review",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = RequestKycRequest,
        responses(
            (status = 200, description = "Submitted", body = RequestKycReply),
            SilaErrors,
        ),
    )]
    request_kyc,
    "request_kyc",
    Needs::SignedByUser,
    Effect::Writes,
    request_kyc_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/check_kyc",
        tag = "sila",
        summary = "The user's KYC state",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = SilaRequest,
        responses(
            (status = 200, description = "`success` only when passed", body = CheckKycReply),
            SilaErrors,
        ),
    )]
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

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KycDecisionRequest)]
struct Decision {
    /// `"pass"` or `"fail"`.
    #[schema(example = "pass")]
    decision: String,
}

/// `POST /api/admin/kyc/{handle}` with an ADMIN JWT: records the provider's
/// decision. An admin route, so it answers in the JWT API's error shape.
#[utoipa::path(
    post,
    path = "/api/admin/kyc/{handle}",
    operation_id = "decideKyc",
    tag = "sila",
    summary = "Record the KYC provider's decision for a user (ADMIN; JWT error shape)",
    security(("jwt" = [])),
    params(("handle" = String, Path, description = "the user's handle")),
    request_body = Decision,
    responses(
        (status = 200, description = "The recorded state", body = KycDecisionReply),
        (status = 400, description = "Bad decision, handle or JSON", body = JwtError),
        (status = 401, description = "Missing or invalid token", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not ADMIN", body = JwtError),
        (status = 404, description = "No such user", body = JwtError),
        (status = 409, description = "Contradicts the recorded decision", body = JwtError),
        (status = 413, description = "Body larger than `WALLETD_MAX_BODY`", body = JwtError),
        (status = 415, description = "Content-Type is not JSON", body = JwtError),
        (status = 500, description = "Server configuration or internal error", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
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
