//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::App;

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The store answers, the projector runs and is caught up, and custody can
/// work. Each failing check is named.
pub async fn readyz(app: web::Data<App>) -> HttpResponse {
    let mut problems: Vec<String> = Vec::new();
    let head = walletd_projections::queries::log_head(&app.db).await;
    match &head {
        Err(e) => problems.push(format!("store unreachable: {e}")),
        Ok(head) => {
            let projector = app.wallets.projector();
            if !projector.is_running() {
                problems.push("projector stopped".into());
            }
            if let Some(e) = projector.last_error() {
                problems.push(format!("projector failing: {e}"));
            }
            if let Some(head) = head {
                if projector.position() < *head {
                    projector.nudge();
                    problems.push("projections are catching up with the event log".into());
                }
            }
        }
    }
    if let Err(e) = app.custody.readiness() {
        problems.push(format!("custody: {e}"));
    }
    if let Err(e) = app.server_custody.readiness() {
        problems.push(format!("server-wallet custody: {e}"));
    }
    let projections = app.wallets.projector().position();
    if problems.is_empty() {
        HttpResponse::Ok().json(json!({
            "status": "ready",
            "projectedThrough": projections.position,
        }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "not ready",
            "problems": problems,
        }))
    }
}
