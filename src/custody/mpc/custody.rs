//! `MpcCustody`: the `Custody` backend of 2-of-2 wallets, as party 1.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use walletd_projections::Db;

use super::{
    generate_key, release, sign, Cosigner, CosignerLink, DigestPolicy, MpcError, ShareVault,
    SignRequest,
};
use crate::custody::claims::{self, ClaimTable};
use crate::custody::key_pool::{self, KeyPool, PoolSource};
use crate::custody::local::cutoff;
use crate::custody::{
    Custody, CustodyError, CustodyKind, GeneratedKey, KeyError, KeyFreezeReason, KeyOutcome,
    KeyRef, SweepReport,
};
use crate::domain::eth::SignPayload;
use crate::domain::{RecoverableSignature, WalletId};

/// The cosigner's policy for walletd's own payloads: the payload travels in
/// `SignPayload`'s JSON form, which is validated again when it is read, and
/// the digest is computed from it here, never taken from party 1.
pub struct PayloadPolicy;

impl DigestPolicy for PayloadPolicy {
    fn digest(&self, _wallet_id: &str, payload: &[u8]) -> Result<[u8; 32], String> {
        let payload: SignPayload =
            serde_json::from_slice(payload).map_err(|e| format!("unreadable payload: {e}"))?;
        Ok(payload.digest())
    }
}

/// A cosigner in this process (development: both shares on one host).
pub struct InProcessLink(pub Arc<Cosigner>);

#[async_trait]
impl CosignerLink for InProcessLink {
    async fn exchange(&self, request: Vec<u8>) -> Result<Vec<u8>, MpcError> {
        self.0.handle(&request).await
    }
}

pub struct MpcCustody {
    link: Arc<dyn CosignerLink>,
    shares: Arc<ShareVault>,
    /// Ready 2-of-2 keys: key generation takes about a second of CPU, far
    /// more than a create should wait; with none ready, creates queue here
    /// for the next one.
    pool: Option<Arc<KeyPool>>,
    /// How long a create waits in that queue before it is answered 503.
    key_wait: Duration,
    /// Why this backend cannot work (a party has no master key), if it cannot.
    unconfigured: Option<String>,
}

impl MpcCustody {
    /// `shares`: party 1's share vault.
    pub fn new(link: Arc<dyn CosignerLink>, shares: ShareVault) -> Self {
        Self {
            link,
            shares: Arc::new(shares),
            pool: None,
            key_wait: DEFAULT_KEY_WAIT,
            unconfigured: None,
        }
    }

    /// How long a create may wait for a key when none is ready.
    pub fn with_key_wait(mut self, wait: Duration) -> Self {
        self.key_wait = wait;
        self
    }

    /// A backend that refuses to work, for `why` (answered as a configuration
    /// error rather than discovered halfway through key generation).
    pub fn unconfigured(mut self, why: impl Into<String>) -> Self {
        self.unconfigured = Some(why.into());
        self
    }

    /// Keeps up to `size` keys generated ahead of demand (0: none are made
    /// ahead, only for creates that wait; a key handed back by a refused
    /// create is kept for the next). Creates take keys only from this pool,
    /// whose refill task [`start_pool`](Self::start_pool) starts.
    pub fn with_pool(mut self, size: usize) -> Self {
        self.pool = Some(KeyPool::new(size));
        self
    }

    pub fn pool(&self) -> Option<&Arc<KeyPool>> {
        self.pool.as_ref()
    }

