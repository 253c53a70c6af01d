//! The OpenAPI 3.1 document of all three APIs, assembled from the
//! `#[utoipa::path]` attributes on the handlers and the schema types next to
//! them. `GET /openapi.json` serves it; the integration tests compare its
//! paths with [`super::routes`] and check real answers against its schemas.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi, ToSchema};

use super::{auditor, docs, jwt_wallets, server_wallets, sila};

/// The whole document.
pub fn document() -> Document {
    let mut doc = Service::openapi();
    doc.merge(server_wallets::ApiDoc::openapi());
    doc.merge(jwt_wallets::ApiDoc::openapi());
    doc.merge(sila::ApiDoc::openapi());
    doc.merge(auditor::ApiDoc::openapi());
    doc
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "walletd",
        description = "Event-sourced wallet ledger. Three APIs on one core: server wallets \
            (bearer API keys; every error `{\"success\": false, \"error\": …}`; any other method \
            on their paths is 405 in that shape), JWT-role wallets (bearer JWTs; every error \
            `{\"error\": …}`) and the Sila-style API (`POST /0.2/<endpoint>`, ECDSA request \
            signatures or a Sila token; Sila's answer envelope). Any path not listed here is \
            404 `{\"success\": false, \"error\": \"no such endpoint\"}`. Every answer carries \
            `X-Request-Id` (echoed from the request when it carries a valid one).",
    ),
    paths(healthz, readyz, metrics, docs::openapi_json, docs::index, docs::asset),
    modifiers(&SecuritySchemes),
    tags(
        (name = "server-wallets", description = "Server wallets (seed 000): 2-of-2 MPC keys held by walletd"),
        (name = "jwt-wallets", description = "Wallets behind JWT roles (seed 001)"),
        (name = "sila", description = "Sila-style register_wallet and the endpoints around it (seed 003)"),
        (name = "auditors", description = "The transparency log: signed checkpoints and proofs (issue 13)"),
        (name = "service", description = "Health, readiness, metrics and this document"),
    ),
)]
struct Service;

/// The security schemes the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: Option<&str>, description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_string());
            http.bearer_format = format.map(str::to_string);
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "api_key",
            bearer(
                None,
                "A walletd API key (`wd_` + 64 hex digits) from `walletd api-key create` or `WALLETD_API_KEYS`.",
            ),
        );
        components.add_security_scheme(
            "jwt",
            bearer(
                Some("JWT"),
                "HS256 (`WALLETD_JWT_SECRET`) or RS256 / ES256 (`WALLETD_JWT_PUBLIC_KEY`); claims `sub`, \
                 `role` (VISITOR < SUBSCRIBER < MEMBER < CONFIDENTIAL < ADMIN), `exp`; `iss` / `aud` when configured.",
            ),
        );
        components.add_security_scheme(
            "sila_token",
            bearer(
                Some("JWT"),
                "Sila token mode (`register_wallet`): `aud` = `WALLETD_SILA_TOKEN_AUDIENCE`, \
                 `sub` = `header.user_handle`, `app_handle` = `header.app_handle`, `exp`.",
            ),
        );
        let signature = |name: &str, of: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name.to_string(),
                format!(
                    "secp256k1 signature of keccak256 of the exact body bytes (no Ethereum prefix), \
                     130 hex digits r‖s‖v (v 27/28 or 0/1, optional `0x`), recovering to {of}."
                ),
            )))
        };
        components.add_security_scheme(
            "authsignature",
            signature("authsignature", "an address of `header.app_handle`"),
        );
        components.add_security_scheme(
            "usersignature",
            signature(
                "usersignature",
                "a live wallet of `header.user_handle` (the signing wallet)",
            ),
        );
    }
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `"ok"`.
    pub status: String,
}

/// `GET /readyz`: `status` (`"ready"` or `"not ready"`), the projections'
/// lag, and on 503 the `problems` (fixed phrases).
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<String>>,
    #[serde(flatten)]
    pub detail: BTreeMap<String, Value>,
}

// The health handlers live in `health.rs`; their documentation is here.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "service",
    summary = "Liveness",
    responses((status = 200, description = "The process serves HTTP", body = Health)),
)]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "service",
    summary = "Readiness: store, projector, custody",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: `problems` names each failing check", body = Readiness),
    ),
)]
#[allow(dead_code)]
fn readyz() {}

// The handler lives in `crate::metrics::http`; its documentation is here.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "service",
    summary = "Prometheus metrics of this process (no authentication)",
    description = "Prometheus text exposition format 0.0.4: HTTP requests by route pattern, \
        commands, projection lag, the whitelist queue, key pools, signing and cosigner round trips, \
        the connection pool. No authentication, like `/healthz`: keep the service port off public \
        networks. 404 when `WALLETD_METRICS=off`.",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 404, description = "Metrics are off (`WALLETD_METRICS=off`)", body = super::server_wallets::schema::ServerWalletError),
    ),
)]
#[allow(dead_code)]
fn metrics() {}
