//! `MpcCustody`: the `Custody` backend of 2-of-2 wallets, as party 1.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    generate_key, sign, Cosigner, CosignerLink, DigestPolicy, MpcError, ShareVault, SignRequest,
};
use crate::custody::key_pool::KeyPool;
use crate::custody::{Custody, CustodyError, CustodyKind, GeneratedKey, KeyRef, SignPayload};
use crate::domain::{RecoverableSignature, WalletId};

/// The cosigner's policy for walletd's own payloads: the payload travels in
/// `SignPayload`'s JSON form, which is validated again when it is read, and
/// the digest is computed from it here, never taken from party 1.
pub struct PayloadPolicy;

impl DigestPolicy for PayloadPolicy {
    fn digest(&self, _wallet_id: &str, payload: &[u8]) -> Result<[u8; 32], String> {
        let payload: SignPayload =
            serde_json::from_slice(payload).map_err(|e| format!("unreadable payload: {e}"))?;
        Ok(payload.digest())
    }
}

/// A cosigner in this process (development: both shares on one host).
pub struct InProcessLink(pub Arc<Cosigner>);

#[async_trait]
impl CosignerLink for InProcessLink {
    async fn exchange(&self, request: Vec<u8>) -> Result<Vec<u8>, MpcError> {
        self.0.handle(&request).await
    }
}

pub struct MpcCustody {
    link: Arc<dyn CosignerLink>,
    shares: ShareVault,
    /// Ready 2-of-2 keys: key generation takes about a second of CPU, far
    /// more than a create may wait.
    pool: Option<Arc<KeyPool>>,
    /// Why this backend cannot work (a party has no master key), if it cannot.
    unconfigured: Option<String>,
}

impl MpcCustody {
    /// `shares`: party 1's share vault.
    pub fn new(link: Arc<dyn CosignerLink>, shares: ShareVault) -> Self {
        Self {
            link,
            shares,
            pool: None,
            unconfigured: None,
        }
    }

    /// A backend that refuses to work, for `why` (answered as a configuration
    /// error rather than discovered halfway through key generation).
    pub fn unconfigured(mut self, why: impl Into<String>) -> Self {
        self.unconfigured = Some(why.into());
        self
    }

    /// Keeps up to `size` keys generated ahead of demand (0: none).
    pub fn with_pool(mut self, size: usize) -> Self {
        self.pool = (size > 0).then(|| KeyPool::new(size));
        self
    }

    pub fn pool(&self) -> Option<&Arc<KeyPool>> {
        self.pool.as_ref()
    }

    /// Refills the pool on a thread of its own, one key at a time, so key
    /// generation never occupies the threads that serve requests. The thread
    /// ends once this custody is dropped.
    pub fn start_pool(self: &Arc<Self>) {
        let Some(pool) = self.pool.clone().filter(|_| self.unconfigured.is_none()) else {
            return;
        };
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("mpc-key-pool".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "MPC key pool cannot start");
                        return;
                    }
                };
                runtime.block_on(refill(weak, pool));
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "MPC key pool cannot start");
        }
    }

    /// Runs key generation with the cosigner and stores our share.
    async fn make_key(&self) -> Result<GeneratedKey, CustodyError> {
        let key_id = format!("mpc-{}", uuid::Uuid::new_v4().simple());
        let share = generate_key(self.link.as_ref(), &key_id)
            .await
            .map_err(custody_error)?;
        self.shares
            .store(&key_id, &share)
            .await
            .map_err(custody_error)?;
        Ok(GeneratedKey {
            key: KeyRef {
                key_id,
                custody: CustodyKind::Mpc,
            },
            address: share.address(),
            public_key: share.public_key().map_err(custody_error)?,
        })
    }
}

async fn refill(custody: std::sync::Weak<MpcCustody>, pool: Arc<KeyPool>) {
    let started = std::time::Instant::now();
    let mut made = 0u64;
    let mut reported = false;
    loop {
        if pool.shortfall() == 0 {
            if !reported && made > 0 {
                reported = true;
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(
                    keys = made,
                    seconds = format!("{secs:.1}"),
                    keys_per_second = format!("{:.2}", made as f64 / secs),
                    "MPC key pool filled"
                );
            }
            pool.wait_for_demand().await;
            if custody.strong_count() == 0 {
                return;
            }
            continue;
        }
        let Some(this) = custody.upgrade() else {
            return;
        };
        let t = std::time::Instant::now();
        match this.make_key().await {
            Ok(key) => {
                made += 1;
                tracing::debug!(dkg_ms = t.elapsed().as_millis() as u64, "MPC pool key made");
                pool.add(vec![key]);
            }
            Err(e) => {
                drop(this);
                tracing::warn!(error = %e, "MPC key pool could not make a key; retrying in 5 s");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        }
    }
}

fn custody_error(e: MpcError) -> CustodyError {
    match e {
        MpcError::Unavailable(m) | MpcError::Aborted(m) => CustodyError::CosignerUnavailable(m),
        other => CustodyError::Mpc(other.to_string()),
    }
}

#[async_trait]
impl Custody for MpcCustody {
    fn kind(&self) -> CustodyKind {
        CustodyKind::Mpc
    }

    async fn generate(&self, _wallet_id: WalletId) -> Result<GeneratedKey, CustodyError> {
        if self.unconfigured.is_some() {
            return Err(CustodyError::NotConfigured);
        }
        if let Some(key) = self.pool.as_ref().and_then(|p| p.take()) {
            return Ok(key);
        }
        // Pool empty (or off): generate inline.
        self.make_key().await
    }

    async fn sign(
        &self,
        key: &KeyRef,
        wallet_id: WalletId,
        payload: &SignPayload,
        requested_by: &str,
    ) -> Result<RecoverableSignature, CustodyError> {
        if self.unconfigured.is_some() {
            return Err(CustodyError::NotConfigured);
        }
        let share = self
            .shares
            .open(&key.key_id)
            .await
            .map_err(custody_error)?
            .ok_or_else(|| CustodyError::UnknownKey(key.key_id.clone()))?;
        let request = SignRequest {
            key_id: key.key_id.clone(),
            wallet_id: wallet_id.to_string(),
            requested_by: requested_by.to_string(),
            payload: serde_json::to_vec(payload).map_err(|e| CustodyError::Mpc(e.to_string()))?,
            digest: payload.digest(),
        };
        match sign(self.link.as_ref(), &share, request).await {
            Ok(signature) => Ok(signature),
            Err(MpcError::PeerBanned(reason)) => {
                // DKLs23: never run the protocol with this peer on this key again.
                tracing::error!(key_id = %key.key_id, %reason, "MPC peer misbehaved; freezing the key");
                if let Err(e) = self.shares.freeze(&key.key_id, &reason).await {
                    tracing::error!(error = %e, "could not freeze the key share");
                }
                Err(CustodyError::Mpc(format!("key frozen: {reason}")))
            }
            Err(e) => Err(custody_error(e)),
        }
    }

    async fn discard(&self, _key: &KeyRef) -> Result<(), CustodyError> {
        // Shares of a key that lost a create race stay sealed and unreferenced
        // on both sides; nothing can sign with them without the wallet.
        Ok(())
    }

    fn readiness(&self) -> Result<(), String> {
        match &self.unconfigured {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }
}
