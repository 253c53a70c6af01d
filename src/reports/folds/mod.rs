//! Each report over events is a fold: it sees the events in global order and
//! ends in a table. The same fold runs over the log (as of any position) and
//! over the audit-log projection (the live report), so the two can only
//! differ if the projection differs from the log.

mod default_wallets;
mod key_material;
mod kyc;
mod ledger;
mod signing;
mod wallets_created;
mod whitelist;

use super::record::Record;
use super::table::Table;
use super::ReportName;

pub trait Fold: Send {
    fn apply(&mut self, r: &Record);
    fn finish(self: Box<Self>) -> Table;
}

/// The fold of a report computed from events; `None` for a report that is
/// not (refused requests are not events).
pub fn for_report(name: ReportName) -> Option<Box<dyn Fold>> {
    Some(match name {
        ReportName::WalletsCreated => Box::<wallets_created::WalletsCreated>::default(),
        ReportName::SigningActivity => Box::<signing::SigningActivity>::default(),
        ReportName::KycChanges => Box::<kyc::KycChanges>::default(),
        ReportName::WhitelistLatency => Box::<whitelist::WhitelistLatency>::default(),
        ReportName::DefaultWalletChanges => Box::<default_wallets::DefaultWalletChanges>::default(),
        ReportName::KeyMaterial => Box::<key_material::KeyMaterial>::default(),
        ReportName::LedgerBalances => Box::<ledger::LedgerBalances>::default(),
        ReportName::LedgerSupply => Box::<ledger::LedgerSupply>::default(),
        ReportName::LedgerMovementsPerDay => Box::<ledger::LedgerMovementsPerDay>::default(),
        ReportName::Refusals => return None,
    })
}

/// The day (UTC, `YYYY-MM-DD`) of an RFC 3339 time as walletd writes them.
fn day(at: &str) -> String {
    at.get(..10).unwrap_or(at).to_string()
}
