//! Ethereum's encodings, as pure functions and validated values: keccak,
//! addresses (EIP-55), signatures (EIP-2 low-s, recovery), and what a wallet
//! signs (EIP-191 messages, EIP-712 typed data, transactions).
//!
//! Nothing here holds a key or does I/O: custody holds the keys and signs the
//! digests these modules compute; the aggregates check signatures with them.

pub mod address;
pub mod ecdsa;
pub mod eip191;
pub mod eip55;
pub mod eip712;
pub mod keccak;
mod parse;
pub mod payload;
pub mod public_key;
pub mod signature;
pub mod transaction;

pub use address::{Address, AddressError};
pub use ecdsa::{recover_address, sign_digest};
pub use eip191::eip191_hash;
pub use eip712::TypedDataPayload;
pub use keccak::keccak256;
pub use payload::{PayloadError, PayloadSummary, SignPayload};
pub use public_key::{address_of, uncompressed_public_key};
pub use signature::RecoverableSignature;
pub use transaction::{Fees, SignedTransaction, TransactionPayload};
