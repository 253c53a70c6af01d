//! The sealer: appends every event, in global order, to the tree and signs a
//! checkpoint after each pass. It reads the log exactly as the projections
//! do (below PostgreSQL's horizon of running transactions, so a late commit
//! is never skipped), in its own transactions, and never touches the write
//! path: the write path does not wait for it.
//!
//! One pass = one transaction: the next leaves, their stored hashes and the
//! signed checkpoint commit together, so a crash leaves the tree at the last
//! checkpoint. With several `walletd serve` on one database, a pass takes a
//! transaction-scoped advisory lock first; the others skip their turn.

use std::sync::Weak;
use std::time::Duration;

use sqlx::Row;
use tlog_tiles::tlog::{
    record_hash, stored_hash_index, stored_hashes_for_record_hash, sub_tree_index, tree_hash, Hash,
    HASH_SIZE,
};
use walletd_projections::log::{decode_all, read_sql};
use walletd_projections::{fetch_log, with_db, Db, LogPosition};

use super::hashes::{fetch_hashes, HashMapByIndex, Known, TreeError};
use super::leaf;
use super::signing::LogSigner;
use crate::app::App;
use crate::domain::Timestamp;

/// Events per pass.
pub const BATCH: i64 = 5_000;
/// Without news from the projector, look again after this long.
const FALLBACK: Duration = Duration::from_secs(30);
const LOCK_SQL: &str = "SELECT pg_try_advisory_xact_lock(131520861219190) AS got";

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sealed {
    /// Leaves added.
    pub leaves: u64,
    /// The tree's size afterwards.
    pub size: u64,
}

/// Seals up to `batch` events. Returns `None` when another process holds
/// the sealer's lock.
pub async fn pass(db: &Db, signer: &LogSigner, batch: i64) -> Result<Option<Sealed>, TreeError> {
    with_db!(db, pool => {
        let mut tx = pool.begin().await?;
        if matches!(db, Db::Postgres(_)) {
            let got: bool = sqlx::query(LOCK_SQL).fetch_one(&mut *tx).await?.try_get("got")?;
            if !got {
                return Ok(None);
            }
        } else {
            // SQLite: take the write lock first, so two processes do not both
            // read the same tail and then collide on the insert.
            sqlx::query("DELETE FROM log_checkpoints WHERE 0").execute(&mut *tx).await?;
        }
        let last = sqlx::query(
            "SELECT idx, tx_id, event_position FROM log_leaves ORDER BY idx DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let (size, after) = match last {
            Some(r) => (
                r.try_get::<i64, _>("idx")? as u64 + 1,
                LogPosition {
                    tx_id: r.try_get("tx_id")?,
                    position: r.try_get("event_position")?,
                },
            ),
            None => (0, LogPosition::START),
        };
        let sql = read_sql(db);
        let rows = fetch_log!(&mut *tx, sql, after, batch);
        let events = decode_all(rows).map_err(|e| TreeError::Tlog(e.to_string()))?;
        if events.is_empty() {
            tx.commit().await?;
            return Ok(Some(Sealed { leaves: 0, size }));
        }

        // The frontier of the current tree (its complete subtrees' roots) is
        // all that the new leaves' hashes build on.
        let frontier = if size == 0 { Vec::new() } else { sub_tree_index(0, size, vec![]) };
        let mut known: HashMapByIndex = fetch_hashes!(&mut *tx, db, frontier);
        if known.len() < frontier.len() {
            let absent = frontier.into_iter().filter(|i| !known.contains_key(i)).collect();
            return Err(TreeError::Missing(absent));
        }
        let mut leaves = Vec::with_capacity(events.len());
        let mut new_hashes: Vec<(u64, Hash)> = Vec::with_capacity(events.len() * 2);
        for (i, event) in events.iter().enumerate() {
            let n = size + i as u64;
            let leaf_hash = record_hash(&leaf::encode(n, event));
            let stored = stored_hashes_for_record_hash(n, leaf_hash, &Known::new(&known))
                .map_err(|e| TreeError::Tlog(e.to_string()))?;
            let first = stored_hash_index(0, n);
            for (k, h) in stored.into_iter().enumerate() {
                known.insert(first + k as u64, h);
                new_hashes.push((first + k as u64, h));
            }
            leaves.push((n, event.at, leaf_hash));
        }
        let new_size = size + events.len() as u64;
        let root = tree_hash(new_size, &Known::new(&known))
            .map_err(|e| TreeError::Tlog(e.to_string()))?;
        let note = signer.sign(new_size, root)?;

        for chunk in leaves.chunks(1000) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO log_leaves (idx, event_position, tx_id, leaf_hash) ",
            );
            q.push_values(chunk, |mut b, (n, at, h)| {
                b.push_bind(*n as i64)
                    .push_bind(at.position)
                    .push_bind(at.tx_id)
                    .push_bind(h.0.to_vec());
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in new_hashes.chunks(1000) {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO log_hashes (idx, hash) ");
            q.push_values(chunk, |mut b, (i, h)| {
                b.push_bind(*i as i64).push_bind(h.0.to_vec());
            });
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO log_checkpoints (size, root, at, note) VALUES ($1, $2, $3, $4)")
            .bind(new_size as i64)
            .bind(root.0.to_vec())
            .bind(Timestamp::now().to_text())
            .bind(&note)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Sealed { leaves: events.len() as u64, size: new_size }))
    })
}

/// Seals until the log (below the horizon) is in the tree.
pub async fn catch_up(db: &Db, signer: &LogSigner) -> Result<u64, TreeError> {
    let mut size = 0;
    loop {
        match pass(db, signer, BATCH).await? {
            Some(s) if s.leaves > 0 => size = s.size,
            Some(s) => return Ok(s.size.max(size)),
            None => return Ok(size),
        }
    }
}

/// Runs beside the API until the app is dropped: a pass whenever the
/// projector moves (new events are below the horizon), so an idle service
/// costs nothing here.
pub fn spawn(app: Weak<App>) {
    let Some(mut progress) = app.upgrade().map(|a| a.wallets.projector().progress()) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            // Marked seen before the pass, not after: progress made while the
            // pass runs must wake the next one, or those events would wait
            // for the fallback.
            progress.borrow_and_update();
            let wait = {
                let Some(app) = app.upgrade() else { return };
                let Some(signer) = app.log_signer.clone() else {
                    return;
                };
                match pass(&app.db, &signer, BATCH).await {
                    Ok(Some(s)) if s.leaves as i64 == BATCH => Duration::ZERO,
                    Ok(_) => FALLBACK,
                    Err(e) => {
                        tracing::error!(error = %e, "sealing the log failed; retrying");
                        Duration::from_secs(5)
                    }
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = progress.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    });
}

/// The latest signed checkpoint: (size, root, note).
pub async fn latest_checkpoint(db: &Db) -> Result<Option<(u64, Hash, String)>, TreeError> {
    let row: Option<(i64, Vec<u8>, String)> = with_db!(db, pool => {
        match sqlx::query("SELECT size, root, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(pool)
            .await?
        {
            Some(r) => Some((r.try_get("size")?, r.try_get("root")?, r.try_get("note")?)),
            None => None,
        }
    });
    let Some((size, root, note)) = row else {
        return Ok(None);
    };
    let root = <[u8; HASH_SIZE]>::try_from(root.as_slice()).map_err(|_| TreeError::Malformed)?;
    Ok(Some((size as u64, Hash(root), note)))
}
