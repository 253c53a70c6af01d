//! The transparency log (issue 13): the event log in global order as an
//! RFC 6962 Merkle tree with signed checkpoints, so an auditor can check one
//! event, or that the log only grew, without trusting walletd.
//!
//! `leaf` says what the tree commits to for each event, `sealer` appends
//! events and signs checkpoints, `hashes` reads the stored tree for the
//! `tlog_tiles` algorithms, `signing` holds the log's Ed25519 key.

pub mod export;
pub mod hashes;
pub mod key;
pub mod leaf;
pub mod proofs;
pub mod sealer;
pub mod signing;
pub mod verify;

pub use signing::{LogKeyError, LogSigner};
