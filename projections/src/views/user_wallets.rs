//! Per-user wallet lists with each user's default wallet.
//!
//! The default is resolved in log order: setting a wallet as default clears the
//! flag on the user's other wallets in the same change, so the view never
//! shows two defaults for one user.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::stmt::Val;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct UserWallets;

pub static TABLE: Table = Table {
    name: "user_wallets",
    columns: &[
        col("wallet_id", Text),
        col("user_id", Text),
        col("address", Text),
        col("label", OptText),
        col("nickname", OptText),
        col("is_default", Bool),
        col("created_at", Text),
        col("updated_at", Text),
    ],
    key: &[0],
    lookups: &[USER_ID],
    append_only: false,
};
const WALLET_ID: usize = 0;
const USER_ID: usize = 1;
const IS_DEFAULT: usize = 5;
const UPDATED_AT: usize = 7;

/// A new row: not the default, last updated when created.
fn insert(
    wallet_id: String,
    user_id: String,
    address: String,
    label: Option<String>,
    nickname: Option<String>,
    created_at: String,
) -> Op {
    Op::insert(
        &TABLE,
        vec![
            wallet_id.into(),
            user_id.into(),
            address.into(),
            label.into(),
            nickname.into(),
            false.into(),
            created_at.clone().into(),
            created_at.into(),
        ],
    )
}

impl Projection for UserWallets {
    fn name(&self) -> &'static str {
        "user_wallets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["user_wallets"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Op>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WalletCreated" => {
                let e: stored::WalletCreated = decode(event)?;
                vec![insert(
                    e.wallet_id,
                    e.user_id,
                    e.address,
                    e.label,
                    None,
                    e.created_at,
                )]
            }
            "WalletRegistered" => {
                let e: stored::WalletRegistered = decode(event)?;
                vec![insert(
                    e.wallet_id,
                    e.user_id,
                    e.address,
                    None,
                    e.nickname,
                    e.registered_at,
                )]
            }
            "DefaultWalletSet" => {
                let e: stored::DefaultWalletSet = decode(event)?;
                let chosen = Val::Text(e.wallet_id);
                vec![Op::update_where(
                    &TABLE,
                    USER_ID,
                    e.user_id.into(),
                    move |row| {
                        let is_default = Val::Bool(row[WALLET_ID] == chosen);
                        // Only rows whose flag changes count as updated.
                        if row[IS_DEFAULT] != is_default {
                            row[IS_DEFAULT] = is_default;
                            row[UPDATED_AT] = e.at.clone().into();
                        }
                    },
                )]
            }
            "WalletDeleted" => {
                let e: stored::WalletDeleted = decode(event)?;
                vec![Op::delete(&TABLE, vec![e.wallet_id.into()])]
            }
            _ => vec![],
        })
    }
}
