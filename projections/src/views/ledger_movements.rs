//! Movement history, one row per leg as a wallet's owner sees it: what
//! `get_transactions` and `GET /api/wallet/{id}/transactions` page through,
//! newest first by `seq` (the event's rank in the global log order).
//!
//! A transfer is a `transfer_out` row on the source (pending until the
//! process manager credits the destination, then settled: the value has
//! arrived, as the transfer's answer says; or returned) and, once credited,
//! a `transfer_in` row on the destination (settled). The source's own
//! `TransferSettled` a pass later only confirms it.
//! A return adds a `return` row on the source, which is where the value
//! came back. Issues and redemptions complete in one event: settled.

use std::sync::{Arc, Mutex};

use super::ledger::{self, Kind};
use super::Projection;
use crate::log::StoredEvent;
use crate::stmt::Val;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct LedgerMovements;

pub static TABLE: Table = Table {
    name: "ledger_movements",
    columns: &[
        col("wallet_id", Text),
        col("movement_id", Text),
        col("kind", Text),
        col("asset", Text),
        col("decimals", Int),
        col("amount", Amount),
        // The other wallet of a transfer, or the external reference of an
        // issue (funding) or a redemption (destination).
        col("counterparty", Text),
        col("status", Text),
        col("memo", OptText),
        col("requested_by", OptText),
        // Why a transfer came back (`return` rows only).
        col("reason", OptText),
        col("at", Text),
        col("updated_at", Text),
        col("seq", Int),
    ],
    key: &[WALLET_ID, MOVEMENT_ID, KIND],
    lookups: &[MOVEMENT_ID],
    append_only: false,
};
const WALLET_ID: usize = 0;
const MOVEMENT_ID: usize = 1;
const KIND: usize = 2;
const STATUS: usize = 7;
const MEMO: usize = 8;
const REQUESTED_BY: usize = 9;
const UPDATED_AT: usize = 12;

pub const PENDING: &str = "pending";
pub const SETTLED: &str = "settled";
pub const RETURNED: &str = "returned";

fn key(wallet_id: &str, movement_id: &str, kind: &str) -> Vec<Val> {
    vec![wallet_id.into(), movement_id.into(), kind.into()]
}

/// The source's `transfer_out` row takes its final status.
fn close_out(wallet_id: &str, movement_id: &str, status: &'static str, at: String) -> Op {
    Op::update(
        &TABLE,
        key(wallet_id, movement_id, "transfer_out"),
        move |row| {
            row[STATUS] = status.into();
            row[UPDATED_AT] = at.clone().into();
        },
    )
}

impl Projection for LedgerMovements {
    fn name(&self) -> &'static str {
        "ledger_movements"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["ledger_movements"]
    }

    fn apply(&self, event: &StoredEvent, seq: i64) -> Result<Vec<Op>, ProjectionError> {
        let Some(e) = ledger::read(event)? else {
            return Ok(vec![]);
        };
        let b = e.body;
        let row = |kind: &str,
                   counterparty: Option<String>,
                   status: &str,
                   memo: Option<String>,
                   requested_by: Option<String>,
                   reason: Option<String>| {
            Op::insert(
                &TABLE,
                vec![
                    b.wallet_id.clone().into(),
                    b.movement_id.clone().into(),
                    kind.into(),
                    b.asset.clone().into(),
                    i64::from(b.decimals).into(),
                    e.amount.to_string().into(),
                    counterparty.unwrap_or_default().into(),
                    status.into(),
                    memo.into(),
                    requested_by.into(),
                    reason.into(),
                    b.at.clone().into(),
                    b.at.clone().into(),
                    seq.into(),
                ],
            )
        };
        Ok(match e.kind {
            Kind::Issued => vec![row(
                "issue",
                b.funding_reference.clone(),
                SETTLED,
                None,
                b.requested_by.clone(),
                None,
            )],
            Kind::Redeemed => vec![row(
                "redeem",
                b.destination_reference.clone(),
                SETTLED,
                None,
                b.requested_by.clone(),
                None,
            )],
            Kind::Debited => vec![row(
                "transfer_out",
                b.to_wallet.clone(),
                PENDING,
                b.memo.clone(),
                b.requested_by.clone(),
                None,
            )],
            Kind::Credited => {
                // The credit does not repeat the sender's memo and who asked:
                // they come from the debit's row, which the log always has
                // earlier (the process manager credits what it read).
                let source = b.from_wallet.clone().unwrap_or_default();
                let credited_at = b.at.clone();
                let found: Arc<Mutex<Option<(Val, Val)>>> = Arc::default();
                let (put, take) = (found.clone(), found);
                vec![
                    Op::update_where(
                        &TABLE,
                        MOVEMENT_ID,
                        b.movement_id.clone().into(),
                        move |debit| {
                            if debit[KIND] == Val::Text("transfer_out".into())
                                && debit[WALLET_ID] == Val::Text(source.clone())
                            {
                                if let Ok(mut slot) = put.lock() {
                                    *slot =
                                        Some((debit[MEMO].clone(), debit[REQUESTED_BY].clone()));
                                }
                                debit[STATUS] = SETTLED.into();
                                debit[UPDATED_AT] = credited_at.clone().into();
                            }
                        },
                    ),
                    row(
                        "transfer_in",
                        b.from_wallet.clone(),
                        SETTLED,
                        None,
                        None,
                        None,
                    ),
                    Op::update(
                        &TABLE,
                        key(&b.wallet_id, &b.movement_id, "transfer_in"),
                        move |credit| {
                            if let Some((memo, requested_by)) =
                                take.lock().ok().and_then(|slot| slot.clone())
                            {
                                credit[MEMO] = memo;
                                credit[REQUESTED_BY] = requested_by;
                            }
                        },
                    ),
                ]
            }
            Kind::Settled => vec![close_out(
                &b.wallet_id,
                &b.movement_id,
                SETTLED,
                b.at.clone(),
            )],
            Kind::Returned => vec![
                close_out(&b.wallet_id, &b.movement_id, RETURNED, b.at.clone()),
                row(
                    "return",
                    b.to_wallet.clone(),
                    RETURNED,
                    None,
                    None,
                    b.reason.clone(),
                ),
            ],
        })
    }
}
