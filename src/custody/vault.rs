//! The key vault: envelope-encrypted private keys.
//!
//! Each key is sealed with XChaCha20-Poly1305 under its own random data key
//! (DEK); the DEK is sealed under the master key. Both seals bind the key id
//! and address as associated data, so a row copied onto another key's id or
//! address fails to open. Rotating the master key re-seals DEKs only.

use std::collections::HashMap;
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sqlx::Row;
use walletd_projections::{with_db, Db};
use zeroize::Zeroizing;

use super::master_key::{MasterKey, MasterKeys};
use super::CustodyError;

/// A vault row. Holds only ciphertext.
#[derive(Clone)]
pub struct SealedKey {
    pub key_id: String,
    pub wallet_id: String,
    pub address: String,
    pub custody: String,
    pub master_key_id: String,
    pub dek_nonce: Vec<u8>,
    pub wrapped_dek: Vec<u8>,
    pub key_nonce: Vec<u8>,
    pub sealed_key: Vec<u8>,
    pub created_at: String,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("operating system random number generator");
    b
}

fn aad(key_id: &str, address: &str, part: &str) -> Vec<u8> {
    format!(
        "walletd/key-vault/v1/{part}/{key_id}/{}",
        address.to_ascii_lowercase()
    )
    .into_bytes()
}

