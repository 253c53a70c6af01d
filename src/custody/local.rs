//! Single-key custody: one secp256k1 key per wallet, sealed in the key vault.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k256::ecdsa::SigningKey;
use uuid::Uuid;
use zeroize::Zeroizing;

use walletd_projections::Db;

use super::claims::{self, ClaimTable};
use super::key_pool::{self, KeyPool, PoolSource};
use super::vault::{KeyVault, SealedKey};
use super::{
    Custody, CustodyError, CustodyKind, GeneratedKey, KeyOutcome, KeyRef, MasterKeys, SweepReport,
};
use crate::domain::eth::{self, SignPayload};
use crate::domain::{RecoverableSignature, WalletId};

pub struct LocalCustody {
    vault: Arc<KeyVault>,
    keys: Option<MasterKeys>,
    pool: Option<Arc<KeyPool>>,
    signed: std::sync::atomic::AtomicU64,
    /// Keys opened for signing, so that a wallet that signs again costs no
    /// vault read, decryption or address check. This holds no secret the
    /// process could not open anyway (it holds the master key), and a key
    /// never changes under its id; `SigningKey` zeroizes itself when dropped.
    opened: std::sync::Mutex<HashMap<String, Arc<SigningKey>>>,
}

/// Opened keys kept at most (about 100 bytes each); past it the cache starts
/// over rather than track recency.
const OPENED_KEYS: usize = 10_000;

impl LocalCustody {
    /// `keys` is `None` when no master key is configured: the service still
    /// starts (reads work), but creating or signing reports the misconfiguration.
    pub fn new(vault: Arc<KeyVault>, keys: Option<MasterKeys>) -> Self {
        Self {
            signed: Default::default(),
            vault,
            keys,
            pool: None,
            opened: Default::default(),
        }
    }

    /// Keeps up to `size` keys ready (0: none are made ahead). Call
    /// [`start_pool`](Self::start_pool) to begin filling it. Without a master
    /// key there is no pool (nothing can be made).
    pub fn with_pool(mut self, size: usize) -> Self {
        self.pool = self.keys.is_some().then(|| KeyPool::new(size));
        self
    }

    pub fn pool(&self) -> Option<&Arc<KeyPool>> {
        self.pool.as_ref()
    }

