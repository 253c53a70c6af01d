//! Whitelist queue: wallets waiting for their whitelist delay to pass. The
//! scheduler reads due rows from here and issues the completion command.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct WhitelistQueue;

pub static TABLE: Table = Table {
    name: "whitelist_queue",
    columns: &[
        col("wallet_id", Text),
        col("queued_at", Text),
        col("eligible_at", Text),
        col("status", Text),
        col("whitelisted_at", OptText),
    ],
    key: &[0],
    lookups: &[],
    append_only: false,
};
const QUEUED_AT: usize = 1;
const ELIGIBLE_AT: usize = 2;
const STATUS: usize = 3;
const WHITELISTED_AT: usize = 4;

impl Projection for WhitelistQueue {
    fn name(&self) -> &'static str {
        "whitelist_queue"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["whitelist_queue"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Op>, ProjectionError> {
        Ok(match event.event_type.as_str() {
            "WhitelistQueued" => {
                let e: stored::WhitelistQueued = decode(event)?;
                let (queued_at, eligible_at) = (e.queued_at.clone(), e.eligible_at.clone());
                // Queued again: the existing row starts over.
                vec![
                    Op::update(&TABLE, vec![e.wallet_id.clone().into()], move |row| {
                        row[QUEUED_AT] = queued_at.clone().into();
                        row[ELIGIBLE_AT] = eligible_at.clone().into();
                        row[STATUS] = "queued".into();
                        row[WHITELISTED_AT] = None::<String>.into();
                    }),
                    Op::insert(
                        &TABLE,
                        vec![
                            e.wallet_id.into(),
                            e.queued_at.into(),
                            e.eligible_at.into(),
                            "queued".into(),
                            None::<String>.into(),
                        ],
                    ),
                ]
            }
            "WalletWhitelisted" => {
                let e: stored::WalletWhitelisted = decode(event)?;
                vec![Op::update(&TABLE, vec![e.wallet_id.into()], move |row| {
                    row[STATUS] = "whitelisted".into();
                    row[WHITELISTED_AT] = Some(e.at.clone()).into();
                })]
            }
            "WalletDeleted" => {
                let e: stored::WalletDeleted = decode(event)?;
                vec![Op::delete(&TABLE, vec![e.wallet_id.into()])]
            }
            _ => vec![],
        })
    }
}
