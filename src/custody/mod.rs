//! Custody: where private keys live, and signing with them.
//!
//! The rest of walletd sees only [`Custody`]: generate a key for a wallet, sign a
//! payload with it. What a payload is and which digest it has belongs to the
//! domain (`domain::eth`); custody signs that digest. The payload is passed
//! whole (not a pre-computed hash) so that a custody backend that involves
//! another party — 2-of-2 MPC — can recompute and check the digest itself
//! before taking part.

pub mod canary;
pub mod claims;
pub mod key_pool;
pub mod local;
pub mod master_key;
pub mod mpc;
pub mod sweeper;
pub mod vault;

use async_trait::async_trait;

use crate::domain::eth::SignPayload;
use crate::domain::{RecoverableSignature, WalletId};

// The write side records which key a wallet has; custody makes and names them.
pub use crate::domain::key::{CustodyKind, GeneratedKey, KeyFreezeReason, KeyRef};
pub use local::LocalCustody;
pub use master_key::{MasterKey, MasterKeys};

/// What became of a key handed to a create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOutcome {
    /// The `WalletCreated` event naming it committed.
    Assigned,
    /// The store refused the command (a domain refusal, or a lost
    /// optimistic-concurrency race): nothing was written.
    Refused,
    /// The outcome is not known (an error during or after the commit): the
    /// event may exist, so the key must be kept.
    Unknown,
}

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys (or share pairs) deleted.
    pub removed: u64,
    /// Unmarked keys found in use and marked assigned.
    pub found_in_use: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error("no master key is configured, so keys cannot be generated or used")]
    NotConfigured,
    #[error("key {0} is not in the key vault")]
    UnknownKey(String),
    #[error("key {0} could not be unsealed (wrong master key or tampered vault row)")]
    Integrity(String),
    /// The row names a master key this process does not have.
    #[error(
        "key {key_id} is sealed under master key {master_key_id}, which is not configured: \
         WALLETD_MASTER_KEY is wrong, or the vault was rotated to a newer key (set it, or list \
         the older key in WALLETD_PREVIOUS_MASTER_KEYS)"
    )]
    ForeignMasterKey {
        key_id: String,
        master_key_id: String,
    },
    #[error("key vault unavailable: {0}")]
    Storage(#[from] sqlx::Error),
    /// The MPC cosigner cannot be reached, or the run failed in a way a new
    /// run may not (retry later).
    #[error("cosigner unavailable: {0}")]
    CosignerUnavailable(String),
    /// The MPC run failed for good (refused, bad share).
    #[error("MPC signing failed: {0}")]
    Mpc(String),
    /// The key is frozen and will never sign again (MPC: DKLs23's ban on a
    /// misbehaving party). The service records it as `WalletKeyFrozen`.
    #[error("key {key_id} is frozen ({reason})")]
    KeyFrozen {
        key_id: String,
        reason: KeyFreezeReason,
    },
}

/// Why a create got no key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Custody(#[from] CustodyError),
    /// Keys are made ahead by a pool and handed out in arrival order; none
    /// became free for this create within the bound. Nothing was written.
    #[error("no key became ready within {waited:?} ({waiting} creates waiting)")]
    NotReady {
        waited: std::time::Duration,
        waiting: usize,
        /// When a retry is likely to find a key (the queue ahead of it at
        /// the pool's recent rate).
        retry_after: std::time::Duration,
    },
}

#[async_trait]
pub trait Custody: Send + Sync {
    fn kind(&self) -> CustodyKind;

    /// Creates and stores a new key for `wallet_id`.
    async fn generate(&self, wallet_id: WalletId) -> Result<GeneratedKey, CustodyError>;

    /// A key for a new wallet, as a create asks for one: [`generate`] by
    /// default. A backend whose keys take long to make (2-of-2 MPC) hands out
    /// keys its pool made ahead, and with none ready the create waits its
    /// turn for the next one (first come, first served), up to a bound.
    ///
    /// [`generate`]: Custody::generate
    async fn key_for(&self, wallet_id: WalletId) -> Result<GeneratedKey, KeyError> {
        Ok(self.generate(wallet_id).await?)
    }

    /// Signs `payload` with the key for `requested_by`; the signature is low-s
    /// with v in {27, 28}.
    async fn sign(
        &self,
        key: &KeyRef,
        wallet_id: WalletId,
        payload: &SignPayload,
        requested_by: &str,
    ) -> Result<RecoverableSignature, CustodyError>;

    /// Reports what became of a key [`generate`](Custody::generate) handed
    /// out. Nothing is ever deleted here: a refused key goes back into the
    /// pool, and a key whose create may have committed is kept (the sweeper
    /// removes keys no event names, after a grace period).
    async fn settle(&self, _key: &GeneratedKey, _outcome: KeyOutcome) {}

    /// Removes keys that no `WalletCreated` event names, that no live pool
    /// holds and that are older than `grace`.
    async fn sweep(&self, _grace: std::time::Duration) -> Result<SweepReport, CustodyError> {
        Ok(SweepReport::default())
    }

    /// Releases the keys this process holds ready, for the next start.
    async fn shutdown(&self) {}

    /// Why this backend cannot work right now, if it cannot.
    fn readiness(&self) -> Result<(), String>;

    /// Checks, with a round trip, that the backend's other parts answer (the
    /// MPC cosigner over its channel). The error is for the log.
    async fn probe(&self) -> Result<(), String> {
        Ok(())
    }

    /// Signatures this backend has made since the process started: what the
    /// signing path asked of custody (tests count it).
    fn signatures_made(&self) -> u64 {
        0
    }

    /// The pool that makes this backend's keys ahead of demand, if it has
    /// one (`/metrics` samples its level).
    fn key_pool(&self) -> Option<&std::sync::Arc<key_pool::KeyPool>> {
        None
    }
}
