//! `GET /openapi.json` and the Swagger UI at `GET /docs`. The UI's assets are
//! compiled into the binary (utoipa-swagger-ui's vendored copy), so the page
//! works on a machine with no way out; no authentication, as for `/healthz`:
//! the document describes the API, it holds nothing of anyone's.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::Config;

use super::openapi;

/// The document, serialized once: it is fixed at compile time.
fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        openapi::document()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"openapi document: {e}\"}}"))
    })
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapiDocument",
    tag = "service",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The OpenAPI document of all three APIs", body = Object)),
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docsPage",
    tag = "service",
    summary = "Swagger UI (redirects to /docs/)",
    responses((status = 308, description = "Redirect to `/docs/`, the rendered document")),
)]
pub async fn index() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

fn config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // "none": Swagger UI would otherwise send the document to an
            // outside validator for its badge.
            Arc::new(Config::new(["/openapi.json"]).validator_url("none"))
        })
        .clone()
}

#[utoipa::path(
    get,
    path = "/docs/{file}",
    operation_id = "docsAsset",
    tag = "service",
    summary = "Swagger UI's page and assets",
    params(("file" = String, Path, description = "a file of the UI; empty for its page")),
    responses(
        (status = 200, description = "The file", content_type = "text/html", body = String),
        (status = 404, description = "No such file"),
    ),
)]
pub async fn asset(file: web::Path<String>) -> HttpResponse {
    match utoipa_swagger_ui::serve(&file, config()) {
        Ok(Some(f)) => {
            // The assets are compiled in: no copy for them.
            let body = match f.bytes {
                Cow::Borrowed(b) => web::Bytes::from_static(b),
                Cow::Owned(v) => web::Bytes::from(v),
            };
            HttpResponse::Ok().content_type(f.content_type).body(body)
        }
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => {
            tracing::error!(error = %e, "could not serve a Swagger UI file");
            HttpResponse::InternalServerError().finish()
        }
    }
}
