//! Where a report's events come from: the log itself, read in global order
//! (the projections' gap-safe reader, the order the sealer seals) up to a
//! cut; or the audit-log projection, for the live report.

use sqlx::Row;
use walletd_projections::log::read_after;
use walletd_projections::{with_db, Db, LogPosition};

use tlog_tiles::tlog::Hash;

use super::record::Record;
use super::ReportError;
use crate::domain::Timestamp;
use crate::transparency::export::Entry;
use crate::transparency::leaf;
use crate::transparency::verify::Head;

const PAGE: i64 = 5_000;

/// How far into the log a report reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Cut {
    /// The first N events (log positions 0..N; the tree of size N).
    Events(u64),
    /// The longest prefix of events recorded at or before this time.
    Time(Timestamp),
}

impl Cut {
    /// A time cut ends at the first event recorded after it.
    fn excludes(&self, record: &Record) -> bool {
        match self {
            Cut::Time(t) => record
                .at
                .as_deref()
                .and_then(Timestamp::parse)
                .is_some_and(|at| at > *t),
            Cut::Events(_) => false,
        }
    }
}

/// Where reading stopped: the number of events read and the last one's
/// store position and time.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Reached {
    /// Events read: log positions 0 to `events` − 1.
    pub events: u64,
    /// The last event's row in the store (`position` of the export).
    pub position: Option<i64>,
    /// When the last event was recorded.
    pub at: Option<String>,
}

/// Folds the log's events up to `cut` into `apply`.
pub async fn from_log(
    db: &Db,
    cut: &Cut,
    mut apply: impl FnMut(&Record),
) -> Result<Reached, ReportError> {
    let mut reached = Reached::default();
    let mut after = LogPosition::START;
    loop {
        let limit = match cut {
            Cut::Events(n) => PAGE.min(n.saturating_sub(reached.events) as i64),
            Cut::Time(_) => PAGE,
        };
        if limit == 0 {
            return Ok(reached);
        }
        let events = read_after(db, after, limit).await?;
        let Some(last) = events.last() else { break };
        after = last.at;
        for e in &events {
            let record = Record::from_stored(e);
            if cut.excludes(&record) {
                return Ok(reached);
            }
            apply(&record);
            reached.events += 1;
            reached.position = Some(e.at.position);
            reached.at = record.at;
        }
    }
    match cut {
        Cut::Events(n) if reached.events < *n => Err(ReportError::BeyondLog {
            asked: *n,
            length: reached.events,
        }),
        _ => Ok(reached),
    }
}

/// Folds every event the audit-log projection holds into `apply`.
pub async fn from_projection(
    db: &Db,
    mut apply: impl FnMut(&Record),
) -> Result<Reached, ReportError> {
    let mut reached = Reached::default();
    loop {
        let rows = with_db!(db, pool => {
            let mut out = Vec::new();
            for r in sqlx::query(
                "SELECT seq, position, aggregate_type, aggregate_id, event_type, payload,
                        actor, auth_method, occurred_at
                   FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(reached.events as i64)
            .bind(PAGE)
            .fetch_all(pool)
            .await?
            {
                let payload: String = r.try_get("payload")?;
                let at: String = r.try_get("occurred_at")?;
                out.push((
                    r.try_get::<i64, _>("seq")?,
                    r.try_get::<i64, _>("position")?,
                    Record {
                        aggregate_type: r.try_get("aggregate_type")?,
                        aggregate_id: r.try_get("aggregate_id")?,
                        event_type: r.try_get("event_type")?,
                        body: serde_json::from_str(&payload).unwrap_or_default(),
                        actor: r.try_get("actor")?,
                        auth_method: r.try_get("auth_method")?,
                        at: (!at.is_empty()).then_some(at),
                    },
                ));
            }
            out
        });
        if rows.is_empty() {
            return Ok(reached);
        }
        for (seq, position, record) in rows {
            apply(&record);
            reached.events = seq as u64;
            reached.position = Some(position);
            reached.at = record.at;
        }
    }
}

/// Folds an export (`walletd events export`, JSON lines) up to `cut` (all of
/// it without one). The records must be the log's leaves 0, 1, 2… in order;
/// each leaf is recomputed from its event and folded into a tree head, so
/// the root returned is that of exactly the events the report read.
pub fn from_export(
    lines: impl std::io::BufRead,
    cut: Option<&Cut>,
    mut apply: impl FnMut(&Record),
) -> Result<(Reached, Hash), ReportError> {
    let mut reached = Reached::default();
    let mut head = Head::default();
    for (n, line) in lines.lines().enumerate() {
        let bad = |m: String| ReportError::Export(format!("line {}: {m}", n + 1));
        if let Some(Cut::Events(limit)) = cut {
            if reached.events == *limit {
                break;
            }
        }
        let line = line.map_err(|e| bad(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let entry = Entry::from_json(&v).map_err(bad)?;
        if entry.index != reached.events {
            return Err(bad(format!(
                "expected log position {}, found {}: the export is filtered, reordered or incomplete",
                reached.events, entry.index
            )));
        }
        let leaf_hash = leaf::hash(entry.index, &entry.event);
        if leaf_hash.0 != entry.leaf_hash {
            return Err(bad(format!(
                "the event at position {} does not match its leaf hash: it was altered",
                entry.index
            )));
        }
        let record = Record::from_stored(&entry.event);
        if cut.is_some_and(|c| c.excludes(&record)) {
            break;
        }
        apply(&record);
        head.push(leaf_hash);
        reached.events += 1;
        reached.position = Some(entry.event.at.position);
        reached.at = record.at;
    }
    match cut {
        Some(Cut::Events(n)) if reached.events < *n => Err(ReportError::BeyondLog {
            asked: *n,
            length: reached.events,
        }),
        _ => Ok((reached, head.root())),
    }
}
