//! Whitelist queue: wallets waiting for their whitelist delay to pass. The
//! scheduler reads due rows from here and issues the completion command.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::stmt::Stmt;
use crate::ProjectionError;

pub struct WhitelistQueue;

impl Projection for WhitelistQueue {
    fn name(&self) -> &'static str {
        "whitelist_queue"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["whitelist_queue"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Stmt>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WhitelistQueued" => {
                let e: stored::WhitelistQueued = decode(event)?;
                vec![Stmt::new(
                    "INSERT INTO whitelist_queue (wallet_id, queued_at, eligible_at, status, whitelisted_at)
                     VALUES ($1, $2, $3, 'queued', NULL)
                     ON CONFLICT (wallet_id) DO UPDATE
                       SET queued_at = $2, eligible_at = $3, status = 'queued', whitelisted_at = NULL",
                    vec![e.wallet_id.into(), e.queued_at.into(), e.eligible_at.into()],
                )]
            }
            "WalletWhitelisted" => {
                let e: stored::WalletWhitelisted = decode(event)?;
                vec![Stmt::new(
                    "UPDATE whitelist_queue SET status = 'whitelisted', whitelisted_at = $2 WHERE wallet_id = $1",
                    vec![e.wallet_id.into(), e.at.into()],
                )]
            }
            "WalletDeleted" => {
                let e: stored::WalletDeleted = decode(event)?;
                vec![Stmt::new(
                    "DELETE FROM whitelist_queue WHERE wallet_id = $1",
                    vec![e.wallet_id.into()],
                )]
            }
            _ => vec![],
        })
    }
}
