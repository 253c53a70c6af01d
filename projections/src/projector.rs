//! Runs the projections over the log.
//!
//! One pass: take the projector lock, read each projection's checkpoint, read the
//! next batch of events after the lowest checkpoint, apply each event to every
//! projection that has not seen it, and advance the checkpoints — all in one
//! transaction. A crash anywhere in a pass therefore either keeps the whole
//! batch or none of it: no event is lost or applied twice. Several walletd
//! processes on one PostgreSQL serialise on the lock, so they never both apply a
//! batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio::sync::{watch, Notify};

use crate::bulk::BulkConn;
use crate::db::Db;
use crate::lag::{self, Lag};
use crate::log::{self, LogPosition};
use crate::stmt::Stmt;
use crate::views::Projection;
use crate::wakeup::{self, announce_sql, instance_name, Listening};
use crate::write_set::WriteSet;
use crate::ProjectionError;

/// Reads all checkpoints on a connection of either backend.
macro_rules! read_checkpoints {
    ($conn:expr) => {{
        let rows = sqlx::query("SELECT name, tx_id, position, applied FROM projection_checkpoints")
            .fetch_all($conn)
            .await?;
        let mut out: HashMap<String, Checkpoint> = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(
                row.try_get::<String, _>("name")?,
                Checkpoint {
                    at: LogPosition {
                        tx_id: row.try_get("tx_id")?,
                        position: row.try_get("position")?,
                    },
                    applied: row.try_get("applied")?,
                },
            );
        }
        out
    }};
}

pub struct Projector {
    db: Db,
    projections: Arc<[Box<dyn Projection>]>,
    batch: i64,
    /// Names this process in its announcements, so it ignores its own.
    instance: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub at: LogPosition,
    pub applied: i64,
}

/// What a finished pass did.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassOutcome {
    pub applied: usize,
    /// Lowest checkpoint over all projections after the pass.
    pub caught_up_to: LogPosition,
    /// Events the slowest projection has applied since it was (re)built.
    pub applied_total: i64,
}

impl Projector {
    pub fn new(db: Db, projections: Vec<Box<dyn Projection>>) -> Self {
        Self {
            db,
            projections: projections.into(),
            batch: 500,
            instance: instance_name(),
        }
    }

