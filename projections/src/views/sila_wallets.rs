//! Each Sila user's live wallets with nickname and default flag. The default
//! is resolved in log order: a wallet becoming default clears the flag on the
//! user's other wallets first, so the view never shows two.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::stmt::Val;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct SilaWallets;

pub static TABLE: Table = Table {
    name: "sila_wallets",
    columns: &[
        col("wallet_id", Text),
        col("handle", Text),
        col("address", Text),
        col("nickname", Text),
        col("nickname_key", Text),
        col("is_default", Bool),
        col("statements_enabled", Bool),
        col("seq", Int),
        col("attached_at", Text),
        col("updated_at", Text),
    ],
    key: &[0],
    lookups: &[HANDLE],
    append_only: false,
};
const HANDLE: usize = 1;
const NICKNAME: usize = 3;
const NICKNAME_KEY: usize = 4;
const IS_DEFAULT: usize = 5;
const STATEMENTS_ENABLED: usize = 6;
const UPDATED_AT: usize = 9;

fn clear_default(handle: &str, at: &str) -> Op {
    let at = at.to_string();
    Op::update_where(&TABLE, HANDLE, handle.into(), move |row| {
        if row[IS_DEFAULT] == Val::Bool(true) {
            row[IS_DEFAULT] = false.into();
            row[UPDATED_AT] = at.clone().into();
        }
    })
}

fn set(wallet_id: &str, column: usize, value: Val, at: &str) -> Op {
    let at = at.to_string();
    Op::update(&TABLE, vec![wallet_id.into()], move |row| {
        row[column] = value.clone();
        row[UPDATED_AT] = at.clone().into();
    })
}

impl Projection for SilaWallets {
    fn name(&self) -> &'static str {
        "sila_wallets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sila_wallets"]
    }

    fn apply(&self, event: &StoredEvent, seq: i64) -> Result<Vec<Op>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WalletAttached" => {
                let e: stored::WalletAttached = decode(event)?;
                let mut out = Vec::with_capacity(2);
                if e.default {
                    out.push(clear_default(&e.handle, &e.at));
                }
                out.push(Op::insert(
                    &TABLE,
                    vec![
                        e.wallet_id.into(),
                        e.handle.into(),
                        e.address.to_ascii_lowercase().into(),
                        e.nickname.clone().into(),
                        e.nickname.to_lowercase().into(),
                        e.default.into(),
                        e.statements_enabled.into(),
                        seq.into(),
                        e.at.clone().into(),
                        e.at.into(),
                    ],
                ));
                out
            }
            "WalletUpdated" => {
                let e: stored::WalletUpdated = decode(event)?;
                let mut out = Vec::new();
                if e.default == Some(true) {
                    out.push(clear_default(&e.handle, &e.at));
                }
                if let Some(d) = e.default {
                    out.push(set(&e.wallet_id, IS_DEFAULT, d.into(), &e.at));
                }
                if let Some(n) = e.nickname {
                    out.push(set(
                        &e.wallet_id,
                        NICKNAME_KEY,
                        n.to_lowercase().into(),
                        &e.at,
                    ));
                    out.push(set(&e.wallet_id, NICKNAME, n.into(), &e.at));
                }
                if let Some(s) = e.statements_enabled {
                    out.push(set(&e.wallet_id, STATEMENTS_ENABLED, s.into(), &e.at));
                }
                out
            }
            "WalletDetached" => {
                let e: stored::WalletDetached = decode(event)?;
                vec![Op::delete(&TABLE, vec![e.wallet_id.into()])]
            }
            _ => vec![],
        })
    }
}
