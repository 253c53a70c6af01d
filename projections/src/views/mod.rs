//! The read models. Each declares its tables and is a pure function from one
//! stored event to the row changes ([`Op`]s) that bring them up to date; the
//! projector folds a pass's changes and writes them inside the transaction
//! that also advances their checkpoints.

pub mod app_addresses;
pub mod audit_log;
pub(crate) mod ledger;
pub mod ledger_balances;
pub mod ledger_movements;
pub mod ledger_supply;
pub mod sila_users;
pub mod sila_wallets;
pub mod user_wallets;
pub mod wallet_directory;
pub mod whitelist_queue;

use serde::Deserialize;

use crate::log::StoredEvent;
use crate::write_set::Op;
use crate::ProjectionError;

pub trait Projection: Send + Sync {
    /// Checkpoint key; stable across releases.
    fn name(&self) -> &'static str;
    /// Tables this projection owns, emptied on rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// `global_seq` is the event's 1-based rank in the global order.
    fn apply(&self, event: &StoredEvent, global_seq: i64) -> Result<Vec<Op>, ProjectionError>;
}

/// Every projection walletd maintains, in the order they are applied.
pub fn all() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(wallet_directory::WalletDirectory),
        Box::new(user_wallets::UserWallets),
        Box::new(audit_log::AuditLog),
        Box::new(whitelist_queue::WhitelistQueue),
        Box::new(app_addresses::AppAddresses),
        Box::new(sila_users::SilaUsers),
        Box::new(sila_wallets::SilaWallets),
        Box::new(ledger_balances::LedgerBalances),
        Box::new(ledger_movements::LedgerMovements),
        Box::new(ledger_supply::LedgerSupply),
    ]
}

/// Decodes an event body into the stored-schema struct a projection expects.
pub(crate) fn decode<'a, T: Deserialize<'a>>(event: &'a StoredEvent) -> Result<T, ProjectionError> {
    // From a borrowed value: no copy of the event's JSON per projection.
    T::deserialize(event.body()).map_err(|e| ProjectionError::Undecodable {
        position: event.at.position,
        event_type: event.event_type.clone(),
        version: event.event_version.clone(),
        reason: e.to_string(),
    })
}

/// Stored event bodies (schema version "1"). Fields the read side does not use
/// are simply not declared here.
pub(crate) mod stored {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct WalletCreated {
        pub wallet_id: String,
        pub user_id: String,
        pub kind: String,
        pub custody: String,
        pub address: String,
        pub public_key: String,
        #[serde(default)]
        pub label: Option<String>,
        pub created_at: String,
    }

    #[derive(Deserialize)]
    pub struct WalletRegistered {
        pub wallet_id: String,
        pub user_id: String,
        pub address: String,
        #[serde(default)]
        pub nickname: Option<String>,
        pub registered_at: String,
    }

    #[derive(Deserialize)]
    pub struct DefaultWalletSet {
        pub wallet_id: String,
        pub user_id: String,
        pub at: String,
    }

    #[derive(Deserialize)]
    pub struct WhitelistQueued {
        pub wallet_id: String,
        pub queued_at: String,
        pub eligible_at: String,
    }

    #[derive(Deserialize)]
    pub struct WalletDeleted {
        pub wallet_id: String,
    }

    #[derive(Deserialize)]
    pub struct UserRegistered {
        pub handle: String,
        pub user_id: String,
        pub app: String,
        pub registered_at: String,
    }

    /// Any user event that only needs whose and when.
    #[derive(Deserialize)]
    pub struct UserChange {
        pub handle: String,
        pub at: String,
    }

    #[derive(Deserialize)]
    pub struct WalletAttached {
        pub handle: String,
        pub wallet_id: String,
        pub address: String,
        pub nickname: String,
        pub default: bool,
        pub statements_enabled: bool,
        pub at: String,
    }

    #[derive(Deserialize)]
    pub struct WalletUpdated {
        pub handle: String,
        pub wallet_id: String,
        #[serde(default)]
        pub nickname: Option<String>,
        #[serde(default)]
        pub default: Option<bool>,
        #[serde(default)]
        pub statements_enabled: Option<bool>,
        pub at: String,
    }

    #[derive(Deserialize)]
    pub struct WalletDetached {
        pub wallet_id: String,
    }

    #[derive(Deserialize)]
    pub struct WalletWhitelisted {
        pub wallet_id: String,
        pub at: String,
    }
}
