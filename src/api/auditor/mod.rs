//! What auditors read (issue 13), for ADMIN JWTs in the JWT API's error
//! shape: the transparency log's latest signed checkpoint, inclusion and
//! consistency proofs against it, the sealed events, and compliance reports.

mod events;
mod log;
mod reports;
pub mod schema;

/// This part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    log::checkpoint,
    log::inclusion,
    log::consistency,
    events::events,
    reports::report
))]
pub struct ApiDoc;

crate::api::route_table! { configure, ROUTES;
    get "/api/admin/log/checkpoint" => log::checkpoint,
    get "/api/admin/log/proof/inclusion" => log::inclusion,
    get "/api/admin/log/proof/consistency" => log::consistency,
    get "/api/admin/events" => events::events,
    get "/api/admin/reports/{name}" => reports::report,
}
