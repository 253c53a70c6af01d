//! Rebuilding projections from position 0.
//!
//! A rebuild is a reset (the projections' tables emptied and their
//! checkpoints set to the start, in one short transaction) followed by the
//! same catch-up passes a projector runs after downtime: each pass commits
//! one batch with its checkpoints, so memory stays flat whatever the size of
//! the log, a crash mid-rebuild resumes where it stopped, and no transaction
//! stays open long. That last point matters on PostgreSQL: one long
//! transaction holds back the read horizon of the whole cluster, which would
//! stall every projector on it for the length of the rebuild.
//!
//! While a rebuild runs, the views show the log up to the rebuild's progress,
//! and running servers' projectors take their turns at the same passes (they
//! share the pass lock), so their read-your-writes waits end once the rebuild
//! has passed their events.

use crate::db::Db;
use crate::log;
use crate::projector::Projector;
use crate::ProjectionError;

/// Rebuilds every projection of `projector` from the start of the log.
/// `progress` is called after each batch with the number of events the
/// projections have applied so far. Returns that number at the end.
pub async fn rebuild(
    projector: &Projector,
    mut progress: impl FnMut(u64),
) -> Result<u64, ProjectionError> {
    projector.register().await?;
    projector.reset().await?;
    let last = projector
        .catch_up_with(|o| progress(o.applied_total.max(0) as u64))
        .await?;
    Ok(last.applied_total.max(0) as u64)
}

/// Total events in the log, for a progress bar's length.
pub async fn log_length(db: &Db) -> Result<u64, ProjectionError> {
    Ok(log::count(db).await?.max(0) as u64)
}
