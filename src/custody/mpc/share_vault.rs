//! Key shares at rest: each party's share envelope-encrypted under that
//! party's own master key (XChaCha20-Poly1305, a data key per share), in
//! `mpc_shares`; and the cosigner's append-only `cosign_log`.
//!
//! The sealed bytes of a share never change (rotation aside, which asks for a
//! restart), so they are cached for the life of the process. Whether a share
//! is frozen, or still exists, can change under any process's feet (a ban
//! seen by another process on the same database, the sweeper), so every
//! [`ShareVault::open`] reads that from the database first: one primary-key
//! look-up.

mod moving;

pub use moving::{move_cosigner_shares, Moved};

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::Row;
use walletd_projections::{with_db, Db};

use super::cpu::{self, Lane};
use super::{CosignRecord, KeyShare, MpcError, ShareStore};
use crate::custody::master_key::{MasterKey, MasterKeys};
use crate::custody::vault::{open_bytes, random_dek, seal_bytes};
use crate::domain::Timestamp;

#[derive(Clone)]
struct SealedShare {
    address: String,
    master_key_id: String,
    dek_nonce: Vec<u8>,
    wrapped_dek: Vec<u8>,
    share_nonce: Vec<u8>,
    sealed_share: Vec<u8>,
    frozen: Option<String>,
}

impl SealedShare {
    /// From a row of `mpc_shares` with these columns, on either backend.
    fn from_row<'r, R: Row>(r: &'r R) -> Result<Self, sqlx::Error>
    where
        &'r str: sqlx::ColumnIndex<R>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(SealedShare {
            address: r.try_get("address")?,
            master_key_id: r.try_get("master_key_id")?,
            dek_nonce: r.try_get("dek_nonce")?,
            wrapped_dek: r.try_get("wrapped_dek")?,
            share_nonce: r.try_get("share_nonce")?,
            sealed_share: r.try_get("sealed_share")?,
            frozen: r.try_get("frozen")?,
        })
    }
}

/// Binds a seal to its key, party and address, so a row copied elsewhere
/// does not open.
fn aad(part: &str, key_id: &str, party: u8, address: &str) -> Vec<u8> {
    format!(
        "walletd/mpc-share/v1/{part}/{key_id}/{party}/{}",
        address.to_ascii_lowercase()
    )
    .into_bytes()
}

/// Opens a sealed share with `master` and checks it is the row's key.
fn unseal(
    master: &MasterKey,
    key_id: &str,
    party: u8,
    sealed: &SealedShare,
) -> Result<KeyShare, MpcError> {
    let integrity = || MpcError::Storage(format!("share of key {key_id} does not open"));
    let dek = open_bytes(
        master.bytes(),
        &sealed.dek_nonce,
        &sealed.wrapped_dek,
        &aad("dek", key_id, party, &sealed.address),
    )
    .ok_or_else(integrity)?;
    let dek: [u8; 32] = dek.as_slice().try_into().map_err(|_| integrity())?;
    let dek = zeroize::Zeroizing::new(dek);
    let plain = open_bytes(
        &dek,
        &sealed.share_nonce,
        &sealed.sealed_share,
        &aad("share", key_id, party, &sealed.address),
    )
    .ok_or_else(integrity)?;
    let share = KeyShare::from_bytes(&plain)?;
    if share.address().to_checksum() != sealed.address {
        return Err(integrity());
    }
    Ok(share)
}

pub struct ShareVault {
    db: Db,
    keys: Option<MasterKeys>,
    party: u8,
    /// Ciphertext only; a share is opened for each use. `frozen` here is
    /// only what was read with the row: it is checked again on every use.
    cache: Mutex<HashMap<String, SealedShare>>,
}

