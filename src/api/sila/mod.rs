//! The Sila-style API (seed 003): `POST /0.2/<endpoint>` with a signed JSON
//! body, answering in Sila's envelope.

mod envelope;
mod errors;
mod getmessage;
mod guard;
mod handles;
mod kyc;
mod wallets;

use actix_web::web;

/// Defines a Sila endpoint: authenticate and admit the request as `$needs`
/// demands (recording its nonce as `$effect` says), run `$body(&App, &Accepted)`, and answer in Sila's envelope.
macro_rules! endpoint {
    ($name:ident, $action:literal, $needs:expr, $effect:expr, $body:path) => {
        pub async fn $name(
            app: actix_web::web::Data<crate::app::App>,
            req: actix_web::HttpRequest,
            payload: actix_web::web::Payload,
        ) -> actix_web::HttpResponse {
            let a = match super::guard::accept(&app, &req, payload, $action, $needs, $effect).await
            {
                Ok(a) => a,
                Err(response) => return response,
            };
            match $body(&app, &a).await {
                Ok(reply) => match a.complete(&app).await {
                    Ok(()) => reply.respond(a.reference(), a.started),
                    Err(e) => a.fail(&app, e).await,
                },
                Err(e) => a.fail(&app, e).await,
            }
        }
    };
}
use endpoint;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/0.2/getmessage", web::get().to(getmessage::getmessage))
        .route("/0.2/check_handle", web::post().to(handles::check_handle))
        .route("/0.2/register", web::post().to(handles::register))
        .route(
            "/0.2/register_wallet",
            web::post().to(wallets::register_wallet),
        )
        .route("/0.2/get_wallet", web::post().to(wallets::get_wallet))
        .route("/0.2/get_wallets", web::post().to(wallets::get_wallets))
        .route("/0.2/update_wallet", web::post().to(wallets::update_wallet))
        .route("/0.2/delete_wallet", web::post().to(wallets::delete_wallet))
        .route("/0.2/request_kyc", web::post().to(kyc::request_kyc))
        .route("/0.2/check_kyc", web::post().to(kyc::check_kyc))
        .route("/api/admin/kyc/{handle}", web::post().to(kyc::decide));
}
