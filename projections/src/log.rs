//! Reading the event log in global order.
//!
//! PostgreSQL: a BIGSERIAL alone is not a safe cursor, because a transaction that
//! took position 10 may commit after one that took 11; a reader that saw 11 and
//! moved past would skip 10 for ever. Every event row therefore records the id of
//! the transaction that wrote it, and readers order by (tx_id, position) and only
//! read rows whose transaction is below the oldest still-running one
//! (`pg_snapshot_xmin`). Every transaction below that horizon has ended, and every
//! future transaction gets a larger id, so nothing can appear behind the cursor.
//!
//! SQLite has a single writer, so commit order is rowid order and the position
//! alone is the cursor (tx_id is stored as 0).

use serde_json::Value;
use sqlx::Row;

use crate::db::Db;
use crate::ProjectionError;

/// A point in the global order. Compared as (tx_id, position).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    pub tx_id: i64,
    pub position: i64,
}

impl LogPosition {
    pub const START: LogPosition = LogPosition {
        tx_id: 0,
        position: 0,
    };
}

/// An event as stored: the contract between the write side and every reader.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub at: LogPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

impl StoredEvent {
    /// cqrs-es stores an enum event externally tagged: `{"WalletCreated": {...}}`.
    pub fn body(&self) -> &Value {
        self.payload.get(&self.event_type).unwrap_or(&self.payload)
    }

    pub fn meta(&self, key: &str) -> Option<String> {
        self.metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

const PG_READ: &str = "
SELECT tx_id, position, aggregate_type, aggregate_id, sequence, event_type, event_version,
       payload::text AS payload, metadata::text AS metadata
  FROM events
 WHERE (tx_id, position) > ($1, $2)
   AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
 ORDER BY tx_id, position
 LIMIT $3";

const SQLITE_READ: &str = "
SELECT 0 AS tx_id, position, aggregate_type, aggregate_id, sequence, event_type, event_version,
       payload, metadata
  FROM events
 WHERE position > $2 AND $1 = 0
 ORDER BY position
 LIMIT $3";

/// The log query for a backend.
pub fn read_sql(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => PG_READ,
        Db::Sqlite(_) => SQLITE_READ,
    }
}

/// Fetches log rows on any connection, pool or transaction of either backend.
/// A projector must read on its own transaction: a second connection taken
/// from the pool while holding the projector lock can deadlock a busy pool.
#[macro_export]
macro_rules! fetch_log {
    ($conn:expr, $sql:expr, $after:expr, $limit:expr) => {{
        use sqlx::Row as _;
        let rows = sqlx::query($sql)
            .bind($after.tx_id)
            .bind($after.position)
            .bind($limit)
            .fetch_all($conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push($crate::log::RawRow {
                tx_id: row.try_get("tx_id")?,
                position: row.try_get("position")?,
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                sequence: row.try_get("sequence")?,
                event_type: row.try_get("event_type")?,
                event_version: row.try_get("event_version")?,
                payload: row.try_get("payload")?,
                metadata: row.try_get("metadata")?,
            });
        }
        out
    }};
}

/// Reads up to `limit` events after `after`, in global order, never past the
/// horizon below which the log can no longer change.
pub async fn read_after(
    db: &Db,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let sql = read_sql(db);
    let rows = crate::with_db!(db, pool => crate::fetch_log!(pool, sql, after, limit));
    decode_all(rows)
}

pub fn decode_all(rows: Vec<RawRow>) -> Result<Vec<StoredEvent>, ProjectionError> {
    rows.into_iter().map(RawRow::decode).collect()
}

/// Number of events in the log (for progress reporting).
pub async fn count(db: &Db) -> Result<i64, ProjectionError> {
    Ok(crate::with_db!(db, pool => {
        sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(pool)
            .await?
            .try_get::<i64, _>("n")?
    }))
}

#[doc(hidden)]
pub struct RawRow {
    pub tx_id: i64,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
}

impl RawRow {
    fn decode(self) -> Result<StoredEvent, ProjectionError> {
        let bad = |reason: String| ProjectionError::Undecodable {
            position: self.position,
            event_type: self.event_type.clone(),
            version: self.event_version.clone(),
            reason,
        };
        let payload = serde_json::from_str(&self.payload).map_err(|e| bad(e.to_string()))?;
        let metadata = serde_json::from_str(&self.metadata).map_err(|e| bad(e.to_string()))?;
        Ok(StoredEvent {
            at: LogPosition {
                tx_id: self.tx_id,
                position: self.position,
            },
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload,
            metadata,
        })
    }
}
