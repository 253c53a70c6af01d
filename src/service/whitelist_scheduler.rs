//! Completes the delayed whitelist: wallets queued by `QueueWhitelist` become
//! whitelisted once their delay has passed.
//!
//! The schedule lives in the event log (the `WhitelistQueued` event carries
//! `eligible_at`) and is read from the whitelist-queue projection, so it
//! survives restarts. The wallet aggregate refuses to complete early or twice,
//! so no race can whitelist a wallet early or twice. On PostgreSQL each tick
//! runs under a transaction-scoped advisory lock, so when several walletd
//! processes share the database only one of them acts at a time.

use std::sync::Weak;
use std::time::Duration;

use walletd_projections::queries;

use crate::app::App;
use crate::domain::wallet::{WalletCommand, WalletError};
use crate::domain::{Timestamp, WalletId};
use crate::store::{CommandError, CommandMeta};

const TICK: Duration = Duration::from_millis(200);
const BATCH: i64 = 200;
/// Key of the advisory lock that elects the acting scheduler for a tick.
const LOCK_SQL: &str = "SELECT pg_try_advisory_xact_lock(131520861219189) AS got";

/// Runs until the app is dropped.
pub fn spawn(app: Weak<App>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let Some(app) = app.upgrade() else { return };
            if let Err(e) = tick(&app).await {
                tracing::warn!(error = %e, "whitelist scheduler tick failed; retrying");
            }
        }
    });
}

/// One round: whitelist every wallet that is due. Returns how many it whitelisted.
pub async fn tick(app: &App) -> Result<usize, sqlx::Error> {
    match &app.db {
        walletd_projections::Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let got: bool =
                sqlx::Row::try_get(&sqlx::query(LOCK_SQL).fetch_one(&mut *tx).await?, "got")?;
            if !got {
                return Ok(0);
            }
            let n = complete_due(app).await;
            tx.commit().await?;
            n
        }
        // One process per SQLite database: nothing to elect.
        walletd_projections::Db::Sqlite(_) => complete_due(app).await,
    }
}

async fn complete_due(app: &App) -> Result<usize, sqlx::Error> {
    let now = Timestamp::now();
    let due = queries::due_for_whitelist(&app.db, &now.to_text(), BATCH).await?;
    let mut done = 0;
    for id in due {
        let Some(wallet_id) = WalletId::parse(&id) else {
            continue;
        };
        let meta = CommandMeta::system("whitelist-scheduler");
        match app
            .wallets
            .execute(
                wallet_id,
                WalletCommand::CompleteWhitelist { at: meta.at },
                &meta,
            )
            .await
        {
            Ok(()) => done += 1,
            // Someone else finished it, or the view ran ahead of the clock: fine.
            Err(CommandError::Domain(
                WalletError::AlreadyWhitelisted
                | WalletError::WhitelistNotDue(_)
                | WalletError::NotQueued,
            ))
            | Err(CommandError::Conflict) => {}
            Err(e) => {
                tracing::warn!(wallet_id = %id, error = %e, "could not complete a whitelisting")
            }
        }
    }
    Ok(done)
}
