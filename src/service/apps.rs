//! Client apps (Sila's `app_handle`): registering their signing addresses.

use crate::app::App;
use crate::domain::client_app::{AppCommand, AppError};
use crate::domain::{Address, Handle};
use crate::store::{CommandError, CommandMeta};

#[derive(Debug, thiserror::Error)]
pub enum AppServiceError {
    #[error("invalid handle: {0}")]
    Handle(#[from] crate::domain::HandleError),
    #[error("invalid address: {0}")]
    Address(#[from] crate::domain::AddressError),
    #[error(transparent)]
    Command(#[from] CommandError<AppError>),
}

/// Registers app `handle` with `address`, or adds the address to it.
pub async fn register_app(app: &App, handle: &str, address: &str) -> Result<(), AppServiceError> {
    let handle = Handle::parse(handle)?;
    let address = Address::parse(address)?;
    let meta = CommandMeta::system("cli");
    app.apps
        .execute(
            &handle,
            AppCommand::AddAddress {
                handle: handle.clone(),
                address,
                at: meta.at,
            },
            &meta,
        )
        .await?;
    Ok(())
}
