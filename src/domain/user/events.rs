//! User events: stored schema version "1"; fields are only ever added.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::domain::{Address, Handle, Nickname, Timestamp, UserId, WalletId};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserRegistered {
        handle: Handle,
        user_id: UserId,
        app: Handle,
        registered_at: Timestamp,
    },
    /// `default: true` also takes the default from the user's other wallets.
    WalletAttached {
        handle: Handle,
        wallet_id: WalletId,
        address: Address,
        nickname: Nickname,
        default: bool,
        statements_enabled: bool,
        at: Timestamp,
    },
    /// Only the attributes that changed are present.
    WalletUpdated {
        handle: Handle,
        wallet_id: WalletId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nickname: Option<Nickname>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        statements_enabled: Option<bool>,
        at: Timestamp,
    },
    WalletDetached {
        handle: Handle,
        wallet_id: WalletId,
        address: Address,
        at: Timestamp,
    },
    KycRequested {
        handle: Handle,
        verification_id: uuid::Uuid,
        at: Timestamp,
    },
    KycPassed {
        handle: Handle,
        at: Timestamp,
    },
    KycFailed {
        handle: Handle,
        at: Timestamp,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered",
            UserEvent::WalletAttached { .. } => "WalletAttached",
            UserEvent::WalletUpdated { .. } => "WalletUpdated",
            UserEvent::WalletDetached { .. } => "WalletDetached",
            UserEvent::KycRequested { .. } => "KycRequested",
            UserEvent::KycPassed { .. } => "KycPassed",
            UserEvent::KycFailed { .. } => "KycFailed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
