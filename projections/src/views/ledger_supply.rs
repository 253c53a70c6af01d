//! Per asset: everything issued, everything redeemed, and what is in transit
//! (transfers debited and not yet credited or returned): the `issuance`,
//! `redemption` and `transit` accounts of the postings (docs/events.md).
//! At every position, Σ wallet balances + in_transit = issued − redeemed.

use super::ledger::{self, Kind};
use super::Projection;
use crate::log::StoredEvent;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct LedgerSupply;

pub static TABLE: Table = Table {
    name: "ledger_supply",
    columns: &[
        col("asset", Text),
        col("decimals", Int),
        col("issued", Amount),
        col("redeemed", Amount),
        col("in_transit", Amount),
        col("updated_at", Text),
    ],
    key: &[0],
    lookups: &[],
    append_only: false,
};
const ISSUED: usize = 2;
const REDEEMED: usize = 3;
const IN_TRANSIT: usize = 4;
const UPDATED_AT: usize = 5;

impl Projection for LedgerSupply {
    fn name(&self) -> &'static str {
        "ledger_supply"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["ledger_supply"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Op>, ProjectionError> {
        let Some(e) = ledger::read(event)? else {
            return Ok(vec![]);
        };
        let kind = e.kind;
        if kind == Kind::Settled {
            return Ok(vec![]);
        }
        let (amount, at) = (e.amount, e.body.at.clone());
        let row = vec![
            e.body.asset.into(),
            i64::from(e.body.decimals).into(),
            "0".into(),
            "0".into(),
            "0".into(),
            e.body.at.into(),
        ];
        Ok(vec![Op::upsert(&TABLE, row, move |row| {
            match kind {
                Kind::Issued => ledger::add(row, ISSUED, amount)?,
                Kind::Redeemed => ledger::add(row, REDEEMED, amount)?,
                Kind::Debited => ledger::add(row, IN_TRANSIT, amount)?,
                Kind::Credited | Kind::Returned => ledger::sub(row, IN_TRANSIT, amount)?,
                Kind::Settled => {}
            }
            row[UPDATED_AT] = at.clone().into();
            Ok(())
        })])
    }
}
