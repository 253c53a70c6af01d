//! Inclusion and consistency proofs (RFC 6962 / RFC 9162 audit paths, as
//! `tlog_tiles` computes them from the stored hashes), for trees up to the
//! latest signed checkpoint.

use sqlx::Row;
use tlog_tiles::tlog::{prove_record, prove_tree, Hash, HASH_SIZE};
use walletd_projections::{with_db, Db};

use super::hashes::{with_hashes, HashMapByIndex, TreeError};
use super::sealer::latest_checkpoint;

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The caller asked for something the tree does not have (400).
    #[error("{0}")]
    Range(String),
    /// Nothing is sealed yet (404).
    #[error("the log has no signed checkpoint yet")]
    Empty,
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// Leaf `index` in the tree of `size` leaves.
pub struct Inclusion {
    pub index: u64,
    pub size: u64,
    /// The event's row in the store.
    pub event_position: i64,
    pub leaf_hash: Hash,
    pub proof: Vec<Hash>,
}

async fn sealed_size(db: &Db) -> Result<u64, ProofError> {
    match latest_checkpoint(db).await? {
        Some((size, ..)) => Ok(size),
        None => Err(ProofError::Empty),
    }
}

fn within(size: u64, latest: u64) -> Result<(), ProofError> {
    if size == 0 || size > latest {
        return Err(ProofError::Range(format!(
            "size must be from 1 to {latest} (the latest checkpoint's), not {size}"
        )));
    }
    Ok(())
}

pub async fn inclusion(db: &Db, index: u64, size: u64) -> Result<Inclusion, ProofError> {
    within(size, sealed_size(db).await?)?;
    if index >= size {
        return Err(ProofError::Range(format!(
            "position must be below size ({size}), not {index}"
        )));
    }
    let row: Option<(i64, Vec<u8>)> = with_db!(db, pool => {
        match sqlx::query("SELECT event_position, leaf_hash FROM log_leaves WHERE idx = $1")
            .bind(index as i64)
            .fetch_optional(pool)
            .await
            .map_err(TreeError::from)?
        {
            Some(r) => Some((
                r.try_get("event_position").map_err(TreeError::from)?,
                r.try_get("leaf_hash").map_err(TreeError::from)?,
            )),
            None => None,
        }
    });
    let (event_position, leaf) = row.ok_or(TreeError::Missing(vec![index]))?;
    let leaf_hash =
        Hash(<[u8; HASH_SIZE]>::try_from(leaf.as_slice()).map_err(|_| TreeError::Malformed)?);
    let mut known = HashMapByIndex::new();
    let proof = with_hashes(db, &mut known, |r| prove_record(size, index, r)).await?;
    Ok(Inclusion {
        index,
        size,
        event_position,
        leaf_hash,
        proof,
    })
}

/// The proof that the tree of `to` leaves extends the tree of `from`.
pub async fn consistency(db: &Db, from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
    within(to, sealed_size(db).await?)?;
    if from == 0 || from > to {
        return Err(ProofError::Range(format!(
            "from must be from 1 to `to` ({to}), not {from}"
        )));
    }
    let mut known = HashMapByIndex::new();
    Ok(with_hashes(db, &mut known, |r| prove_tree(to, from, r)).await?)
}
