//! Who holds an unassigned key (migration 0011): the SQL behind key pools
//! that outlive their process and the sweeper.
//!
//! A key is assigned by the `WalletCreated` event that names it; until then
//! it is held by the process that made or claimed it (`claimed_by` = that
//! process's pool id, `claimed_at` = the database clock in Unix seconds,
//! refreshed while the process lives). A claim that has not been refreshed
//! for [`CLAIM_LEASE`] has lapsed: its process is gone. Keys that are free
//! (released, or lapsed) and that no `WalletCreated` event names can be
//! claimed by another pool or, once older than the grace period, swept.
//! Whether an event names a key is always read from the event log itself,
//! never from a projection, so a commit the read side has not seen yet still
//! protects its key.
//!
//! `claimed_by = 'assigned'` marks keys found in use, so the free-key scans
//! stay small; `'retired'` marks MPC shares the sweeper is removing (the
//! cosigner's share first, then ours), which nothing may claim again.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Row;
use walletd_projections::{with_db, Db};

/// How long a claim holds without a refresh.
pub const CLAIM_LEASE: Duration = Duration::from_secs(600);
/// How often a live pool refreshes its claims.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

pub(crate) const ASSIGNED: &str = "assigned";
pub(crate) const RETIRED: &str = "retired";

/// Ids per statement when a list of keys is bound.
const CHUNK: usize = 500;

/// The two kinds of key rows that pools hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimTable {
    /// `key_vault`: single keys.
    KeyVault,
    /// `mpc_shares`, party 1's rows (party 2's live on the cosigner's side
    /// and are removed only when party 1 releases them).
    Party1Shares,
}

impl ClaimTable {
    /// The custody kind whose pool holds these rows (the `custody` label).
    pub fn custody(self) -> super::CustodyKind {
        match self {
            ClaimTable::KeyVault => super::CustodyKind::Local,
            ClaimTable::Party1Shares => super::CustodyKind::Mpc,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ClaimTable::KeyVault => "key_vault",
            ClaimTable::Party1Shares => "mpc_shares",
        }
    }

    /// Restricts a statement to this kind's rows (`t` is the table or alias).
    fn scope(self, t: &str) -> String {
        match self {
            ClaimTable::KeyVault => format!("{t}.custody = 'local'"),
            ClaimTable::Party1Shares => format!("{t}.party = 1 AND {t}.frozen IS NULL"),
        }
    }
}

fn is_pg(db: &Db) -> bool {
    matches!(db, Db::Postgres(_))
}

/// The database clock in Unix seconds, so that every process compares
/// claims against the same clock.
pub(crate) fn now(db: &Db) -> &'static str {
    if is_pg(db) {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS bigint)"
    } else {
        "CAST(strftime('%s', 'now') AS INTEGER)"
    }
}

/// `<t>.key_id` is named by a `WalletCreated` event (index events_created_key_id).
fn referenced(db: &Db, t: &str) -> String {
    let key = if is_pg(db) {
        "(e.payload->'WalletCreated'->>'key_id')"
    } else {
        "json_extract(e.payload, '$.WalletCreated.key_id')"
    };
    format!(
        "EXISTS (SELECT 1 FROM events e WHERE e.event_type = 'WalletCreated' AND {key} = {t}.key_id)"
    )
}

/// `<t>` is held by no live pool: released, or its claim lapsed. The first
/// term repeats the partial index's predicate word for word (SQLite uses a
/// partial index only then).
fn free(db: &Db, t: &str) -> String {
    format!(
        "({t}.claimed_by IS NULL OR {t}.claimed_by <> '{ASSIGNED}') \
         AND ({t}.claimed_by IS NULL OR ({t}.claimed_by <> '{RETIRED}' \
              AND {t}.claimed_at < {now} - {lease}))",
        now = now(db),
        lease = CLAIM_LEASE.as_secs()
    )
}

/// Claims up to `n` free, unreferenced keys for `owner`, oldest first, among
/// those sealed under one of `master_key_ids`. Safe against other processes
/// claiming at the same time: each row is taken by one of them.
pub async fn claim(
    db: &Db,
    table: ClaimTable,
    owner: &str,
    n: usize,
    master_key_ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    if n == 0 || master_key_ids.is_empty() {
        return Ok(Vec::new());
    }
    let name = table.name();
    let lock = if is_pg(db) {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let head = format!("UPDATE {name} SET claimed_by = ",);
    let set_at = format!(", claimed_at = {} WHERE {} AND {} AND key_id IN (SELECT c.key_id FROM {name} c WHERE {} AND {} AND NOT {} AND c.master_key_id IN (",
        now(db),
        table.scope(name),
        free(db, name),
        table.scope("c"),
        free(db, "c"),
        referenced(db, "c"),
    );
    let tail = format!(") ORDER BY c.created_at LIMIT {n}{lock}) RETURNING key_id");
    Ok(with_db!(db, pool => {
        let mut q = sqlx::QueryBuilder::new(head.as_str());
        q.push_bind(owner).push(set_at.as_str());
        let mut ids = q.separated(", ");
        for id in master_key_ids {
            ids.push_bind(id);
        }
        q.push(tail.as_str());
        let rows = q.build().fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(r.try_get::<String, _>("key_id")?);
        }
        out
    }))
}

