//! Keys generated ahead of demand. A background task keeps a pool of sealed,
//! stored, never-assigned keys; a create takes one from memory instead of
//! generating and storing a key on its own request path (one vault insert and
//! commit saved per create; the pool stores its keys in batches).
//!
//! A key is assigned by the `WalletCreated` event that names it, so a pooled
//! key that no event names is simply unused. Keys still in the pool when the
//! process stops stay in the vault unassigned (at most the pool's size per
//! start); nothing can sign with them, since signing starts from a wallet.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::GeneratedKey;

/// Keys generated and stored per batch.
pub const BATCH: usize = 64;

pub struct KeyPool {
    ready: Mutex<VecDeque<GeneratedKey>>,
    target: usize,
    wake: Notify,
}

impl KeyPool {
    pub fn new(target: usize) -> Arc<Self> {
        Arc::new(Self {
            ready: Mutex::new(VecDeque::with_capacity(target)),
            target,
            wake: Notify::new(),
        })
    }

    /// A ready key, if any; asks for a refill when the pool runs low.
    pub fn take(&self) -> Option<GeneratedKey> {
        let (key, left) = {
            let mut ready = self.ready.lock().ok()?;
            (ready.pop_front(), ready.len())
        };
        if left < self.target / 2 {
            self.wake.notify_one();
        }
        key
    }

    pub fn len(&self) -> usize {
        self.ready.lock().map(|r| r.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys the refill task should make next (0: full).
    pub(crate) fn shortfall(&self) -> usize {
        self.target.saturating_sub(self.len()).min(BATCH)
    }

    pub(crate) fn add(&self, keys: Vec<GeneratedKey>) {
        if let Ok(mut ready) = self.ready.lock() {
            ready.extend(keys);
        }
    }

    /// Waits until a refill is asked for, or a while has passed.
    pub(crate) async fn wait_for_demand(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
    }
}
