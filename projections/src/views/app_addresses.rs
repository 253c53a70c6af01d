//! App signing addresses: which app an `authsignature` address belongs to.

use serde::Deserialize;

use super::{decode, Projection};
use crate::log::StoredEvent;
use crate::stmt::Stmt;
use crate::ProjectionError;

pub struct AppAddresses;

#[derive(Deserialize)]
struct AppAddressEvent {
    handle: String,
    address: String,
}

impl Projection for AppAddresses {
    fn name(&self) -> &'static str {
        "app_addresses"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["app_addresses"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Stmt>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "AppRegistered" | "AppAddressAdded" => {
                let e: AppAddressEvent = decode(event)?;
                vec![Stmt::row(
                    "INSERT INTO app_addresses (address, handle, address_checksum, added_at) VALUES",
                    "ON CONFLICT (address, handle) DO NOTHING",
                    vec![
                        e.address.to_ascii_lowercase().into(),
                        e.handle.into(),
                        e.address.into(),
                        event.meta("at").unwrap_or_default().into(),
                    ],
                )]
            }
            "AppAddressRemoved" => {
                let e: AppAddressEvent = decode(event)?;
                vec![Stmt::new(
                    "DELETE FROM app_addresses WHERE address = $1 AND handle = $2",
                    vec![e.address.to_ascii_lowercase().into(), e.handle.into()],
                )]
            }
            _ => vec![],
        })
    }
}
