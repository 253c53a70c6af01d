//! The whitelist delay, kept in the database so that every process sharing it
//! (servers, `walletd kyc`, the admin endpoint on any instance) schedules a
//! wallet's whitelisting alike. A process started with
//! `WALLETD_WHITELIST_DELAY` stores it; every queueing reads the stored value.

use walletd_projections::{with_db, Db};

/// Stores `delay_secs` as the delay for every process on this database.
pub async fn store(db: &Db, delay_secs: u64) -> Result<(), sqlx::Error> {
    let delay = i64::try_from(delay_secs).unwrap_or(i64::MAX);
    let previous = current(db).await?;
    with_db!(db, pool => {
        sqlx::query("UPDATE whitelist_policy SET delay_secs = $1 WHERE id = 1")
            .bind(delay)
            .execute(pool)
            .await?;
    });
    if previous != delay_secs {
        tracing::info!(
            previous,
            delay_secs,
            "whitelist delay changed for every process on this database"
        );
    }
    Ok(())
}

/// The delay every process applies now, in seconds.
pub async fn current(db: &Db) -> Result<u64, sqlx::Error> {
    let delay: i64 = with_db!(db, pool => {
        sqlx::query_scalar("SELECT delay_secs FROM whitelist_policy WHERE id = 1")
            .fetch_one(pool)
            .await?
    });
    Ok(u64::try_from(delay).unwrap_or(0))
}
