//! What auditors read (issue 13), for ADMIN JWTs in the JWT API's error
//! shape: the transparency log's latest signed checkpoint, and inclusion
//! and consistency proofs against it.

mod log;
pub mod schema;

/// This part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(log::checkpoint, log::inclusion, log::consistency))]
pub struct ApiDoc;

crate::api::route_table! { configure, ROUTES;
    get "/api/admin/log/checkpoint" => log::checkpoint,
    get "/api/admin/log/proof/inclusion" => log::inclusion,
    get "/api/admin/log/proof/consistency" => log::consistency,
}
