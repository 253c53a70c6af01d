//! The ledger check (`walletd ledger check`): folds every account event of
//! the log, in global order, into the double-entry books and proves the
//! ledger's invariants at every position:
//!
//! - every event's postings sum to zero, and no wallet, transit or
//!   redemption account goes below zero (issuance never above);
//! - one asset has one number of decimals;
//! - every transfer is debited once and has at most one second leg (a
//!   credit or a return) matching the debit, and a settlement only after
//!   its credit;
//!
//! and at the end: supply = Σ wallets + transit = issued − redeemed per
//! asset, transit = the transfers still awaiting their second leg, and the
//! read models (`ledger_balances`, `ledger_supply`) equal the books.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use walletd_projections::ledger_queries;
use walletd_projections::{log, Db, LogPosition};

use crate::domain::account::{AccountEvent, Books, LedgerAccount, MovementId};
use crate::domain::money::{Amount, Asset, AssetCode, SignedAmount};
use crate::domain::WalletId;

const PAGE: i64 = 5_000;
/// The read models compared with the books.
const READ_MODELS: &[&str] = &["ledger_balances", "ledger_supply"];

/// What the check found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Events read, of every aggregate.
    pub events: u64,
    pub account_events: u64,
    pub transfers: u64,
    /// Transfers debited whose second leg is not in the log yet.
    pub awaiting_second_leg: u64,
    /// Credited transfers whose source has not recorded the settlement yet.
    pub awaiting_settlement: u64,
    pub credited: u64,
    pub returned: u64,
    pub assets: Vec<AssetLine>,
    /// Whether the read models were compared, and what differed.
    pub read_models: ReadModels,
    /// Broken invariants, each with the log position that broke it.
    pub violations: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetLine {
    pub asset: String,
    pub decimals: u8,
    pub issued: String,
    pub redeemed: String,
    pub supply: String,
    pub held_by_wallets: String,
    pub in_transit: String,
    pub wallets: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadModels {
    pub compared: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub differences: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.read_models.differences.is_empty()
    }
}

/// One transfer as the log has told it so far.
struct Transfer {
    asset: Asset,
    amount: Amount,
    from: WalletId,
    to: WalletId,
    credited: u32,
    returned: u32,
    settled: u32,
}

#[derive(Default)]
struct Fold {
    books: Books,
    decimals: BTreeMap<AssetCode, u8>,
    transfers: HashMap<MovementId, Transfer>,
    report: CheckReport,
}

impl Fold {
    fn violation(&mut self, at: LogPosition, what: String) {
        // A broken ledger can break at every later event too; the first
        // hundred say enough.
        if self.report.violations.len() < 100 {
            self.report
                .violations
                .push(format!("position {}: {what}", at.position));
        }
    }

    fn apply(&mut self, at: LogPosition, e: &AccountEvent) {
        self.report.account_events += 1;
        let asset = e.asset();
        match self.decimals.get(asset.code()) {
            Some(&d) if d != asset.decimals() => self.violation(
                at,
                format!(
                    "{} with {} decimals, earlier {d}",
                    asset.code(),
                    asset.decimals()
                ),
            ),
            Some(_) => {}
            None => {
                self.decimals.insert(asset.code().clone(), asset.decimals());
            }
        }
        let postings = e.postings();
        if let Err(v) = self.books.post(&postings) {
            self.violation(at, format!("{} {}: {v}", kind(e), e.movement_id()));
        }
        for p in &postings {
            let b = self.books.balance(&p.account, &p.asset);
            let wrong = match p.account {
                LedgerAccount::Issuance(_) => !(b.is_negative() || b.is_zero()),
                _ => b.is_negative(),
            };
            if wrong {
                self.violation(at, format!("{} went to {b} {}", p.account, p.asset));
            }
        }
        self.follow_transfer(at, e);
    }