    /// Starts the pool's refill task on a thread of its own. It runs several
    /// key generations at once ([`PoolSource::parallel_makes`]) so that both
    /// parties' steps keep every core busy; the steps themselves run on the
    /// protocol threads (`mpc::cpu`), never on the threads that serve
    /// requests. The thread ends once this custody is dropped.
    pub fn start_pool(self: &Arc<Self>) {
        let Some(pool) = self.pool.clone().filter(|_| self.unconfigured.is_none()) else {
            return;
        };
        pool.mark_started();
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("mpc-key-pool".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "MPC key pool cannot start");
                        return;
                    }
                };
                runtime.block_on(key_pool::run(weak, pool));
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "MPC key pool cannot start");
        }
    }

    /// Runs key generation with the cosigner and stores our share, claimed
    /// by pool `owner`.
    async fn make_key(&self, owner: &str) -> Result<GeneratedKey, CustodyError> {
        let key_id = format!("mpc-{}", uuid::Uuid::new_v4().simple());
        // Recorded first: if this run ends half-way (a crash, a failed store),
        // the sweeper finds the key and releases the cosigner's share.
        self.shares
            .record_intent(&key_id)
            .await
            .map_err(custody_error)?;
        let share = match generate_key(self.link.as_ref(), &key_id).await {
            Ok(share) => share,
            Err(e) => {
                // The cosigner may have stored its share before the run
                // failed; we stored nothing, so it is of no use.
                self.forget_remote(&key_id);
                return Err(custody_error(e));
            }
        };
        // A failed store may still have landed (an I/O error after the
        // commit): the cosigner's share is then kept, and our row, if it
        // exists, is claimed by this pool and never handed out, so its claim
        // lapses and it is reused or swept like any free key.
        self.shares
            .store_claimed(&key_id, &share, owner)
            .await
            .map_err(custody_error)?;
        if let Err(e) = self.shares.clear_intent(&key_id).await {
            tracing::debug!(%key_id, error = %e, "could not clear a key generation record (the sweeper will)");
        }
        Ok(GeneratedKey {
            key: KeyRef {
                key_id,
                custody: CustodyKind::Mpc,
            },
            address: share.address(),
            public_key: share.public_key().map_err(custody_error)?,
        })
    }

    /// Asks the cosigner, in the background, to drop its share of a key
    /// whose generation failed (best effort; the cosigner keeps nothing it
    /// signed with).
    fn forget_remote(&self, key_id: &str) {
        let (link, shares, key_id) = (self.link.clone(), self.shares.clone(), key_id.to_string());
        tokio::spawn(async move {
            match release(link.as_ref(), &key_id).await {
                Ok(()) => {
                    let _ = shares.clear_intent(&key_id).await;
                }
                Err(e) => {
                    tracing::debug!(%key_id, error = %e, "could not release the cosigner's share of a failed key (the sweeper will)")
                }
            }
        });
    }

    /// A stored share of ours as [`GeneratedKey`].
    async fn open_pooled(&self, key_id: &str) -> Result<GeneratedKey, CustodyError> {
        let share = self
            .shares
            .open(key_id)
            .await
            .map_err(custody_error)?
            .ok_or_else(|| CustodyError::UnknownKey(key_id.to_string()))?;
        Ok(GeneratedKey {
            key: KeyRef {
                key_id: key_id.to_string(),
                custody: CustodyKind::Mpc,
            },
            address: share.address(),
            public_key: share.public_key().map_err(custody_error)?,
        })
    }
}

#[async_trait]
impl PoolSource for MpcCustody {
    fn db(&self) -> &Db {
        self.shares.db()
    }

    fn table(&self) -> ClaimTable {
        ClaimTable::Party1Shares
    }

    async fn reclaim(&self, owner: &str, n: usize) -> Result<Vec<GeneratedKey>, CustodyError> {
        let ids = match self.shares.master_keys() {
            Some(keys) => keys.ids(),
            None => return Err(CustodyError::NotConfigured),
        };
        let claimed =
            claims::claim(self.shares.db(), ClaimTable::Party1Shares, owner, n, &ids).await?;
        let mut out = Vec::with_capacity(claimed.len());
        for key_id in claimed {
            match self.open_pooled(&key_id).await {
                Ok(k) => out.push(k),
                Err(e) => tracing::error!(%key_id, error = %e, "a free key share does not open"),
            }
        }
        if !out.is_empty() {
            tracing::info!(
                keys = out.len(),
                "claimed free 2-of-2 keys left by an earlier run"
            );
        }
        Ok(out)
    }

