//! `check_handle` and `register`.

use serde_json::json;
use walletd_projections::sila_queries;

use super::endpoint;
use super::envelope::Fields;
use super::errors::{Reply, SilaApiError};
use super::guard::{Accepted, Effect, Needs};
use super::schema::{RegisterRequest, SilaErrors, SilaMessage, SilaRequest};
use crate::app::App;
use crate::domain::{Address, Nickname};
use crate::service::sila_users::SilaUsers;

endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/check_handle",
        tag = "sila",
        summary = "Is a user handle free?",
        security(("authsignature" = [])),
        request_body = SilaRequest,
        responses(
            (status = 200, description = "`success: false`, `status: FAILURE` when the handle is taken", body = SilaMessage),
            SilaErrors,
        ),
    )]
    check_handle,
    "check_handle",
    Needs::Handle,
    Effect::Reads,
    check_handle_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/register",
        tag = "sila",
        summary = "Register a user with its first wallet",
        security(("authsignature" = [])),
        request_body = RegisterRequest,
        responses(
            (status = 200, description = "The user is registered", body = SilaMessage),
            SilaErrors,
        ),
    )]
    register,
    "register",
    Needs::Handle,
    Effect::Writes,
    register_body
);

async fn check_handle_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let handle = a.handle()?;
    Ok(
        match sila_queries::sila_user(&app.db, handle.as_str()).await? {
            None => Reply::success(json!({ "message": format!("{handle} is available.") })),
            Some(_) => Reply::negative(json!({ "message": format!("{handle} is already taken.") })),
        },
    )
}

async fn register_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let handle = a.handle()?;
    let entry = Fields::of(&a.env.body, "crypto_entry")?;
    let address = entry
        .str("crypto_address")?
        .ok_or_else(|| SilaApiError::field("crypto_entry.crypto_address", "is required"))?;
    let address = Address::parse(address)
        .map_err(|e| SilaApiError::field("crypto_entry.crypto_address", e.to_string()))?;
    match entry.str("crypto_code")? {
        None | Some("ETH") => {}
        Some(_) => {
            return Err(SilaApiError::field(
                "crypto_entry.crypto_code",
                "must be \"ETH\"",
            ))
        }
    }
    // Sila's Node SDK sends `crypto_alias: ""` when none was set: no alias.
    let nickname = entry
        .str("crypto_alias")?
        .filter(|alias| !alias.is_empty())
        .map(Nickname::parse)
        .transpose()
        .map_err(|e| SilaApiError::field("crypto_entry.crypto_alias", e.to_string()))?;
    // entity, address, identity and contact are personal data for the KYC
    // provider; walletd keeps none of it in its permanent event log.
    SilaUsers::new(app)
        .register(handle, &a.header.app, address, nickname, &a.meta)
        .await?;
    Ok(Reply::success(
        json!({ "message": format!("{handle} was successfully registered.") }),
    ))
}
