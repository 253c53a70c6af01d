//! An append that moves a log reader's checkpoint with it: the ledger's
//! process manager stores what it decided from the events up to `to` and
//! the fact that it read them in one transaction, so a crash or a second
//! instance can neither lose nor repeat a decision.
//!
//! The checkpoint moves by compare-and-set, first: a second instance
//! deciding the same events waits on the row, then finds it moved and its
//! whole append fails with `Conflict`.
//!
//! The aggregates the batch touches are also written by clients meanwhile
//! (a hot destination keeps sending). Rather than throw a whole batch away
//! whenever one of them moved, the transaction asks the store which ones
//! did and has the caller decide only those again ([`Restage`]) on their
//! stored state, then inserts; on PostgreSQL a client that commits between
//! that look and the insert costs one more round inside a savepoint.
//! SQLite has one writer: once the checkpoint's UPDATE holds the write
//! lock, nothing else can move; an account that moved before that is not
//! decided again inside the transaction (that would need a second
//! connection while holding the lock the others wait for), the batch is.

use futures_util::future::BoxFuture;
use walletd_projections::{with_db, Db, LogPosition};

use super::append::{InsertEvents, StagedEvent, StagedSnapshot, SNAPSHOT_SQL};
use super::error::CommitError;
use super::heads::{newest_sequences, IDS_PER_QUERY};

/// Rounds of "look, decide the moved ones again, insert" before the whole
/// batch is given up as contended.
const ROUNDS: usize = 8;

/// A reader's checkpoint that must move from `from` to `to`.
pub(crate) struct CheckpointMove {
    pub name: &'static str,
    pub from: LogPosition,
    pub to: LogPosition,
}

/// Compare-and-set: moves only a checkpoint still where the reader found it.
const CHECKPOINT_SQL: &str = "UPDATE ledger_checkpoints SET tx_id = $4, position = $5
 WHERE name = $1 AND tx_id = $2 AND position = $3";

/// The caller's side of the append: its staged events, grouped by
/// aggregate, and how to decide one aggregate's part again.
pub(crate) trait Restage: Send {
    /// Every aggregate with staged events, with the sequence number its
    /// events build on (the state they were decided on).
    fn bases(&self) -> Vec<(String, i64)>;
    /// Every staged event, in the order to insert.
    fn events(&self) -> Vec<&StagedEvent>;
    /// Aggregate `id` moved past its base: decide its commands again on its
    /// stored state. `Ok(false)`: the decisions came out otherwise (a
    /// command accepted before is refused now, or the other way round), so
    /// the whole batch must be decided again.
    fn restage<'a>(&'a mut self, aggregate_id: &'a str)
        -> BoxFuture<'a, Result<bool, CommitError>>;
    fn snapshots(&self) -> Vec<StagedSnapshot>;
}

/// Stores `staged` and moves `checkpoint`, all or nothing. `Conflict`: the
/// checkpoint had moved, or the batch must be decided again from the start.
pub(crate) async fn commit(
    db: &Db,
    aggregate_type: &'static str,
    checkpoint: &CheckpointMove,
    staged: &mut dyn Restage,
) -> Result<Option<LogPosition>, CommitError> {
    let postgres = matches!(db, Db::Postgres(_));
    with_db!(db, pool => {
        let mut tx = pool.begin().await.map_err(CommitError::from_sqlx)?;
        let moved = sqlx::query(CHECKPOINT_SQL)
            .bind(checkpoint.name)
            .bind(checkpoint.from.tx_id)
            .bind(checkpoint.from.position)
            .bind(checkpoint.to.tx_id)
            .bind(checkpoint.to.position)
            .execute(&mut *tx)
            .await
            .map_err(CommitError::from_sqlx)?
            .rows_affected()
            == 1;
        if !moved {
            return Err(CommitError::Conflict);
        }
        let mut newest = None;
        let mut stored = false;
        for _ in 0..ROUNDS {
            let bases = staged.bases();
            if bases.is_empty() {
                stored = true;
                break;
            }
            let ids: Vec<String> = bases.iter().map(|(id, _)| id.clone()).collect();
            let mut heads = std::collections::HashMap::new();
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let found = newest_sequences!(&mut *tx, aggregate_type, chunk)
                    .map_err(CommitError::from_sqlx)?;
                heads.extend(found);
            }
            for (id, base) in &bases {
                if heads.get(id).is_none_or(|n| n <= base) {
                    continue;
                }
                // SQLite: this transaction holds the one write lock, and
                // deciding again would load through another connection of
                // the pool, whose others may all be waiting for that lock.
                // Give the batch back to be decided on fresh state instead.
                if !postgres || !staged.restage(id).await? {
                    return Err(CommitError::Conflict);
                }
            }
            if postgres {
                sqlx::query("SAVEPOINT ledger_insert").execute(&mut *tx).await.map_err(CommitError::from_sqlx)?;
            }
            match tx.insert_events(&staged.events()).await {
                Ok(at) => {
                    newest = at.into_iter().max();
                    stored = true;
                    break;
                }
                // A client took one of the sequence numbers since the look:
                // look again.
                Err(CommitError::Conflict) if postgres => {
                    sqlx::query("ROLLBACK TO SAVEPOINT ledger_insert")
                        .execute(&mut *tx)
                        .await
                        .map_err(CommitError::from_sqlx)?;
                }
                Err(e) => return Err(e),
            }
        }
        if !stored {
            return Err(CommitError::Conflict);
        }
        for s in staged.snapshots() {
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
