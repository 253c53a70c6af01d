//! Each wallet's balance per asset: the `wallet:<id>` postings of the
//! account events (docs/events.md), summed in Rust with checked 128-bit
//! arithmetic so that both backends hold the same numbers.

use super::ledger::{self, Kind};
use super::Projection;
use crate::log::StoredEvent;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct LedgerBalances;

pub static TABLE: Table = Table {
    name: "ledger_balances",
    columns: &[
        col("wallet_id", Text),
        col("asset", Text),
        col("decimals", Int),
        col("balance", Amount),
        col("updated_at", Text),
    ],
    key: &[0, 1],
    lookups: &[],
    append_only: false,
};
const BALANCE: usize = 3;
const UPDATED_AT: usize = 4;

impl Projection for LedgerBalances {
    fn name(&self) -> &'static str {
        "ledger_balances"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["ledger_balances"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Op>, ProjectionError> {
        let Some(e) = ledger::read(event)? else {
            return Ok(vec![]);
        };
        // The wallet's side of the event's postings; a settlement has none.
        let into_wallet = match e.kind {
            Kind::Issued | Kind::Credited | Kind::Returned => true,
            Kind::Debited | Kind::Redeemed => false,
            Kind::Settled => return Ok(vec![]),
        };
        let (amount, at) = (e.amount, e.body.at.clone());
        let row = vec![
            e.body.wallet_id.into(),
            e.body.asset.into(),
            i64::from(e.body.decimals).into(),
            "0".into(),
            e.body.at.into(),
        ];
        Ok(vec![Op::upsert(&TABLE, row, move |row| {
            if into_wallet {
                ledger::add(row, BALANCE, amount)?;
            } else {
                ledger::sub(row, BALANCE, amount)?;
            }
            row[UPDATED_AT] = at.clone().into();
            Ok(())
        })])
    }
}
