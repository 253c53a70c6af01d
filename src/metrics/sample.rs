//! Levels read when `/metrics` is scraped rather than kept up to date on
//! every change: the database-wide facts (projection lag, the whitelist
//! queue), read from the database so that every instance on it reports the
//! same, and this process's pools, which are cheap to look at.

use std::future::Future;
use std::time::Duration;

use walletd_projections::{lag, queries, views, with_db, Db};

use super::*;
use crate::app::App;
use crate::domain::Timestamp;

/// A database that does not answer within this long does not hold up the
/// scrape (Prometheus's own timeout is 10 s by default); the series read
/// from it keep their last values and `walletd_store_up` says 0.
const STORE_WAIT: Duration = Duration::from_secs(2);

/// Sets every gauge that is sampled rather than kept.
pub async fn refresh(app: &App) {
    connection_pool(&app.db);
    key_pools(app);
    let stalled = app.wallets.projector().stalled_for().is_some();
    metrics::gauge!(PROJECTOR_STALLED).set(if stalled { 1.0 } else { 0.0 });
    let (lag_ok, queue_ok) = tokio::join!(
        bounded(projection_lag(&app.db)),
        bounded(whitelist_queue(&app.db))
    );
    metrics::gauge!(STORE_UP).set(if lag_ok && queue_ok { 1.0 } else { 0.0 });
}

/// Runs a sampling query with the [`STORE_WAIT`] bound; whether it answered.
async fn bounded(f: impl Future<Output = Result<(), sqlx::Error>>) -> bool {
    match tokio::time::timeout(STORE_WAIT, f).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "metrics: a sampling query failed");
            false
        }
        Err(_) => false,
    }
}

fn connection_pool(db: &Db) {
    let (open, idle, max) = with_db!(db, pool => (
        pool.size(),
        pool.num_idle(),
        pool.options().get_max_connections(),
    ));
    metrics::gauge!(DB_POOL_OPEN).set(f64::from(open));
    metrics::gauge!(DB_POOL_IDLE).set(idle as f64);
    metrics::gauge!(DB_POOL_MAX).set(f64::from(max));
}

/// Each running key pool of this process, by custody kind.
fn key_pools(app: &App) {
    for backend in &app.custody_backends {
        let Some(pool) = backend.key_pool().filter(|p| p.is_started()) else {
            continue;
        };
        let custody = backend.kind().as_str();
        let status = pool.status();
        metrics::gauge!(KEY_POOL_READY, "custody" => custody).set(status.ready as f64);
        metrics::gauge!(KEY_POOL_TARGET, "custody" => custody).set(status.target as f64);
        metrics::gauge!(KEY_POOL_WAITERS, "custody" => custody).set(status.waiting as f64);
        metrics::gauge!(KEY_POOL_GENERATING, "custody" => custody).set(status.generating as f64);
    }
}

/// Each projection's lag behind the log, from its own checkpoint.
async fn projection_lag(db: &Db) -> Result<(), sqlx::Error> {
    let names: Vec<&'static str> = views::all().iter().map(|p| p.name()).collect();
    for (name, lag) in lag::per_projection(db, &names).await? {
        metrics::gauge!(PROJECTION_LAG_EVENTS, "projection" => name).set(lag.events as f64);
        metrics::gauge!(PROJECTION_LAG_SECONDS, "projection" => name).set(lag.seconds);
    }
    Ok(())
}

async fn whitelist_queue(db: &Db) -> Result<(), sqlx::Error> {
    let now = Timestamp::now();
    let stats = queries::whitelist_queue_stats(db, &now.to_text()).await?;
    let oldest_due = stats
        .oldest_due
        .as_deref()
        .and_then(Timestamp::parse)
        .and_then(|due| (now.datetime() - due.datetime()).to_std().ok())
        .map_or(0.0, |age| age.as_secs_f64());
    metrics::gauge!(WHITELIST_QUEUED).set(stats.queued as f64);
    metrics::gauge!(WHITELIST_DUE).set(stats.due as f64);
    metrics::gauge!(WHITELIST_OLDEST_DUE).set(oldest_due);
    Ok(())
}
