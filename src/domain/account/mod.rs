//! The ledger's accounts: one `account` aggregate per wallet (aggregate id =
//! the wallet id) holding its balances per asset and the transfers it has
//! sent that are still in flight. Issue, transfer (debit here, credit there
//! by the process manager, or return) and redeem are events with who asked
//! and why; every event has double-entry postings ([`postings`]) that sum
//! to zero, so balances and supply are folds of the log. The design, the
//! process manager and what a crash between the legs does are in
//! `docs/ledger.md`.

mod aggregate;
mod commands;
mod events;
mod gate;
mod ids;
pub mod postings;
mod text;

#[cfg(test)]
mod random;
#[cfg(test)]
mod tests;

pub use aggregate::{Account, AccountError, InFlight, RECENT_MOVEMENTS};
pub use commands::AccountCommand;
pub use events::{AccountEvent, ReturnReason};
pub use gate::WalletGate;
pub use ids::MovementId;
pub use postings::{Books, LedgerAccount, LedgerViolation, Posting};
pub use text::{Memo, MemoError, Reference, ReferenceError};
