//! 2-of-2 threshold ECDSA on secp256k1 (DKLs23, through the `dkls23` crate,
//! pinned at 0.6.2). Party 1 lives in `walletd serve`, party 2 in the
//! cosigner; each holds one share, encrypted at rest under its own master key,
//! and the full private key is never assembled anywhere.
//!
//! Both protocols take two request/response exchanges between the parties
//! (`wire`): party 1 drives (`party1`), party 2 answers (`party2`). The
//! cosigner never signs a digest it is handed: it receives what is being
//! signed, recomputes the digest under its own policy, and the digest is bound
//! into every protocol message from the first round, so any disagreement
//! aborts the run.

pub mod channel;
pub mod cpu;
mod custody;
mod error;
mod http_link;
mod party1;
mod party2;
mod share_vault;
mod wire;

pub use custody::{InProcessLink, MpcCustody, PayloadPolicy, DEFAULT_KEY_WAIT};
pub use error::MpcError;
pub use http_link::{HttpLink, PROTOCOL_PATH};
pub use party1::{generate_key, release, sign, CosignerLink, KeyShare, SignRequest};
pub use party2::{CosignRecord, Cosigner, DigestPolicy, ShareStore};
pub use share_vault::{move_cosigner_shares, Moved, ShareVault};

#[cfg(test)]
mod tests;