    /// Starts the background task that keeps the pool filled and its claims
    /// alive; it ends when this custody is dropped.
    pub fn start_pool(self: &Arc<Self>) {
        let Some(pool) = self.pool.clone() else {
            return;
        };
        tokio::spawn(key_pool::run(Arc::downgrade(self), pool));
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

    /// The signing key of `key_id`: from the cache, or opened from the vault.
    async fn open(&self, key_id: &str) -> Result<Arc<SigningKey>, CustodyError> {
        if let Some(k) = self.opened.lock().ok().and_then(|m| m.get(key_id).cloned()) {
            return Ok(k);
        }
        let (signing, _) = self
            .open_from_vault(self.keys()?, key_id)
            .await
            .inspect_err(|e| {
                if matches!(
                    e,
                    CustodyError::Integrity(_) | CustodyError::ForeignMasterKey { .. }
                ) {
                    // The API answers a bare 500; this line says why (ids only).
                    tracing::error!(error = %e, "cannot unseal a wallet key");
                }
            })?;
        let signing = Arc::new(signing);
        if let Ok(mut m) = self.opened.lock() {
            if m.len() >= OPENED_KEYS {
                m.clear();
            }
            m.insert(key_id.to_string(), signing.clone());
        }
        Ok(signing)
    }

    /// Reads and opens `key_id`, checked against the address its vault row
    /// names (in the AEAD's associated data): a key that is not that
    /// address's key is never used.
    async fn open_from_vault(
        &self,
        keys: &MasterKeys,
        key_id: &str,
    ) -> Result<(SigningKey, crate::domain::Address), CustodyError> {
        let sealed = self
            .vault
            .get(key_id)
            .await?
            .ok_or_else(|| CustodyError::UnknownKey(key_id.to_string()))?;
        let secret = sealed.open(keys)?;
        let signing = SigningKey::from_slice(&secret[..])
            .map_err(|_| CustodyError::Integrity(key_id.to_string()))?;
        let address = eth::address_of(signing.verifying_key());
        if address.to_lower_hex() != sealed.address {
            return Err(CustodyError::Integrity(key_id.to_string()));
        }
        Ok((signing, address))
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
        let pool = self.pool.as_ref().ok_or(CustodyError::NotConfigured)?;
        if let Some(key) = pool.take() {
            return Ok(key);
        }
        let (generated, sealed) = Self::make_key(&keys.current, &wallet_id.to_string());
        let at = Instant::now();
        self.vault
            .insert_claimed(std::slice::from_ref(&sealed), pool.owner())
            .await?;
        pool.track(&generated.key.key_id, at);
        Ok(generated)
    }

    async fn sign(
        &self,
        key: &KeyRef,
        _wallet_id: WalletId,
        payload: &SignPayload,
        _requested_by: &str,
    ) -> Result<RecoverableSignature, CustodyError> {
        let signing = self.open(&key.key_id).await?;
        let signature = eth::sign_digest(&signing, &payload.digest())
            .map_err(|_| CustodyError::Integrity(key.key_id.clone()))?;
        self.signed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(signature)
    }

    fn signatures_made(&self) -> u64 {
        self.signed.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn key_pool(&self) -> Option<&Arc<KeyPool>> {
        self.pool()
    }

    async fn settle(&self, key: &GeneratedKey, outcome: KeyOutcome) {
        if let Some(pool) = &self.pool {
            pool.settle(key, outcome);
        }
    }

    async fn sweep(&self, grace: Duration) -> Result<SweepReport, CustodyError> {
        let db = self.vault.db();
        let found_in_use = claims::mark_referenced(db, ClaimTable::KeyVault).await?;
        let removed = claims::delete_unreferenced_keys(db, &cutoff(grace)).await?;
        if removed > 0 {
            tracing::info!(removed, "swept single keys that no wallet uses");
        }
        Ok(SweepReport {
            removed,
            found_in_use,
        })
    }

    async fn shutdown(&self) {
        if let Some(pool) = &self.pool {
            key_pool::shutdown(pool, self.vault.db(), ClaimTable::KeyVault).await;
        }
    }

    fn readiness(&self) -> Result<(), String> {
        self.keys().map(|_| ()).map_err(|e| e.to_string())
    }
}

/// The creation-time cutoff of a sweep, in the vault's text timestamp form.
pub(crate) fn cutoff(grace: Duration) -> String {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let at = chrono::Utc::now()
        .checked_sub_signed(grace)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[async_trait]
impl PoolSource for LocalCustody {
    fn db(&self) -> &Db {
        self.vault.db()
    }

    fn table(&self) -> ClaimTable {
        ClaimTable::KeyVault
    }

    async fn reclaim(&self, owner: &str, n: usize) -> Result<Vec<GeneratedKey>, CustodyError> {
        let keys = self.keys()?;
        let ids =
            claims::claim(self.vault.db(), ClaimTable::KeyVault, owner, n, &keys.ids()).await?;
        let mut out = Vec::with_capacity(ids.len());
        for key_id in ids {
            match self.open_pooled(keys, &key_id).await {
                Ok(k) => out.push(k),
                // Claimed but unusable: its claim lapses; say why once here.
                Err(e) => tracing::error!(%key_id, error = %e, "a free key does not open"),
            }
        }
        if !out.is_empty() {
            tracing::info!(
                keys = out.len(),
                "claimed free single keys left by an earlier run"
            );
        }
        Ok(out)
    }

    async fn make(&self, owner: &str, n: usize) -> Result<Vec<GeneratedKey>, CustodyError> {
        let master = self.keys()?.current.clone();
        // Key generation is CPU work: keep it off the async workers.
        let made = tokio::task::spawn_blocking(move || {
            (0..n)
                .map(|_| Self::make_key(&master, ""))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| CustodyError::Mpc(format!("key generation task: {e}")))?;
        let sealed: Vec<SealedKey> = made.iter().map(|(_, s)| s.clone()).collect();
        self.vault.insert_claimed(&sealed, owner).await?;
        Ok(made.into_iter().map(|(g, _)| g).collect())
    }
}

impl LocalCustody {
    /// A stored key as [`GeneratedKey`]: its public key comes from opening it.
    async fn open_pooled(
        &self,
        keys: &MasterKeys,
        key_id: &str,
    ) -> Result<GeneratedKey, CustodyError> {
        let (signing, address) = self.open_from_vault(keys, key_id).await?;
        Ok(GeneratedKey {
            key: KeyRef {
                key_id: key_id.to_string(),
                custody: CustodyKind::Local,
            },
            address,
            public_key: eth::uncompressed_public_key(signing.verifying_key()),
        })
    }
}
