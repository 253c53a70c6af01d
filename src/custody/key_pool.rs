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
//! Where keys are slow to make (2-of-2 MPC: about a second of CPU over both
//! parties), a create never makes its own. With none ready it joins a queue
//! ([`KeyPool::wait_for_key`]) and the refill task, which runs several key
//! generations at once to use every core, hands each new key to the
//! longest-waiting create. A create that waits longer than its bound gets
//! [`KeyError::NotReady`] (nothing was written); a failed key generation is
//! reported to the create at the head of the queue, so a cosigner outage
//! answers creates at once instead of after the bound. Level, rate and
//! waiters are logged when they change ([`REPORT_EVERY`]).
//!
//! What happened to a key handed to a create is reported back
//! ([`KeyOutcome`]): assigned (its event committed), refused (the store said
//! no: the key goes back into the pool), or unknown (the commit may have
//! landed: the key is kept out of every pool until its claim lapses, after
//! which the event log decides).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{oneshot, Notify};
use walletd_projections::Db;

use super::claims::{self, ClaimTable, CLAIM_LEASE, REFRESH_EVERY};
use super::{CustodyError, GeneratedKey, KeyError, KeyOutcome};

/// Keys generated and stored per batch.
pub const BATCH: usize = 64;

/// A key whose claim was last confirmed longer ago than this is not handed
/// out: its claim may have lapsed in the database and been taken over.
const TRUST: Duration = Duration::from_secs(CLAIM_LEASE.as_secs() / 2);

/// How long to wait before looking for free keys again after a look found
/// fewer than needed.
const RECLAIM_IDLE: Duration = Duration::from_secs(60);

/// After a failed key generation with nobody waiting, the refill pauses this
/// long (a waiting create still gets an attempt of its own at once).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// How often the pool's level, rate and waiters are looked at; a line is
/// logged only when something changed.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The window over which the refill rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Bounds of the `Retry-After` a timed-out create is given.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

struct Pooled {
    key: GeneratedKey,
    /// When the claim was last confirmed (taken before the statement ran).
    claimed: Instant,
}

/// A create waiting for the next key.
struct Waiter {
    id: u64,
    answer: oneshot::Sender<Result<GeneratedKey, KeyError>>,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Pooled>,
    /// Keys handed to a create whose outcome is not known yet.
    in_flight: HashMap<String, Instant>,
    /// Keys whose event committed, to be marked assigned.
    assigned: Vec<String>,
    /// Creates waiting for a key, oldest first.
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
    /// Keys being made by the refill task right now.
    making: usize,
    /// When recent keys were made (for the rate), oldest first.
    made_at: VecDeque<Instant>,
    /// Counters since start, for the periodic report.
    made: u64,
    timed_out: u64,
    failed: u64,
    closed: bool,
}

impl State {
    /// Drops waiters whose create went away.
    fn prune_waiters(&mut self) {
        self.waiters.retain(|w| !w.answer.is_closed());
    }

    /// Keys made per second over the last [`RATE_WINDOW`] (0 if none).
    fn rate(&mut self, now: Instant) -> f64 {
        while self
            .made_at
            .front()
            .is_some_and(|t| now.duration_since(*t) > RATE_WINDOW)
        {
            self.made_at.pop_front();
        }
        match self.made_at.front() {
            Some(first) if self.made_at.len() > 1 => {
                let span = now.duration_since(*first).as_secs_f64().max(1.0);
                self.made_at.len() as f64 / span
            }
            _ => 0.0,
        }
    }
}

pub struct KeyPool {
    owner: String,
    target: usize,
    state: Mutex<State>,
    wake: Notify,
    /// Whether a refill task was started, whether it runs, and a signal
    /// when it stops.
    started: AtomicBool,
    running: AtomicBool,
    stopped: Notify,
}

