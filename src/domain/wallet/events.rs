//! Wallet events: the stored schema. Readers depend on the JSON form, so
//! fields are only ever added (with defaults), never renamed; a change old
//! payloads cannot satisfy gets a new `event_version` and an upcaster
//! ([`super::upcast`]). `docs/events.md` lists every type, version and field.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::domain::eth::SignPayload;
use crate::domain::key::{CustodyKind, KeyFreezeReason};
use crate::domain::{Address, RecoverableSignature, Timestamp, UserId, WalletId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletKind {
    /// The one server wallet of a user (server-wallet API).
    Server,
    /// A custodial wallet created through the JWT or token APIs.
    Custodial,
    /// An address whose owner proved key ownership; walletd holds no key.
    External,
}

impl WalletKind {
    /// As events and the read side spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            WalletKind::Server => "server",
            WalletKind::Custodial => "custodial",
            WalletKind::External => "external",
        }
    }
}

/// What a `MessageSigned` event's signature is over, so readers need not
/// know the scheme table (`scheme` stays, naming the exact encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// EIP-191 `personal_sign` (`scheme` `eip191`).
    Message,
    /// EIP-712 typed data (`eip712`).
    TypedData,
    /// A transaction (`eip1559`, or `eip155` for a legacy one).
    Transaction,
}

impl SignatureKind {
    pub fn of(payload: &SignPayload) -> Self {
        match payload {
            SignPayload::PersonalMessage(_) => SignatureKind::Message,
            SignPayload::TypedData(_) => SignatureKind::TypedData,
            SignPayload::Transaction(_) => SignatureKind::Transaction,
        }
    }

    /// The kind a `scheme` of a stored event implies; `None` for a scheme
    /// walletd never wrote.
    pub fn of_scheme(scheme: &str) -> Option<Self> {
        match scheme {
            "eip191" => Some(SignatureKind::Message),
            "eip712" => Some(SignatureKind::TypedData),
            "eip1559" | "eip155" => Some(SignatureKind::Transaction),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureKind::Message => "message",
            SignatureKind::TypedData => "typed_data",
            SignatureKind::Transaction => "transaction",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WalletEvent {
    WalletCreated {
        wallet_id: WalletId,
        user_id: UserId,
        kind: WalletKind,
        custody: CustodyKind,
        /// Names the key in custody; never the key itself.
        key_id: String,
        address: Address,
        /// Uncompressed SEC1 public key, 0x-hex.
        public_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        created_at: Timestamp,
    },
    WalletRegistered {
        wallet_id: WalletId,
        user_id: UserId,
        address: Address,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nickname: Option<String>,
        /// The verified proof-of-ownership signature (public data), if one was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ownership_proof: Option<RecoverableSignature>,
        registered_at: Timestamp,
    },
    DefaultWalletSet {
        wallet_id: WalletId,
        user_id: UserId,
        at: Timestamp,
    },
    /// Version 2 (version 1 had no `kind`; see [`super::upcast`]).
    MessageSigned {
        wallet_id: WalletId,
        /// What was signed: derived from `scheme`.
        kind: SignatureKind,
        scheme: String,
        /// The 32-byte digest that was signed; the message itself is not stored.
        digest: String,
        message_len: u64,
        signature: RecoverableSignature,
        requested_by: String,
        at: Timestamp,
        /// Typed data: the domain's `chainId`, if it has one. Transactions:
        /// the transaction's chain id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain_id: Option<u64>,
        /// Typed data (`eip712`): the primary type, e.g. `Permit`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primary_type: Option<String>,
        /// Typed data: the domain's `name`, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain_name: Option<String>,
        /// Typed data: the domain's `verifyingContract`, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verifying_contract: Option<Address>,
        /// Transactions (`eip1559`, `eip155`): the nonce.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tx_nonce: Option<u64>,
        /// Transactions: the recipient; absent for a contract creation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tx_to: Option<Address>,
        /// Transactions: the value in wei, decimal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tx_value: Option<String>,
        /// Transactions: keccak256 of the signed raw transaction, 0x-hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tx_hash: Option<String>,
    },
    WhitelistQueued {
        wallet_id: WalletId,
        queued_at: Timestamp,
        eligible_at: Timestamp,
    },
    WalletWhitelisted {
        wallet_id: WalletId,
        at: Timestamp,
    },
    WalletDeleted {
        wallet_id: WalletId,
        user_id: UserId,
        address: Address,
        at: Timestamp,
    },
    /// Custody froze the wallet's key (MPC: DKLs23 forbids running the
    /// protocol with that peer on that key again); the wallet signs no more.
    WalletKeyFrozen {
        wallet_id: WalletId,
        /// Names the key in custody, as `WalletCreated` did; never the key.
        key_id: String,
        reason: KeyFreezeReason,
        at: Timestamp,
    },
}

/// `MessageSigned`'s current stored version.
pub const MESSAGE_SIGNED_VERSION: &str = "2";

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        match self {
            WalletEvent::WalletCreated { .. } => "WalletCreated",
            WalletEvent::WalletRegistered { .. } => "WalletRegistered",
            WalletEvent::DefaultWalletSet { .. } => "DefaultWalletSet",
            WalletEvent::MessageSigned { .. } => "MessageSigned",
            WalletEvent::WhitelistQueued { .. } => "WhitelistQueued",
            WalletEvent::WalletWhitelisted { .. } => "WalletWhitelisted",
            WalletEvent::WalletDeleted { .. } => "WalletDeleted",
            WalletEvent::WalletKeyFrozen { .. } => "WalletKeyFrozen",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            WalletEvent::MessageSigned { .. } => MESSAGE_SIGNED_VERSION,
            _ => "1",
        }
        .to_string()
    }
}
