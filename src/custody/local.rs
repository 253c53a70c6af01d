//! Single-key custody: one secp256k1 key per wallet, sealed in the key vault.

use std::sync::Arc;

use async_trait::async_trait;
use k256::ecdsa::SigningKey;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::vault::{KeyVault, SealedKey};
use super::{
    eth, Custody, CustodyError, CustodyKind, GeneratedKey, KeyRef, MasterKeys, SignPayload,
};
use crate::domain::{RecoverableSignature, WalletId};

pub struct LocalCustody {
    vault: Arc<KeyVault>,
    keys: Option<MasterKeys>,
}

impl LocalCustody {
    /// `keys` is `None` when no master key is configured: the service still
    /// starts (reads work), but creating or signing reports the misconfiguration.
    pub fn new(vault: Arc<KeyVault>, keys: Option<MasterKeys>) -> Self {
        Self { vault, keys }
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
        let signing = Self::random_signing_key();
        let public_key = eth::uncompressed_public_key(signing.verifying_key());
        let address = eth::address_of(signing.verifying_key());
        let key_id = Uuid::new_v4().to_string();
        let secret = Zeroizing::new(<[u8; 32]>::from(signing.to_bytes()));
        let sealed = SealedKey::seal(
            &keys.current,
            &secret,
            key_id.clone(),
            wallet_id.to_string(),
            address.to_lower_hex(),
            CustodyKind::Local.as_str().to_string(),
        );
        self.vault.insert(&sealed).await?;
        Ok(GeneratedKey {
            key: KeyRef {
                key_id,
                custody: CustodyKind::Local,
            },
            address,
            public_key,
        })
    }

    async fn sign(
        &self,
        key: &KeyRef,
        _wallet_id: WalletId,
        payload: &SignPayload,
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