    pub fn with_batch(mut self, batch: i64) -> Self {
        self.batch = batch.max(1);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn projections(&self) -> &[Box<dyn Projection>] {
        &self.projections
    }

    /// Makes sure every projection has a checkpoint row.
    pub async fn register(&self) -> Result<(), ProjectionError> {
        crate::with_db!(&self.db, pool => {
            for p in self.projections.iter() {
                sqlx::query(
                    "INSERT INTO projection_checkpoints (name, tx_id, position, applied)
                     VALUES ($1, 0, 0, 0) ON CONFLICT (name) DO NOTHING",
                )
                .bind(p.name())
                .execute(pool)
                .await?;
            }
        });
        Ok(())
    }

    /// One pass over at most one (live-sized) batch.
    pub async fn pass(&self) -> Result<PassOutcome, ProjectionError> {
        self.pass_up_to(self.batch).await
    }

    /// One pass over at most `batch` events: the one way events reach the
    /// projections, whether live, catching up after downtime or rebuilding.
    pub async fn pass_up_to(&self, batch: i64) -> Result<PassOutcome, ProjectionError> {
        Ok(self.pass_with(batch, None, false).await?.0)
    }

    /// A pass that may start from a batch read ahead of it and, when
    /// `read_ahead`, starts reading the next batch before writing its own, so
    /// that reading and decoding one batch overlaps writing the one before.
    async fn pass_with(
        &self,
        batch: i64,
        ahead: Option<ReadAhead>,
        read_ahead: bool,
    ) -> Result<(PassOutcome, Option<ReadAhead>), ProjectionError> {
        // Awaited before the pass takes a connection and the lock: the read
        // ahead needs a connection of its own, and waiting for one while
        // holding the lock could deadlock a busy pool.
        let ahead = match ahead {
            Some(a) => Some((
                a.after,
                a.assumed,
                a.task.await.map_err(|e| {
                    ProjectionError::BadStatement(format!("reading ahead failed: {e}"))
                })??,
            )),
            None => None,
        };
        let db = &self.db;
        crate::with_db!(db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock_sql(db)).execute(&mut *tx).await?;
            let mut checkpoints = read_checkpoints!(&mut *tx);
            let low = self.lowest(&checkpoints);
            let (read, writes, changed) = match ahead {
                // Nobody projected since the batch was read ahead: its
                // changes were worked out against these very checkpoints.
                Some((after, assumed, a)) if after == low && assumed == checkpoints => {
                    checkpoints = a.checkpoints;
                    (a.read, a.writes, a.changed)
                }
                _ => {
                    let events = log::decode_all(crate::fetch_log!(&mut *tx, log::read_sql(db), low, batch))?;
                    let (writes, changed) = changes(&self.projections, &events, &mut checkpoints)?;
                    let read = events.len();
                    discard(events);
                    (read, writes, changed)
                }
            };
            let next = (read_ahead && read as i64 >= batch)
                .then(|| self.read_ahead(checkpoints.clone(), batch));
            // The rows the changes touch that exist already, then every
            // table's final rows: a few statements per table, per pass.
            let mut loaded = HashMap::new();
            for table in writes.tables().collect::<Vec<_>>() {
                let need = writes.needs(table);
                if !need.is_empty() {
                    loaded.insert(table.name, BulkConn::load(&mut *tx, table, &need).await?);
                }
            }
            let folded = writes.fold(loaded)?;
            for (table, rows) in &folded {
                BulkConn::write(&mut *tx, table, rows).await?;
            }
            discard(folded);
            let mut stmts = Vec::new();
            if batch >= CATCH_UP_BATCH && matches!(db, Db::Postgres(_)) {
                // A catch-up batch need not wait for its own flush: a crash
                // can lose only whole recent passes, rows and checkpoints
                // together (never corrupt them), and the next pass redoes
                // them from the durable log. Live passes stay synchronous.
                stmts.push(Stmt::new("SET LOCAL synchronous_commit = off", vec![]));
            }
            if changed {
                for p in self.projections.iter() {
                    let cp = checkpoints[p.name()];
                    stmts.push(Stmt::new(
                        "UPDATE projection_checkpoints SET tx_id = $2, position = $3, applied = $4
                          WHERE name = $1",
                        vec![p.name().into(), cp.at.tx_id.into(), cp.at.position.into(), cp.applied.into()],
                    ));
                }
                if let Some(sql) = announce_sql(db) {
                    // Inside the pass: the pass lock already serialises these
                    // transactions, so NOTIFY's own commit-time lock costs nothing
                    // extra, and other processes hear of it only once it is durable.
                    stmts.push(Stmt::new(sql, vec![self.instance.clone().into()]));
                }
            }
            match db {
                // One round trip for the checkpoints and the announcement.
                Db::Postgres(_) => {
                    for script in crate::stmt::pg_scripts(stmts)? {
                        sqlx::Executor::execute(&mut *tx, script.as_str()).await?;
                    }
                }
                // In-process: a statement costs no round trip.
                Db::Sqlite(_) => crate::exec_stmts!(tx, stmts)?,
            }
            tx.commit().await?;
            Ok((PassOutcome {
                applied: read,
                caught_up_to: self.lowest(&checkpoints),
                applied_total: self
                    .projections
                    .iter()
                    .map(|p| checkpoints.get(p.name()).map(|c| c.applied).unwrap_or_default())
                    .min()
                    .unwrap_or_default(),
            }, next))
        })
    }

    /// Starts reading, decoding and projecting the batch after `assumed` on
    /// a connection of its own; the next pass uses it if nobody else has
    /// projected in between.
    fn read_ahead(&self, assumed: HashMap<String, Checkpoint>, batch: i64) -> ReadAhead {
        let after = self.lowest(&assumed);
        let db = self.db.clone();
        let projections = self.projections.clone();
        let mut checkpoints = assumed.clone();
        let task = tokio::spawn(async move {
            // Only rows below the horizon are read, and those never change,
            // so this is exactly the start of what the next pass would read.
            let events = log::read_after(&db, after, batch).await?;
            let (writes, changed) = changes(&projections, &events, &mut checkpoints)?;
            Ok(Ahead {
                read: events.len(),
                writes,
                checkpoints,
                changed,
            })
        });
        ReadAhead {
            after,
            assumed,
            task,
        }
    }

    /// Passes until the log has nothing more below its horizon.
    pub async fn catch_up(&self) -> Result<LogPosition, ProjectionError> {
        Ok(self.catch_up_with(|_| {}).await?.caught_up_to)
    }

    /// Like [`catch_up`](Self::catch_up), in catch-up-sized batches, telling
    /// `progress` after each one; returns the last pass's outcome.
    pub async fn catch_up_with(
        &self,
        mut progress: impl FnMut(&PassOutcome),
    ) -> Result<PassOutcome, ProjectionError> {
        let mut ahead = None;
        loop {
            let (outcome, next) = self.pass_with(CATCH_UP_BATCH, ahead.take(), true).await?;
            progress(&outcome);
            if outcome.applied < CATCH_UP_BATCH as usize {
                if let Some(next) = next {
                    next.task.abort();
                }
                return Ok(outcome);
            }
            ahead = next;
        }
    }

    /// Empties every projection's tables and sets its checkpoint back to the
    /// start of the log, in one short transaction under the pass lock; the
    /// next passes (this process's or any other's) rebuild them.
    pub async fn reset(&self) -> Result<(), ProjectionError> {
        let db = &self.db;
        crate::with_db!(db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock_sql(db)).execute(&mut *tx).await?;
            let tables: Vec<&str> = self.projections.iter().flat_map(|p| p.tables().iter().copied()).collect();
            // TRUNCATE on PostgreSQL: a DELETE would leave every old row behind
            // as a dead tuple for the rebuild's inserts to wade through.
            match db {
                Db::Postgres(_) => {
                    sqlx::query(&format!("TRUNCATE {}", tables.join(", "))).execute(&mut *tx).await?;
                }
                Db::Sqlite(_) => {
                    for table in &tables {
                        sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
                    }
                }
            }
            for p in self.projections.iter() {
                sqlx::query(
                    "UPDATE projection_checkpoints SET tx_id = 0, position = 0, applied = 0
                      WHERE name = $1",
                )
                .bind(p.name())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    fn lowest(&self, checkpoints: &HashMap<String, Checkpoint>) -> LogPosition {
        self.projections
            .iter()
            .map(|p| checkpoints.get(p.name()).map(|c| c.at).unwrap_or_default())
            .min()
            .unwrap_or_default()
    }

    /// Runs the projector in the background for the life of the process, with
    /// a monitor beside it that measures the lag and spots a stall, and (on
    /// PostgreSQL) a listener that wakes it when another process projected.
    pub fn spawn(self) -> ProjectorHandle {
        let (progress_tx, progress_rx) = watch::channel(LogPosition::START);
        let shared = Arc::new(Shared {
            nudge: Notify::new(),
            waiters: AtomicUsize::new(0),
            last_error: Mutex::new(None),
            stall: watch::channel(None).0,
            idle_passes: AtomicU64::new(0),
            warned_at: Mutex::new(None),
            active_at: Mutex::new(Instant::now()),
            listening: Arc::new(Listening::default()),
            stopping: AtomicBool::new(false),
            stopped: watch::channel(false).0,
        });
        let monitor = tokio::spawn(monitor(
            self.db.clone(),
            shared.clone(),
            progress_rx.clone(),
        ));
        let listener = match &self.db {
            Db::Postgres(pool) => {
                let wake_shared = shared.clone();
                Some(Arc::new(AbortOnDrop(tokio::spawn(wakeup::listen(
                    pool.clone(),
                    self.instance.clone(),
                    shared.listening.clone(),
                    move || wake_shared.wake(),
                )))))
            }
            Db::Sqlite(_) => None,
        };
        let task_shared = shared.clone();
        let task = tokio::spawn(async move {
            let mut batch = self.batch;
            loop {
                // Between passes only: a pass cut off mid-transaction leaves
                // its connection to be rolled back behind the process's back.
                if task_shared.stopping.load(Ordering::Acquire) {
                    break;
                }
                let mut applied = 0;
                let started = Instant::now();
                // Pass by pass, not a whole catch-up at once, so that waiters and
                // the stall monitor see every step of a long catch-up.
                match self.pass_up_to(batch).await {
                    Ok(PassOutcome {
                        applied: n,
                        caught_up_to: pos,
                        ..
                    }) => {
                        applied = n;
                        // Walletd's /metrics (names in its `metrics` module).
                        // Only passes that applied something: idle ones would
                        // bury the duration of real work.
                        if n > 0 {
                            metrics::counter!("walletd_projector_events_total").increment(n as u64);
                            metrics::histogram!("walletd_projector_pass_duration_seconds")
                                .record(started.elapsed().as_secs_f64());
                        }
                        // Behind (after downtime, or a reset by `walletd
                        // replay`): larger passes until caught up.
                        batch = if n >= batch as usize {
                            CATCH_UP_BATCH
                        } else {
                            self.batch
                        };
                        let moved = progress_tx.send_if_modified(|cur| {
                            let moved = pos > *cur;
                            if moved {
                                *cur = pos;
                            }
                            moved
                        });
                        if moved {
                            task_shared.idle_passes.store(0, Ordering::Relaxed);
                            task_shared.clear_stall();
                            task_shared.touch();
                        } else {
                            task_shared.idle_passes.fetch_add(1, Ordering::Relaxed);
                        }
                        task_shared.set_error(None);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "projector pass failed; retrying");
                        metrics::counter!("walletd_projector_pass_failures_total").increment(1);
                        // Not a stall: a failing pass (the database restarting)
                        // usually heals within the read-your-writes timeout, and
                        // answering a committed write before its projection
                        // would let the client's next read miss it.
                        task_shared.set_error(Some(e.to_string()));
                        task_shared.idle_passes.store(0, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                // A full batch: more is queued, go on at once. Someone waits for an
                // event that may sit behind a transaction that has not ended yet:
                // look again soon rather than idle. Right after a productive pass,
                // look again at once (more is likely queued). Otherwise sleep until
                // a commit here or a notification from elsewhere wakes the
                // projector; the fallback only guards against a lost wake-up.
                let waiting = task_shared.waiters.load(Ordering::Relaxed) > 0;
                let idle = match (waiting, applied > 0) {
                    _ if batch == CATCH_UP_BATCH => Duration::ZERO,
                    (true, true) => Duration::ZERO,
                    (true, false) => Duration::from_millis(3),
                    (false, _) => self.fallback(&task_shared),
                };
                if idle.is_zero() {
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::select! {
                    _ = task_shared.nudge.notified() => {}
                    _ = tokio::time::sleep(idle) => {}
                }
            }
            task_shared.stopped.send_replace(true);
        });
        ProjectorHandle {
            shared,
            progress: progress_rx,
            task: Arc::new(AbortOnDrop(task)),
            _monitor: Arc::new(AbortOnDrop(monitor)),
            _listener: listener,
        }
    }

    /// How long an idle projector sleeps when nothing wakes it.
    fn fallback(&self, shared: &Shared) -> Duration {
        match &self.db {
            Db::Postgres(_) if shared.listening.is_on() => IDLE_LISTENING,
            Db::Postgres(_) => IDLE_DEAF,
            Db::Sqlite(_) => IDLE_SQLITE,
        }
    }
}

/// Events per pass while a projector is behind: large enough that each
/// commit carries many rows, small enough that a pass stays short (it holds
/// the pass lock and a snapshot) and memory stays flat whatever the log size.
pub const CATCH_UP_BATCH: i64 = 5000;

/// Idle poll while notifications arrive: only a safety net.
pub const IDLE_LISTENING: Duration = Duration::from_secs(10);
/// Idle poll while the listener is reconnecting.
const IDLE_DEAF: Duration = Duration::from_millis(250);
/// Idle poll on SQLite, which has no notifications: picks up what one-shot
/// CLI commands wrote.
const IDLE_SQLITE: Duration = Duration::from_secs(1);

/// How often the monitor measures the lag.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// With nothing happening for this long, the monitor probes only every
/// [`QUIET_PROBE_EVERY`].
const QUIET_AFTER: Duration = Duration::from_secs(5);
const QUIET_PROBE_EVERY: Duration = Duration::from_secs(30);
/// The projector counts as stalled when the oldest unprojected event is this
/// old, the projector has not moved for this long either, and its passes
/// succeed without moving it: a projector that is merely busy keeps moving (it
/// reports every pass, a batch at most), and one whose passes fail (the
/// database restarting) will move as soon as one succeeds; one held back by a
/// transaction passes and finds nothing it may read.
const STALL_AFTER: Duration = Duration::from_secs(2);
/// While stalled, a read-your-writes wait gives up after this long instead of
/// its full timeout, so one stuck transaction does not cost every command the
/// whole timeout.
pub const STALLED_WAIT: Duration = Duration::from_millis(250);
/// A lag older than this is logged as a warning...
pub const LAG_WARN_AFTER: Duration = Duration::from_secs(5);
/// ...at most this often while it lasts.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Measures the lag every [`PROBE_EVERY`]: warns (rate-limited) when it grows
/// past [`LAG_WARN_AFTER`], and raises the stall flag when the projector's
/// passes run but do not move it while events wait. It runs beside the
/// projector, so a pass blocked on a lock cannot hide the lag.
async fn monitor(db: Db, shared: Arc<Shared>, progress: watch::Receiver<LogPosition>) {
    let mut previous: Option<LogPosition> = None;
    let mut moved_at = Instant::now();
    let mut lagging_since: Option<Instant> = None;
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let at = *progress.borrow();
        if previous != Some(at) {
            previous = Some(at);
            moved_at = Instant::now();
        }
        // Idle costs nothing: with no commit, wake-up or waiter for a while,
        // and no lag at the last probe, probe only now and then.
        let quiet = lagging_since.is_none()
            && shared.stall.borrow().is_none()
            && shared.waiters.load(Ordering::Relaxed) == 0
            && shared.quiet_for() >= QUIET_AFTER;
        if !quiet {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() < QUIET_PROBE_EVERY {
            continue;
        } else {
            quiet_since = Instant::now();
        }
        let lag = match lag::measure(&db, at).await {
            Ok(lag) => lag,
            Err(e) => {
                tracing::debug!(error = %e, "projection lag probe failed");
                continue;
            }
        };
        let unmoved =
            moved_at.elapsed() >= STALL_AFTER && shared.idle_passes.load(Ordering::Relaxed) > 0;
        let age = Duration::from_secs_f64(lag.seconds);
        if lag.is_zero() {
            if let Some(since) = lagging_since.take() {
                tracing::info!(
                    after_secs = since.elapsed().as_secs(),
                    "projections caught up with the event log again"
                );
            }
            shared.clear_stall();
            continue;
        }
        if unmoved && age >= STALL_AFTER {
            shared.mark_stalled("events wait and the projector has not moved");
        }
        if age >= LAG_WARN_AFTER {
            lagging_since.get_or_insert_with(Instant::now);
            if shared.may_warn() {
                warn_lag(&db, lag).await;
            }
        }
    }
}

async fn warn_lag(db: &Db, lag: Lag) {
    // On PostgreSQL the usual cause is a transaction that holds the read
    // horizon; name it, so the operator knows what to end.
    match lag::horizon_holder(db).await {
        Ok(Some(h)) if h.seconds >= lag.seconds.min(LAG_WARN_AFTER.as_secs_f64()) => {
            tracing::warn!(
                lag_events = lag.events,
                lag_secs = lag.seconds as u64,
                holder_pid = h.pid,
                holder_database = h.database.as_deref().unwrap_or("?"),
                holder_application = h.application.as_deref().unwrap_or(""),
                holder_state = h.state.as_deref().unwrap_or("?"),
                holder_secs = h.seconds as u64,
                "projections lag behind the event log; the oldest open write transaction \
                 in the PostgreSQL cluster holds back the read horizon until it ends"
            );
        }
        _ => {
            tracing::warn!(
                lag_events = lag.events,
                lag_secs = lag.seconds as u64,
                "projections lag behind the event log"
            );
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Shared {
    nudge: Notify,
    waiters: AtomicUsize,
    last_error: Mutex<Option<String>>,
    /// `Some(since)` while the projector is known to be stuck. A watch, so
    /// that waiters already waiting are cut short when it is raised.
    stall: watch::Sender<Option<Instant>>,
    /// Successful passes since the projector last moved (0 after a failure).
    idle_passes: AtomicU64,
    /// When the last lag warning was logged (rate limit).
    warned_at: Mutex<Option<Instant>>,
    /// When the projector was last woken or moved: the monitor probes often
    /// only while something happens.
    active_at: Mutex<Instant>,
    /// Whether other processes' notifications reach this one.
    listening: Arc<Listening>,
    /// Asked to stop after the current pass ([`ProjectorHandle::stop`]).
    stopping: AtomicBool,
    stopped: watch::Sender<bool>,
}

impl Shared {
    fn wake(&self) {
        self.touch();
        self.nudge.notify_one();
    }

    fn touch(&self) {
        if let Ok(mut at) = self.active_at.lock() {
            *at = Instant::now();
        }
    }

    fn quiet_for(&self) -> Duration {
        self.active_at
            .lock()
            .map(|at| at.elapsed())
            .unwrap_or_default()
    }

    fn set_error(&self, e: Option<String>) {
        if let Ok(mut guard) = self.last_error.lock() {
            *guard = e;
        }
    }

    fn mark_stalled(&self, why: &'static str) {
        let raised = self.stall.send_if_modified(|s| {
            let raise = s.is_none();
            if raise {
                *s = Some(Instant::now());
            }
            raise
        });
        if raised {
            tracing::warn!(
                reason = why,
                wait_ms = STALLED_WAIT.as_millis() as u64,
                "projector stalled: commands answer without waiting the full \
                 read-your-writes timeout until it moves again"
            );
        }
    }

    fn clear_stall(&self) {
        let mut was = None;
        self.stall.send_if_modified(|s| {
            was = s.take();
            was.is_some()
        });
        if let Some(since) = was {
            tracing::info!(
                after_ms = since.elapsed().as_millis() as u64,
                "projector moving again; read-your-writes waits are back to normal"
            );
        }
    }

    /// True at most once per [`WARN_EVERY`].
    fn may_warn(&self) -> bool {
        let Ok(mut last) = self.warned_at.lock() else {
            return false;
        };
        match *last {
            Some(t) if t.elapsed() < WARN_EVERY => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }
}

/// The running projector as the rest of the service sees it.
#[derive(Clone)]
pub struct ProjectorHandle {
    shared: Arc<Shared>,
    progress: watch::Receiver<LogPosition>,
    task: Arc<AbortOnDrop>,
    _monitor: Arc<AbortOnDrop>,
    _listener: Option<Arc<AbortOnDrop>>,
}

impl ProjectorHandle {
    /// Lets the current pass finish, stops the projector and waits (at most
    /// 5 s) until it has: what a one-shot command does before it exits.
    pub async fn stop(&self) {
        let mut stopped = self.shared.stopped.subscribe();
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake();
        let _ = tokio::time::timeout(Duration::from_secs(5), stopped.wait_for(|s| *s)).await;
    }

    /// Tells the projector that new events were committed.
    pub fn nudge(&self) {
        self.shared.wake();
    }

    /// Follows the projections' progress: it changes whenever this process's
    /// projector saw them move (also by another process's pass).
    pub fn progress(&self) -> watch::Receiver<LogPosition> {
        self.progress.clone()
    }

    pub fn position(&self) -> LogPosition {
        *self.progress.borrow()
    }

    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().ok().and_then(|g| g.clone())
    }

    pub fn is_running(&self) -> bool {
        !self.task.0.is_finished()
    }

    /// How long the projector has been known to be stuck, if it is.
    pub fn stalled_for(&self) -> Option<Duration> {
        self.shared.stall.borrow().map(|since| since.elapsed())
    }

    /// Waits until every projection has applied the event at `at`: the basis of
    /// read-your-writes for command endpoints. Gives up after `timeout`, or
    /// after [`STALLED_WAIT`] while the projector is known to be stuck (also
    /// when it becomes known during the wait). A full timeout marks the
    /// projector stuck, so the next commands do not wait it out again.
    pub async fn wait_for(
        &self,
        at: LogPosition,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let mut rx = self.progress.clone();
        if *rx.borrow() >= at {
            return Ok(());
        }
        self.shared.waiters.fetch_add(1, Ordering::Relaxed);
        self.nudge();
        let result = self.wait_bounded(&mut rx, at, timeout).await;
        self.shared.waiters.fetch_sub(1, Ordering::Relaxed);
        if let Err(Waited::Full) = result {
            self.shared
                .mark_stalled("a read-your-writes wait ran out its full timeout");
        }
        result.map_err(|_| ProjectionError::Timeout)
    }

    async fn wait_bounded(
        &self,
        rx: &mut watch::Receiver<LogPosition>,
        at: LogPosition,
        timeout: Duration,
    ) -> Result<(), Waited> {
        let start = tokio::time::Instant::now();
        let mut stall = self.shared.stall.subscribe();
        // Cannot close while `self` holds the sender; if it did, wait plainly.
        let mut stall_open = true;
        loop {
            let stalled = stall_open && stall.borrow_and_update().is_some();
            let (limit, outcome) = if stalled && STALLED_WAIT < timeout {
                (STALLED_WAIT, Waited::Short)
            } else {
                (timeout, Waited::Full)
            };
            tokio::select! {
                reached = rx.wait_for(|p| *p >= at) => {
                    // The sender lives as long as the projector task; gone means stopped.
                    return reached.map(|_| ()).map_err(|_| outcome);
                }
                _ = tokio::time::sleep_until(start + limit) => return Err(outcome),
                changed = stall.changed(), if stall_open => stall_open = changed.is_ok(),
            }
        }
    }
}

/// How a read-your-writes wait ended without reaching its position.
enum Waited {
    /// It waited its whole timeout: evidence that the projector is stuck.
    Full,
    /// It was cut short because the projector was already known to be stuck.
    Short,
}

/// Every projection's changes for the events it has not seen, in log order,
/// advancing `checkpoints` past them; and whether any applied.
fn changes(
    projections: &[Box<dyn Projection>],
    events: &[log::StoredEvent],
    checkpoints: &mut HashMap<String, Checkpoint>,
) -> Result<(WriteSet, bool), ProjectionError> {
    let mut writes = WriteSet::default();
    let mut changed = false;
    for p in projections {
        let cp = checkpoints
            .entry(p.name().to_string())
            .or_insert(Checkpoint {
                at: LogPosition::START,
                applied: 0,
            });
        let seen = cp.at;
        for event in events.iter().filter(|e| e.at > seen) {
            writes.extend(p.apply(event, cp.applied + 1)?);
            cp.at = event.at;
            cp.applied += 1;
            changed = true;
        }
    }
    Ok((writes, changed))
}

/// Frees a batch's decoded events or rows off the pass's path: thousands of
/// small allocations take a measurable part of a catch-up pass to free.
fn discard<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn_blocking(move || drop(value));
        }
        Err(_) => drop(value),
    }
}

/// A batch being read, decoded and projected ahead of the pass that will
/// write it, assuming the checkpoints the pass before it leaves.
struct ReadAhead {
    after: LogPosition,
    assumed: HashMap<String, Checkpoint>,
    task: tokio::task::JoinHandle<Result<Ahead, ProjectionError>>,
}

struct Ahead {
    read: usize,
    writes: WriteSet,
    checkpoints: HashMap<String, Checkpoint>,
    changed: bool,
}

/// Serialises projector passes: an advisory lock on PostgreSQL; on SQLite the
/// first write of a deferred transaction takes the database's write lock.
pub(crate) fn lock_sql(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => "SELECT pg_advisory_xact_lock(131520861219188)",
        Db::Sqlite(_) => "UPDATE projection_checkpoints SET name = name WHERE name = ''",
    }
}
