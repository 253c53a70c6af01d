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

/// Rounds are at least this far apart, however busy the log is.
const MIN_GAP: Duration = Duration::from_millis(200);
/// With nothing queued and nothing projected, look again after this long (a
/// safety net: new queue entries arrive through the projections' progress).
const FALLBACK: Duration = Duration::from_secs(60);
/// Pause when due wallets remain that this round could not complete.
const BUSY_ELSEWHERE: Duration = Duration::from_secs(1);
const BATCH: i64 = 200;
/// Key of the advisory lock that elects the acting scheduler for a tick.
const LOCK_SQL: &str = "SELECT pg_try_advisory_xact_lock(131520861219189) AS got";

/// Runs until the app is dropped. It sleeps until the next queued wallet is
/// due, and wakes early only when the projections move (a wallet may have been
/// queued), so an idle service costs the database nothing here.
pub fn spawn(app: Weak<App>) {
    let Some(mut progress) = app.upgrade().map(|a| a.wallets.projector().progress()) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let wait = {
                let Some(app) = app.upgrade() else { return };
                match round(&app).await {
                    Ok(wait) => wait,
                    Err(e) => {
                        tracing::warn!(error = %e, "whitelist scheduler round failed; retrying");
                        Duration::from_secs(1)
                    }
                }
            };
            progress.borrow_and_update();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = progress.changed() => {
                    if changed.is_err() {
                        // The projector has stopped: nothing will wake us early.
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            tokio::time::sleep(MIN_GAP).await;
        }
    });
}

/// Completes what is due, then says how long to sleep until the next wallet
/// is due.
async fn round(app: &App) -> Result<Duration, sqlx::Error> {
    let mut next = queries::next_whitelist_due(&app.db).await?;
    if next
        .as_deref()
        .is_some_and(|due| is_due(due, Timestamp::now()))
    {
        let done = tick(app).await?;
        next = queries::next_whitelist_due(&app.db).await?;
        // Another process is at it, or an entry cannot be completed yet: do
        // not spin on it.
        if done == 0
            && next
                .as_deref()
                .is_some_and(|due| is_due(due, Timestamp::now()))
        {
            return Ok(BUSY_ELSEWHERE);
        }
    }
    let Some(due) = next.as_deref().and_then(Timestamp::parse) else {
        return Ok(FALLBACK);
    };
    let until = (due.datetime() - Timestamp::now().datetime())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Ok(until.min(FALLBACK))
}

fn is_due(eligible_at: &str, now: Timestamp) -> bool {
    // An unreadable entry is handed to the tick, which reports it.
    Timestamp::parse(eligible_at).is_none_or(|t| t <= now)
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
            Ok(()) => {
                done += 1;
                metrics::counter!(crate::metrics::WHITELIST_COMPLETED).increment(1);
            }
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