    async fn make(&self, owner: &str, _n: usize) -> Result<Vec<GeneratedKey>, CustodyError> {
        let t = std::time::Instant::now();
        let key = self.make_key(owner).await?;
        tracing::debug!(dkg_ms = t.elapsed().as_millis() as u64, "MPC pool key made");
        Ok(vec![key])
    }

    fn per_make(&self) -> usize {
        1
    }

    /// Two key generations per protocol thread: while one waits for the
    /// other party (or the database), the other has a step to run, so both
    /// parties keep every core busy. More would only lengthen each run.
    fn parallel_makes(&self) -> usize {
        2 * super::cpu::global().threads()
    }
}

/// How long a create waits for a 2-of-2 key by default
/// (`WALLETD_MPC_KEY_WAIT`).
pub const DEFAULT_KEY_WAIT: Duration = Duration::from_secs(10);

fn custody_error(e: MpcError) -> CustodyError {
    match e {
        MpcError::Unavailable(m) | MpcError::Aborted(m) => CustodyError::CosignerUnavailable(m),
        other => CustodyError::Mpc(other.to_string()),
    }
}

#[async_trait]
impl Custody for MpcCustody {
    fn kind(&self) -> CustodyKind {
        CustodyKind::Mpc
    }

    /// [`key_for`](Custody::key_for), with a create that waited in vain
    /// reported as the cosigner being unavailable (retry later).
    async fn generate(&self, wallet_id: WalletId) -> Result<GeneratedKey, CustodyError> {
        match self.key_for(wallet_id).await {
            Ok(key) => Ok(key),
            Err(KeyError::Custody(e)) => Err(e),
            Err(e @ KeyError::NotReady { .. }) => {
                Err(CustodyError::CosignerUnavailable(e.to_string()))
            }
        }
    }

    /// A key from the pool; with none ready, the next one made, in arrival
    /// order, within `key_wait`. The create never runs key generation itself.
    async fn key_for(&self, _wallet_id: WalletId) -> Result<GeneratedKey, KeyError> {
        if self.unconfigured.is_some() {
            return Err(CustodyError::NotConfigured.into());
        }
        let pool = self.pool.as_ref().ok_or(CustodyError::NotConfigured)?;
        if !pool.is_started() {
            return Err(CustodyError::Mpc("the MPC key pool is not running".into()).into());
        }
        pool.wait_for_key(self.key_wait).await
    }

    async fn sign(
        &self,
        key: &KeyRef,
        wallet_id: WalletId,
        payload: &SignPayload,
        requested_by: &str,
    ) -> Result<RecoverableSignature, CustodyError> {
        if self.unconfigured.is_some() {
            return Err(CustodyError::NotConfigured);
        }
        let share = match self.shares.open(&key.key_id).await {
            Ok(Some(share)) => share,
            Ok(None) => return Err(CustodyError::UnknownKey(key.key_id.clone())),
            // Our share is frozen already: by another process, or by an
            // earlier run whose caller could not record it.
            Err(MpcError::PeerBanned(_)) => {
                return Err(CustodyError::KeyFrozen {
                    key_id: key.key_id.clone(),
                    reason: KeyFreezeReason::ShareFrozen,
                })
            }
            Err(e) => return Err(custody_error(e)),
        };
        let request = SignRequest {
            key_id: key.key_id.clone(),
            wallet_id: wallet_id.to_string(),
            requested_by: requested_by.to_string(),
            payload: serde_json::to_vec(payload).map_err(|e| CustodyError::Mpc(e.to_string()))?,
            digest: payload.digest(),
        };
        match sign(self.link.as_ref(), &share, request).await {
            Ok(signature) => Ok(signature),
            Err(MpcError::PeerBanned(reason)) => {
                // DKLs23: never run the protocol with this peer on this key again.
                tracing::error!(key_id = %key.key_id, %reason, "MPC peer misbehaved; freezing the key");
                if let Err(e) = self.shares.freeze(&key.key_id, &reason).await {
                    tracing::error!(error = %e, "could not freeze the key share");
                }
                // The peer's text stays in this log line and the share's row;
                // what goes on (to the event log) is a fixed reason.
                Err(CustodyError::KeyFrozen {
                    key_id: key.key_id.clone(),
                    reason: KeyFreezeReason::PeerBanned,
                })
            }
            Err(e) => Err(custody_error(e)),
        }
    }