impl ShareVault {
    /// The shares of party `party` (1: walletd serve, 2: the cosigner).
    pub fn new(db: Db, keys: Option<MasterKeys>, party: u8) -> Self {
        Self {
            db,
            keys,
            party,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self) -> Result<&MasterKeys, MpcError> {
        self.keys
            .as_ref()
            .ok_or_else(|| MpcError::Storage("no master key is configured".into()))
    }

    /// Stores this party's share of `key_id`, held by nobody's pool (the
    /// cosigner's shares; party 1's pool uses [`store_claimed`](Self::store_claimed)).
    pub async fn store(&self, key_id: &str, share: &KeyShare) -> Result<(), MpcError> {
        self.insert(key_id, share, None).await
    }

    /// Stores party 1's share of `key_id`, claimed by key pool `owner` in the
    /// same statement (see `custody::claims`).
    pub async fn store_claimed(
        &self,
        key_id: &str,
        share: &KeyShare,
        owner: &str,
    ) -> Result<(), MpcError> {
        self.insert(key_id, share, Some(owner)).await
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn master_keys(&self) -> Option<&MasterKeys> {
        self.keys.as_ref()
    }

    async fn insert(
        &self,
        key_id: &str,
        share: &KeyShare,
        owner: Option<&str>,
    ) -> Result<(), MpcError> {
        let master = self.keys()?.current.clone();
        let address = share.address().to_checksum();
        // Serializing and sealing ~53 KB: on the protocol threads, like the
        // key generation that made the share.
        let (share, id, party, addr) = (
            share.clone(),
            key_id.to_string(),
            self.party,
            address.clone(),
        );
        let (share_nonce, sealed_share, dek_nonce, wrapped_dek) =
            cpu::run(Lane::Keygen, move || {
                let plain = share.to_bytes()?;
                let dek = random_dek();
                let (share_nonce, sealed_share) =
                    seal_bytes(&dek, &plain, &aad("share", &id, party, &addr));
                let (dek_nonce, wrapped_dek) = seal_bytes(
                    master.bytes(),
                    dek.as_slice(),
                    &aad("dek", &id, party, &addr),
                );
                Ok::<_, MpcError>((share_nonce, sealed_share, dek_nonce, wrapped_dek))
            })
            .await??;
        let master = &self.keys()?.current;
        let created_at = crate::domain::Timestamp::now().to_text();
        let claimed_at = match owner {
            Some(_) => crate::custody::claims::now(&self.db),
            None => "NULL",
        };
        let sql = format!(
            "INSERT INTO mpc_shares (key_id, party, address, master_key_id, dek_nonce, wrapped_dek,
                                     share_nonce, sealed_share, frozen, created_at, claimed_by, claimed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, {claimed_at})"
        );
        with_db!(&self.db, pool => {
            sqlx::query(&sql)
            .bind(key_id)
            .bind(i64::from(self.party))
            .bind(&address)
            .bind(master.id())
            .bind(dek_nonce.as_slice())
            .bind(&wrapped_dek)
            .bind(share_nonce.as_slice())
            .bind(&sealed_share)
            .bind(&created_at)
            .bind(owner)
            .execute(pool)
            .await
            .map_err(|e| MpcError::Storage(e.to_string()))?;
        });
        Ok(())
    }

    /// The sealed row of `key_id`, with its `frozen` state as of now: from
    /// the cache plus a fresh look at `frozen`, or read whole.
    async fn sealed(&self, key_id: &str) -> Result<Option<SealedShare>, MpcError> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(key_id).cloned());
        if let Some(mut s) = cached {
            match self.frozen_now(key_id).await? {
                Some(frozen) => {
                    s.frozen = frozen;
                    return Ok(Some(s));
                }
                None => {
                    // Deleted meanwhile (released by the sweeper).
                    if let Ok(mut cache) = self.cache.lock() {
                        cache.remove(key_id);
                    }
                    return Ok(None);
                }
            }
        }
        let found = with_db!(&self.db, pool => {
            let row = sqlx::query(
                "SELECT address, master_key_id, dek_nonce, wrapped_dek, share_nonce, sealed_share, frozen
                   FROM mpc_shares WHERE key_id = $1 AND party = $2",
            )
            .bind(key_id)
            .bind(i64::from(self.party))
            .fetch_optional(pool)
            .await
            .map_err(|e| MpcError::Storage(e.to_string()))?;
            match row {
                Some(r) => Some(
                    SealedShare::from_row(&r).map_err(|e| MpcError::Storage(e.to_string()))?,
                ),
                None => None,
            }
        });
        if let (Some(s), Ok(mut cache)) = (&found, self.cache.lock()) {
            cache.insert(key_id.to_string(), s.clone());
        }
        Ok(found)
    }

    /// Whether the row of `key_id` exists (outer `Option`) and why it is
    /// frozen, if it is.
    async fn frozen_now(&self, key_id: &str) -> Result<Option<Option<String>>, MpcError> {
        let storage = |e: sqlx::Error| MpcError::Storage(e.to_string());
        Ok(with_db!(&self.db, pool => {
            match sqlx::query("SELECT frozen FROM mpc_shares WHERE key_id = $1 AND party = $2")
                .bind(key_id)
                .bind(i64::from(self.party))
                .fetch_optional(pool)
                .await
                .map_err(storage)?
            {
                Some(row) => Some(row.try_get::<Option<String>, _>("frozen").map_err(storage)?),
                None => None,
            }
        }))
    }

    /// Opens this party's share of `key_id`. A frozen share is refused, also
    /// when another process (or the cosigner, on its own database) froze it
    /// after this one cached the row.
    pub async fn open(&self, key_id: &str) -> Result<Option<KeyShare>, MpcError> {
        let Some(sealed) = self.sealed(key_id).await? else {
            return Ok(None);
        };
        if let Some(reason) = &sealed.frozen {
            return Err(MpcError::PeerBanned(format!(
                "key {key_id} is frozen: {reason}"
            )));
        }
        let master = self
            .keys()?
            .by_id(&sealed.master_key_id)
            .ok_or_else(|| {
                MpcError::Storage(format!(
                    "share of key {key_id} is sealed under master key {}, which is not \
                     configured for party {}: its master key is wrong, or the shares were \
                     rotated to a newer one",
                    sealed.master_key_id, self.party
                ))
            })?
            .clone();
        // Opening and decoding a share (hundreds of curve points to check)
        // takes milliseconds: on the protocol threads, ahead of key generation.
        let (id, party) = (key_id.to_string(), self.party);
        let share = cpu::run(Lane::Sign, move || unseal(&master, &id, party, &sealed)).await??;
        Ok(Some(share))
    }

    /// Re-wraps the data key of every share of this party that is sealed
    /// under one of `keys` and not yet under `new` (the shares themselves are
    /// not re-encrypted); one transaction. Shares under a key not in `keys`
    /// (the other party's, on a shared development database) are left alone.
    /// Returns the count; `progress` is told of each share re-wrapped (in
    /// the transaction: they are all committed at its end).
    pub async fn rotate(
        &self,
        keys: &MasterKeys,
        new: &MasterKey,
        progress: &dyn Fn(u64),
    ) -> Result<u64, MpcError> {
        let storage = |e: sqlx::Error| MpcError::Storage(e.to_string());
        let n = with_db!(&self.db, pool => {
            let mut tx = pool.begin().await.map_err(storage)?;
            // Write first, so SQLite waits for its lock instead of failing.
            sqlx::query("UPDATE mpc_shares SET master_key_id = master_key_id WHERE key_id = ''")
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            let rows = sqlx::query(
                "SELECT key_id, address, master_key_id, dek_nonce, wrapped_dek FROM mpc_shares
                  WHERE party = $1 AND master_key_id <> $2",
            )
            .bind(i64::from(self.party))
            .bind(new.id())
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
            let mut n = 0u64;
            for row in rows {
                let key_id: String = row.try_get("key_id").map_err(storage)?;
                let address: String = row.try_get("address").map_err(storage)?;
                let old_id: String = row.try_get("master_key_id").map_err(storage)?;
                let nonce: Vec<u8> = row.try_get("dek_nonce").map_err(storage)?;
                let wrapped: Vec<u8> = row.try_get("wrapped_dek").map_err(storage)?;
                let Some(old) = keys.by_id(&old_id) else {
                    continue;
                };
                let aad = aad("dek", &key_id, self.party, &address);
                let dek = open_bytes(old.bytes(), &nonce, &wrapped, &aad).ok_or_else(|| {
                    MpcError::Storage(format!("share of key {key_id} does not open"))
                })?;
                let (dek_nonce, wrapped_dek) = seal_bytes(new.bytes(), &dek, &aad);
                sqlx::query(
                    "UPDATE mpc_shares SET master_key_id = $3, dek_nonce = $4, wrapped_dek = $5
                      WHERE key_id = $1 AND party = $2",
                )
                .bind(&key_id)
                .bind(i64::from(self.party))
                .bind(new.id())
                .bind(dek_nonce.as_slice())
                .bind(&wrapped_dek)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
                n += 1;
                progress(1);
            }
            tx.commit().await.map_err(storage)?;
            n
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        Ok(n)
    }

    /// Shares of this party a rotation to `new` would re-wrap: those under
    /// one of `keys` (as [`ShareVault::rotate`] skips the others).
    pub async fn pending_rotation(
        &self,
        keys: &MasterKeys,
        new: &MasterKey,
    ) -> Result<u64, MpcError> {
        let ids: Vec<String> = with_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT master_key_id FROM mpc_shares WHERE party = $1 AND master_key_id <> $2",
            )
            .bind(i64::from(self.party))
            .bind(new.id())
            .fetch_all(pool)
            .await
            .map_err(|e| MpcError::Storage(e.to_string()))?
        });
        Ok(ids.iter().filter(|id| keys.by_id(id).is_some()).count() as u64)
    }

    /// Marks a share as never to be used again (the peer misbehaved).
    pub async fn freeze(&self, key_id: &str, reason: &str) -> Result<(), MpcError> {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(key_id);
        }
        with_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE mpc_shares SET frozen = $3 WHERE key_id = $1 AND party = $2 AND frozen IS NULL",
            )
                .bind(key_id)
                .bind(i64::from(self.party))
                .bind(reason)
                .execute(pool)
                .await
                .map_err(|e| MpcError::Storage(e.to_string()))?;
        });
        Ok(())
    }
}

