//! `GET /api/admin/reports/{name}?asOf=`: a compliance report, live or as of
//! a past log position or time.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::api::jwt_wallets::schema::JwtError;
use crate::api::jwt_wallets::{authorize, JwtApiError};
use crate::app::App;
use crate::auth::roles::Role;
use crate::reports::{compute, AsOf, ReportBody, ReportError, ReportName};
use crate::service::ServiceError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    #[serde(rename = "asOf")]
    as_of: Option<String>,
}

fn refusal(e: ReportError) -> JwtApiError {
    match e {
        ReportError::BeyondLog { .. } => JwtApiError::new(400, e.to_string()),
        ReportError::Database(e) => ServiceError::from(e).into(),
        ReportError::Projection(walletd_projections::ProjectionError::Database(e)) => {
            ServiceError::from(e).into()
        }
        other => {
            tracing::error!(error = %other, "a report could not be computed");
            JwtApiError::new(500, "Internal error")
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/admin/reports/{name}",
    operation_id = "report",
    tag = "auditors",
    summary = "A compliance report, live or recomputed from the log as of a past position or time (ADMIN)",
    security(("jwt" = [])),
    params(
        ("name" = String, Path, description = "wallets-created, signing-activity, kyc-changes, whitelist-latency, refusals, default-wallet-changes, key-material, ledger-balances, ledger-supply or ledger-movements-per-day"),
        ("asOf" = Option<String>, Query, description = "a log position (the first N events) or an RFC 3339 time; absent: live, from the projections"),
    ),
    responses(
        (status = 200, description = "The report and what it was computed from", body = ReportBody),
        (status = 400, description = "Bad query parameter; a position beyond the log", body = JwtError),
        (status = 401, description = "Missing or invalid token (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not ADMIN", body = JwtError),
        (status = 404, description = "No report of that name", body = JwtError),
        (status = 500, description = "Internal error", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn report(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let answer = async {
        authorize(&app, &req, "report.read", Role::Admin).await?;
        let name = ReportName::parse(&path).ok_or_else(|| {
            let names: Vec<_> = ReportName::all().iter().map(|n| n.as_str()).collect();
            JwtApiError::new(
                404,
                format!(
                    "no report is named {:?}; reports: {}",
                    path.as_str(),
                    names.join(", ")
                ),
            )
        })?;
        let q: ReportQuery = crate::api::jwt_wallets::query(&req)?;
        let as_of = match q.as_of {
            Some(s) => AsOf::parse(&s).map_err(|m| JwtApiError::new(400, m))?,
            None => AsOf::Live,
        };
        let report = compute(&app.db, name, &as_of).await.map_err(refusal)?;
        Ok::<_, JwtApiError>(report.body())
    }
    .await;
    match answer {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => e.response(),
    }
}
