//! Account events: the stored schema (`docs/events.md`, aggregate
//! `account`). Fields are only ever added, with defaults; a change old
//! payloads cannot satisfy is a new version with an upcaster. Amounts are
//! decimal strings of minor units; `asset` and `decimals` travel together
//! so that one event reads alone. No event carries a secret: references are
//! ids outside walletd, memos are what the sender wrote.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::domain::money::{Amount, Asset};
use crate::domain::{Timestamp, WalletId};

use super::{AccountError, Memo, MovementId, Reference};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// Value entered the ledger: `issuance:<asset>` → the wallet.
    FundsIssued {
        wallet_id: WalletId,
        movement_id: MovementId,
        #[serde(flatten)]
        asset: Asset,
        amount: Amount,
        funding_reference: Reference,
        requested_by: String,
        at: Timestamp,
    },
    /// A transfer's first leg: the wallet → `transit:<asset>`.
    TransferDebited {
        wallet_id: WalletId,
        movement_id: MovementId,
        #[serde(flatten)]
        asset: Asset,
        amount: Amount,
        to_wallet: WalletId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memo: Option<Memo>,
        requested_by: String,
        at: Timestamp,
    },
    /// A transfer's second leg, on the destination: `transit:<asset>` →
    /// the wallet.
    TransferCredited {
        wallet_id: WalletId,
        movement_id: MovementId,
        #[serde(flatten)]
        asset: Asset,
        amount: Amount,
        from_wallet: WalletId,
        at: Timestamp,
    },
    /// A transfer the destination could not receive, back on the source:
    /// `transit:<asset>` → the wallet.
    TransferReturned {
        wallet_id: WalletId,
        movement_id: MovementId,
        #[serde(flatten)]
        asset: Asset,
        amount: Amount,
        to_wallet: WalletId,
        reason: ReturnReason,
        at: Timestamp,
    },
    /// The source learns that its transfer was credited; no value moves.
    TransferSettled {
        wallet_id: WalletId,
        movement_id: MovementId,
        #[serde(flatten)]
        asset: Asset,
        amount: Amount,
        to_wallet: WalletId,
        at: Timestamp,
    },
    /// Value left the ledger: the wallet → `redemption:<asset>`.
    FundsRedeemed {
        wallet_id: WalletId,
        movement_id: MovementId,
        #[serde(flatten)]
        asset: Asset,
        amount: Amount,
        destination_reference: Reference,
        requested_by: String,
        at: Timestamp,
    },
}

impl AccountEvent {
    pub fn wallet_id(&self) -> WalletId {
        match self {
            AccountEvent::FundsIssued { wallet_id, .. }
            | AccountEvent::TransferDebited { wallet_id, .. }
            | AccountEvent::TransferCredited { wallet_id, .. }
            | AccountEvent::TransferReturned { wallet_id, .. }
            | AccountEvent::TransferSettled { wallet_id, .. }
            | AccountEvent::FundsRedeemed { wallet_id, .. } => *wallet_id,
        }
    }

    pub fn movement_id(&self) -> MovementId {
        match self {
            AccountEvent::FundsIssued { movement_id, .. }
            | AccountEvent::TransferDebited { movement_id, .. }
            | AccountEvent::TransferCredited { movement_id, .. }
            | AccountEvent::TransferReturned { movement_id, .. }
            | AccountEvent::TransferSettled { movement_id, .. }
            | AccountEvent::FundsRedeemed { movement_id, .. } => *movement_id,
        }
    }

    pub fn asset(&self) -> &Asset {
        match self {
            AccountEvent::FundsIssued { asset, .. }
            | AccountEvent::TransferDebited { asset, .. }
            | AccountEvent::TransferCredited { asset, .. }
            | AccountEvent::TransferReturned { asset, .. }
            | AccountEvent::TransferSettled { asset, .. }
            | AccountEvent::FundsRedeemed { asset, .. } => asset,
        }
    }

    pub fn amount(&self) -> Amount {
        match self {
            AccountEvent::FundsIssued { amount, .. }
            | AccountEvent::TransferDebited { amount, .. }
            | AccountEvent::TransferCredited { amount, .. }
            | AccountEvent::TransferReturned { amount, .. }
            | AccountEvent::TransferSettled { amount, .. }
            | AccountEvent::FundsRedeemed { amount, .. } => *amount,
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::FundsIssued { .. } => "FundsIssued",
            AccountEvent::TransferDebited { .. } => "TransferDebited",
            AccountEvent::TransferCredited { .. } => "TransferCredited",
            AccountEvent::TransferReturned { .. } => "TransferReturned",
            AccountEvent::TransferSettled { .. } => "TransferSettled",
            AccountEvent::FundsRedeemed { .. } => "FundsRedeemed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a transfer went back to its source: a fixed vocabulary, decided from
/// the destination's refusal of the credit (never its text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnReason {
    /// The destination was deleted after the debit.
    DestinationDeleted,
    /// The destination's key was frozen after the debit.
    DestinationFrozen,
    /// The destination is no longer whitelisted.
    DestinationNotWhitelisted,
    /// The destination cannot hold the amount: it knows the asset with other
    /// decimals, its balance would overflow, or the movement id is taken
    /// there by another movement.
    DestinationRefused,
}

impl ReturnReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnReason::DestinationDeleted => "destination_deleted",
            ReturnReason::DestinationFrozen => "destination_frozen",
            ReturnReason::DestinationNotWhitelisted => "destination_not_whitelisted",
            ReturnReason::DestinationRefused => "destination_refused",
        }
    }

    /// What the process manager does with a refused `CreditTransfer`:
    /// `Some(reason)` returns the transfer to its source; `None` is a
    /// refusal that says walletd itself is wrong (a command sent to the
    /// wrong account, a zero amount the debit could never have accepted),
    /// which must stop the process manager rather than move value.
    pub fn for_refused_credit(error: &AccountError) -> Option<Self> {
        match error {
            AccountError::Deleted { .. } => Some(ReturnReason::DestinationDeleted),
            AccountError::Frozen { .. } => Some(ReturnReason::DestinationFrozen),
            AccountError::NotWhitelisted { .. } => Some(ReturnReason::DestinationNotWhitelisted),
            AccountError::AssetMismatch { .. }
            | AccountError::Overflow { .. }
            | AccountError::DuplicateMovement { .. } => Some(ReturnReason::DestinationRefused),
            AccountError::WrongAccount { .. }
            | AccountError::AmountNotPositive
            | AccountError::InsufficientFunds { .. }
            | AccountError::SelfTransfer
            | AccountError::NotInFlight { .. }
            | AccountError::TransferMismatch { .. } => None,
        }
    }
}
