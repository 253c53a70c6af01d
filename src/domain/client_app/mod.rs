//! Client apps (Sila's `app_handle`): identities that sign requests. An app
//! holds one or more addresses, so that its signing key can be rotated.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::domain::{Address, Handle, Timestamp};

#[cfg(test)]
mod tests;

#[derive(Clone, Debug)]
pub enum AppCommand {
    /// Registers the app with its first address, or adds an address to it.
    AddAddress {
        handle: Handle,
        address: Address,
        at: Timestamp,
    },
    RemoveAddress {
        address: Address,
        at: Timestamp,
    },
}

impl crate::domain::CommandName for AppCommand {
    fn name(&self) -> &'static str {
        match self {
            AppCommand::AddAddress { .. } => "add_address",
            AppCommand::RemoveAddress { .. } => "remove_address",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AppEvent {
    AppRegistered {
        handle: Handle,
        address: Address,
        registered_at: Timestamp,
    },
    AppAddressAdded {
        handle: Handle,
        address: Address,
        at: Timestamp,
    },
    AppAddressRemoved {
        handle: Handle,
        address: Address,
        at: Timestamp,
    },
}

impl DomainEvent for AppEvent {
    fn event_type(&self) -> String {
        match self {
            AppEvent::AppRegistered { .. } => "AppRegistered",
            AppEvent::AppAddressAdded { .. } => "AppAddressAdded",
            AppEvent::AppAddressRemoved { .. } => "AppAddressRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    #[error("the app {0} does not exist")]
    NotFound(String),
    #[error("address {0} is already registered to this app")]
    AddressAlreadyRegistered(Address),
    #[error("address {0} is not registered to this app")]
    UnknownAddress(Address),
    #[error("an app must keep at least one address")]
    LastAddress,
    #[error("the handle does not match this app")]
    HandleMismatch,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientApp {
    handle: Option<Handle>,
    addresses: Vec<Address>,
}

impl ClientApp {
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }
}

impl Aggregate for ClientApp {
    const TYPE: &'static str = "app";
    type Command = AppCommand;
    type Event = AppEvent;
    type Error = AppError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AppCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AppError> {
        let event = match command {
            AppCommand::AddAddress {
                handle,
                address,
                at,
            } => match &self.handle {
                None => AppEvent::AppRegistered {
                    handle,
                    address,
                    registered_at: at,
                },
                Some(h) if *h != handle => return Err(AppError::HandleMismatch),
                Some(_) if self.addresses.contains(&address) => {
                    return Err(AppError::AddressAlreadyRegistered(address))
                }
                Some(_) => AppEvent::AppAddressAdded {
                    handle,
                    address,
                    at,
                },
            },
            AppCommand::RemoveAddress { address, at } => {
                let handle = self
                    .handle
                    .clone()
                    .ok_or_else(|| AppError::NotFound(String::new()))?;
                if !self.addresses.contains(&address) {
                    return Err(AppError::UnknownAddress(address));
                }
                if self.addresses.len() == 1 {
                    return Err(AppError::LastAddress);
                }
                AppEvent::AppAddressRemoved {
                    handle,
                    address,
                    at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AppEvent) {
        match event {
            AppEvent::AppRegistered {
                handle, address, ..
            } => {
                self.handle = Some(handle);
                self.addresses = vec![address];
            }
            AppEvent::AppAddressAdded { address, .. } => self.addresses.push(address),
            AppEvent::AppAddressRemoved { address, .. } => self.addresses.retain(|a| *a != address),
        }
    }
}
