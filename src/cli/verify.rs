//! `walletd verify`: recompute the transparency log from the events.
//!
//! Online (the database): every stored checkpoint's signature, every leaf
//! recomputed from its event, the tree head at every checkpoint's size, and
//! no event row in the sealed range that is not a leaf. Offline
//! (`--checkpoint FILE --events EXPORT.jsonl --key VERIFIER`): an export
//! against a checkpoint an auditor saved, touching no database.

use std::io::BufRead as _;

use clap::Args;
use sqlx::Row;
use walletd_projections::with_db;

use super::progress::Progress;
use super::{CliResult, ONE_SHOT_POOL};
use crate::config::Settings;
use crate::transparency::export::{page, Entry};
use crate::transparency::hashes::{with_hashes, HashMapByIndex};
use crate::transparency::signing;
use crate::transparency::verify::{frontier, Checker, Finding, Head};
use tlog_tiles::tlog::{stored_hash_index, tree_hash, Hash, HashReader as _};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Offline: a signed checkpoint saved earlier (the `checkpoint` field of
    /// GET /api/admin/log/checkpoint, as a file).
    #[arg(long, requires_all = ["events", "key"])]
    pub checkpoint: Option<std::path::PathBuf>,
    /// Offline: a complete export (`walletd events export`, JSON lines).
    #[arg(long, requires = "checkpoint")]
    pub events: Option<std::path::PathBuf>,
    /// The log's verifier key (`walletd log-key`). Offline: required; online:
    /// default the configured log key's.
    #[arg(long)]
    pub key: Option<String>,
    /// Online: resume at this log position (leaf index), for an auditor who
    /// verified the log below it before. Leaves from here on are recomputed;
    /// the stored tree below it must match every signed checkpoint up to it,
    /// and later checkpoints check the rest.
    #[arg(long, default_value_t = 0, conflicts_with = "checkpoint")]
    pub from: u64,
}

pub async fn run(settings: Settings, args: VerifyArgs) -> CliResult {
    match (&args.checkpoint, &args.events) {
        (Some(cp), Some(events)) => offline(cp, events, args.key.as_deref().unwrap_or_default()),
        _ => online(settings, args.key, args.from).await,
    }
}

fn report(result: Result<u64, Finding>, what: &str) -> CliResult {
    match result {
        Ok(n) => {
            println!("{what}: {n} events verified");
            Ok(())
        }
        Err(f) => Err(format!("NOT VERIFIED: {f}").into()),
    }
}

fn offline(checkpoint: &std::path::Path, events: &std::path::Path, key: &str) -> CliResult {
    let note = std::fs::read_to_string(checkpoint)
        .map_err(|e| format!("--checkpoint {}: {e}", checkpoint.display()))?;
    let (size, root) = signing::open(&note, key).map_err(|e| format!("NOT VERIFIED: {e}"))?;
    let file =
        std::fs::File::open(events).map_err(|e| format!("--events {}: {e}", events.display()))?;
    let mut checker = Checker::new(vec![(size, root)]);
    let progress = Progress::new("verify", "events", Some(size));
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| Entry::from_json(&v))
            .map_err(|e| format!("--events line {}: {e}", n + 1))?;
        if let Err(f) = checker.feed(&entry) {
            return report(Err(f), "");
        }
        progress.inc(1);
    }
    progress.finish();
    report(
        checker.finish(),
        &format!("the export extends the checkpoint of {size} leaves"),
    )
}

async fn online(settings: Settings, key: Option<String>, from: u64) -> CliResult {
    let key = match key {
        Some(k) => k,
        None => crate::transparency::key::load(&settings)?
            .ok_or("no log key: pass --key <verifier key> or set WALLETD_LOG_KEY")?
            .verifier_key()
            .to_string(),
    };
    let db = crate::store::connect(&settings.database_url, ONE_SHOT_POOL).await?;
    crate::store::migrate::run(&db).await?;
    let notes: Vec<(i64, String)> = with_db!(&db, pool => {
        let mut out = Vec::new();
        for r in sqlx::query("SELECT size, note FROM log_checkpoints ORDER BY size")
            .fetch_all(pool)
            .await?
        {
            out.push((r.try_get("size")?, r.try_get("note")?));
        }
        out
    });
    let mut checkpoints = Vec::with_capacity(notes.len());
    for (size, note) in notes {
        let (signed, root) = signing::open(&note, &key)
            .map_err(|e| format!("NOT VERIFIED: the checkpoint of size {size}: {e}"))?;
        if signed != size as u64 {
            return Err(format!(
                "NOT VERIFIED: the checkpoint stored as size {size} signs size {signed}"
            )
            .into());
        }
        checkpoints.push((signed, root));
    }
    let sealed = checkpoints.last().map(|c| c.0).unwrap_or(0);
    if from > sealed {
        return Err(format!("--from {from} is beyond the sealed log ({sealed} leaves)").into());
    }
    let head = resume_at(&db, from, &checkpoints).await?;
    let mut checker = Checker::resume(checkpoints, head);
    let progress = Progress::new("verify", "events", Some(sealed - from));
    let mut next = from;
    // One past the last leaf: reading stops at the first gap, which the
    // checker then reports (an index that does not follow).
    while next < sealed {
        let entries = page(&db, next, sealed, 1000).await?;
        let Some(last) = entries.last() else { break };
        next = last.index + 1;
        for e in &entries {
            if let Err(f) = checker.feed(e) {
                return report(Err(f), "");
            }
        }
        progress.inc(entries.len() as u64);
    }
    progress.finish();
    // An event row inside the sealed range that is not a leaf was inserted
    // behind the sealer's back.
    let stray: Option<i64> = with_db!(&db, pool => {
        sqlx::query(
            "SELECT MIN(e.position) AS p FROM events e
              WHERE e.position < (SELECT MAX(event_position) FROM log_leaves)
                AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.event_position = e.position)",
        )
        .fetch_one(pool)
        .await?
        .try_get("p")?
    });
    db.close().await;
    let result = checker.finish();
    if let (Ok(_), Some(p)) = (&result, stray) {
        return Err(format!(
            "NOT VERIFIED: the event at store position {p} is inside the sealed log but is no leaf: it was inserted"
        )
        .into());
    }
    report(
        result.map(|n| n - from),
        &format!("the log verifies against {sealed} sealed leaves (from position {from})"),
    )
}

/// The tree head of the first `from` leaves, from the stored tree, after
/// checking that tree against every signed checkpoint up to `from`.
async fn resume_at(
    db: &walletd_projections::Db,
    from: u64,
    checkpoints: &[(u64, Hash)],
) -> Result<Head, Box<dyn std::error::Error>> {
    let mut known = HashMapByIndex::new();
    for &(size, root) in checkpoints.iter().filter(|c| c.0 <= from) {
        let stored = with_hashes(db, &mut known, |r| tree_hash(size, r)).await?;
        if stored != root {
            return Err(format!(
                "NOT VERIFIED: the stored tree of {size} leaves does not hash to its signed checkpoint: it was altered"
            )
            .into());
        }
    }
    let indexes: Vec<u64> = frontier(from)
        .into_iter()
        .map(|(h, i)| stored_hash_index(h as u8, i))
        .collect();
    let roots = with_hashes(db, &mut known, |r| r.read_hashes(&indexes)).await?;
    Ok(Head::from_subtrees(from, &roots))
}
