//! Single-key custody: one secp256k1 key per wallet, sealed in the key vault.

use std::sync::Arc;

use async_trait::async_trait;
use k256::ecdsa::SigningKey;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::key_pool::KeyPool;
use super::vault::{KeyVault, SealedKey};
use super::{
    eth, Custody, CustodyError, CustodyKind, GeneratedKey, KeyRef, MasterKeys, SignPayload,
};
use crate::domain::{RecoverableSignature, WalletId};

pub struct LocalCustody {
    vault: Arc<KeyVault>,
    keys: Option<MasterKeys>,
    pool: Option<Arc<KeyPool>>,
}

impl LocalCustody {
    /// `keys` is `None` when no master key is configured: the service still
    /// starts (reads work), but creating or signing reports the misconfiguration.
    pub fn new(vault: Arc<KeyVault>, keys: Option<MasterKeys>) -> Self {
        Self {
            vault,
            keys,
            pool: None,
        }
    }

    /// Keeps up to `size` keys ready (0: none). Call [`start_pool`](Self::start_pool)
    /// to begin filling it.
    pub fn with_pool(mut self, size: usize) -> Self {
        self.pool = (size > 0 && self.keys.is_some()).then(|| KeyPool::new(size));
        self
    }

    pub fn pool(&self) -> Option<&Arc<KeyPool>> {
        self.pool.as_ref()
    }

    /// Starts the background task that keeps the pool filled.
    pub fn start_pool(self: &Arc<Self>) {
        let (Some(pool), Some(keys)) = (self.pool.clone(), self.keys.clone()) else {
            return;
        };
        let vault = self.vault.clone();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            // Ends when the custody it serves is dropped.
            while weak.strong_count() > 0 {
                let n = pool.shortfall();
                if n == 0 {
                    pool.wait_for_demand().await;
                    continue;
                }
                let master = keys.current.clone();
                // Key generation is CPU work: keep it off the async workers.
                let made = tokio::task::spawn_blocking(move || {
                    (0..n)
                        .map(|_| Self::make_key(&master, ""))
                        .collect::<Vec<_>>()
                })
                .await;
                let Ok(made) = made else { break };
                let sealed: Vec<SealedKey> = made.iter().map(|(_, s)| s.clone()).collect();
                match vault.insert_many(&sealed).await {
                    Ok(()) => pool.add(made.into_iter().map(|(g, _)| g).collect()),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not store pre-generated keys; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    /// A fresh key, sealed under `master`, not yet stored.
    fn make_key(master: &crate::custody::MasterKey, wallet_id: &str) -> (GeneratedKey, SealedKey) {
        let signing = Self::random_signing_key();
        let public_key = eth::uncompressed_public_key(signing.verifying_key());
        let address = eth::address_of(signing.verifying_key());
        let key_id = Uuid::new_v4().to_string();
        let secret = Zeroizing::new(<[u8; 32]>::from(signing.to_bytes()));
        let sealed = SealedKey::seal(
            master,
            &secret,
            key_id.clone(),
            wallet_id.to_string(),
            address.to_lower_hex(),
            CustodyKind::Local.as_str().to_string(),
        );
        let generated = GeneratedKey {
            key: KeyRef {
                key_id,
                custody: CustodyKind::Local,
            },
            address,
            public_key,
        };
        (generated, sealed)
    }

    fn keys(&self) -> Result<&MasterKeys, CustodyError> {
        self.keys.as_ref().ok_or(CustodyError::NotConfigured)
    }

    fn random_signing_key() -> SigningKey {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::getrandom(&mut bytes[..]).expect("operating system random number generator");
            // Fails only for zero or values ≥ the curve order (probability ~2^-128).
            if let Ok(k) = SigningKey::from_slice(&bytes[..]) {
                return k;
            }
        }
    }
}

#[async_trait]
impl Custody for LocalCustody {
    fn kind(&self) -> CustodyKind {
        CustodyKind::Local
    }

    async fn generate(&self, wallet_id: WalletId) -> Result<GeneratedKey, CustodyError> {
        let keys = self.keys()?;
        if let Some(key) = self.pool.as_ref().and_then(|p| p.take()) {
            return Ok(key);
        }
        let (generated, sealed) = Self::make_key(&keys.current, &wallet_id.to_string());
        self.vault.insert(&sealed).await?;
        Ok(generated)
    }

    async fn sign(
        &self,
        key: &KeyRef,
        _wallet_id: WalletId,
        payload: &SignPayload,
        _requested_by: &str,
    ) -> Result<RecoverableSignature, CustodyError> {
        let keys = self.keys()?;
        let sealed = self
            .vault
            .get(&key.key_id)
            .await?
            .ok_or_else(|| CustodyError::UnknownKey(key.key_id.clone()))?;
        let secret = sealed.open(keys)?;
        let signing = SigningKey::from_slice(&secret[..])
            .map_err(|_| CustodyError::Integrity(key.key_id.clone()))?;
        // The vault row names its address in the AEAD's associated data; check the
        // key we opened really is that address's key before using it.
        if eth::address_of(signing.verifying_key()).to_lower_hex() != sealed.address {
            return Err(CustodyError::Integrity(key.key_id.clone()));
        }
        eth::sign_digest(&signing, &payload.digest())
            .map_err(|_| CustodyError::Integrity(key.key_id.clone()))
    }

    async fn discard(&self, key: &KeyRef) -> Result<(), CustodyError> {
        self.vault.delete(&key.key_id).await?;
        Ok(())
    }

    fn readiness(&self) -> Result<(), String> {
        self.keys().map(|_| ()).map_err(|e| e.to_string())
    }
}
