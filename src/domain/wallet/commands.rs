use crate::domain::eth::SignPayload;
use crate::domain::key::{GeneratedKey, KeyFreezeReason};
use crate::domain::{Address, RecoverableSignature, Timestamp, UserId, WalletId};

use super::WalletKind;

#[derive(Clone, Debug)]
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
    /// Records a signature custody has made for `payload`; refused unless it
    /// recovers to the wallet's address. Signing itself happens before, in
    /// the service, so a lost race retries this record, never the signing.
    RecordSignature {
        payload: Box<SignPayload>,
        signature: RecoverableSignature,
        requested_by: String,
        at: Timestamp,
    },
    QueueWhitelist {
        at: Timestamp,
        delay_secs: u64,
    },
    CompleteWhitelist {
        at: Timestamp,
    },
    /// Records that custody froze the wallet's key `key_id` (the freeze
    /// itself has happened, in custody, before); the wallet signs no more.
    /// Recording it again is accepted and changes nothing.
    RecordKeyFrozen {
        key_id: String,
        reason: KeyFreezeReason,
        at: Timestamp,
    },
}

#[derive(Clone, Debug)]
pub struct OwnershipProof {
    pub message: String,
    pub signature: RecoverableSignature,
}

impl crate::domain::CommandName for WalletCommand {
    fn name(&self) -> &'static str {
        match self {
            WalletCommand::Create { .. } => "create",
            WalletCommand::Register { .. } => "register",
            WalletCommand::Delete { .. } => "delete",
            WalletCommand::SetDefault { .. } => "set_default",
            WalletCommand::RecordSignature { .. } => "record_signature",
            WalletCommand::QueueWhitelist { .. } => "queue_whitelist",
            WalletCommand::CompleteWhitelist { .. } => "complete_whitelist",
            WalletCommand::RecordKeyFrozen { .. } => "record_key_frozen",
        }
    }
}
