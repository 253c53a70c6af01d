//! The HTTP side: counting every request (called from the server's request
//! middleware) and answering `GET /metrics`.

use std::borrow::Cow;
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use actix_web::{web, HttpResponse};

use super::{handle, CONTENT_TYPE, HTTP_DURATION, HTTP_REQUESTS};
use crate::app::App;

/// The route label of a request no route matched (the 404 fallback):
/// one series for every such path, however many a scanner tries.
pub const UNMATCHED: &str = "unmatched";

/// Counts one answered request and its latency. The route is the pattern
/// it matched (`/api/wallets/{id}`), never the path, so the number of series
/// stays bounded.
pub fn record_request<B>(res: &ServiceResponse<B>, elapsed: Duration) {
    // Nothing to record into: skip the pattern lookup too.
    if handle().is_none() {
        return;
    }
    let req = res.request();
    let route: Cow<'static, str> = match req.match_pattern() {
        Some(pattern) => Cow::Owned(pattern),
        None => Cow::Borrowed(UNMATCHED),
    };
    let method = method_label(req.method());
    let status = res.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
}

/// Standard methods by name; anything else (a client may send any token)
/// is one `other` series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: this process's series in Prometheus's text format, with
/// the levels sampled now. No authentication (like `/healthz`): keep the
/// service port off public networks, or set `WALLETD_METRICS=off`.
pub async fn scrape(app: web::Data<App>) -> HttpResponse {
    let handle = match (app.settings.metrics.is_on(), handle()) {
        (true, Some(handle)) => handle,
        _ => {
            return HttpResponse::NotFound().json(serde_json::json!({
                "success": false,
                "error": "metrics are off (WALLETD_METRICS=off)",
            }))
        }
    };
    super::sample::refresh(&app).await;
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(handle.render())
}
