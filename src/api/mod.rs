//! HTTP: one module per API dialect, sharing request plumbing.

pub mod amounts;
pub mod auditor;
pub mod context;
pub mod docs;
pub mod health;
pub mod housekeeping;
pub mod idempotency;
pub mod jwt_wallets;
pub mod openapi;
pub mod rate_limit;
pub mod server_wallets;
pub mod sila;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App as ActixApp, HttpMessage, HttpResponse, HttpServer};
use tracing::Instrument;

use crate::app::App;
use context::RequestId;

/// One operation the server answers: its method and its path as registered
/// (actix's `{name}` and `{name:regex}` segments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

/// Declares a route table once: `$configure` registers each handler, and
/// `$list` names the same (method, path) pairs, so that what the server
/// answers can be compared with what `/openapi.json` documents.
macro_rules! route_table {
    ($configure:ident, $list:ident; $($method:ident $path:literal => $handler:path),+ $(,)?) => {
        pub fn $configure(cfg: &mut actix_web::web::ServiceConfig) {
            $(cfg.route($path, actix_web::web::$method().to($handler));)+
        }

        pub const $list: &[$crate::api::Route] = &[
            $($crate::api::Route { method: stringify!($method), path: $path },)+
        ];
    };
}
pub(crate) use route_table;

route_table! { configure_service, SERVICE_ROUTES;
    get "/healthz" => health::healthz,
    get "/readyz" => health::readyz,
    get "/openapi.json" => docs::openapi_json,
    get "/docs" => docs::index,
    get "/docs/{file:.*}" => docs::asset,
    get "/metrics" => crate::metrics::http::scrape,
}

/// Registers every route on an actix app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(configure_service)
        .configure(server_wallets::configure)
        .configure(jwt_wallets::configure)
        .configure(sila::configure)
        .configure(auditor::configure);
}

/// Every operation `configure` registers (the server-wallet API's 405
/// answers to other methods aside).
pub fn routes() -> Vec<Route> {
    [
        SERVICE_ROUTES,
        server_wallets::ROUTES,
        jwt_wallets::ROUTES,
        sila::ROUTES,
        auditor::ROUTES,
    ]
    .concat()
}

/// Builds the HTTP server on an already-bound listener (tests bind port 0).
pub fn server(app: Arc<App>, listener: TcpListener, workers: usize) -> std::io::Result<Server> {
    let data = web::Data::from(app);
    let server = HttpServer::new(move || {
        ActixApp::new()
            .app_data(data.clone())
            .configure(configure)
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(serde_json::json!({
                    "success": false,
                    "error": "no such endpoint",
                }))
            }))
            .wrap_fn(|req, srv| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| {
                        !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())
                    })
                    .map(str::to_owned)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                req.extensions_mut().insert(RequestId(request_id.clone()));
                let method = req.method().clone();
                let path = req.path().to_owned();
                let started = Instant::now();
                // Every line logged while the request is handled carries its id.
                let span = tracing::info_span!("request", request_id = %request_id);
                let fut = span.in_scope(|| srv.call(req));
                async move {
                    let mut res = fut.await?;
                    crate::metrics::http::record_request(&res, started.elapsed());
                    if let Ok(v) = HeaderValue::from_str(&request_id) {
                        res.headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), v);
                    }
                    tracing::info!(
                        %method,
                        %path,
                        status = res.status().as_u16(),
                        micros = started.elapsed().as_micros() as u64,
                        "request"
                    );
                    Ok(res)
                }
                .instrument(span)
            })
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run();
    Ok(server)
}
