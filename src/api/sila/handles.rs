//! `check_handle` and `register`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use walletd_projections::sila_queries;

use super::envelope::Fields;
use super::errors::{negative, success, SilaApiError};
use super::guard::{accept, Needs};
use crate::app::App;
use crate::domain::{Address, Nickname};
use crate::service::sila_users::SilaUsers;

pub async fn check_handle(
    app: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let a = match accept(&app, &req, payload, "check_handle", Needs::Handle).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let handle = match a.handle() {
        Ok(h) => h.clone(),
        Err(e) => return a.fail(e),
    };
    match sila_queries::sila_user(&app.db, handle.as_str()).await {
        Ok(None) => success(
            a.reference(),
            a.started,
            json!({ "message": format!("{handle} is available.") }),
        ),
        Ok(Some(_)) => negative(
            a.reference(),
            a.started,
            json!({ "message": format!("{handle} is already taken.") }),
        ),
        Err(e) => a.fail(e.into()),
    }
}

pub async fn register(
    app: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let a = match accept(&app, &req, payload, "register", Needs::Handle).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let run = async {
        let handle = a.handle()?.clone();
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
        let nickname = entry
            .str("crypto_alias")?
            .map(Nickname::parse)
            .transpose()
            .map_err(|e| SilaApiError::field("crypto_entry.crypto_alias", e.to_string()))?;
        // entity, address, identity and contact are personal data for the KYC
        // provider; walletd keeps none of it in its permanent event log.
        SilaUsers::new(&app)
            .register(&handle, &a.header.app, address, nickname, &a.meta)
            .await?;
        Ok::<_, SilaApiError>(handle)
    };
    match run.await {
        Ok(handle) => success(
            a.reference(),
            a.started,
            json!({ "message": format!("{handle} was successfully registered.") }),
        ),
        Err(e) => a.fail(e),
    }
}
