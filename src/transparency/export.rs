//! The sealed log, read back in tree order for export: each event with its
//! leaf index and leaf hash, page by page (constant memory for any size).

use base64::Engine as _;
use serde_json::{json, Value};
use sqlx::Row;
use walletd_projections::{with_db, Db, LogPosition, StoredEvent};

use super::hashes::TreeError;

/// One exported event: what the leaf commits to, and the stored leaf hash.
#[derive(Clone, Debug)]
pub struct Entry {
    pub index: u64,
    pub event: StoredEvent,
    pub leaf_hash: [u8; 32],
}

impl Entry {
    /// The JSON-lines record (the leaf's fields, plus `leaf_hash` in base64).
    pub fn to_json(&self) -> Value {
        let e = &self.event;
        json!({
            "index": self.index,
            "position": e.at.position,
            "aggregate_type": e.aggregate_type,
            "aggregate_id": e.aggregate_id,
            "sequence": e.sequence,
            "event_type": e.event_type,
            "event_version": e.event_version,
            "payload": e.payload,
            "metadata": e.metadata,
            "leaf_hash": base64::engine::general_purpose::STANDARD.encode(self.leaf_hash),
        })
    }

    /// Reads a record back (the offline verifier); a message naming what is
    /// wrong otherwise.
    pub fn from_json(v: &Value) -> Result<Entry, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(format!("`{k}` is missing or not a string"))
        };
        let n = |k: &str| {
            v.get(k)
                .and_then(Value::as_i64)
                .ok_or(format!("`{k}` is missing or not an integer"))
        };
        let index = v
            .get("index")
            .and_then(Value::as_u64)
            .ok_or("`index` is missing or not an integer")?;
        let leaf_hash = base64::engine::general_purpose::STANDARD
            .decode(s("leaf_hash")?)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or("`leaf_hash` is not 32 bytes of base64")?;
        Ok(Entry {
            index,
            leaf_hash,
            event: StoredEvent {
                at: LogPosition {
                    tx_id: 0,
                    position: n("position")?,
                },
                aggregate_type: s("aggregate_type")?,
                aggregate_id: s("aggregate_id")?,
                sequence: n("sequence")?,
                event_type: s("event_type")?,
                event_version: s("event_version")?,
                payload: v.get("payload").cloned().ok_or("`payload` is missing")?,
                metadata: v.get("metadata").cloned().ok_or("`metadata` is missing")?,
            },
        })
    }
}

/// Up to `limit` sealed events from leaf `from` on, below leaf `to`.
pub async fn page(db: &Db, from: u64, to: u64, limit: i64) -> Result<Vec<Entry>, TreeError> {
    let sql = match db {
        Db::Postgres(_) => {
            "SELECT l.idx, l.leaf_hash, e.position, e.aggregate_type, e.aggregate_id, e.sequence,
                    e.event_type, e.event_version, e.payload::text AS payload,
                    e.metadata::text AS metadata
               FROM log_leaves l JOIN events e ON e.position = l.event_position
              WHERE l.idx >= $1 AND l.idx < $2 ORDER BY l.idx LIMIT $3"
        }
        Db::Sqlite(_) => {
            "SELECT l.idx, l.leaf_hash, e.position, e.aggregate_type, e.aggregate_id, e.sequence,
                    e.event_type, e.event_version, e.payload, e.metadata
               FROM log_leaves l JOIN events e ON e.position = l.event_position
              WHERE l.idx >= $1 AND l.idx < $2 ORDER BY l.idx LIMIT $3"
        }
    };
    let to = to.min(i64::MAX as u64) as i64;
    let rows = with_db!(db, pool => {
        let mut out = Vec::new();
        for r in sqlx::query(sql)
            .bind(from as i64)
            .bind(to)
            .bind(limit)
            .fetch_all(pool)
            .await?
        {
            let payload: String = r.try_get("payload")?;
            let metadata: String = r.try_get("metadata")?;
            let hash: Vec<u8> = r.try_get("leaf_hash")?;
            out.push((
                r.try_get::<i64, _>("idx")?,
                hash,
                StoredEvent {
                    at: LogPosition { tx_id: 0, position: r.try_get("position")? },
                    aggregate_type: r.try_get("aggregate_type")?,
                    aggregate_id: r.try_get("aggregate_id")?,
                    sequence: r.try_get("sequence")?,
                    event_type: r.try_get("event_type")?,
                    event_version: r.try_get("event_version")?,
                    // Stored text that is not JSON any more (tampering) is
                    // kept as a string, so its leaf fails to match and the
                    // verifier names the event.
                    payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
                    metadata: serde_json::from_str(&metadata).unwrap_or(Value::String(metadata)),
                },
            ));
        }
        out
    });
    rows.into_iter()
        .map(|(idx, hash, event)| {
            Ok(Entry {
                index: idx as u64,
                leaf_hash: <[u8; 32]>::try_from(hash.as_slice())
                    .map_err(|_| TreeError::Malformed)?,
                event,
            })
        })
        .collect()
}
