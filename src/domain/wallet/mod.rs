//! The wallet aggregate: one event stream per wallet.

mod aggregate;
mod commands;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{Identity, SigningKey, Wallet, WalletError};
pub use commands::{OwnershipProof, WalletCommand};
pub use events::{WalletEvent, WalletKind};