    fn follow_transfer(&mut self, at: LogPosition, e: &AccountEvent) {
        let id = e.movement_id();
        match e {
            AccountEvent::TransferDebited {
                wallet_id,
                asset,
                amount,
                to_wallet,
                ..
            } => {
                self.report.transfers += 1;
                if self.transfers.contains_key(&id) {
                    self.violation(at, format!("transfer {id} debited twice"));
                    return;
                }
                self.transfers.insert(
                    id,
                    Transfer {
                        asset: asset.clone(),
                        amount: *amount,
                        from: *wallet_id,
                        to: *to_wallet,
                        credited: 0,
                        returned: 0,
                        settled: 0,
                    },
                );
            }
            AccountEvent::TransferCredited {
                wallet_id,
                asset,
                amount,
                from_wallet,
                ..
            } => {
                let what = match self.transfers.get_mut(&id) {
                    None => Some("credited without a debit".to_string()),
                    Some(t) if t.to != *wallet_id || t.from != *from_wallet => {
                        Some("credited to another wallet than debited for".into())
                    }
                    Some(t) if &t.asset != asset || t.amount != *amount => {
                        Some("credited another amount than debited".into())
                    }
                    Some(t) => {
                        t.credited += 1;
                        (t.credited + t.returned > 1).then(|| "given a second leg twice".into())
                    }
                };
                if let Some(what) = what {
                    self.violation(at, format!("transfer {id} {what}"));
                }
            }
            AccountEvent::TransferReturned {
                wallet_id,
                asset,
                amount,
                ..
            } => {
                let what = match self.transfers.get_mut(&id) {
                    None => Some("returned without a debit".to_string()),
                    Some(t) if t.from != *wallet_id => Some("returned to another wallet".into()),
                    Some(t) if &t.asset != asset || t.amount != *amount => {
                        Some("returned another amount than debited".into())
                    }
                    Some(t) => {
                        t.returned += 1;
                        (t.credited + t.returned > 1).then(|| "given a second leg twice".into())
                    }
                };
                if let Some(what) = what {
                    self.violation(at, format!("transfer {id} {what}"));
                }
            }
            AccountEvent::TransferSettled { .. } => {
                let what = match self.transfers.get_mut(&id) {
                    None => Some("settled without a debit"),
                    Some(t) if t.credited == 0 => Some("settled before its credit"),
                    Some(t) => {
                        t.settled += 1;
                        (t.settled > 1).then_some("settled twice")
                    }
                };
                if let Some(what) = what {
                    self.violation(at, format!("transfer {id} {what}"));
                }
            }
            AccountEvent::FundsIssued { .. } | AccountEvent::FundsRedeemed { .. } => {}
        }
    }

    fn finish(&mut self) {
        let end = LogPosition::default();
        if let Err(v) = self.books.check() {
            self.violation(end, format!("at the end of the log: {v}"));
        }
        let mut awaiting: BTreeMap<AssetCode, Amount> = BTreeMap::new();
        for t in self.transfers.values() {
            self.report.credited += u64::from(t.credited.min(1));
            self.report.returned += u64::from(t.returned.min(1));
            if t.credited > 0 && t.settled == 0 {
                self.report.awaiting_settlement += 1;
            }
            if t.credited + t.returned == 0 {
                self.report.awaiting_second_leg += 1;
                let sum = awaiting.entry(t.asset.code().clone()).or_default();
                *sum = sum.checked_add(t.amount).unwrap_or(*sum);
            }
        }
        let assets: Vec<AssetCode> = self.books.assets().cloned().collect();
        for code in assets {
            let transit = self
                .books
                .balance(&LedgerAccount::Transit(code.clone()), &code);
            let expected = awaiting.get(&code).copied().unwrap_or_default();
            if transit != SignedAmount::plus(expected) {
                self.violation(
                    end,
                    format!(
                        "{code} in transit is {transit}, the transfers awaiting their second leg add up to {expected}"
                    ),
                );
            }
            let mut held = SignedAmount::ZERO;
            let mut wallets = 0;
            for (account, b) in self.books.accounts(&code) {
                if matches!(account, LedgerAccount::Wallet(_)) {
                    held = held.checked_add(b).unwrap_or(held);
                    wallets += 1;
                }
            }
            let decimals = self.decimals.get(&code).copied().unwrap_or(0);
            let show = |s: SignedAmount| s.to_string();
            self.report.assets.push(AssetLine {
                asset: code.to_string(),
                decimals,
                issued: show(self.books.issued(&code)),
                redeemed: show(self.books.redeemed(&code)),
                supply: self
                    .books
                    .supply(&code)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string()),
                held_by_wallets: show(held),
                in_transit: show(transit),
                wallets,
            });
        }
    }
}

