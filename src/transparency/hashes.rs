//! Reading the tree's stored hashes for `tlog_tiles`, whose algorithms ask
//! for them through a synchronous [`HashReader`]. Each of its operations asks
//! once, for a set it computes itself; [`Known`] answers from memory and
//! notes what it lacks, the caller fetches that from the database and runs
//! the operation again ([`with_hashes`]).

use std::cell::RefCell;
use std::collections::HashMap;

use sqlx::Row;
use tlog_tiles::tlog::{Error as TlogError, Hash, HashReader, HASH_SIZE};

/// Stored hashes by stored hash index.
pub type HashMapByIndex = HashMap<u64, Hash>;

pub struct Known<'a> {
    pub hashes: &'a HashMapByIndex,
    missing: RefCell<Vec<u64>>,
}

impl<'a> Known<'a> {
    pub fn new(hashes: &'a HashMapByIndex) -> Self {
        Self {
            hashes,
            missing: RefCell::new(Vec::new()),
        }
    }

    pub fn missing(self) -> Vec<u64> {
        self.missing.into_inner()
    }
}

impl HashReader for Known<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        let mut out = Vec::with_capacity(indexes.len());
        let mut missing = self.missing.borrow_mut();
        for i in indexes {
            match self.hashes.get(i) {
                Some(h) => out.push(*h),
                None => missing.push(*i),
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(TlogError::InvalidInput("stored hashes not loaded".into()))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("the stored tree lacks hashes {0:?}: it was altered or is being rebuilt")]
    Missing(Vec<u64>),
    #[error("tree: {0}")]
    Tlog(String),
    #[error("a stored hash is not {HASH_SIZE} bytes")]
    Malformed,
    #[error("{0}")]
    Key(#[from] super::signing::LogKeyError),
}

/// Fetches stored hashes by index on any connection or transaction.
macro_rules! fetch_hashes {
    ($conn:expr, $db:expr, $indexes:expr) => {{
        let mut got = HashMapByIndex::new();
        if !$indexes.is_empty() {
            let list = $indexes
                .iter()
                .map(|i: &u64| i.to_string())
                .collect::<Vec<_>>()
                .join(",");
            // Integers only: no injection, and one statement for both backends.
            let sql = format!("SELECT idx, hash FROM log_hashes WHERE idx IN ({list})");
            for row in sqlx::query(&sql).fetch_all($conn).await? {
                let idx: i64 = row.try_get("idx")?;
                let bytes: Vec<u8> = row.try_get("hash")?;
                let hash = <[u8; HASH_SIZE]>::try_from(bytes.as_slice())
                    .map_err(|_| TreeError::Malformed)?;
                got.insert(idx as u64, Hash(hash));
            }
        }
        got
    }};
}
pub(crate) use fetch_hashes;

/// Runs `op` with the hashes it asks for, fetching what `known` lacks from
/// `db` (at most three rounds: each `tlog` operation asks once).
pub async fn with_hashes<T>(
    db: &walletd_projections::Db,
    known: &mut HashMapByIndex,
    op: impl Fn(&Known) -> Result<T, TlogError>,
) -> Result<T, TreeError> {
    for _ in 0..3 {
        let reader = Known::new(known);
        match op(&reader) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let missing = reader.missing();
                if missing.is_empty() {
                    return Err(TreeError::Tlog(e.to_string()));
                }
                let got =
                    walletd_projections::with_db!(db, pool => fetch_hashes!(pool, db, missing));
                if got.len() < missing.len() {
                    let absent = missing
                        .into_iter()
                        .filter(|i| !got.contains_key(i))
                        .collect();
                    return Err(TreeError::Missing(absent));
                }
                known.extend(got);
            }
        }
    }
    Err(TreeError::Tlog("stored hashes kept missing".into()))
}
