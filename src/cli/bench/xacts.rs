//! Database transactions per request: PostgreSQL's own commit counter
//! (`pg_stat_database.xact_commit`, every autocommit statement included)
//! read before and after a phase.

use std::time::Duration;

use walletd_projections::Db;

/// PostgreSQL publishes a backend's counters when it goes idle, at most once
/// a second, and one that went idle too soon after its last report waits up
/// to 10 s (PGSTAT_IDLE_INTERVAL) to report; waiting this long lets the last
/// ones arrive, so one phase's commits are not counted in the next.
const SETTLE: Duration = Duration::from_millis(11_000);

pub struct Counter {
    pool: sqlx::PgPool,
}

impl Counter {
    /// `None` on SQLite, which keeps no such counter.
    pub async fn open(url: &str) -> Result<Option<Self>, String> {
        match crate::store::connect(url, 1).await {
            Ok(Db::Postgres(pool)) => Ok(Some(Self { pool })),
            Ok(Db::Sqlite(_)) => Ok(None),
            Err(e) => Err(format!("cannot open the store to count transactions: {e}")),
        }
    }

    /// The counter now, after letting the last published figures arrive.
    pub async fn sample(&self) -> Option<i64> {
        self.read().await
    }

    async fn read(&self) -> Option<i64> {
        tokio::time::sleep(SETTLE).await;
        sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&self.pool)
        .await
        .ok()
    }
}

pub async fn sample(counter: Option<&Counter>) -> Option<i64> {
    counter?.read().await
}

/// Transactions committed since `before`, per request (this counter's own
/// reads not counted).
pub async fn per_request(
    counter: Option<&Counter>,
    before: Option<i64>,
    requests: usize,
) -> Option<f64> {
    let after = sample(counter).await?;
    let committed = (after - before? - 1).max(0);
    Some(committed as f64 / requests.max(1) as f64)
}
