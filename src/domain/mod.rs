//! The write side's vocabulary: validated value types and the wallet aggregate.

pub mod address;
pub mod client_app;
pub mod handle;
pub mod ids;
pub mod label;
pub mod nickname;
pub mod signature;
pub mod time;
pub mod user;
pub mod wallet;

pub use address::{Address, AddressError};
pub use handle::{Handle, HandleError};
pub use ids::{UserId, WalletId};
pub use label::Label;
pub use nickname::{Nickname, NicknameError};
pub use signature::RecoverableSignature;
pub use time::Timestamp;
