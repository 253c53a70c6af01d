//! Use cases shared by the API dialects: each turns a request already
//! authenticated and validated into commands, and reads results back from the
//! projections.

pub mod apps;
pub mod identity_cache;
pub mod ledger;
pub mod readiness;
pub mod signing_keys;
pub mod sila_users;
pub mod wallets;
pub mod whitelist_policy;
pub mod whitelist_scheduler;

pub use wallets::{ServiceError, WalletService};
