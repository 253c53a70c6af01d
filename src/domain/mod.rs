//! The write side's vocabulary: validated value types, Ethereum's encodings
//! (`eth`) and the aggregates. Pure: no I/O, no custody handle.

pub mod account;
pub mod client_app;
pub mod eth;
pub mod handle;
pub mod ids;
pub mod key;
pub mod label;
pub mod master_key;
pub mod money;
pub mod nickname;
pub mod time;
pub mod user;
pub mod wallet;

pub use eth::{Address, AddressError, RecoverableSignature};
pub use handle::{Handle, HandleError};
pub use ids::{UserId, WalletId};
pub use label::Label;
pub use nickname::{Nickname, NicknameError};
pub use time::Timestamp;

/// A command's kind as a fixed name (the `command` label of
/// `walletd_commands_total`): never any of its data.
pub trait CommandName {
    fn name(&self) -> &'static str;
}
