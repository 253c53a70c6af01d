//! Waking the projectors of other processes without polling.
//!
//! Every process nudges its own projector when it commits events. Other
//! processes on the same PostgreSQL database hear of new projections through
//! LISTEN/NOTIFY: a projector pass that applied events sends one notification
//! from inside its own transaction (the pass lock already serialises those
//! transactions, so NOTIFY's commit-time lock adds no contention to the write
//! path), and each process's listener nudges its projector when it hears one.
//! A listener that lost its connection says so, and the projector then falls
//! back to frequent polling until it is back.
//!
//! SQLite has one serving process per database and no notifications; its
//! projector polls at a modest fallback interval to pick up one-shot CLI writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::db::Db;

/// The notification channel; the payload names the sending process.
pub const CHANNEL: &str = "walletd_projections";

/// After acting on a notification, the listener waits this long before the
/// next, so that a busy neighbour wakes this projector at most ~20 times a
/// second (its own commits wake it anyway).
const COALESCE: Duration = Duration::from_millis(50);
/// Pause before reconnecting after the listener failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// SQL that announces a finished pass, for backends that can.
pub(crate) fn announce_sql(db: &Db) -> Option<&'static str> {
    match db {
        Db::Postgres(_) => Some("SELECT pg_notify('walletd_projections', $1)"),
        Db::Sqlite(_) => None,
    }
}

/// A name for this process that other processes will not share.
pub(crate) fn instance_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

/// Whether notifications currently reach this process: the projector may
/// idle long only while they do.
#[derive(Default)]
pub(crate) struct Listening(AtomicBool);

impl Listening {
    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

/// Listens for other processes' announcements for the life of the process,
/// calling `wake` for each (coalesced) and whenever notifications may have
/// been missed (after a reconnect).
pub(crate) async fn listen(
    pool: PgPool,
    instance: String,
    listening: Arc<Listening>,
    wake: impl Fn() + Send + 'static,
) {
    loop {
        let mut listener = match connect(&pool).await {
            Ok(l) => l,
            Err(e) => {
                listening.set(false);
                if pool.is_closed() {
                    return;
                }
                tracing::debug!(error = %e, "projection listener cannot connect; polling meanwhile");
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        listening.set(true);
        // Anything committed while no one listened is picked up now.
        wake();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if n.payload() != instance {
                        wake();
                        tokio::time::sleep(COALESCE).await;
                    }
                }
                // The connection dropped, and whatever was sent meanwhile is
                // lost: reconnect, then look once more.
                Ok(None) => {
                    listening.set(false);
                    wake();
                    break;
                }
                Err(e) => {
                    listening.set(false);
                    wake();
                    tracing::debug!(error = %e, "projection listener failed; reconnecting");
                    break;
                }
            }
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
