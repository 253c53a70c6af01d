use std::sync::{Arc, Mutex};

use crate::custody::{GeneratedKey, SignPayload};
use crate::domain::{Address, RecoverableSignature, Timestamp, UserId, WalletId};

use super::WalletKind;

#[derive(Debug)]
pub enum WalletCommand {
    /// A custodial wallet whose key custody has just generated.
    Create {
        wallet_id: WalletId,
        user_id: UserId,
        kind: WalletKind,
        key: GeneratedKey,
        label: Option<String>,
        at: Timestamp,
    },
    /// An external address; `proof`, when given, must be the address's own
    /// signature over keccak256 of its `message`, which must spell the address.
    /// (Sila's `register` takes a user's first address without one; the user
    /// proves the key with every signed request.) A deleted wallet's address
    /// may be registered again.
    Register {
        wallet_id: WalletId,
        user_id: UserId,
        address: Address,
        nickname: Option<String>,
        proof: Option<OwnershipProof>,
        at: Timestamp,
    },
    /// Retires the wallet: no more signing or whitelisting.
    Delete {
        at: Timestamp,
    },
    SetDefault {
        at: Timestamp,
    },
    Sign {
        payload: SignPayload,
        requested_by: String,
        at: Timestamp,
        /// Receives the signature; read it only after the command committed.
        reply: SignatureSlot,
    },
    QueueWhitelist {
        at: Timestamp,
        delay_secs: u64,
    },
    CompleteWhitelist {
        at: Timestamp,
    },
}

#[derive(Clone, Debug)]
pub struct OwnershipProof {
    pub message: String,
    pub signature: RecoverableSignature,
}

/// Hands the signature made inside the aggregate back to the caller. The
/// caller reads it only after the `MessageSigned` event has been stored, so no
/// signature leaves walletd without its audit record.
#[derive(Clone, Debug, Default)]
pub struct SignatureSlot(Arc<Mutex<Option<RecoverableSignature>>>);

impl SignatureSlot {
    pub fn put(&self, sig: RecoverableSignature) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(sig);
        }
    }

    pub fn take(&self) -> Option<RecoverableSignature> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}
