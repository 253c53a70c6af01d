//! Per-user wallet lists with each user's default wallet.
//!
//! The default is resolved in log order: setting a wallet as default clears the
//! flag on the user's other wallets in the same statement, so the view never
//! shows two defaults for one user.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::stmt::{Stmt, Val};
use crate::ProjectionError;

pub struct UserWallets;

const INSERT: &str = "
INSERT INTO user_wallets (user_id, wallet_id, address, label, nickname, created_at, is_default, updated_at)
VALUES";
const ON_CONFLICT: &str = "ON CONFLICT (wallet_id) DO NOTHING";

/// A new row: not the default, last updated when created.
fn insert(mut args: Vec<Val>) -> Stmt {
    let created_at = args.last().cloned().unwrap_or(Val::OptText(None));
    args.extend([Val::Bool(false), created_at]);
    Stmt::row(INSERT, ON_CONFLICT, args)
}

impl Projection for UserWallets {
    fn name(&self) -> &'static str {
        "user_wallets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["user_wallets"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Stmt>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WalletCreated" => {
                let e: stored::WalletCreated = decode(event)?;
                vec![insert(vec![
                    e.user_id.into(),
                    e.wallet_id.into(),
                    e.address.into(),
                    e.label.into(),
                    None::<String>.into(),
                    e.created_at.into(),
                ])]
            }
            "WalletRegistered" => {
                let e: stored::WalletRegistered = decode(event)?;
                vec![insert(vec![
                    e.user_id.into(),
                    e.wallet_id.into(),
                    e.address.into(),
                    None::<String>.into(),
                    e.nickname.into(),
                    e.registered_at.into(),
                ])]
            }
            "DefaultWalletSet" => {
                let e: stored::DefaultWalletSet = decode(event)?;
                vec![Stmt::new(
                    "UPDATE user_wallets
                        SET is_default = (wallet_id = $1),
                            updated_at = CASE WHEN is_default <> (wallet_id = $1) THEN $3 ELSE updated_at END
                      WHERE user_id = $2",
                    vec![e.wallet_id.into(), e.user_id.into(), e.at.into()],
                )]
            }
            "WalletDeleted" => {
                let e: stored::WalletDeleted = decode(event)?;
                vec![Stmt::new(
                    "DELETE FROM user_wallets WHERE wallet_id = $1",
                    vec![e.wallet_id.into()],
                )]
            }
            _ => vec![],
        })
    }
}
