//! Wallet directory: find a wallet by id, address or owning user.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct WalletDirectory;

pub static TABLE: Table = Table {
    name: "wallet_directory",
    columns: &[
        col("wallet_id", Text),
        col("address", Text),
        col("address_checksum", Text),
        col("user_id", Text),
        col("kind", Text),
        col("custody", Text),
        col("public_key", OptText),
        col("created_at", Text),
        col("status", Text),
        col("whitelist_status", Text),
        col("updated_at", Text),
    ],
    key: &[0],
    lookups: &[],
    append_only: false,
};
const WHITELIST_STATUS: usize = 9;
const UPDATED_AT: usize = 10;

/// A new wallet: active, not whitelisted.
#[allow(clippy::too_many_arguments)]
fn insert(
    wallet_id: String,
    address: String,
    user_id: String,
    kind: String,
    custody: String,
    public_key: Option<String>,
    created_at: String,
) -> Op {
    Op::insert(
        &TABLE,
        vec![
            wallet_id.into(),
            address.to_ascii_lowercase().into(),
            address.into(),
            user_id.into(),
            kind.into(),
            custody.into(),
            public_key.into(),
            created_at.clone().into(),
            "active".into(),
            "none".into(),
            created_at.into(),
        ],
    )
}

fn set_whitelist(wallet_id: String, status: &'static str, at: String) -> Op {
    Op::update(&TABLE, vec![wallet_id.into()], move |row| {
        row[WHITELIST_STATUS] = status.into();
        row[UPDATED_AT] = at.clone().into();
    })
}

impl Projection for WalletDirectory {
    fn name(&self) -> &'static str {
        "wallet_directory"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["wallet_directory"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Op>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WalletCreated" => {
                let e: stored::WalletCreated = decode(event)?;
                vec![insert(
                    e.wallet_id,
                    e.address,
                    e.user_id,
                    e.kind,
                    e.custody,
                    Some(e.public_key),
                    e.created_at,
                )]
            }
            "WalletRegistered" => {
                let e: stored::WalletRegistered = decode(event)?;
                vec![insert(
                    e.wallet_id,
                    e.address,
                    e.user_id,
                    "external".into(),
                    "external".into(),
                    None,
                    e.registered_at,
                )]
            }
            "WhitelistQueued" => {
                let e: stored::WhitelistQueued = decode(event)?;
                vec![set_whitelist(e.wallet_id, "queued", e.queued_at)]
            }
            "WalletWhitelisted" => {
                let e: stored::WalletWhitelisted = decode(event)?;
                vec![set_whitelist(e.wallet_id, "whitelisted", e.at)]
            }
            "WalletDeleted" => {
                let e: stored::WalletDeleted = decode(event)?;
                vec![Op::delete(&TABLE, vec![e.wallet_id.into()])]
            }
            _ => vec![],
        })
    }
}
