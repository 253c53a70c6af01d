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
    /// An external address; `proof` must be the address's own signature over
    /// keccak256(`proof_message`), and `proof_message` must spell the address.
    Register {
        wallet_id: WalletId,
        user_id: UserId,
        address: Address,
        nickname: Option<String>,
        proof_message: String,
        proof: RecoverableSignature,
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