impl KeyPool {
    /// A pool that keeps `target` keys ready (0: none are made ahead, but
    /// keys handed back by refused creates are still kept for the next one,
    /// and keys are made for creates that wait).
    pub fn new(target: usize) -> Arc<Self> {
        Arc::new(Self {
            owner: uuid::Uuid::new_v4().to_string(),
            target,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            started: AtomicBool::new(false),
            running: AtomicBool::new(false),
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

    /// Pops the first ready key whose claim is trusted, into `in_flight`.
    fn pop_ready(s: &mut State) -> Option<GeneratedKey> {
        while let Some(p) = s.ready.pop_front() {
            if p.claimed.elapsed() < TRUST {
                s.in_flight.insert(p.key.key.key_id.clone(), p.claimed);
                return Some(p.key);
            }
            // Not confirmed for a while (the database was unreachable):
            // leave it to whoever claims it once the claim has lapsed.
            tracing::warn!(key_id = %p.key.key.key_id, "dropping a pooled key whose claim was not confirmed");
        }
        None
    }

    /// A ready key, if any; asks for a refill when the pool runs low.
    pub fn take(&self) -> Option<GeneratedKey> {
        let (key, left) = {
            let mut s = self.state();
            if s.closed {
                return None;
            }
            let key = Self::pop_ready(&mut s);
            (key, s.ready.len())
        };
        if left < self.target / 2 || (key.is_none() && self.target > 0) {
            self.wake.notify_one();
        }
        key
    }

    /// A key for a create: a ready one if nobody is waiting ahead, otherwise
    /// the next one the refill task finds or makes for this pool, in arrival
    /// order. Gives up after `bound` ([`KeyError::NotReady`]); a failed key
    /// generation is reported to the create it was for. The caller never
    /// makes a key itself.
    pub async fn wait_for_key(&self, bound: Duration) -> Result<GeneratedKey, KeyError> {
        let (id, answer) = {
            let mut s = self.state();
            if s.closed {
                return Err(self.not_ready(&mut s, Duration::ZERO));
            }
            s.prune_waiters();
            if s.waiters.is_empty() {
                if let Some(key) = Self::pop_ready(&mut s) {
                    let left = s.ready.len();
                    drop(s);
                    if left < self.target / 2 {
                        self.wake.notify_one();
                    }
                    return Ok(key);
                }
            }
            let (tx, rx) = oneshot::channel();
            let id = s.next_waiter;
            s.next_waiter += 1;
            s.waiters.push_back(Waiter { id, answer: tx });
            (id, rx)
        };
        self.wake.notify_one();
        let started = Instant::now();
        let mut turn = Turn {
            pool: self,
            id,
            answer: Some(answer),
        };
        let rx = turn.answer.as_mut().expect("set above");
        let outcome = tokio::time::timeout(bound, rx).await;
        match outcome {
            Ok(Ok(answer)) => {
                turn.answer = None;
                answer
            }
            Ok(Err(_)) => {
                turn.answer = None;
                // The sender was dropped without an answer: the pool closed.
                Err(self.not_ready(&mut self.state(), started.elapsed()))
            }
            Err(_) => {
                let mut s = self.state();
                let before = s.waiters.len();
                s.waiters.retain(|w| w.id != id);
                if s.waiters.len() < before {
                    turn.answer = None;
                    s.timed_out += 1;
                    return Err(self.not_ready(&mut s, started.elapsed()));
                }
                drop(s);
                // Answered just as the bound passed (under the lock, so the
                // answer is in the channel now).
                match turn.answer.take().map(|mut rx| rx.try_recv()) {
                    Some(Ok(answer)) => answer,
                    _ => Err(self.not_ready(&mut self.state(), started.elapsed())),
                }
            }
        }
    }

    fn not_ready(&self, s: &mut State, waited: Duration) -> KeyError {
        let waiting = s.waiters.len();
        let rate = s.rate(Instant::now());
        // Time for the queue ahead of a new request, at the recent rate.
        let retry_after = if rate > 0.0 {
            Duration::from_secs_f64(((waiting + 1) as f64 / rate).ceil())
        } else {
            RETRY_MAX.min(waited.max(RETRY_MIN))
        };
        KeyError::NotReady {
            waited,
            waiting,
            retry_after: retry_after.clamp(RETRY_MIN, RETRY_MAX),
        }
    }

    /// Hands `key` to the longest-waiting create, or keeps it ready.
    fn deliver(s: &mut State, key: GeneratedKey, claimed: Instant) {
        let mut key = key;
        if !s.closed {
            while let Some(w) = s.waiters.pop_front() {
                let id = key.key.key_id.clone();
                s.in_flight.insert(id.clone(), claimed);
                match w.answer.send(Ok(key)) {
                    Ok(()) => return,
                    Err(Ok(back)) => {
                        // That create went away: the next one.
                        s.in_flight.remove(&id);
                        key = back;
                    }
                    Err(Err(_)) => unreachable!("an Ok was sent"),
                }
            }
        }
        s.ready.push_back(Pooled { key, claimed });
    }

    /// Reports a failed key generation to the longest-waiting create;
    /// `false` if nobody was waiting.
    fn fail_next(&self, error: CustodyError) -> bool {
        let mut s = self.state();
        s.failed += 1;
        while let Some(w) = s.waiters.pop_front() {
            if !w.answer.is_closed() {
                let _ = w.answer.send(Err(KeyError::Custody(error)));
                return true;
            }
        }
        false
    }

    /// Follows a key generated for one create (not from the pool): stored
    /// claimed by this pool at `claimed`.
    pub fn track(&self, key_id: &str, claimed: Instant) {
        self.state().in_flight.insert(key_id.to_string(), claimed);
    }

    /// Records what became of a key handed out by [`take`](Self::take),
    /// [`wait_for_key`](Self::wait_for_key) or followed with
    /// [`track`](Self::track).
    pub fn settle(&self, key: &GeneratedKey, outcome: KeyOutcome) {
        let id = &key.key.key_id;
        let mut s = self.state();
        let claimed = s.in_flight.remove(id);
        match outcome {
            KeyOutcome::Assigned => s.assigned.push(id.clone()),
            KeyOutcome::Refused => {
                // Definitely not written: the key is as unused as before,
                // and goes to whoever waits first.
                if let Some(claimed) = claimed.filter(|c| c.elapsed() < TRUST && !s.closed) {
                    if s.waiters.is_empty() {
                        s.ready.push_front(Pooled {
                            key: key.clone(),
                            claimed,
                        });
                    } else {
                        Self::deliver(&mut s, key.clone(), claimed);
                    }
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

    /// Creates waiting for a key right now.
    pub fn waiting(&self) -> usize {
        let mut s = self.state();
        s.prune_waiters();
        s.waiters.len()
    }

    /// How many keys the refill task should find or make next (0: full):
    /// the target plus every waiting create, less what is ready or being
    /// made.
    pub(crate) fn shortfall(&self) -> usize {
        let mut s = self.state();
        if s.closed {
            return 0;
        }
        s.prune_waiters();
        (self.target + s.waiters.len())
            .saturating_sub(s.ready.len() + s.making)
            .min(BATCH)
    }

    /// Reserves up to `most` keys of the shortfall for one make; `refill`:
    /// whether keys may be made for the target (false while pausing after a
    /// failure: then only waiting creates count).
    fn start_making(&self, most: usize, refill: bool) -> usize {
        let mut s = self.state();
        if s.closed {
            return 0;
        }
        s.prune_waiters();
        let want = if refill { self.target } else { 0 } + s.waiters.len();
        let n = want
            .saturating_sub(s.ready.len() + s.making)
            .min(most)
            .min(BATCH);
        s.making += n;
        n
    }

    /// A make of `asked` keys ended with `keys` (possibly none).
    fn made(&self, asked: usize, keys: Vec<GeneratedKey>, claimed: Instant) {
        let mut s = self.state();
        s.making = s.making.saturating_sub(asked);
        let now = Instant::now();
        for key in keys {
            s.made += 1;
            s.made_at.push_back(now);
            Self::deliver(&mut s, key, claimed);
        }
        while s.made_at.len() > 1024 {
            s.made_at.pop_front();
        }
    }

    /// Adds keys claimed at `claimed` (also to a closed pool: shutdown
    /// releases them once the refill task has stopped); waiting creates get
    /// them first.
    fn add(&self, keys: Vec<GeneratedKey>, claimed: Instant) {
        let mut s = self.state();
        for key in keys {
            Self::deliver(&mut s, key, claimed);
        }
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

    /// Stops handing out keys and asks the refill task to stop; waiting
    /// creates are told to come back later.
    fn close(&self) {
        let waiters = {
            let mut s = self.state();
            s.closed = true;
            std::mem::take(&mut s.waiters)
        };
        for w in waiters {
            let error = self.not_ready(&mut self.state(), Duration::ZERO);
            let _ = w.answer.send(Err(error));
        }
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

    /// Whether a refill task was started for this pool.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Marks the refill task as started (before it is spawned, so a create
    /// arriving meanwhile waits for it instead of being refused).
    pub(crate) fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// The figures of the periodic report.
    /// The pool's level now, for `/metrics`.
    pub fn status(&self) -> PoolStatus {
        let s = self.snapshot();
        PoolStatus {
            ready: s.ready,
            target: self.target,
            waiting: s.waiting,
            generating: s.making,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut s = self.state();
        s.prune_waiters();
        let rate = s.rate(Instant::now());
        Snapshot {
            ready: s.ready.len(),
            waiting: s.waiters.len(),
            making: s.making,
            made: s.made,
            timed_out: s.timed_out,
            failed: s.failed,
            rate,
        }
    }
}

/// A create's place in the queue: if the create goes away (its request was
/// dropped) the place is given up, and a key that reached it meanwhile goes
/// back to the pool.
/// A pool's level at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Keys ready to hand out.
    pub ready: usize,
    /// Keys the pool keeps ready.
    pub target: usize,
    /// Creates waiting for a key.
    pub waiting: usize,
    /// Keys being made right now.
    pub generating: usize,
}

struct Turn<'a> {
    pool: &'a KeyPool,
    id: u64,
    answer: Option<oneshot::Receiver<Result<GeneratedKey, KeyError>>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.answer.take() else {
            return;
        };
        let mut s = self.pool.state();
        s.waiters.retain(|w| w.id != self.id);
        if let Ok(Ok(key)) = rx.try_recv() {
            if let Some(claimed) = s.in_flight.remove(&key.key.key_id) {
                Self::give_back(&mut s, key, claimed);
            }
        }
    }
}

impl Turn<'_> {
    fn give_back(s: &mut State, key: GeneratedKey, claimed: Instant) {
        KeyPool::deliver(s, key, claimed);
    }
}

/// What the periodic report shows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Snapshot {
    ready: usize,
    waiting: usize,
    making: usize,
    made: u64,
    timed_out: u64,
    failed: u64,
    rate: f64,
}

impl Snapshot {
    /// Whether this differs from `last` in what an operator watches: the
    /// level, the waiters, keys made, creates that gave up, failures.
    fn changed_since(&self, last: &Snapshot) -> bool {
        (
            self.ready,
            self.waiting,
            self.made,
            self.timed_out,
            self.failed,
        ) != (
            last.ready,
            last.waiting,
            last.made,
            last.timed_out,
            last.failed,
        )
    }
}

/// Logs the pool's figures every [`REPORT_EVERY`], when they changed.
struct Reporter {
    table: ClaimTable,
    target: usize,
    last: Snapshot,
    at: Instant,
}

impl Reporter {
    fn new(table: ClaimTable, target: usize) -> Self {
        Self {
            table,
            target,
            last: Snapshot::default(),
            at: Instant::now(),
        }
    }

    fn tick(&mut self, pool: &KeyPool) {
        if self.at.elapsed() < REPORT_EVERY {
            return;
        }
        let now = pool.snapshot();
        if now.changed_since(&self.last) {
            let interval = self.at.elapsed().as_secs_f64();
            let made = now.made - self.last.made;
            tracing::info!(
                table = ?self.table,
                ready = now.ready,
                target = self.target,
                waiting = now.waiting,
                generating = now.making,
                made_in_interval = made,
                keys_per_second = format!("{:.2}", made as f64 / interval),
                keys_per_second_last_minute = format!("{:.2}", now.rate),
                timed_out = now.timed_out - self.last.timed_out,
                failed = now.failed - self.last.failed,
                "key pool"
            );
            self.last = now;
        }
        self.at = Instant::now();
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
    /// The most keys one [`make`](Self::make) call is asked for.
    fn per_make(&self) -> usize {
        BATCH
    }
    /// How many [`make`](Self::make) calls run at once.
    fn parallel_makes(&self) -> usize {
        1
    }
}

/// Keeps `pool` filled from `source` and its claims alive; ends when the
/// source is dropped or the pool is closed.
pub(crate) async fn run<S: PoolSource>(source: Weak<S>, pool: Arc<KeyPool>) {
    pool.mark_started();
    pool.running.store(true, Ordering::SeqCst);
    fill(source, &pool).await;
    pool.running.store(false, Ordering::SeqCst);
    pool.stopped.notify_waiters();
}

type Making<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (usize, Instant, Result<Vec<GeneratedKey>, CustodyError>)>
            + Send
            + 'a,
    >,
>;

async fn fill<S: PoolSource>(source: Weak<S>, pool: &KeyPool) {
    let started = Instant::now();
    let (mut found, mut made) = (0usize, 0usize);
    let mut reported = false;
    let mut last_refresh = Instant::now();
    let mut next_reclaim = Instant::now();
    let mut paused_until: Option<Instant> = None;
    let mut makers: FuturesUnordered<Making<'static>> = FuturesUnordered::new();
    let Some(table) = source.upgrade().map(|s| s.table()) else {
        return;
    };
    let mut reporter = Reporter::new(table, pool.target);
    let custody = table.custody().as_str();
    loop {
        let closed = pool.is_closed();
        if closed && makers.is_empty() {
            return;
        }
        let Some(src) = source.upgrade() else {
            return;
        };
        let db = src.db().clone();
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
        reporter.tick(pool);
        let n = pool.shortfall();
        if !closed && n > 0 && next_reclaim <= Instant::now() {
            let at = Instant::now();
            match src.reclaim(pool.owner(), n).await {
                Ok(keys) => {
                    if keys.len() < n {
                        next_reclaim = Instant::now() + RECLAIM_IDLE;
                    }
                    found += keys.len();
                    metrics::counter!(crate::metrics::KEY_POOL_ADDED, "custody" => custody, "source" => "reclaimed")
                        .increment(keys.len() as u64);
                    pool.add(keys, at);
                }
                Err(e) => {
                    next_reclaim = Instant::now() + RECLAIM_IDLE;
                    tracing::warn!(error = %e, "could not claim free keys");
                }
            }
        }
        if paused_until.is_some_and(|t| t <= Instant::now()) {
            paused_until = None;
        }
        while !closed && makers.len() < src.parallel_makes().max(1) {
            let asked = pool.start_making(src.per_make(), paused_until.is_none());
            if asked == 0 {
                break;
            }
            let (src, owner) = (src.clone(), pool.owner().to_string());
            makers.push(Box::pin(async move {
                let at = Instant::now();
                let result = src.make(&owner, asked).await;
                (asked, at, result)
            }));
        }
        if !reported && makers.is_empty() && pool.shortfall() == 0 && found + made > 0 {
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
        let until_report = REPORT_EVERY.saturating_sub(reporter.at.elapsed());
        tokio::select! {
            Some((asked, at, result)) = makers.next(), if !makers.is_empty() => {
                match result {
                    Ok(keys) => {
                        made += keys.len();
                        metrics::counter!(crate::metrics::KEY_POOL_ADDED, "custody" => custody, "source" => "generated")
                            .increment(keys.len() as u64);
                        pool.made(asked, keys, at);
                    }
                    Err(e) => {
                        pool.made(asked, Vec::new(), at);
                        metrics::counter!(crate::metrics::KEY_POOL_FAILURES, "custody" => custody).increment(1);
                        if pool.is_closed() {
                            continue;
                        }
                        let why = e.to_string();
                        if pool.fail_next(e) {
                            tracing::warn!(error = %why, "key generation failed; the create waiting for it is told");
                        } else {
                            tracing::warn!(error = %why, "key pool could not make keys; retrying in 5 s");
                            paused_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
                        }
                    }
                }
            }
            _ = pool.wait_for_demand() => {}
            _ = tokio::time::sleep(until_report.max(Duration::from_millis(10))) => {}
        }
    }
}

/// How long shutdown waits for a refill in progress (an MPC key generation
/// takes about a second) before releasing what the pool holds.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Closes `pool` and releases its ready keys, so the next start (or another
/// process) takes them instead of generating new ones.
pub(crate) async fn shutdown(pool: &KeyPool, db: &Db, table: ClaimTable) {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::custody::{CustodyKind, KeyRef};
    use crate::domain::Address;

    fn key(n: u8) -> GeneratedKey {
        GeneratedKey {
            key: KeyRef {
                key_id: format!("key-{n}"),
                custody: CustodyKind::Mpc,
            },
            address: Address::from_uncompressed_pubkey(&[n; 65]),
            public_key: [n; 65],
        }
    }

    /// Queues a waiter and returns once it is in the queue.
    async fn queue(
        pool: &Arc<KeyPool>,
        bound: Duration,
    ) -> tokio::task::JoinHandle<Result<GeneratedKey, KeyError>> {
        let before = pool.waiting();
        let p = pool.clone();
        let handle = tokio::spawn(async move { p.wait_for_key(bound).await });
        while pool.waiting() == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        handle
    }

    fn key_id(r: Result<GeneratedKey, KeyError>) -> String {
        r.map(|k| k.key.key_id)
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[tokio::test]
    async fn waiting_creates_get_keys_in_arrival_order() {
        let pool = KeyPool::new(0);
        let long = Duration::from_secs(30);
        let first = queue(&pool, long).await;
        let second = queue(&pool, long).await;
        let third = queue(&pool, long).await;
        // Demand is the waiters (the target is 0).
        assert_eq!(pool.shortfall(), 3);
        pool.made(1, vec![key(1)], Instant::now());
        pool.made(1, vec![key(2)], Instant::now());
        pool.add(vec![key(3)], Instant::now());
        assert_eq!(key_id(first.await.unwrap()), "key-1");
        assert_eq!(key_id(second.await.unwrap()), "key-2");
        assert_eq!(key_id(third.await.unwrap()), "key-3");
        assert!(pool.is_empty());
        // A refused create hands its key to the next waiter.
        let fourth = queue(&pool, long).await;
        pool.settle(&key(1), KeyOutcome::Refused);
        assert_eq!(key_id(fourth.await.unwrap()), "key-1");
    }

    #[tokio::test]
    async fn a_ready_key_never_jumps_the_queue() {
        let pool = KeyPool::new(4);
        pool.add(vec![key(1)], Instant::now());
        // Nobody waits: the ready key is taken at once.
        let got = pool.wait_for_key(Duration::from_millis(1)).await;
        assert_eq!(key_id(got), "key-1");
        let long = Duration::from_secs(30);
        let first = queue(&pool, long).await;
        // A key made now goes to the waiter, not to the shelf.
        pool.made(1, vec![key(2)], Instant::now());
        assert_eq!(key_id(first.await.unwrap()), "key-2");
        assert!(pool.is_empty());
    }

    #[tokio::test]
    async fn a_create_that_waits_too_long_leaves_the_queue() {
        let pool = KeyPool::new(0);
        let err = pool
            .wait_for_key(Duration::from_millis(30))
            .await
            .unwrap_err();
        let KeyError::NotReady { retry_after, .. } = err else {
            panic!("{err}");
        };
        assert!(retry_after >= RETRY_MIN && retry_after <= RETRY_MAX);
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.shortfall(), 0, "nobody waits, nothing is asked for");
        // A key that arrives afterwards is kept, not lost.
        pool.made(1, vec![key(1)], Instant::now());
        assert_eq!(pool.len(), 1);
        // The queue's rate shapes Retry-After: 2.5 keys/s, 3 waiting ahead.
        let pool = KeyPool::new(0);
        {
            let mut s = pool.state();
            let now = Instant::now();
            for i in 0..20 {
                s.made_at
                    .push_back(now - Duration::from_millis(400 * (20 - i)));
            }
        }
        let long = Duration::from_secs(30);
        let _ahead = [
            queue(&pool, long).await,
            queue(&pool, long).await,
            queue(&pool, long).await,
        ];
        let Err(KeyError::NotReady { retry_after, .. }) =
            pool.wait_for_key(Duration::from_millis(10)).await
        else {
            panic!("timed out");
        };
        assert_eq!(retry_after, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_failed_generation_answers_the_first_waiter_only() {
        let pool = KeyPool::new(0);
        let long = Duration::from_secs(30);
        let first = queue(&pool, long).await;
        let second = queue(&pool, long).await;
        assert!(pool.fail_next(CustodyError::CosignerUnavailable("down".into())));
        let err = first.await.unwrap().unwrap_err();
        assert!(
            matches!(err, KeyError::Custody(CustodyError::CosignerUnavailable(_))),
            "{err}"
        );
        assert_eq!(pool.waiting(), 1);
        pool.made(1, vec![key(1)], Instant::now());
        assert_eq!(key_id(second.await.unwrap()), "key-1");
        assert!(!pool.fail_next(CustodyError::CosignerUnavailable("down".into())));
    }

    #[tokio::test]
    async fn a_create_that_went_away_gives_its_place_and_key_back() {
        let pool = KeyPool::new(0);
        let long = Duration::from_secs(30);
        let gone = queue(&pool, long).await;
        let next = queue(&pool, long).await;
        gone.abort();
        let _ = gone.await;
        pool.made(1, vec![key(1)], Instant::now());
        assert_eq!(key_id(next.await.unwrap()), "key-1");
        // Closing answers the waiters at once.
        let waiting = queue(&pool, long).await;
        pool.close();
        assert!(matches!(
            waiting.await.unwrap(),
            Err(KeyError::NotReady { .. })
        ));
    }

    #[test]
    fn the_report_shows_changes_only() {
        let a = Snapshot {
            ready: 3,
            waiting: 0,
            made: 10,
            rate: 1.5,
            ..Snapshot::default()
        };
        let mut b = a;
        b.rate = 1.4;
        b.making = 2;
        assert!(!b.changed_since(&a), "a rate moving alone is no news");
        b.waiting = 1;
        assert!(b.changed_since(&a));
        let mut c = a;
        c.made = 11;
        assert!(c.changed_since(&a));
    }

    /// A source whose keys take a while and that counts makes in flight.
    struct Slow {
        db: Db,
        _dir: tempfile::TempDir,
        running: AtomicUsize,
        most: AtomicUsize,
        made: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl PoolSource for Slow {
        fn db(&self) -> &Db {
            &self.db
        }
        fn table(&self) -> ClaimTable {
            ClaimTable::Party1Shares
        }
        async fn reclaim(&self, _: &str, _: usize) -> Result<Vec<GeneratedKey>, CustodyError> {
            Ok(Vec::new())
        }
        async fn make(&self, _: &str, _: usize) -> Result<Vec<GeneratedKey>, CustodyError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let n = self.made.fetch_add(1, Ordering::SeqCst);
            Ok(vec![key(u8::try_from(n % 250).unwrap())])
        }
        fn per_make(&self) -> usize {
            1
        }
        fn parallel_makes(&self) -> usize {
            3
        }
    }

    /// The refill task serves waiting creates with several makes at once,
    /// and makes exactly what is asked for: the target plus the waiters.
    #[tokio::test]
    async fn the_refill_runs_makes_in_parallel_for_waiters() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pool.db").display());
        let db = crate::store::connect(&url, 2).await.unwrap();
        let source = Arc::new(Slow {
            db,
            _dir: dir,
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            made: AtomicUsize::new(0),
        });
        let pool = KeyPool::new(0);
        tokio::spawn(run(Arc::downgrade(&source), pool.clone()));
        let waiters: Vec<_> = (0..6)
            .map(|_| {
                let p = pool.clone();
                tokio::spawn(async move { p.wait_for_key(Duration::from_secs(10)).await })
            })
            .collect();
        let mut ids = HashSet::new();
        for w in waiters {
            ids.insert(w.await.unwrap().unwrap().key.key_id);
        }
        assert_eq!(ids.len(), 6);
        assert_eq!(source.most.load(Ordering::SeqCst), 3);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(source.made.load(Ordering::SeqCst), 6, "one key per waiter");
        assert!(pool.is_empty());
        pool.close();
    }
}
