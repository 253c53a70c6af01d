//! Executing an aggregate's commands on either backend, then waiting for the
//! read side.

use std::fmt::Display;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;
use sqlx::Row;
use walletd_projections::{with_db, Db, LogPosition, ProjectorHandle};

use super::CommandMeta;
use crate::domain::wallet::{Wallet, WalletError};

/// Snapshot every this many events, so a much-used aggregate loads quickly.
const SNAPSHOT_EVERY: usize = 50;

enum Cqrs<A: Aggregate> {
    Postgres(CqrsFramework<A, PersistedEventStore<PostgresEventRepository, A>>),
    Sqlite(CqrsFramework<A, PersistedEventStore<SqliteEventRepository, A>>),
}

/// The wallet aggregate's store.
pub type WalletStore = AggregateStore<Wallet>;

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error = WalletError> {
    #[error(transparent)]
    Domain(#[from] E),
    /// Another command on the same aggregate committed first.
    #[error("a concurrent change to the same aggregate won; retry")]
    Conflict,
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("event store error: {0}")]
    Store(String),
}

/// Loads aggregates outside the framework, for units of work.
enum Loader<A: Aggregate> {
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
    Sqlite(PersistedEventStore<SqliteEventRepository, A>),
}

pub struct AggregateStore<A: Aggregate> {
    cqrs: Cqrs<A>,
    loader: Loader<A>,
    services: A::Services,
    db: Db,
    projector: ProjectorHandle,
    turns: super::turns::Turns,
}