/// Party 1's record of its key generations (`mpc_key_intents`): written
/// before a run starts, cleared once our share is stored or the cosigner
/// released its own. What remains after a crash tells the sweeper which
/// cosigner shares may exist without ours.
impl ShareVault {
    pub(crate) async fn record_intent(&self, key_id: &str) -> Result<(), MpcError> {
        with_db!(&self.db, pool => {
            sqlx::query("INSERT INTO mpc_key_intents (key_id, created_at) VALUES ($1, $2)")
                .bind(key_id)
                .bind(Timestamp::now().to_text())
                .execute(pool)
                .await
                .map_err(|e| MpcError::Storage(e.to_string()))?;
        });
        Ok(())
    }

    pub(crate) async fn clear_intent(&self, key_id: &str) -> Result<(), MpcError> {
        with_db!(&self.db, pool => {
            sqlx::query("DELETE FROM mpc_key_intents WHERE key_id = $1")
                .bind(key_id)
                .execute(pool)
                .await
                .map_err(|e| MpcError::Storage(e.to_string()))?;
        });
        Ok(())
    }

    /// Intents older than `cutoff`, each with whether our share exists.
    pub(crate) async fn stale_intents(
        &self,
        cutoff: &str,
    ) -> Result<Vec<(String, bool)>, MpcError> {
        let storage = |e: sqlx::Error| MpcError::Storage(e.to_string());
        Ok(with_db!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT i.key_id,
                        EXISTS (SELECT 1 FROM mpc_shares s WHERE s.key_id = i.key_id AND s.party = 1) AS stored
                   FROM mpc_key_intents i WHERE i.created_at < $1 ORDER BY i.key_id",
            )
            .bind(cutoff)
            .fetch_all(pool)
            .await
            .map_err(storage)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((r.try_get("key_id").map_err(storage)?, r.try_get("stored").map_err(storage)?));
            }
            out
        }))
    }
}

