//! Which key signs for a wallet: its id, address and custody key never change
//! once the wallet exists, so this process remembers them and a sign does not
//! load the aggregate twice (once to find the key, once to record). A wallet
//! deleted since is caught where it matters: `RecordSignature` refuses it, and
//! the signature is dropped unreleased.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::domain::wallet::SigningKey;
use crate::domain::WalletId;

pub struct SigningKeys {
    map: RwLock<HashMap<WalletId, SigningKey>>,
    capacity: usize,
}

impl SigningKeys {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, wallet_id: &WalletId) -> Option<SigningKey> {
        self.map.read().ok()?.get(wallet_id).cloned()
    }

    /// The wallet's key no longer signs (it was frozen): the next sign loads
    /// the wallet, whose aggregate refuses it.
    pub fn forget(&self, wallet_id: &WalletId) {
        if let Ok(mut map) = self.map.write() {
            map.remove(wallet_id);
        }
    }

    pub fn insert(&self, key: SigningKey) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= self.capacity {
                // Bounded without tracking recency: start over.
                map.clear();
            }
            map.insert(key.wallet_id, key);
        }
    }
}