    async fn settle(&self, key: &GeneratedKey, outcome: KeyOutcome) {
        if let Some(pool) = &self.pool {
            pool.settle(key, outcome);
        }
    }

    /// Party 1 decides from its own event log which keys no wallet uses; the
    /// cosigner deletes its share of such a key only when party 1 releases it
    /// over the authenticated channel (and never one it signed with). Our
    /// share is marked retired first, so no pool claims it meanwhile, and
    /// deleted only once the cosigner's is gone: a retired share whose release
    /// failed is retried by the next sweep.
    async fn sweep(&self, grace: Duration) -> Result<SweepReport, CustodyError> {
        if self.unconfigured.is_some() {
            return Ok(SweepReport::default());
        }
        let db = self.shares.db();
        let found_in_use = claims::mark_referenced(db, ClaimTable::Party1Shares).await?;
        let retired = claims::retire_unreferenced_shares(db, &cutoff(grace)).await?;
        let mut removed = 0;
        // Key generations that never finished: release the cosigner's share
        // where ours was never stored.
        // (Never younger than a claim's lease, whatever the grace: a run in
        // progress must not lose the cosigner's share.)
        let unfinished = cutoff(grace.max(claims::CLAIM_LEASE));
        for (key_id, stored) in self
            .shares
            .stale_intents(&unfinished)
            .await
            .map_err(custody_error)?
        {
            if !stored {
                match release(self.link.as_ref(), &key_id).await {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(%key_id, error = %e, "could not release an unfinished key at the cosigner; retrying at the next sweep");
                        continue;
                    }
                }
            }
            self.shares
                .clear_intent(&key_id)
                .await
                .map_err(custody_error)?;
        }
        for key_id in retired {
            match release(self.link.as_ref(), &key_id).await {
                Ok(()) => removed += claims::delete_retired_share(db, &key_id).await?,
                Err(MpcError::Refused(why)) => tracing::error!(
                    %key_id, %why,
                    "the cosigner has used a share that no wallet here names; keeping ours (check the event log)"
                ),
                Err(e) => {
                    tracing::warn!(%key_id, error = %e, "could not release a share at the cosigner; retrying at the next sweep");
                }
            }
        }
        if removed > 0 {
            tracing::info!(
                removed,
                "swept 2-of-2 keys that no wallet uses, on both parties"
            );
        }
        Ok(SweepReport {
            removed,
            found_in_use,
        })
    }

    async fn shutdown(&self) {
        if let Some(pool) = &self.pool {
            key_pool::shutdown(pool, self.shares.db(), ClaimTable::Party1Shares).await;
        }
    }

    fn key_pool(&self) -> Option<&Arc<KeyPool>> {
        self.pool()
    }

    fn readiness(&self) -> Result<(), String> {
        match &self.unconfigured {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// One exchange with the cosigner over the channel: a release of a key
    /// id no key has, which reaches its database and changes nothing.
    async fn probe(&self) -> Result<(), String> {
        if self.unconfigured.is_some() {
            // `readiness` says why; there is nothing to probe.
            return Ok(());
        }
        release(self.link.as_ref(), super::party1::PROBE_KEY_ID)
            .await
            .map_err(|e| e.to_string())
    }
}