/// Seals `plain` under `key` with a fresh nonce; returns (nonce, ciphertext).
pub(crate) fn seal_bytes(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> ([u8; 24], Vec<u8>) {
    let nonce = random::<24>();
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("XChaCha20-Poly1305 sealing of an in-memory buffer cannot fail");
    (nonce, ct)
}

/// Opens what [`seal_bytes`] sealed; `None` if anything does not authenticate.
pub(crate) fn open_bytes(
    key: &[u8; 32],
    nonce: &[u8],
    ct: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != 24 {
        return None;
    }
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn seal32(key: &[u8; 32], plain: &[u8; 32], aad: &[u8]) -> ([u8; 24], Vec<u8>) {
    seal_bytes(key, plain, aad)
}

fn open32(key: &[u8; 32], nonce: &[u8], ct: &[u8], aad: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let plain = open_bytes(key, nonce, ct, aad)?;
    let bytes: [u8; 32] = plain.as_slice().try_into().ok()?;
    Some(Zeroizing::new(bytes))
}

pub(crate) fn random_dek() -> Zeroizing<[u8; 32]> {
    Zeroizing::new(random::<32>())
}

impl SealedKey {
    pub fn seal(
        master: &MasterKey,
        secret: &[u8; 32],
        key_id: String,
        wallet_id: String,
        address: String,
        custody: String,
    ) -> Self {
        let dek = Zeroizing::new(random::<32>());
        let (key_nonce, sealed_key) = seal32(&dek, secret, &aad(&key_id, &address, "key"));
        let (dek_nonce, wrapped_dek) = seal32(master.bytes(), &dek, &aad(&key_id, &address, "dek"));
        Self {
            key_id,
            wallet_id,
            address,
            custody,
            master_key_id: master.id().to_string(),
            dek_nonce: dek_nonce.to_vec(),
            wrapped_dek,
            key_nonce: key_nonce.to_vec(),
            sealed_key,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        }
    }

    fn open_dek(&self, keys: &MasterKeys) -> Result<Zeroizing<[u8; 32]>, CustodyError> {
        let master =
            keys.by_id(&self.master_key_id)
                .ok_or_else(|| CustodyError::ForeignMasterKey {
                    key_id: self.key_id.clone(),
                    master_key_id: self.master_key_id.clone(),
                })?;
        let aad = aad(&self.key_id, &self.address, "dek");
        open32(master.bytes(), &self.dek_nonce, &self.wrapped_dek, &aad)
            .ok_or_else(|| CustodyError::Integrity(self.key_id.clone()))
    }

    /// Decrypts the private key.
    pub fn open(&self, keys: &MasterKeys) -> Result<Zeroizing<[u8; 32]>, CustodyError> {
        let dek = self.open_dek(keys)?;
        let aad = aad(&self.key_id, &self.address, "key");
        open32(&dek, &self.key_nonce, &self.sealed_key, &aad)
            .ok_or_else(|| CustodyError::Integrity(self.key_id.clone()))
    }

    /// Re-seals the data key under `new` (the private key itself is not touched).
    pub fn rewrap(&self, keys: &MasterKeys, new: &MasterKey) -> Result<Self, CustodyError> {
        let dek = self.open_dek(keys)?;
        let (dek_nonce, wrapped_dek) =
            seal32(new.bytes(), &dek, &aad(&self.key_id, &self.address, "dek"));
        Ok(Self {
            master_key_id: new.id().to_string(),
            dek_nonce: dek_nonce.to_vec(),
            wrapped_dek,
            ..self.clone()
        })
    }
}

/// Vault rows in the database, with an in-process cache of (immutable) ciphertext.
pub struct KeyVault {
    db: Db,
    cache: Mutex<HashMap<String, SealedKey>>,
}

/// A vault row of either backend as a [`SealedKey`].
macro_rules! sealed_from_row {
    ($row:expr) => {
        SealedKey {
            key_id: $row.try_get("key_id")?,
            wallet_id: $row.try_get("wallet_id")?,
            address: $row.try_get("address")?,
            custody: $row.try_get("custody")?,
            master_key_id: $row.try_get("master_key_id")?,
            dek_nonce: $row.try_get("dek_nonce")?,
            wrapped_dek: $row.try_get("wrapped_dek")?,
            key_nonce: $row.try_get("key_nonce")?,
            sealed_key: $row.try_get("sealed_key")?,
            created_at: $row.try_get("created_at")?,
        }
    };
}

const COLUMNS: &str = "key_id, wallet_id, address, custody, master_key_id, dek_nonce, wrapped_dek, key_nonce, sealed_key, created_at";

impl KeyVault {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores keys claimed by pool `owner` (migration 0011), in one statement
    /// and one transaction: a stored key is never unclaimed and unassigned at
    /// once, so no other process can take it before its wallet is recorded.
    pub async fn insert_claimed(&self, keys: &[SealedKey], owner: &str) -> Result<(), sqlx::Error> {
        if keys.is_empty() {
            return Ok(());
        }
        let now = super::claims::now(&self.db);
        with_db!(&self.db, pool => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO key_vault (key_id, wallet_id, address, custody, master_key_id, dek_nonce,
                                        wrapped_dek, key_nonce, sealed_key, created_at,
                                        claimed_by, claimed_at) ",
            );
            q.push_values(keys, |mut row, k| {
                row.push_bind(&k.key_id)
                    .push_bind(&k.wallet_id)
                    .push_bind(&k.address)
                    .push_bind(&k.custody)
                    .push_bind(&k.master_key_id)
                    .push_bind(&k.dek_nonce)
                    .push_bind(&k.wrapped_dek)
                    .push_bind(&k.key_nonce)
                    .push_bind(&k.sealed_key)
                    .push_bind(&k.created_at)
                    .push_bind(owner)
                    .push(now);
            });
            q.build().execute(pool).await?;
        });
        Ok(())
    }

    pub async fn get(&self, key_id: &str) -> Result<Option<SealedKey>, sqlx::Error> {
        if let Some(k) = self.cache.lock().ok().and_then(|c| c.get(key_id).cloned()) {
            return Ok(Some(k));
        }
        let sql = format!("SELECT {COLUMNS} FROM key_vault WHERE key_id = $1");
        let found = with_db!(&self.db, pool => {
            match sqlx::query(&sql).bind(key_id).fetch_optional(pool).await? {
                Some(row) => Some(sealed_from_row!(row)),
                None => None,
            }
        });
        if let (Some(k), Ok(mut cache)) = (&found, self.cache.lock()) {
            cache.insert(k.key_id.clone(), k.clone());
        }
        Ok(found)
    }

    /// Keys a rotation to `new` has yet to re-wrap.
    pub async fn pending_rotation(&self, new: &MasterKey) -> Result<u64, sqlx::Error> {
        let n: i64 = with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM key_vault WHERE master_key_id <> $1")
                .bind(new.id())
                .fetch_one(pool)
                .await?
        });
        Ok(n.max(0) as u64)
    }

    /// Re-wraps every data key not yet under `new`, in batches of 500 rows, each
    /// batch one transaction. Safe to interrupt and run again. Returns the count;
    /// `progress` is told each batch's count once it is committed.
    pub async fn rotate(
        &self,
        keys: &MasterKeys,
        new: &MasterKey,
        progress: &dyn Fn(u64),
    ) -> Result<u64, CustodyError> {
        let mut total = 0u64;
        loop {
            let sql = format!(
                "SELECT {COLUMNS} FROM key_vault WHERE master_key_id <> $1 ORDER BY key_id LIMIT 500"
            );
            let n = with_db!(&self.db, pool => {
                let mut tx = pool.begin().await?;
                // Write first: a SQLite transaction that reads and then writes can
                // fail at once with SQLITE_BUSY if another connection wrote in
                // between; taking the write lock up front makes it wait instead.
                sqlx::query("UPDATE key_vault SET master_key_id = master_key_id WHERE key_id = ''")
                    .execute(&mut *tx)
                    .await?;
                let rows = sqlx::query(&sql).bind(new.id()).fetch_all(&mut *tx).await?;
                let n = rows.len();
                for row in rows {
                    let k = sealed_from_row!(row);
                    let r = k.rewrap(keys, new)?;
                    sqlx::query(
                        "UPDATE key_vault SET master_key_id = $2, dek_nonce = $3, wrapped_dek = $4
                          WHERE key_id = $1 AND master_key_id = $5",
                    )
                    .bind(&r.key_id)
                    .bind(&r.master_key_id)
                    .bind(&r.dek_nonce)
                    .bind(&r.wrapped_dek)
                    .bind(&k.master_key_id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                n
            });
            total += n as u64;
            progress(n as u64);
            if n < 500 {
                break;
            }
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        Ok(total)
    }

    /// Number of keys still sealed under each master key id.
    pub async fn key_ids_in_use(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        Ok(with_db!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT master_key_id, COUNT(*) AS n FROM key_vault GROUP BY master_key_id ORDER BY master_key_id",
            )
            .fetch_all(pool)
            .await?;
            let mut out = Vec::new();
            for r in rows {
                out.push((r.try_get("master_key_id")?, r.try_get("n")?));
            }
            out
        }))
    }
}
