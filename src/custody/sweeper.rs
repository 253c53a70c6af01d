//! The key sweeper: removes keys and key shares that no `WalletCreated`
//! event names, that no live pool holds, and that are older than the grace
//! period (`WALLETD_KEY_SWEEP_GRACE`). What is swept and why it is safe is in
//! `custody::claims`; the MPC backend asks the cosigner to release its share
//! first (`MpcCustody::sweep`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Custody;

/// Sweeps at most this often, and at least once per grace period.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// How long between sweeps for a given grace period.
pub fn interval(grace: Duration) -> Duration {
    grace.clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// Runs [`Custody::sweep`] on each backend every [`interval`]; ends once the
/// backends are dropped.
pub fn spawn(backends: Vec<Weak<dyn Custody>>, grace: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval(grace)).await;
            let live: Vec<Arc<dyn Custody>> = backends.iter().filter_map(Weak::upgrade).collect();
            if live.is_empty() {
                return;
            }
            for backend in live {
                if let Err(e) = backend.sweep(grace).await {
                    tracing::warn!(custody = backend.kind().as_str(), error = %e, "key sweep failed; retrying later");
                }
            }
        }
    });
}
