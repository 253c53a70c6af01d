//! Keys generated ahead of demand, and the claims that keep them from being
//! lost or handed out twice.
//!
//! A background task keeps a pool of sealed, stored, never-assigned keys; a
//! create takes one from memory instead of generating and storing a key on
//! its own request path. Every stored key is claimed by the pool that made it
//! (`custody::claims`): while the process lives it refreshes the claims of
//! the keys it holds (ready ones and ones handed to a create in flight); at
//! shutdown it releases the ready ones. A later start, or another process on
//! the same database, first claims free keys (released, or whose claim lapsed
//! because their process died) that no `WalletCreated` event names, and only
//! then generates new ones. So pools survive restarts, and no key is held by
//! two processes.
//!
//! What happened to a key handed to a create is reported back
//! ([`KeyOutcome`]): assigned (its event committed), refused (the store said
//! no: the key goes back into the pool), or unknown (the commit may have
//! landed: the key is kept out of every pool until its claim lapses, after
//! which the event log decides).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use walletd_projections::Db;

use super::claims::{self, ClaimTable, CLAIM_LEASE, REFRESH_EVERY};
use super::{CustodyError, GeneratedKey, KeyOutcome};

/// Keys generated and stored per batch.
pub const BATCH: usize = 64;

/// A key whose claim was last confirmed longer ago than this is not handed
/// out: its claim may have lapsed in the database and been taken over.
const TRUST: Duration = Duration::from_secs(CLAIM_LEASE.as_secs() / 2);

/// How long to wait before looking for free keys again after a look found
/// fewer than needed.
const RECLAIM_IDLE: Duration = Duration::from_secs(60);

struct Pooled {
    key: GeneratedKey,
    /// When the claim was last confirmed (taken before the statement ran).
    claimed: Instant,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Pooled>,
    /// Keys handed to a create whose outcome is not known yet.
    in_flight: HashMap<String, Instant>,
    /// Keys whose event committed, to be marked assigned.
    assigned: Vec<String>,
    closed: bool,
}

pub struct KeyPool {
    owner: String,
    target: usize,
    state: Mutex<State>,
    wake: Notify,
    /// Whether the refill task runs, and a signal when it stops.
    running: std::sync::atomic::AtomicBool,
    stopped: Notify,
}

impl KeyPool {
    /// A pool that keeps `target` keys ready (0: none are made ahead, but
    /// keys handed back by refused creates are still kept for the next one).
    pub fn new(target: usize) -> Arc<Self> {
        Arc::new(Self {
            owner: uuid::Uuid::new_v4().to_string(),
            target,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            running: std::sync::atomic::AtomicBool::new(false),
            stopped: Notify::new(),
        })
    }

    /// This pool's claim id (`claimed_by`).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; carry on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ready key, if any; asks for a refill when the pool runs low.
    pub fn take(&self) -> Option<GeneratedKey> {
        let (key, left) = {
            let mut s = self.state();
            if s.closed {
                return None;
            }
            let mut found = None;
            while let Some(p) = s.ready.pop_front() {
                if p.claimed.elapsed() < TRUST {
                    s.in_flight.insert(p.key.key.key_id.clone(), p.claimed);
                    found = Some(p.key);
                    break;
                }
                // Not confirmed for a while (the database was unreachable):
                // leave it to whoever claims it once the claim has lapsed.
                tracing::warn!(key_id = %p.key.key.key_id, "dropping a pooled key whose claim was not confirmed");
            }
            (found, s.ready.len())
        };
        if left < self.target / 2 || (key.is_none() && self.target > 0) {
            self.wake.notify_one();
        }
        key
    }

    /// Follows a key generated for one create (not from the pool): stored
    /// claimed by this pool at `claimed`.
    pub fn track(&self, key_id: &str, claimed: Instant) {
        self.state().in_flight.insert(key_id.to_string(), claimed);
    }

    /// Records what became of a key handed out by [`take`](Self::take) or
    /// followed with [`track`](Self::track).
    pub fn settle(&self, key: &GeneratedKey, outcome: KeyOutcome) {
        let id = &key.key.key_id;
        let mut s = self.state();
        let claimed = s.in_flight.remove(id);
        match outcome {
            KeyOutcome::Assigned => s.assigned.push(id.clone()),
            KeyOutcome::Refused => {
                // Definitely not written: the key is as unused as before.
                if let Some(claimed) = claimed.filter(|c| c.elapsed() < TRUST && !s.closed) {
                    s.ready.push_front(Pooled {
                        key: key.clone(),
                        claimed,
                    });
                }
            }
            KeyOutcome::Unknown => {
                // The event may have committed: never hand this key out again
                // from here. Once its claim lapses, the event log decides
                // whether it is in use (then it is kept) or free.
                tracing::warn!(key_id = %id, "a create's outcome is unknown; keeping its key out of the pool");
            }
        }
    }