/// Confirms `owner`'s claims on `ids`; returns the ids that are still its own
/// (a claim that lapsed and was taken over is not).
pub async fn refresh(
    db: &Db,
    table: ClaimTable,
    owner: &str,
    ids: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut kept = HashSet::with_capacity(ids.len());
    let name = table.name();
    let head = format!(
        "UPDATE {name} SET claimed_at = {} WHERE {} AND claimed_by = ",
        now(db),
        table.scope(name)
    );
    for chunk in ids.chunks(CHUNK) {
        with_db!(db, pool => {
            let mut q = sqlx::QueryBuilder::new(head.as_str());
            q.push_bind(owner).push(" AND key_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            q.push(") RETURNING key_id");
            for r in q.build().fetch_all(pool).await? {
                kept.insert(r.try_get::<String, _>("key_id")?);
            }
        });
    }
    Ok(kept)
}

/// Gives up `owner`'s claims on `ids` (shutdown): the next pool may take them.
pub async fn release(
    db: &Db,
    table: ClaimTable,
    owner: &str,
    ids: &[String],
) -> Result<u64, sqlx::Error> {
    let name = table.name();
    let head = format!(
        "UPDATE {name} SET claimed_by = NULL, claimed_at = NULL WHERE {} AND claimed_by = ",
        table.scope(name)
    );
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        n += with_db!(db, pool => {
            let mut q = sqlx::QueryBuilder::new(head.as_str());
            q.push_bind(owner).push(" AND key_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            q.push(")");
            q.build().execute(pool).await?.rows_affected()
        });
    }
    Ok(n)
}

/// Marks keys whose `WalletCreated` event has committed, so the free-key
/// scans skip them.
pub async fn mark_assigned(db: &Db, table: ClaimTable, ids: &[String]) -> Result<(), sqlx::Error> {
    let name = table.name();
    let head = format!(
        "UPDATE {name} SET claimed_by = '{ASSIGNED}', claimed_at = NULL WHERE {} AND key_id IN (",
        table.scope(name)
    );
    for chunk in ids.chunks(CHUNK) {
        with_db!(db, pool => {
            let mut q = sqlx::QueryBuilder::new(head.as_str());
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            q.push(")");
            q.build().execute(pool).await?;
        });
    }
    Ok(())
}

/// Marks free keys that an event names as assigned (keys whose marking a
/// stopped process never wrote, and rows from before migration 0011).
pub async fn mark_referenced(db: &Db, table: ClaimTable) -> Result<u64, sqlx::Error> {
    let name = table.name();
    let sql = format!(
        "UPDATE {name} SET claimed_by = '{ASSIGNED}', claimed_at = NULL WHERE {} AND {} AND {}",
        table.scope(name),
        free(db, name),
        referenced(db, name)
    );
    Ok(with_db!(db, pool => {
        sqlx::query(&sql).execute(pool).await?.rows_affected()
    }))
}

/// Deletes single keys that are free, unreferenced and created before
/// `cutoff` (the vault's text timestamp form). Returns the count.
pub async fn delete_unreferenced_keys(db: &Db, cutoff: &str) -> Result<u64, sqlx::Error> {
    let table = ClaimTable::KeyVault;
    let name = table.name();
    let sql = format!(
        "DELETE FROM {name} WHERE {} AND {} AND {name}.created_at < $1 AND NOT {}",
        table.scope(name),
        free(db, name),
        referenced(db, name)
    );
    Ok(with_db!(db, pool => {
        sqlx::query(&sql).bind(cutoff).execute(pool).await?.rows_affected()
    }))
}

/// Marks party 1's free, unreferenced shares created before `cutoff` as
/// retired (nothing claims them again), and returns every retired share,
/// including those an earlier sweep could not finish.
pub async fn retire_unreferenced_shares(db: &Db, cutoff: &str) -> Result<Vec<String>, sqlx::Error> {
    let table = ClaimTable::Party1Shares;
    let name = table.name();
    let retire = format!(
        "UPDATE {name} SET claimed_by = '{RETIRED}', claimed_at = {} \
          WHERE {} AND {} AND {name}.created_at < $1 AND NOT {}",
        now(db),
        table.scope(name),
        free(db, name),
        referenced(db, name)
    );
    let list = format!(
        "SELECT key_id FROM {name} WHERE {} AND claimed_by = '{RETIRED}' ORDER BY key_id",
        table.scope(name)
    );
    Ok(with_db!(db, pool => {
        sqlx::query(&retire).bind(cutoff).execute(pool).await?;
        let mut out = Vec::new();
        for r in sqlx::query(&list).fetch_all(pool).await? {
            out.push(r.try_get::<String, _>("key_id")?);
        }
        out
    }))
}

/// Deletes party 1's retired share of `key_id` (after the cosigner released its own).
pub async fn delete_retired_share(db: &Db, key_id: &str) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM mpc_shares WHERE party = 1 AND key_id = $1 AND claimed_by = '{RETIRED}'"
    );
    Ok(with_db!(db, pool => {
        sqlx::query(&sql).bind(key_id).execute(pool).await?.rows_affected()
    }))
}
