//! The one way events reach the log.
//!
//! Every write — one command on one aggregate, a batch of queued commands on
//! a hot aggregate, a unit of work spanning several aggregates — ends here as
//! one `Append`: its events go in with a single multi-row INSERT that returns
//! their global positions, so nobody has to look them up afterwards. A plain
//! append is that one statement and nothing else (one round trip, one
//! commit); an append that also records once-only keys or a snapshot wraps
//! them in one transaction, so all of it is stored or none.
//!
//! Optimistic concurrency is the event table's key (aggregate, sequence): an
//! append whose sequence numbers someone else took fails whole with
//! `Conflict`, and its caller decides again on fresh state.

use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::Row;
use walletd_projections::{with_db, Db, LogPosition};

use super::error::CommitError;
use super::nonces::{self, Nonce};

/// An event decided by an aggregate, not yet stored.
pub(crate) struct StagedEvent {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

/// An aggregate's state as of `last_sequence`, so that loading it later
/// reads only the events after it (cqrs-es's snapshot table and format).
pub(crate) struct StagedSnapshot {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub last_sequence: i64,
    pub payload: Value,
}

#[derive(Default)]
pub(crate) struct Append {
    pub events: Vec<StagedEvent>,
    pub snapshots: Vec<StagedSnapshot>,
    pub nonces: Vec<Nonce>,
}

/// PostgreSQL: one statement however many events, so its plan is prepared
/// once; ORDER BY keeps each aggregate's positions in sequence order.
const INSERT_PG: &str = "INSERT INTO events
   (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 SELECT t, i, s, et, ev, p, m
   FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
        WITH ORDINALITY AS e(t, i, s, et, ev, p, m, n)
  ORDER BY n
 RETURNING tx_id, position";

/// A newer snapshot replaces an older one, never the other way round (two
/// processes may write snapshots of one aggregate).
pub(crate) const SNAPSHOT_SQL: &str = "INSERT INTO snapshots
   (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
 VALUES ($1, $2, $3, 1, $4)
 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
   SET last_sequence = excluded.last_sequence,
       current_snapshot = snapshots.current_snapshot + 1,
       payload = excluded.payload
 WHERE snapshots.last_sequence < excluded.last_sequence";

impl Append {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.nonces.is_empty()
    }

    /// Events only: the INSERT can be its own transaction, alone or in a
    /// group with other plain appends.
    pub(crate) fn is_plain(&self) -> bool {
        !self.events.is_empty() && self.nonces.is_empty() && self.snapshots.is_empty()
    }

    /// Stores several plain appends with one INSERT, all or none; returns
    /// each one's newest position, in order.
    pub(crate) async fn commit_together(
        appends: &[&Append],
        db: &Db,
    ) -> Result<Vec<Option<LogPosition>>, CommitError> {
        // Rows go in ordered by aggregate (each aggregate's events keep their
        // sequence order), as the ledger's process manager orders its own:
        // two appends racing for the same sequence numbers then meet on the
        // first of them and one simply loses, instead of each holding a row
        // the other waits for (a deadlock PostgreSQL takes a second to break).
        let tagged: Vec<(usize, &StagedEvent)> = appends
            .iter()
            .enumerate()
            .flat_map(|(i, a)| a.events.iter().map(move |e| (i, e)))
            .collect();
        let mut order: Vec<usize> = (0..tagged.len()).collect();
        order.sort_by(|&x, &y| {
            let (a, b) = (tagged[x].1, tagged[y].1);
            (a.aggregate_type, &a.aggregate_id, a.sequence).cmp(&(
                b.aggregate_type,
                &b.aggregate_id,
                b.sequence,
            ))
        });
        let events: Vec<&StagedEvent> = order.iter().map(|&k| tagged[k].1).collect();
        let mut at = with_db!(db, pool => {
            let mut conn = pool.acquire().await.map_err(CommitError::from_sqlx)?;
            conn.insert_events(&events).await?
        });
        // Positions are drawn in the order the rows are inserted, so sorted
        // they line up with `events`.
        at.sort_unstable();
        if at.len() != events.len() {
            return Err(CommitError::Store(format!(
                "{} events inserted, {} positions returned",
                events.len(),
                at.len()
            )));
        }
        let mut newest: Vec<Option<LogPosition>> = vec![None; appends.len()];
        for (k, &e) in order.iter().enumerate() {
            let append = tagged[e].0;
            newest[append] = newest[append].max(Some(at[k]));
        }
        Ok(newest)
    }

    /// Stores everything or nothing; returns the newest stored event's
    /// position (`None` when only nonces were recorded).
    pub async fn commit(&self, db: &Db) -> Result<Option<LogPosition>, CommitError> {
        if self.is_empty() {
            return Ok(None);
        }
        let newest = if self.nonces.is_empty() && self.snapshots.is_empty() {
            self.insert_alone(db).await?
        } else {
            self.insert_in_transaction(db).await?
        };
        if let Some(n) = self.nonces.first() {
            if let Err(e) = nonces::prune_now_and_then(db, n.now).await {
                tracing::warn!(error = %e, "could not prune expired nonces");
            }
        }
        Ok(newest)
    }

    /// The common case: the INSERT is its own transaction.
    async fn insert_alone(&self, db: &Db) -> Result<Option<LogPosition>, CommitError> {
        let events: Vec<&StagedEvent> = self.events.iter().collect();
        let at = with_db!(db, pool => {
            let mut conn = pool.acquire().await.map_err(CommitError::from_sqlx)?;
            conn.insert_events(&events).await?
        });
        Ok(at.into_iter().max())
    }

    async fn insert_in_transaction(&self, db: &Db) -> Result<Option<LogPosition>, CommitError> {
        with_db!(db, pool => {
            let mut tx = pool.begin().await.map_err(CommitError::from_sqlx)?;
            for n in &self.nonces {
                let admitted = sqlx::query(nonces::ADMIT)
                    .bind(&n.scope)
                    .bind(&n.key)
                    .bind(n.expires_at)
                    .bind(n.now)
                    .execute(&mut *tx)
                    .await
                    .map_err(CommitError::from_sqlx)?
                    .rows_affected()
                    == 1;
                if !admitted {
                    // Dropping the transaction rolls it back.
                    return Err(CommitError::Replayed);
                }
            }
            let events: Vec<&StagedEvent> = self.events.iter().collect();
            let newest = tx.insert_events(&events).await?.into_iter().max();
            for s in &self.snapshots {
                sqlx::query(SNAPSHOT_SQL)
                    .bind(s.aggregate_type)
                    .bind(&s.aggregate_id)
                    .bind(s.last_sequence)
                    .bind(&s.payload)
                    .execute(&mut *tx)
                    .await
                    .map_err(CommitError::from_sqlx)?;
            }
            tx.commit().await.map_err(CommitError::from_sqlx)?;
            Ok(newest)
        })
    }
}

/// The multi-row INSERT, in each backend's dialect; returns the position of
/// every event it stored.
pub(crate) trait InsertEvents {
    fn insert_events<'a>(
        &'a mut self,
        events: &'a [&'a StagedEvent],
    ) -> BoxFuture<'a, Result<Vec<LogPosition>, CommitError>>;
}