    pub fn len(&self) -> usize {
        self.state().ready.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys the refill task should find or make next (0: full).
    pub(crate) fn shortfall(&self) -> usize {
        let s = self.state();
        if s.closed {
            return 0;
        }
        self.target.saturating_sub(s.ready.len()).min(BATCH)
    }

    /// Adds keys claimed at `claimed` (also to a closed pool: shutdown
    /// releases them once the refill task has stopped).
    fn add(&self, keys: Vec<GeneratedKey>, claimed: Instant) {
        self.state()
            .ready
            .extend(keys.into_iter().map(|key| Pooled { key, claimed }));
    }

    fn is_closed(&self) -> bool {
        self.state().closed
    }

    fn claimed_ids(&self) -> Vec<String> {
        let s = self.state();
        s.ready
            .iter()
            .map(|p| p.key.key.key_id.clone())
            .chain(s.in_flight.keys().cloned())
            .collect()
    }

    /// Applies a refresh that started at `at`: confirmed claims are fresh
    /// again; keys whose claim is no longer ours are dropped.
    fn refreshed(&self, asked: &[String], kept: &HashSet<String>, at: Instant) {
        let asked: HashSet<&String> = asked.iter().collect();
        let mut s = self.state();
        s.ready.retain_mut(|p| {
            let id = &p.key.key.key_id;
            if !asked.contains(id) {
                return true;
            }
            if kept.contains(id) {
                p.claimed = at;
                true
            } else {
                tracing::warn!(key_id = %id, "a pooled key's claim was lost; dropping it");
                false
            }
        });
        s.in_flight.retain(|id, claimed| {
            if !asked.contains(id) {
                return true;
            }
            *claimed = at;
            kept.contains(id)
        });
    }

    fn take_assigned(&self) -> Vec<String> {
        std::mem::take(&mut self.state().assigned)
    }

    fn requeue_assigned(&self, ids: Vec<String>) {
        self.state().assigned.extend(ids);
    }

    /// Stops handing out keys and asks the refill task to stop.
    fn close(&self) {
        self.state().closed = true;
        self.wake.notify_one();
    }

    fn drain_ready(&self) -> Vec<String> {
        self.state()
            .ready
            .drain(..)
            .map(|p| p.key.key.key_id)
            .collect()
    }

    /// Waits until a refill is asked for, or a while has passed.
    async fn wait_for_demand(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
    }
}

/// Where a pool's keys come from: a custody backend.
#[async_trait::async_trait]
pub(crate) trait PoolSource: Send + Sync + 'static {
    fn db(&self) -> &Db;
    fn table(&self) -> ClaimTable;
    /// Free keys left by earlier runs or other processes: claims up to `n`
    /// for `owner` and opens them.
    async fn reclaim(&self, owner: &str, n: usize) -> Result<Vec<GeneratedKey>, CustodyError>;
    /// New keys, stored claimed by `owner` (up to `n`; may make fewer).
    async fn make(&self, owner: &str, n: usize) -> Result<Vec<GeneratedKey>, CustodyError>;
}

/// Keeps `pool` filled from `source` and its claims alive; ends when the
/// source is dropped or the pool is closed.
pub(crate) async fn run<S: PoolSource>(source: Weak<S>, pool: Arc<KeyPool>) {
    use std::sync::atomic::Ordering;
    pool.running.store(true, Ordering::SeqCst);
    fill(source, &pool).await;
    pool.running.store(false, Ordering::SeqCst);
    pool.stopped.notify_waiters();
}

async fn fill<S: PoolSource>(source: Weak<S>, pool: &KeyPool) {
    let started = Instant::now();
    let (mut found, mut made) = (0usize, 0usize);
    let mut reported = false;
    let mut last_refresh = Instant::now();
    let mut next_reclaim = Instant::now();
    loop {
        if pool.is_closed() {
            return;
        }
        let Some(src) = source.upgrade() else {
            return;
        };
        let (db, table) = (src.db().clone(), src.table());
        let assigned = pool.take_assigned();
        if !assigned.is_empty() {
            if let Err(e) = claims::mark_assigned(&db, table, &assigned).await {
                tracing::debug!(error = %e, "could not mark assigned keys; retrying");
                pool.requeue_assigned(assigned);
            }
        }
        if last_refresh.elapsed() >= REFRESH_EVERY {
            let at = Instant::now();
            let ids = pool.claimed_ids();
            match claims::refresh(&db, table, pool.owner(), &ids).await {
                Ok(kept) => {
                    pool.refreshed(&ids, &kept, at);
                    last_refresh = at;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not refresh the key pool's claims; retrying")
                }
            }
        }
        let n = pool.shortfall();
        if n == 0 {
            if !reported && found + made > 0 {
                reported = true;
                tracing::info!(
                    ?table,
                    reclaimed = found,
                    generated = made,
                    seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                    "key pool filled"
                );
            }
            drop(src);
            pool.wait_for_demand().await;
            continue;
        }
        let at = Instant::now();
        let mut got = Vec::new();
        if next_reclaim <= at {
            match src.reclaim(pool.owner(), n).await {
                Ok(keys) => {
                    if keys.len() < n {
                        next_reclaim = Instant::now() + RECLAIM_IDLE;
                    }
                    found += keys.len();
                    got = keys;
                }
                Err(e) => {
                    next_reclaim = Instant::now() + RECLAIM_IDLE;
                    tracing::warn!(error = %e, "could not claim free keys");
                }
            }
        }
        if got.is_empty() {
            match src.make(pool.owner(), n).await {
                Ok(keys) => {
                    made += keys.len();
                    got = keys;
                }
                Err(e) => {
                    drop(src);
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "key pool could not make keys; retrying in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            }
        }
        pool.add(got, at);
    }
}

/// How long shutdown waits for a refill in progress (an MPC key generation
/// takes about a second) before releasing what the pool holds.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Closes `pool` and releases its ready keys, so the next start (or another
/// process) takes them instead of generating new ones.
pub(crate) async fn shutdown(pool: &KeyPool, db: &Db, table: ClaimTable) {
    use std::sync::atomic::Ordering;
    pool.close();
    let deadline = Instant::now() + SHUTDOWN_WAIT;
    while pool.running.load(Ordering::SeqCst) && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(50), pool.stopped.notified()).await;
    }
    let ids = pool.drain_ready();
    if ids.is_empty() {
        return;
    }
    match claims::release(db, table, pool.owner(), &ids).await {
        Ok(n) => tracing::info!(?table, released = n, "key pool released its ready keys"),
        Err(e) => {
            tracing::warn!(error = %e, "could not release the key pool's keys (their claims lapse)")
        }
    }
}
