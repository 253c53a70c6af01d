//! Whether the configured master keys open what the database holds.
//!
//! A wrong `WALLETD_MASTER_KEY`, or a vault another process rotated to a
//! newer key, leaves a server that starts, answers health checks, creates
//! wallets under its own key and fails every use of an older one. Each sealed
//! row names the id of the master key that sealed it (a hash of the key), so
//! the check is cheap: a row under an id that is not configured cannot be
//! opened, and one row under the current key is opened for real (the canary:
//! it proves the key, not only its id, and the vault format).

use sqlx::Row;
use walletd_projections::{with_db, Db};

use super::vault::KeyVault;
use super::MasterKeys;

/// Why the master keys do not open the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultProblem {
    #[error(
        "{table} holds keys sealed under master key {master_key_id}, which is neither \
         WALLETD_MASTER_KEY nor one of WALLETD_PREVIOUS_MASTER_KEYS: the master key is wrong, \
         or the vault was rotated to a newer one (key ids are hashes, never the keys)"
    )]
    ForeignKey {
        table: &'static str,
        master_key_id: String,
    },
    #[error(
        "key {key_id}, sealed under the current master key {master_key_id}, does not open \
         (a vault row was altered)"
    )]
    DoesNotOpen {
        key_id: String,
        master_key_id: String,
    },
    #[error("reading the key vault: {0}")]
    Store(#[from] sqlx::Error),
}

/// Checks the single-key vault and party 1's MPC shares against `keys`.
pub async fn check(vault: &KeyVault, keys: &MasterKeys) -> Result<(), VaultProblem> {
    let db = vault.db();
    for (table, filter) in [("key_vault", ""), ("mpc_shares", " AND party = 1")] {
        if let Some(master_key_id) = foreign_key_id(db, table, filter, keys).await? {
            return Err(VaultProblem::ForeignKey {
                table,
                master_key_id,
            });
        }
    }
    let current = keys.current.id();
    if let Some(key_id) = one_key_under(db, current).await? {
        // A row deleted meanwhile (the sweeper) proves nothing either way.
        if let Some(sealed) = vault.get(&key_id).await? {
            if sealed.open(keys).is_err() {
                return Err(VaultProblem::DoesNotOpen {
                    key_id,
                    master_key_id: current.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The master key id of some row of `table` sealed under none of `keys`.
/// Rows outside the configured ids lie in the gaps between them (ids are
/// lowercase hex of one length, ordered alike by every collation): one
/// indexed range query per gap, each stopping at its first row.
async fn foreign_key_id(
    db: &Db,
    table: &str,
    filter: &str,
    keys: &MasterKeys,
) -> Result<Option<String>, sqlx::Error> {
    let mut ids = keys.ids();
    ids.sort();
    ids.dedup();
    let mut gaps: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    let mut low = None;
    for id in &ids {
        gaps.push((low, Some(id.as_str())));
        low = Some(id.as_str());
    }
    gaps.push((low, None));
    for (low, high) in gaps {
        let (bounds, binds): (&str, Vec<&str>) = match (low, high) {
            (None, Some(h)) => ("master_key_id < $1", vec![h]),
            (Some(l), Some(h)) => ("master_key_id > $1 AND master_key_id < $2", vec![l, h]),
            (Some(l), None) => ("master_key_id > $1", vec![l]),
            (None, None) => ("TRUE", vec![]),
        };
        let sql = format!("SELECT master_key_id FROM {table} WHERE {bounds}{filter} LIMIT 1");
        let found: Option<String> = with_db!(db, pool => {
            let mut query = sqlx::query(&sql);
            for b in &binds {
                query = query.bind(*b);
            }
            match query.fetch_optional(pool).await? {
                Some(row) => Some(row.try_get("master_key_id")?),
                None => None,
            }
        });
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn one_key_under(db: &Db, master_key_id: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(with_db!(db, pool => {
        match sqlx::query("SELECT key_id FROM key_vault WHERE master_key_id = $1 LIMIT 1")
            .bind(master_key_id)
            .fetch_optional(pool)
            .await?
        {
            Some(row) => Some(row.try_get("key_id")?),
            None => None,
        }
    }))
}
