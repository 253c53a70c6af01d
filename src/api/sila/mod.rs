//! The Sila-style API (seed 003): `POST /0.2/<endpoint>` with a signed JSON
//! body, answering in Sila's envelope.

mod balance;
mod destination;
mod envelope;
mod errors;
mod getmessage;
mod guard;
mod handles;
mod kyc;
mod money;
pub mod schema;
mod transactions;
mod wallets;

/// Defines a Sila endpoint: authenticate and admit the request as `$needs`
/// demands (recording its nonce as `$effect` says), run `$body(&App, &Accepted)`, and answer in Sila's envelope.
macro_rules! endpoint {
    ($(#[$doc:meta])* $name:ident, $action:literal, $needs:expr, $effect:expr, $body:path) => {
        $(#[$doc])*
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

/// This API's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    getmessage::getmessage,
    handles::check_handle,
    handles::register,
    wallets::register_wallet,
    wallets::get_wallet,
    wallets::get_wallets,
    wallets::update_wallet,
    wallets::delete_wallet,
    kyc::request_kyc,
    kyc::check_kyc,
    kyc::decide,
    money::issue_sila,
    money::transfer_sila,
    money::redeem_sila,
    balance::get_sila_balance,
    transactions::get_transactions,
))]
pub struct ApiDoc;

crate::api::route_table! { configure, ROUTES;
    get "/0.2/getmessage" => getmessage::getmessage,
    post "/0.2/check_handle" => handles::check_handle,
    post "/0.2/register" => handles::register,
    post "/0.2/register_wallet" => wallets::register_wallet,
    post "/0.2/get_wallet" => wallets::get_wallet,
    post "/0.2/get_wallets" => wallets::get_wallets,
    post "/0.2/update_wallet" => wallets::update_wallet,
    post "/0.2/delete_wallet" => wallets::delete_wallet,
    post "/0.2/request_kyc" => kyc::request_kyc,
    post "/0.2/check_kyc" => kyc::check_kyc,
    post "/api/admin/kyc/{handle}" => kyc::decide,
    post "/0.2/issue_sila" => money::issue_sila,
    post "/0.2/transfer_sila" => money::transfer_sila,
    post "/0.2/redeem_sila" => money::redeem_sila,
    post "/0.2/get_sila_balance" => balance::get_sila_balance,
    post "/0.2/get_transactions" => transactions::get_transactions,
}
