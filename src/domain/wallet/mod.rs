//! The wallet aggregate: one event stream per wallet.

mod aggregate;
mod commands;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{CustodyFailure, Wallet, WalletError, WalletServices};
pub use commands::{OwnershipProof, SignatureSlot, WalletCommand};
pub use events::{WalletEvent, WalletKind};