impl InsertEvents for sqlx::PgConnection {
    fn insert_events<'a>(
        &'a mut self,
        events: &'a [&'a StagedEvent],
    ) -> BoxFuture<'a, Result<Vec<LogPosition>, CommitError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let column =
                |f: fn(&StagedEvent) -> String| events.iter().map(|e| f(e)).collect::<Vec<_>>();
            let rows = sqlx::query(INSERT_PG)
                .bind(column(|e| e.aggregate_type.to_string()))
                .bind(column(|e| e.aggregate_id.clone()))
                .bind(events.iter().map(|e| e.sequence).collect::<Vec<_>>())
                .bind(column(|e| e.event_type.clone()))
                .bind(column(|e| e.event_version.clone()))
                .bind(events.iter().map(|e| &e.payload).collect::<Vec<_>>())
                .bind(events.iter().map(|e| &e.metadata).collect::<Vec<_>>())
                .fetch_all(self)
                .await
                .map_err(CommitError::from_sqlx)?;
            positions(&rows)
        })
    }
}

impl InsertEvents for sqlx::SqliteConnection {
    fn insert_events<'a>(
        &'a mut self,
        events: &'a [&'a StagedEvent],
    ) -> BoxFuture<'a, Result<Vec<LogPosition>, CommitError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO events
                   (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
            );
            q.push_values(events, |mut row, e| {
                row.push_bind(e.aggregate_type)
                    .push_bind(&e.aggregate_id)
                    .push_bind(e.sequence)
                    .push_bind(&e.event_type)
                    .push_bind(&e.event_version)
                    .push_bind(&e.payload)
                    .push_bind(&e.metadata);
            });
            // SQLite has no transaction ids; its positions are commit-ordered.
            q.push(" RETURNING 0 AS tx_id, position");
            let rows = q
                .build()
                .fetch_all(self)
                .await
                .map_err(CommitError::from_sqlx)?;
            positions(&rows)
        })
    }
}

fn positions<R: Row>(rows: &[R]) -> Result<Vec<LogPosition>, CommitError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| {
            Ok(LogPosition {
                tx_id: row.try_get("tx_id").map_err(CommitError::from_sqlx)?,
                position: row.try_get("position").map_err(CommitError::from_sqlx)?,
            })
        })
        .collect()
}
