//! Wallet directory: find a wallet by id, address or owning user.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::stmt::{Stmt, Val};
use crate::ProjectionError;

pub struct WalletDirectory;

const INSERT: &str = "
INSERT INTO wallet_directory
  (wallet_id, address, address_checksum, user_id, kind, custody, public_key, created_at,
   status, whitelist_status, updated_at)
VALUES";
const ON_CONFLICT: &str = "ON CONFLICT (wallet_id) DO NOTHING";

/// A new directory row: active, not whitelisted.
fn insert(mut args: Vec<Val>) -> Stmt {
    let created_at = args.last().cloned().unwrap_or(Val::OptText(None));
    args.extend([Val::from("active"), Val::from("none"), created_at]);
    Stmt::row(INSERT, ON_CONFLICT, args)
}

impl Projection for WalletDirectory {
    fn name(&self) -> &'static str {
        "wallet_directory"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["wallet_directory"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Stmt>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WalletCreated" => {
                let e: stored::WalletCreated = decode(event)?;
                vec![insert(vec![
                    e.wallet_id.into(),
                    e.address.to_ascii_lowercase().into(),
                    e.address.into(),
                    e.user_id.into(),
                    e.kind.into(),
                    e.custody.into(),
                    Some(e.public_key).into(),
                    e.created_at.into(),
                ])]
            }
            "WalletRegistered" => {
                let e: stored::WalletRegistered = decode(event)?;
                vec![insert(vec![
                    e.wallet_id.into(),
                    e.address.to_ascii_lowercase().into(),
                    e.address.into(),
                    e.user_id.into(),
                    "external".into(),
                    "external".into(),
                    None::<String>.into(),
                    e.registered_at.into(),
                ])]
            }
            "WhitelistQueued" => {
                let e: stored::WhitelistQueued = decode(event)?;
                vec![Stmt::new(
                    "UPDATE wallet_directory SET whitelist_status = 'queued', updated_at = $2 WHERE wallet_id = $1",
                    vec![e.wallet_id.into(), e.queued_at.into()],
                )]
            }
            "WalletWhitelisted" => {
                let e: stored::WalletWhitelisted = decode(event)?;
                vec![Stmt::new(
                    "UPDATE wallet_directory SET whitelist_status = 'whitelisted', updated_at = $2 WHERE wallet_id = $1",
                    vec![e.wallet_id.into(), e.at.into()],
                )]
            }
            "WalletDeleted" => {
                let e: stored::WalletDeleted = decode(event)?;
                vec![Stmt::new(
                    "DELETE FROM wallet_directory WHERE wallet_id = $1",
                    vec![e.wallet_id.into()],
                )]
            }
            _ => vec![],
        })
    }
}
