//! A read-through cache of wallet identities: id, address, owner, kind, public
//! key and creation time never change once a wallet exists, so a cached copy
//! is never stale, on any number of processes. Only found wallets are cached
//! (a miss may become a hit at any moment).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use walletd_projections::queries::{WalletLookup, WalletRow};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletIdentity {
    pub wallet_id: String,
    /// EIP-55.
    pub address: String,
    pub user_id: String,
    pub kind: String,
    pub public_key: Option<String>,
    pub created_at: String,
}

impl From<&WalletRow> for WalletIdentity {
    fn from(r: &WalletRow) -> Self {
        Self {
            wallet_id: r.wallet_id.clone(),
            address: r.address.clone(),
            user_id: r.user_id.clone(),
            kind: r.kind.clone(),
            public_key: r.public_key.clone(),
            created_at: r.created_at.clone(),
        }
    }
}

pub struct IdentityCache {
    map: RwLock<HashMap<String, Arc<WalletIdentity>>>,
    capacity: usize,
}

fn key(lookup: WalletLookup<'_>) -> String {
    match lookup {
        WalletLookup::WalletId(k) => format!("w:{k}"),
        WalletLookup::Address(k) => format!("a:{k}"),
        WalletLookup::ServerWalletOf(k) => format!("s:{k}"),
    }
}

impl IdentityCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get(&self, lookup: WalletLookup<'_>) -> Option<Arc<WalletIdentity>> {
        self.map.read().ok()?.get(&key(lookup)).cloned()
    }

    /// Caches `identity` under every key that finds it.
    pub fn insert(&self, identity: WalletIdentity) -> Arc<WalletIdentity> {
        let identity = Arc::new(identity);
        let Ok(mut map) = self.map.write() else {
            return identity;
        };
        if map.len() + 3 > self.capacity {
            // Crude but bounded: start over rather than track recency.
            map.clear();
        }
        map.insert(
            key(WalletLookup::WalletId(&identity.wallet_id)),
            identity.clone(),
        );
        map.insert(
            key(WalletLookup::Address(
                &identity.address.to_ascii_lowercase(),
            )),
            identity.clone(),
        );
        if identity.kind == "server" {
            map.insert(
                key(WalletLookup::ServerWalletOf(&identity.user_id)),
                identity.clone(),
            );
        }
        identity
    }
}
