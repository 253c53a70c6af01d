//! Background upkeep of the API's own tables, off the request path: counted
//! refusals are written every [`FLUSH_EVERY`], and expired rows (Idempotency-Key
//! responses, rate-limit grants, refusal counts past their retention) are
//! deleted in bounded batches every [`PRUNE_EVERY`]. Every process sharing a
//! database does this; the deletes are idempotent, so that is harmless.

use std::sync::Weak;
use std::time::Duration;

use crate::api::{idempotency, rate_limit};
use crate::app::App;
use crate::audit::refusals::FLUSH_EVERY;
use crate::audit::security_log;
use crate::domain::Timestamp;

const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per statement, and statements per table per round: a backlog
/// is worked off over several rounds instead of in one long transaction.
const PRUNE_BATCH: i64 = 1000;
const PRUNE_ROUNDS: usize = 10;
/// Grants older than this are outside every window.
const GRANTS_KEPT_MS: i64 = 120_000;

/// Runs until the app is dropped.
pub fn spawn(app: Weak<App>) {
    tokio::spawn(async move {
        let mut since_prune = Duration::ZERO;
        loop {
            tokio::time::sleep(FLUSH_EVERY).await;
            let Some(app) = app.upgrade() else { return };
            if let Err(e) = app.refusals.flush(&app.db).await {
                tracing::warn!(error = %e, "could not write refusal counts; keeping them for the next attempt");
            }
            since_prune += FLUSH_EVERY;
            if since_prune >= PRUNE_EVERY {
                since_prune = Duration::ZERO;
                prune(&app).await;
            }
        }
    });
}

/// One pruning round over every table with expiring rows.
pub async fn prune(app: &App) {
    let retention = app.settings.refusal_retention_days;
    let refusals_before = (retention > 0).then(|| {
        Timestamp::from_datetime(chrono::Utc::now() - chrono::Duration::days(i64::from(retention)))
    });
    for round in 0..PRUNE_ROUNDS {
        let mut deleted = 0;
        deleted += report(
            "idempotency_keys",
            idempotency::prune(&app.db, idempotency::KEEP_FOR_SECS, PRUNE_BATCH).await,
        );
        deleted += report(
            "rate_limit_grants",
            rate_limit::prune(&app.db, GRANTS_KEPT_MS, PRUNE_BATCH).await,
        );
        if let Some(before) = &refusals_before {
            deleted += report(
                "refusal_counts",
                security_log::prune_noise(&app.db, before, PRUNE_BATCH).await,
            );
        }
        if deleted == 0 {
            break;
        }
        tracing::debug!(round, deleted, "pruned expired rows");
    }
}

fn report(table: &str, result: Result<u64, sqlx::Error>) -> u64 {
    match result {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(table, error = %e, "pruning failed; retrying next round");
            0
        }
    }
}