impl ShareVault {
    /// Deletes this party's share of `key_id` unless it was used: never if
    /// the cosign log names the key or the share is frozen.
    pub async fn release_unused(&self, key_id: &str) -> Result<(), MpcError> {
        let storage = |e: sqlx::Error| MpcError::Storage(e.to_string());
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(key_id);
        }
        let deleted = with_db!(&self.db, pool => {
            sqlx::query(
                "DELETE FROM mpc_shares WHERE key_id = $1 AND party = $2 AND frozen IS NULL
                   AND NOT EXISTS (SELECT 1 FROM cosign_log WHERE cosign_log.key_id = $1)",
            )
            .bind(key_id)
            .bind(i64::from(self.party))
            .execute(pool)
            .await
            .map_err(storage)?
            .rows_affected()
        });
        if deleted == 0 && self.frozen_now(key_id).await?.is_some() {
            return Err(MpcError::Refused(format!(
                "the share of key {key_id} was used to sign or is frozen; not released"
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ShareStore for ShareVault {
    async fn put(&self, key_id: &str, share: &KeyShare) -> Result<(), MpcError> {
        self.store(key_id, share).await
    }

    async fn get(&self, key_id: &str) -> Result<Option<KeyShare>, MpcError> {
        self.open(key_id).await
    }

    async fn seen(&self, sign_id: &str) -> Result<bool, MpcError> {
        Ok(with_db!(&self.db, pool => {
            sqlx::query("SELECT 1 AS one FROM cosign_log WHERE sign_id = $1")
                .bind(sign_id)
                .fetch_optional(pool)
                .await
                .map_err(|e| MpcError::Storage(e.to_string()))?
                .is_some()
        }))
    }

    async fn record(&self, e: &CosignRecord) -> Result<(), MpcError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO cosign_log (sign_id, key_id, wallet_id, requested_by, digest, signature, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.sign_id)
            .bind(&e.key_id)
            .bind(&e.wallet_id)
            .bind(&e.requested_by)
            .bind(&e.digest)
            .bind(&e.signature)
            .bind(e.at.to_text())
            .execute(pool)
            .await
            .map_err(|e| MpcError::Storage(e.to_string()))?;
        });
        Ok(())
    }

    async fn freeze(&self, key_id: &str, reason: &str) -> Result<(), MpcError> {
        ShareVault::freeze(self, key_id, reason).await
    }

    async fn release(&self, key_id: &str) -> Result<(), MpcError> {
        self.release_unused(key_id).await
    }
}
