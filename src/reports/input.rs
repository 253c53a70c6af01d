//! Naming a report's input so an auditor can check it: the root of the tree
//! over exactly the events the report read (log positions 0..N), and the
//! latest signed checkpoint, which that tree is a prefix of (a consistency
//! proof from N to the checkpoint's size shows it).

use base64::Engine as _;
use serde::Serialize;
use tlog_tiles::tlog::tree_hash;
use walletd_projections::Db;

use crate::transparency::hashes::{with_hashes, HashMapByIndex, TreeError};
use crate::transparency::sealer::latest_checkpoint;

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// Events read: the tree of this size is the report's input.
    pub tree_size: u64,
    /// That tree's root (base64), when the log is sealed that far.
    pub root: Option<String>,
    /// The latest signed checkpoint (a c2sp.org/signed-note), when there is one.
    pub checkpoint: Option<String>,
    pub checkpoint_size: Option<u64>,
}

pub async fn name(db: &Db, events: u64) -> Result<Input, TreeError> {
    let latest = latest_checkpoint(db).await?;
    let sealed = latest.as_ref().map(|c| c.0).unwrap_or(0);
    let root = if events > 0 && events <= sealed {
        let mut known = HashMapByIndex::new();
        let h = with_hashes(db, &mut known, |r| tree_hash(events, r)).await?;
        Some(base64::engine::general_purpose::STANDARD.encode(h.0))
    } else {
        None
    };
    Ok(Input {
        tree_size: events,
        root,
        checkpoint_size: latest.as_ref().map(|c| c.0),
        checkpoint: latest.map(|c| c.2),
    })
}