impl<A> AggregateStore<A>
where
    A: Aggregate + 'static,
    A::Error: Send + Sync + 'static,
{
    pub fn new(db: Db, services: A::Services, projector: ProjectorHandle) -> Self
    where
        A::Services: Clone,
    {
        let (cqrs, loader) = match &db {
            Db::Postgres(pool) => {
                let repo = || PostgresEventRepository::new(pool.clone());
                (
                    Cqrs::Postgres(CqrsFramework::new(
                        PersistedEventStore::new_snapshot_store(repo(), SNAPSHOT_EVERY),
                        vec![],
                        services.clone(),
                    )),
                    Loader::Postgres(PersistedEventStore::new_snapshot_store(
                        repo(),
                        SNAPSHOT_EVERY,
                    )),
                )
            }
            Db::Sqlite(pool) => {
                let repo = || SqliteEventRepository::new(pool.clone());
                (
                    Cqrs::Sqlite(CqrsFramework::new(
                        PersistedEventStore::new_snapshot_store(repo(), SNAPSHOT_EVERY),
                        vec![],
                        services.clone(),
                    )),
                    Loader::Sqlite(PersistedEventStore::new_snapshot_store(
                        repo(),
                        SNAPSHOT_EVERY,
                    )),
                )
            }
        };
        Self {
            cqrs,
            loader,
            services,
            db,
            projector,
            turns: Default::default(),
        }
    }

    pub(crate) fn services(&self) -> &A::Services {
        &self.services
    }

    /// The aggregate's current state and its newest sequence number.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, usize), CommandError<A::Error>> {
        let context = match &self.loader {
            Loader::Postgres(s) => s.load_aggregate(aggregate_id).await,
            Loader::Sqlite(s) => s.load_aggregate(aggregate_id).await,
        }
        .map_err(map_error)?;
        Ok((context.aggregate, context.current_sequence))
    }

    pub fn projector(&self) -> &ProjectorHandle {
        &self.projector
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs `command` against aggregate `id`. On success the events are durably
    /// stored and every projection has applied them, so the caller may read its
    /// own write at once.
    pub async fn execute(
        &self,
        id: impl Display,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<(), CommandError<A::Error>> {
        let aggregate_id = id.to_string();
        let t0 = std::time::Instant::now();
        // Load, decide and append while no other command of this process is
        // on this aggregate; the read-your-writes wait needs no turn.
        let turn = self.turns.take(&aggregate_id).await;
        let result = match &self.cqrs {
            Cqrs::Postgres(c) => {
                c.execute_with_metadata(&aggregate_id, command, meta.to_map())
                    .await
            }
            Cqrs::Sqlite(c) => {
                c.execute_with_metadata(&aggregate_id, command, meta.to_map())
                    .await
            }
        };
        drop(turn);
        result.map_err(map_error)?;
        let t1 = t0.elapsed();
        self.projector.nudge();
        let pos = self.position_of(&aggregate_id).await;
        let t2 = t0.elapsed();
        match pos {
            Ok(Some(at)) => super::read_side::wait(&self.projector, at).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not read the position of a committed event")
            }
        }
        let t3 = t0.elapsed();
        tracing::debug!(
            aggregate_id = %aggregate_id,
            execute_us = t1.as_micros() as u64,
            position_us = (t2 - t1).as_micros() as u64,
            read_side_us = (t3 - t2).as_micros() as u64,
            "command timings"
        );
        Ok(())
    }

    /// Metadata of a wallet's first event (its creation), if it exists.
    pub async fn first_event_metadata(
        &self,
        id: impl Display,
    ) -> Result<Option<serde_json::Value>, sqlx::Error> {
        let sql = match &self.db {
            Db::Postgres(_) => {
                "SELECT metadata::text AS m FROM events
                  WHERE aggregate_type = $2 AND aggregate_id = $1 AND sequence = 1"
            }
            Db::Sqlite(_) => {
                "SELECT metadata AS m FROM events
                  WHERE aggregate_type = $2 AND aggregate_id = $1 AND sequence = 1"
            }
        };
        let text: Option<String> = with_db!(&self.db, pool => {
            match sqlx::query(sql).bind(id.to_string()).bind(A::TYPE).fetch_optional(pool).await? {
                Some(row) => Some(row.try_get("m")?),
                None => None,
            }
        });
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Global position of the newest event of a wallet.
    async fn position_of(&self, aggregate_id: &str) -> Result<Option<LogPosition>, sqlx::Error> {
        let sql = match &self.db {
            Db::Postgres(_) => {
                "SELECT tx_id, position FROM events
                  WHERE aggregate_type = $2 AND aggregate_id = $1
                  ORDER BY sequence DESC LIMIT 1"
            }
            Db::Sqlite(_) => {
                "SELECT 0 AS tx_id, position FROM events
                  WHERE aggregate_type = $2 AND aggregate_id = $1
                  ORDER BY sequence DESC LIMIT 1"
            }
        };
        Ok(with_db!(&self.db, pool => {
            match sqlx::query(sql).bind(aggregate_id).bind(A::TYPE).fetch_optional(pool).await? {
                Some(row) => Some(LogPosition {
                    tx_id: row.try_get("tx_id")?,
                    position: row.try_get("position")?,
                }),
                None => None,
            }
        }))
    }
}

fn map_error<E: std::error::Error>(e: AggregateError<E>) -> CommandError<E> {
    match e {
        AggregateError::UserError(e) => CommandError::Domain(e),
        AggregateError::AggregateConflict => CommandError::Conflict,
        AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.to_string()),
        AggregateError::DeserializationError(e) => CommandError::Store(e.to_string()),
        AggregateError::UnexpectedError(e) => {
            // sqlite-es recognises only primary-key violations as conflicts; our
            // SQLite event table enforces (aggregate, sequence) with a UNIQUE
            // constraint (the primary key is the global position), so a lost
            // race arrives here.
            if let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() {
                if db.is_unique_violation() {
                    return CommandError::Conflict;
                }
            }
            if e.downcast_ref::<sqlx::Error>()
                .is_some_and(super::connect::is_unavailable)
            {
                return CommandError::Unavailable(e.to_string());
            }
            CommandError::Store(e.to_string())
        }
    }
}
