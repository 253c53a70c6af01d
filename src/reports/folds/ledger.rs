//! The ledger's reports (issue 14): balances per wallet and asset, supply per
//! asset, and movements per day — all folded from the account events'
//! double-entry postings (`domain::account::postings`), so they hold as of
//! any position exactly as the books did then.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{day, Fold};
use crate::domain::account::{AccountEvent, Books, LedgerAccount};
use crate::domain::money::{Amount, AssetCode, SignedAmount};
use crate::reports::record::Record;
use crate::reports::table::Table;

/// The account event a record holds, as the domain reads it; `None` for
/// other events (and for a stored account event the domain cannot read,
/// which the projector would have refused to project already).
fn account_event(r: &Record) -> Option<AccountEvent> {
    if r.aggregate_type != "account" {
        return None;
    }
    let tagged = json!({ r.event_type.as_str(): r.body });
    serde_json::from_value(tagged).ok()
}

/// What every ledger report needs: the books and each asset's decimals.
#[derive(Default)]
struct Ledger {
    books: Books,
    decimals: BTreeMap<AssetCode, u8>,
    /// Events whose postings the books refused (they would break the
    /// ledger's rules); a report shows the count rather than hide them.
    refused: u64,
}

impl Ledger {
    fn apply(&mut self, e: &AccountEvent) {
        let asset = e.asset();
        self.decimals.insert(asset.code().clone(), asset.decimals());
        if self.books.post(&e.postings()).is_err() {
            self.refused += 1;
        }
    }

    fn major(&self, asset: &AssetCode, amount: Amount) -> String {
        amount.to_major_string(self.decimals.get(asset).copied().unwrap_or(0))
    }
}

#[derive(Default)]
pub struct LedgerBalances {
    ledger: Ledger,
}

impl Fold for LedgerBalances {
    fn apply(&mut self, r: &Record) {
        if let Some(e) = account_event(r) {
            self.ledger.apply(&e);
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let l = &self.ledger;
        let mut t = Table::new(&["wallet_id", "asset", "decimals", "balance", "balance_major"]);
        for asset in l.books.assets() {
            for (account, balance) in l.books.accounts(asset) {
                let LedgerAccount::Wallet(wallet) = account else {
                    continue;
                };
                let amount = balance.magnitude();
                t.push(vec![
                    json!(wallet.to_string()),
                    json!(asset.to_string()),
                    json!(l.decimals.get(asset)),
                    // Negative only if the books were broken; shown as it is.
                    json!(balance.to_string()),
                    json!(if balance.is_negative() {
                        format!("-{}", l.major(asset, amount))
                    } else {
                        l.major(asset, amount)
                    }),
                ]);
            }
        }
        t
    }
}

#[derive(Default)]
pub struct LedgerSupply {
    ledger: Ledger,
}

impl Fold for LedgerSupply {
    fn apply(&mut self, r: &Record) {
        if let Some(e) = account_event(r) {
            self.ledger.apply(&e);
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let l = &self.ledger;
        let mut t = Table::new(&[
            "asset",
            "decimals",
            "issued",
            "redeemed",
            "in_transit",
            "held_by_wallets",
            "supply",
            "balanced",
            "refused_events",
        ]);
        for asset in l.books.assets() {
            let mut held = SignedAmount::ZERO;
            let mut transit = SignedAmount::ZERO;
            for (account, balance) in l.books.accounts(asset) {
                match account {
                    LedgerAccount::Wallet(_) => held = held.checked_add(balance).unwrap_or(held),
                    LedgerAccount::Transit(_) => transit = balance,
                    _ => {}
                }
            }
            let supply = l.books.supply(asset).ok();
            // supply = Σ wallets + transit = issued − redeemed.
            let balanced = supply.is_some_and(|s| {
                held.checked_add(transit)
                    .ok()
                    .and_then(SignedAmount::non_negative)
                    == Some(s)
            });
            t.push(vec![
                json!(asset.to_string()),
                json!(l.decimals.get(asset)),
                json!(l.books.issued(asset).to_string()),
                json!(l.books.redeemed(asset).to_string()),
                json!(transit.to_string()),
                json!(held.to_string()),
                supply.map_or(Value::Null, |s| json!(s.to_string())),
                json!(balanced),
                json!(l.refused),
            ]);
        }
        t
    }
}

#[derive(Default)]
pub struct LedgerMovementsPerDay {
    ledger: Ledger,
    /// (day, asset, kind) → (movements, total).
    days: BTreeMap<(String, AssetCode, &'static str), (u64, Amount)>,
}

impl Fold for LedgerMovementsPerDay {
    fn apply(&mut self, r: &Record) {
        let Some(e) = account_event(r) else { return };
        self.ledger.apply(&e);
        let kind = match &e {
            AccountEvent::FundsIssued { .. } => "issue",
            AccountEvent::TransferDebited { .. } => "transfer",
            AccountEvent::TransferReturned { .. } => "return",
            AccountEvent::FundsRedeemed { .. } => "redeem",
            // A transfer's other events are the same movement.
            AccountEvent::TransferCredited { .. } | AccountEvent::TransferSettled { .. } => return,
        };
        let key = (day(&r.text("at")), e.asset().code().clone(), kind);
        let entry = self.days.entry(key).or_insert((0, Amount::ZERO));
        entry.0 += 1;
        entry.1 = entry.1.checked_add(e.amount()).unwrap_or(entry.1);
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new(&[
            "day",
            "asset",
            "kind",
            "movements",
            "amount",
            "amount_major",
        ]);
        for ((day, asset, kind), (n, total)) in &self.days {
            t.push(vec![
                json!(day),
                json!(asset.to_string()),
                json!(kind),
                json!(n),
                json!(total.to_string()),
                json!(self.ledger.major(asset, *total)),
            ]);
        }
        t
    }
}
