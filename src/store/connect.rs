use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use walletd_projections::Db;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DATABASE_URL must start with postgres://, postgresql:// or sqlite://")]
    UnknownScheme,
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The longest a request waits for a PostgreSQL connection (including
/// reconnecting after a restart) before it answers 503.
pub const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a pooled PostgreSQL connection stays open unused. The pool hands
/// out its idle connections oldest first, so an instance's background work
/// (the lag monitor, housekeeping, every few seconds) keeps about this many
/// seconds' worth of them alive: short, so an idle instance holds two or
/// three, not the whole pool it grew to under load.
pub const PG_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Server-side limits on walletd's own PostgreSQL sessions, sent as startup
/// options. A setting already present in the URL's `options` parameter wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// `idle_in_transaction_session_timeout`: the server ends a session of ours
    /// that leaves a transaction open and idle this long. No walletd
    /// transaction waits on anything between its statements, so one that does
    /// is stuck; left open it would hold the read horizon (and every
    /// projection) back for as long as it lives.
    pub idle_in_transaction: Duration,
    /// `statement_timeout`: `None` leaves the server's default (unlimited).
    pub statement: Option<Duration>,
    /// `lock_timeout`: a statement waiting this long for a lock fails (503)
    /// instead of holding a request and a pooled connection indefinitely.
    pub lock: Option<Duration>,
}

impl SessionLimits {
    /// Serving requests: every statement is small.
    pub const SERVICE: SessionLimits = SessionLimits {
        idle_in_transaction: Duration::from_secs(15),
        statement: Some(Duration::from_secs(30)),
        lock: Some(Duration::from_secs(10)),
    };
    /// Maintenance commands (`replay`) whose statements may legitimately run
    /// long over a big log; a stuck transaction is still ended.
    pub const MAINTENANCE: SessionLimits = SessionLimits {
        idle_in_transaction: Duration::from_secs(15),
        statement: None,
        lock: None,
    };

    fn apply(&self, opts: PgConnectOptions) -> PgConnectOptions {
        let present = opts.get_options().unwrap_or("").to_owned();
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let wanted = [
            (
                "idle_in_transaction_session_timeout",
                Some(self.idle_in_transaction),
            ),
            ("statement_timeout", self.statement),
            ("lock_timeout", self.lock),
        ];
        let mut opts = opts.options(
            wanted
                .into_iter()
                .filter(|(name, _)| !present.contains(name))
                .filter_map(|(name, value)| value.map(|v| (name, ms(v)))),
        );
        // Names walletd's sessions in pg_stat_activity (and in the lag warning).
        if opts.get_application_name().is_none() {
            opts = opts.application_name("walletd");
        }
        opts
    }
}

/// Opens a pool for `url`, PostgreSQL sessions limited for serving
/// ([`SessionLimits::SERVICE`]).
pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
    connect_with(url, max_connections, SessionLimits::SERVICE).await
}

/// Opens a pool for `url`. SQLite databases are created if missing and run in
/// WAL mode with `synchronous=FULL`: a commit is on disk before it is
/// acknowledged, so a 200 survives power loss, not only a process crash.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    limits: SessionLimits,
) -> Result<Db, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let opts = limits.apply(PgConnectOptions::from_str(url).map_err(StoreError::Connect)?);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            // Opened on demand and closed when unused: an idle instance
            // holds a few connections, not its whole pool (four instances
            // would otherwise take a default server's 100).
            .min_connections(0)
            .idle_timeout(PG_IDLE_TIMEOUT)
            // While PostgreSQL is down, sqlx keeps trying to connect until
            // this runs out: it is how long a request waits before its 503.
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Db::Postgres(pool))
    } else if url.starts_with("sqlite:") {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(2, 8))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Db::Sqlite(pool))
    } else {
        Err(StoreError::UnknownScheme)
    }
}

/// Errors that say the database cannot serve right now (down, restarting,
/// unreachable, overloaded, or a session limit above ran out) rather than that
/// the request was wrong: the API answers them 503, and a retry may succeed.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY / SQLITE_LOCKED (any extended code), once
                // busy_timeout has run out.
                return code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            }
            // PostgreSQL SQLSTATE. 08: connection exception; 53: insufficient
            // resources; 57P0x: shutting down / cannot connect now; 57014:
            // statement timeout; 55P03: lock timeout; 25P03: idle-in-transaction
            // timeout.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || matches!(code, "57014" | "55P03" | "25P03")
        }
        _ => false,
    }
}

/// The file path of a `sqlite://` URL, if it names a file.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}
