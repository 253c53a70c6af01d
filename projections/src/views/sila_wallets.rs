//! Each Sila user's live wallets with nickname and default flag. The default
//! is resolved in log order: a wallet becoming default clears the flag on the
//! user's other wallets first, so the view never shows two.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::stmt::Stmt;
use crate::ProjectionError;

pub struct SilaWallets;

fn clear_default(handle: &str, at: &str) -> Stmt {
    Stmt::new(
        "UPDATE sila_wallets SET is_default = $2, updated_at = $3 WHERE handle = $1 AND is_default = $4",
        vec![handle.into(), false.into(), at.into(), true.into()],
    )
}

impl Projection for SilaWallets {
    fn name(&self) -> &'static str {
        "sila_wallets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sila_wallets"]
    }

    fn apply(&self, event: &StoredEvent, seq: i64) -> Result<Vec<Stmt>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WalletAttached" => {
                let e: stored::WalletAttached = decode(event)?;
                let mut out = Vec::with_capacity(2);
                if e.default {
                    out.push(clear_default(&e.handle, &e.at));
                }
                out.push(Stmt::row(
                    "INSERT INTO sila_wallets
                       (wallet_id, handle, address, nickname, nickname_key, is_default,
                        statements_enabled, seq, attached_at, updated_at)
                     VALUES",
                    "ON CONFLICT (wallet_id) DO NOTHING",
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
                    out.push(Stmt::new(
                        "UPDATE sila_wallets SET is_default = $2, updated_at = $3 WHERE wallet_id = $1",
                        vec![e.wallet_id.clone().into(), d.into(), e.at.clone().into()],
                    ));
                }
                if let Some(n) = e.nickname {
                    out.push(Stmt::new(
                        "UPDATE sila_wallets SET nickname = $2, nickname_key = $3, updated_at = $4 WHERE wallet_id = $1",
                        vec![
                            e.wallet_id.clone().into(),
                            n.clone().into(),
                            n.to_lowercase().into(),
                            e.at.clone().into(),
                        ],
                    ));
                }
                if let Some(s) = e.statements_enabled {
                    out.push(Stmt::new(
                        "UPDATE sila_wallets SET statements_enabled = $2, updated_at = $3 WHERE wallet_id = $1",
                        vec![e.wallet_id.into(), s.into(), e.at.into()],
                    ));
                }
                out
            }
            "WalletDetached" => {
                let e: stored::WalletDetached = decode(event)?;
                vec![Stmt::new(
                    "DELETE FROM sila_wallets WHERE wallet_id = $1",
                    vec![e.wallet_id.into()],
                )]
            }
            _ => vec![],
        })
    }
}
