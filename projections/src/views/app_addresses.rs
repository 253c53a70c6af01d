//! App signing addresses: which app an `authsignature` address belongs to.

use serde::Deserialize;

use super::{decode, Projection};
use crate::log::StoredEvent;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct AppAddresses;

pub static TABLE: Table = Table {
    name: "app_addresses",
    columns: &[
        col("address", Text),
        col("handle", Text),
        col("address_checksum", Text),
        col("added_at", Text),
    ],
    key: &[0, 1],
    lookups: &[],
    append_only: false,
};

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

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Op>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "AppRegistered" | "AppAddressAdded" => {
                let e: AppAddressEvent = decode(event)?;
                vec![Op::insert(
                    &TABLE,
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
                vec![Op::delete(
                    &TABLE,
                    vec![e.address.to_ascii_lowercase().into(), e.handle.into()],
                )]
            }
            _ => vec![],
        })
    }
}
