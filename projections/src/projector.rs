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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Row;
use tokio::sync::{watch, Notify};

use crate::db::Db;
use crate::log::{self, LogPosition};
use crate::views::Projection;
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
    projections: Vec<Box<dyn Projection>>,
    batch: i64,
}

#[derive(Clone, Copy, Debug)]
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
}

impl Projector {
    pub fn new(db: Db, projections: Vec<Box<dyn Projection>>) -> Self {
        Self {
            db,
            projections,
            batch: 500,
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
            for p in &self.projections {
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

    /// One pass over at most one batch.
    pub async fn pass(&self) -> Result<PassOutcome, ProjectionError> {
        let db = &self.db;
        crate::with_db!(db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock_sql(db)).execute(&mut *tx).await?;
            let mut checkpoints = read_checkpoints!(&mut *tx);
            let low = self.lowest(&checkpoints);
            let events = log::decode_all(crate::fetch_log!(&mut *tx, log::read_sql(db), low, self.batch))?;
            // Projection by projection, so that each one's row inserts for the
            // whole batch go out as a few multi-row statements.
            let mut changed = false;
            for p in &self.projections {
                let cp = checkpoints.entry(p.name().to_string()).or_insert(Checkpoint {
                    at: LogPosition::START,
                    applied: 0,
                });
                let mut stmts = Vec::new();
                let seen = cp.at;
                for event in events.iter().filter(|e| e.at > seen) {
                    stmts.extend(p.apply(event, cp.applied + 1)?);
                    cp.at = event.at;
                    cp.applied += 1;
                    changed = true;
                }
                crate::exec_stmts!(tx, stmts)?;
            }
            if changed {
                for p in &self.projections {
                    let cp = checkpoints[p.name()];
                    sqlx::query(
                        "UPDATE projection_checkpoints SET tx_id = $2, position = $3, applied = $4
                          WHERE name = $1",
                    )
                    .bind(p.name())
                    .bind(cp.at.tx_id)
                    .bind(cp.at.position)
                    .bind(cp.applied)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(PassOutcome {
                applied: events.len(),
                caught_up_to: self.lowest(&checkpoints),
            })
        })
    }

    /// Passes until the log has nothing more below its horizon.
    pub async fn catch_up(&self) -> Result<LogPosition, ProjectionError> {
        Ok(self.catch_up_counting().await?.0)
    }

    /// Like [`catch_up`](Self::catch_up), also returning how many events it applied.
    async fn catch_up_counting(&self) -> Result<(LogPosition, usize), ProjectionError> {
        let mut total = 0;
        loop {
            let outcome = self.pass().await?;
            total += outcome.applied;
            if outcome.applied < self.batch as usize {
                return Ok((outcome.caught_up_to, total));
            }
        }
    }

    fn lowest(&self, checkpoints: &HashMap<String, Checkpoint>) -> LogPosition {
        self.projections
            .iter()
            .map(|p| checkpoints.get(p.name()).map(|c| c.at).unwrap_or_default())
            .min()
            .unwrap_or_default()
    }

    /// Runs the projector in the background for the life of the process.
    pub fn spawn(self) -> ProjectorHandle {
        let (progress_tx, progress_rx) = watch::channel(LogPosition::START);
        let shared = Arc::new(Shared {
            nudge: Notify::new(),
            waiters: AtomicUsize::new(0),
            last_error: Mutex::new(None),
        });
        let task_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let mut applied = 0;
                match self.catch_up_counting().await {
                    Ok((pos, n)) => {
                        applied = n;
                        progress_tx.send_if_modified(|cur| {
                            let moved = pos > *cur;
                            if moved {
                                *cur = pos;
                            }
                            moved
                        });
                        task_shared.set_error(None);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "projector pass failed; retrying");
                        task_shared.set_error(Some(e.to_string()));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                // Someone waits for an event that may sit behind a transaction that
                // has not ended yet: look again soon rather than idle. Right after a
                // productive pass, look again at once (more is likely queued).
                let waiting = task_shared.waiters.load(Ordering::Relaxed) > 0;
                let idle = match (waiting, applied > 0) {
                    (true, true) => Duration::ZERO,
                    (true, false) => Duration::from_millis(3),
                    (false, _) => Duration::from_millis(250),
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
        });
        ProjectorHandle {
            shared,
            progress: progress_rx,
            task: Arc::new(AbortOnDrop(task)),
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
}

impl Shared {
    fn set_error(&self, e: Option<String>) {
        if let Ok(mut guard) = self.last_error.lock() {
            *guard = e;
        }
    }
}

/// The running projector as the rest of the service sees it.
#[derive(Clone)]
pub struct ProjectorHandle {
    shared: Arc<Shared>,
    progress: watch::Receiver<LogPosition>,
    task: Arc<AbortOnDrop>,
}

impl ProjectorHandle {
    /// Tells the projector that new events were committed.
    pub fn nudge(&self) {
        self.shared.nudge.notify_one();
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

    /// Waits until every projection has applied the event at `at`: the basis of
    /// read-your-writes for command endpoints.
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
        let result = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= at)).await;
        self.shared.waiters.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ProjectionError::Timeout),
        }
    }
}

/// Serialises projector passes: an advisory lock on PostgreSQL; on SQLite the
/// first write of a deferred transaction takes the database's write lock.
pub(crate) fn lock_sql(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => "SELECT pg_advisory_xact_lock(131520861219188)",
        Db::Sqlite(_) => "UPDATE projection_checkpoints SET name = name WHERE name = ''",
    }
}
