//! Rebuilding projections from position 0.
//!
//! The rebuild runs in one transaction under the projector lock: readers keep
//! seeing the old views until it commits, and a live projector in another
//! process waits, then carries on from the rebuilt checkpoints.

use crate::db::Db;
use crate::log::{self, LogPosition};
use crate::projector::{self, Projector};
use crate::ProjectionError;

/// Rebuilds every projection of `projector` from the start of the log.
/// `progress` is called with the number of events applied so far.
pub async fn rebuild(
    projector: &Projector,
    mut progress: impl FnMut(u64),
) -> Result<u64, ProjectionError> {
    projector.register().await?;
    let db = projector.db();
    let batch = 1000;
    crate::with_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(projector::lock_sql(db)).execute(&mut *tx).await?;
        for p in projector.projections() {
            for table in p.tables() {
                sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
            }
        }
        let mut cursor = LogPosition::START;
        let mut applied: i64 = 0;
        loop {
            let events = log::decode_all(crate::fetch_log!(&mut *tx, log::read_sql(db), cursor, batch))?;
            for p in projector.projections() {
                let mut stmts = Vec::new();
                for (i, event) in events.iter().enumerate() {
                    stmts.extend(p.apply(event, applied + 1 + i as i64)?);
                }
                crate::exec_stmts!(tx, stmts)?;
            }
            applied += events.len() as i64;
            if let Some(last) = events.last() {
                cursor = last.at;
            }
            progress(applied as u64);
            if (events.len() as i64) < batch {
                break;
            }
        }
        for p in projector.projections() {
            sqlx::query(
                "UPDATE projection_checkpoints SET tx_id = $2, position = $3, applied = $4 WHERE name = $1",
            )
            .bind(p.name())
            .bind(cursor.tx_id)
            .bind(cursor.position)
            .bind(applied)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(applied as u64)
    })
}

/// Total events in the log, for a progress bar's length.
pub async fn log_length(db: &Db) -> Result<u64, ProjectionError> {
    Ok(log::count(db).await?.max(0) as u64)
}
