//! `MpcCustody`: the `Custody` backend of 2-of-2 wallets, as party 1.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    generate_key, sign, Cosigner, CosignerLink, DigestPolicy, MpcError, ShareVault, SignRequest,
};
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
}

impl MpcCustody {
    /// `shares`: party 1's share vault.
    pub fn new(link: Arc<dyn CosignerLink>, shares: ShareVault) -> Self {
        Self { link, shares }
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

    async fn generate(&self, wallet_id: WalletId) -> Result<GeneratedKey, CustodyError> {
        let key_id = format!("mpc-{wallet_id}-{}", uuid::Uuid::new_v4().simple());
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

    async fn sign(
        &self,
        key: &KeyRef,
        wallet_id: WalletId,
        payload: &SignPayload,
        requested_by: &str,
    ) -> Result<RecoverableSignature, CustodyError> {
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
        Ok(())
    }
}
