//! `walletd check-proof`: an auditor's offline checks of what the ADMIN
//! proof endpoints answer, against checkpoints they saved and the key they
//! pinned — no database, no trust in the server that answered.

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::Value;
use tlog_tiles::tlog::{check_record, check_tree, Hash, HASH_SIZE};

use super::CliResult;
use crate::transparency::export::Entry;
use crate::transparency::{leaf, signing};

#[derive(Subcommand, Debug)]
pub enum CheckProofCli {
    /// One exported event is in the log a saved checkpoint signs.
    Inclusion(InclusionArgs),
    /// The log a newer checkpoint signs extends the one an older one signs.
    Consistency(ConsistencyArgs),
}

#[derive(Args, Debug)]
pub struct InclusionArgs {
    /// A signed checkpoint (the `checkpoint` field of GET /api/admin/log/checkpoint).
    #[arg(long)]
    pub checkpoint: std::path::PathBuf,
    /// The log's verifier key, pinned from a trusted channel (`walletd log-key`).
    #[arg(long)]
    pub key: String,
    /// The event: one record of `walletd events export` or GET /api/admin/events.
    #[arg(long)]
    pub event: std::path::PathBuf,
    /// The answer of GET /api/admin/log/proof/inclusion?position=<index>&size=<the checkpoint's size>.
    #[arg(long)]
    pub proof: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct ConsistencyArgs {
    /// The older signed checkpoint.
    #[arg(long)]
    pub old: std::path::PathBuf,
    /// The newer signed checkpoint.
    #[arg(long)]
    pub new: std::path::PathBuf,
    /// The log's verifier key.
    #[arg(long)]
    pub key: String,
    /// The answer of GET /api/admin/log/proof/consistency?from=<old size>&to=<new size>.
    #[arg(long)]
    pub proof: std::path::PathBuf,
}

pub fn run(command: CheckProofCli) -> CliResult {
    match command {
        CheckProofCli::Inclusion(a) => inclusion(a),
        CheckProofCli::Consistency(a) => consistency(a),
    }
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn json(path: &std::path::Path) -> Result<Value, String> {
    serde_json::from_str(&read(path)?).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn checkpoint(path: &std::path::Path, key: &str) -> Result<(u64, Hash), String> {
    signing::open(&read(path)?, key).map_err(|e| format!("NOT VERIFIED: {}: {e}", path.display()))
}

/// The `proof` array of a proof answer, and a number field of it.
fn proof_of(v: &Value) -> Result<Vec<Hash>, String> {
    v.get("proof")
        .and_then(Value::as_array)
        .ok_or("the proof file has no `proof` array")?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .and_then(|b| <[u8; HASH_SIZE]>::try_from(b.as_slice()).ok())
                .map(Hash)
                .ok_or_else(|| "a proof hash is not 32 bytes of base64".to_string())
        })
        .collect()
}

fn number(v: &Value, key: &str) -> Result<u64, String> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or(format!("the proof file has no `{key}`"))
}

fn inclusion(a: InclusionArgs) -> CliResult {
    let (size, root) = checkpoint(&a.checkpoint, &a.key)?;
    let entry =
        Entry::from_json(&json(&a.event)?).map_err(|e| format!("{}: {e}", a.event.display()))?;
    let proof = json(&a.proof)?;
    let (at, tree) = (number(&proof, "position")?, number(&proof, "treeSize")?);
    if tree != size {
        return Err(format!(
            "the proof is for a tree of {tree} leaves; the checkpoint signs {size}"
        )
        .into());
    }
    if at != entry.index {
        return Err(format!(
            "the proof is for position {at}; the event is at {}",
            entry.index
        )
        .into());
    }
    if entry.index >= size {
        return Err(format!(
            "NOT VERIFIED: position {} is beyond the checkpoint's {size} leaves",
            entry.index
        )
        .into());
    }
    // The leaf is recomputed from the event: the export's own hash is not trusted.
    let leaf_hash = leaf::hash(entry.index, &entry.event);
    check_record(&proof_of(&proof)?, size, root, entry.index, leaf_hash).map_err(|_| {
        format!(
            "NOT VERIFIED: the event at position {} is not leaf {} of the checkpoint's tree \
             (the event or the proof was altered)",
            entry.index, entry.index
        )
    })?;
    println!(
        "verified: the event at position {} (store position {}, {} {}) is in the log of {size} leaves the checkpoint signs",
        entry.index, entry.event.at.position, entry.event.event_type, entry.event.aggregate_id
    );
    Ok(())
}

fn consistency(a: ConsistencyArgs) -> CliResult {
    let (old_size, old_root) = checkpoint(&a.old, &a.key)?;
    let (new_size, new_root) = checkpoint(&a.new, &a.key)?;
    let proof = json(&a.proof)?;
    let (from, to) = (number(&proof, "from")?, number(&proof, "to")?);
    if (from, to) != (old_size, new_size) {
        return Err(format!(
            "the proof is from {from} to {to} leaves; the checkpoints sign {old_size} and {new_size}"
        )
        .into());
    }
    if old_size == 0 || old_size > new_size {
        return Err(format!(
            "NOT VERIFIED: the older checkpoint ({old_size} leaves) is not a prefix size of the newer ({new_size})"
        )
        .into());
    }
    check_tree(&proof_of(&proof)?, new_size, new_root, old_size, old_root).map_err(|_| {
        format!(
            "NOT VERIFIED: the log of {new_size} leaves does not extend the log of {old_size} \
             (history was rewritten, or the proof was altered)"
        )
    })?;
    println!("verified: the log of {new_size} leaves extends the log of {old_size} leaves");
    Ok(())
}