fn kind(e: &AccountEvent) -> &'static str {
    match e {
        AccountEvent::FundsIssued { .. } => "issue",
        AccountEvent::TransferDebited { .. } => "debit",
        AccountEvent::TransferCredited { .. } => "credit",
        AccountEvent::TransferReturned { .. } => "return",
        AccountEvent::TransferSettled { .. } => "settlement",
        AccountEvent::FundsRedeemed { .. } => "redemption",
    }
}

/// Folds the whole log (below its horizon) and compares the read models
/// when they are at the same position as the fold.
pub async fn run(db: &Db) -> Result<CheckReport, CheckError> {
    let mut fold = Fold::default();
    let mut after = LogPosition::START;
    loop {
        let page = log::read_after(db, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.at;
        for stored in &page {
            fold.report.events += 1;
            if stored.aggregate_type != "account" {
                continue;
            }
            match serde_json::from_value::<AccountEvent>(stored.payload.clone()) {
                Ok(e) => fold.apply(stored.at, &e),
                Err(e) => fold.violation(stored.at, format!("an account event does not read: {e}")),
            }
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    fold.finish();
    compare_read_models(db, &mut fold, after).await?;
    Ok(fold.report)
}

async fn compare_read_models(
    db: &Db,
    fold: &mut Fold,
    folded_to: LogPosition,
) -> Result<(), CheckError> {
    let before = walletd_projections::lag::lowest_checkpoint(db, READ_MODELS).await?;
    if before != folded_to {
        fold.report.read_models.skipped = Some(format!(
            "the projections are at position {}, the check read to {}",
            before.position, folded_to.position
        ));
        return Ok(());
    }
    let mut differences = Vec::new();
    let mut wallets: BTreeMap<String, BTreeMap<String, u128>> = BTreeMap::new();
    for code in fold.books.assets() {
        for (account, b) in fold.books.accounts(code) {
            if let LedgerAccount::Wallet(w) = account {
                let minor = b.non_negative().map(Amount::minor).unwrap_or_default();
                wallets
                    .entry(w.to_string())
                    .or_default()
                    .insert(code.to_string(), minor);
            }
        }
    }
    let stored = ledger_queries::all_balances(db).await?;
    let mut seen: BTreeMap<String, BTreeMap<String, u128>> = BTreeMap::new();
    for (wallet, row) in stored {
        seen.entry(wallet)
            .or_default()
            .insert(row.asset, row.balance);
    }
    for (wallet, assets) in &wallets {
        for (asset, balance) in assets {
            let got = seen.get(wallet).and_then(|a| a.get(asset)).copied();
            if got != Some(*balance) {
                differences.push(format!(
                    "wallet {wallet} {asset}: books {balance}, ledger_balances {got:?}"
                ));
            }
        }
    }
    for (wallet, assets) in &seen {
        for asset in assets.keys() {
            if wallets.get(wallet).and_then(|a| a.get(asset)).is_none() {
                differences.push(format!(
                    "wallet {wallet} {asset}: in ledger_balances, not in the books"
                ));
            }
        }
    }
    for row in ledger_queries::supply(db).await? {
        let line = fold.report.assets.iter().find(|a| a.asset == row.asset);
        let same = line.is_some_and(|l| {
            l.issued == row.issued.to_string()
                && l.redeemed == row.redeemed.to_string()
                && l.in_transit == row.in_transit.to_string()
        });
        if !same {
            differences.push(format!(
                "ledger_supply {}: issued {} redeemed {} in transit {}, the books differ",
                row.asset, row.issued, row.redeemed, row.in_transit
            ));
        }
    }
    let after = walletd_projections::lag::lowest_checkpoint(db, READ_MODELS).await?;
    if after != before {
        fold.report.read_models.skipped =
            Some("the projections moved while they were compared".into());
        return Ok(());
    }
    fold.report.read_models.compared = true;
    fold.report.read_models.differences = differences;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("reading the log: {0}")]
    Log(#[from] walletd_projections::ProjectionError),
    #[error("reading the read models: {0}")]
    Read(#[from] sqlx::Error),
}
