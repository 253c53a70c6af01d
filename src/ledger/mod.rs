//! The ledger's machinery around the pure `account` aggregate: the assets
//! walletd keeps ([`assets`]), which wallets may move money ([`gate`]), the
//! process manager that gives every transfer its second leg
//! ([`process_manager`]), and the checker that folds the whole log and
//! proves the invariants ([`check`]). The design is `docs/ledger.md`.

pub mod assets;
pub mod check;
pub mod gate;
pub mod process_manager;

pub use assets::{Assets, AssetsError};
pub use gate::money_gate;
