//! Moving the in-process cosigner's shares (party 2 on walletd's own
//! database) to a separate cosigner's database, for a deployment that
//! started with the development set-up. Each share's data key is re-wrapped
//! under the cosigner's master key; the sealed share itself is copied as it
//! is (its seal names key, party and address, not the database). The
//! cosigner's signing log goes along, so its sweeper still knows which keys
//! were used.
//!
//! Crash-safe and resumable: a batch is committed on the target before the
//! same rows are deleted from the source, and a row already on the target is
//! left as it is; run it again to finish.

use sqlx::Row;
use walletd_projections::{with_db, Db};

use super::{aad, SealedShare};
use crate::custody::master_key::{MasterKey, MasterKeys};
use crate::custody::mpc::MpcError;
use crate::custody::vault::{open_bytes, seal_bytes};

const PARTY: u8 = 2;
/// Rows per batch: a sealed share is about 53 KB.
const BATCH: i64 = 64;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub shares: u64,
    pub log_entries: u64,
}

/// A row as it moves: the sealed share and what names it.
struct Row2 {
    key_id: String,
    sealed: SealedShare,
    created_at: String,
}

fn storage(e: sqlx::Error) -> MpcError {
    MpcError::Storage(e.to_string())
}

/// Moves every party-2 share from `source` (opened with `source_keys`) to
/// `target`, sealed there under `target_key`, and copies the signing log.
pub async fn move_cosigner_shares(
    source: &Db,
    source_keys: &MasterKeys,
    target: &Db,
    target_key: &MasterKey,
) -> Result<Moved, MpcError> {
    let mut moved = Moved::default();
    loop {
        let rows = with_db!(source, pool => {
            let rows = sqlx::query(
                "SELECT key_id, address, master_key_id, dek_nonce, wrapped_dek, share_nonce,
                        sealed_share, frozen, created_at
                   FROM mpc_shares WHERE party = $1 ORDER BY key_id LIMIT $2",
            )
            .bind(i64::from(PARTY))
            .bind(BATCH)
            .fetch_all(pool)
            .await
            .map_err(storage)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(Row2 {
                    key_id: r.try_get("key_id").map_err(storage)?,
                    sealed: SealedShare::from_row(&r).map_err(storage)?,
                    created_at: r.try_get("created_at").map_err(storage)?,
                });
            }
            out
        });
        if rows.is_empty() {
            break;
        }
        let mut rewrapped = Vec::with_capacity(rows.len());
        for mut row in rows {
            let sealed = &mut row.sealed;
            let old = source_keys.by_id(&sealed.master_key_id).ok_or_else(|| {
                MpcError::Storage(format!(
                    "the cosigner's share of key {} is sealed under master key {}, which is not \
                     the in-process cosigner's (WALLETD_COSIGNER_MASTER_KEY or <db>.key.cosigner)",
                    row.key_id, sealed.master_key_id
                ))
            })?;
            let dek_aad = aad("dek", &row.key_id, PARTY, &sealed.address);
            let dek = open_bytes(
                old.bytes(),
                &sealed.dek_nonce,
                &sealed.wrapped_dek,
                &dek_aad,
            )
            .ok_or_else(|| {
                MpcError::Storage(format!("share of key {} does not open", row.key_id))
            })?;
            let (nonce, wrapped) = seal_bytes(target_key.bytes(), &dek, &dek_aad);
            sealed.dek_nonce = nonce.to_vec();
            sealed.wrapped_dek = wrapped;
            sealed.master_key_id = target_key.id().to_string();
            rewrapped.push(row);
        }
        with_db!(target, pool => {
            let mut tx = pool.begin().await.map_err(storage)?;
            for r in &rewrapped {
                sqlx::query(
                    "INSERT INTO mpc_shares (key_id, party, address, master_key_id, dek_nonce,
                                             wrapped_dek, share_nonce, sealed_share, frozen, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (key_id, party) DO NOTHING",
                )
                .bind(&r.key_id)
                .bind(i64::from(PARTY))
                .bind(&r.sealed.address)
                .bind(&r.sealed.master_key_id)
                .bind(&r.sealed.dek_nonce)
                .bind(&r.sealed.wrapped_dek)
                .bind(&r.sealed.share_nonce)
                .bind(&r.sealed.sealed_share)
                .bind(&r.sealed.frozen)
                .bind(&r.created_at)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            }
            tx.commit().await.map_err(storage)?;
        });
        with_db!(source, pool => {
            let mut tx = pool.begin().await.map_err(storage)?;
            for r in &rewrapped {
                sqlx::query("DELETE FROM mpc_shares WHERE key_id = $1 AND party = $2")
                    .bind(&r.key_id)
                    .bind(i64::from(PARTY))
                    .execute(&mut *tx)
                    .await
                    .map_err(storage)?;
            }
            tx.commit().await.map_err(storage)?;
        });
        moved.shares += rewrapped.len() as u64;
    }
    moved.log_entries = copy_cosign_log(source, target).await?;
    Ok(moved)
}

/// The log is append-only (a trigger refuses deletes on PostgreSQL), so it
/// is copied and stays on the source as a record of what it signed.
async fn copy_cosign_log(source: &Db, target: &Db) -> Result<u64, MpcError> {
    let mut after = String::new();
    let mut copied = 0u64;
    loop {
        let rows: Vec<[String; 7]> = with_db!(source, pool => {
            let rows = sqlx::query(
                "SELECT sign_id, key_id, wallet_id, requested_by, digest, signature, at
                   FROM cosign_log WHERE sign_id > $1 ORDER BY sign_id LIMIT 1000",
            )
            .bind(&after)
            .fetch_all(pool)
            .await
            .map_err(storage)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let get = |c: &str| r.try_get::<String, _>(c).map_err(storage);
                out.push([
                    get("sign_id")?,
                    get("key_id")?,
                    get("wallet_id")?,
                    get("requested_by")?,
                    get("digest")?,
                    get("signature")?,
                    get("at")?,
                ]);
            }
            out
        });
        let Some(last) = rows.last() else {
            break;
        };
        after = last[0].clone();
        with_db!(target, pool => {
            let mut tx = pool.begin().await.map_err(storage)?;
            for r in &rows {
                let done = sqlx::query(
                    "INSERT INTO cosign_log (sign_id, key_id, wallet_id, requested_by, digest, signature, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sign_id) DO NOTHING",
                )
                .bind(&r[0])
                .bind(&r[1])
                .bind(&r[2])
                .bind(&r[3])
                .bind(&r[4])
                .bind(&r[5])
                .bind(&r[6])
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
                copied += done.rows_affected();
            }
            tx.commit().await.map_err(storage)?;
        });
    }
    Ok(copied)
}
