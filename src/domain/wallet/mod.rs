//! The wallet aggregate: one event stream per wallet.

mod aggregate;
mod commands;
mod events;
#[cfg(test)]
mod tests;
pub mod upcast;

pub use aggregate::{Identity, SigningKey, Wallet, WalletError};
pub use commands::{OwnershipProof, WalletCommand};
pub use events::{SignatureKind, WalletEvent, WalletKind, MESSAGE_SIGNED_VERSION};
