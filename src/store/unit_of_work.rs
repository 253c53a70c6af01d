//! Commands on several aggregates committed in one transaction.
//!
//! cqrs-es commits one aggregate at a time. Some changes span aggregates (a
//! Sila wallet joins its user; KYC passing queues each of the user's wallets),
//! and "nothing is written on error" means all of them or none. A unit of work
//! loads each aggregate through cqrs-es, runs its commands, and stages the
//! resulting events; `commit` then inserts every staged event in one
//! transaction. The event table's key (aggregate, sequence) still gives each
//! aggregate optimistic concurrency: if any of them moved meanwhile, the whole
//! unit fails with `Conflict` and the caller retries it from the start.

use std::fmt::Display;

use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use sqlx::Row;
use walletd_projections::{with_db, Db, LogPosition, ProjectorHandle};

use super::aggregate_store::{AggregateStore, CommandError};
use super::nonces::{self, Nonce};
use super::CommandMeta;

struct StagedEvent {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

/// Why a unit of work could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("a concurrent change to one of the aggregates won; retry")]
    Conflict,
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("event store error: {0}")]
    Store(String),
    /// The unit's nonce is already recorded: the request is a replay.
    #[error("request already processed")]
    Replayed,
    /// A wallet in the unit names an address that another wallet holds (the
    /// store's address claim, see migration 0010).
    #[error("the address belongs to another wallet")]
    AddressClaimed,
}

const INSERT_PG: &str = "INSERT INTO events
   (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 VALUES ($1, $2, $3, $4, $5, $6, $7)
 RETURNING tx_id, position";
const INSERT_SQLITE: &str = "INSERT INTO events
   (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 VALUES ($1, $2, $3, $4, $5, $6, $7)
 RETURNING 0 AS tx_id, position";

#[derive(Default)]
pub struct UnitOfWork {
    events: Vec<StagedEvent>,
    nonces: Vec<Nonce>,
}

impl UnitOfWork {
    pub fn new() -> Self {
        Self::default()
    }

    /// A unit that also records the request's nonces (`meta.nonces`), so the
    /// request is refused as a replay unless its events are the first stored.
    pub fn for_request(meta: &CommandMeta) -> Self {
        Self {
            events: Vec::new(),
            nonces: meta.nonces.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Inserts every staged event in one transaction, then waits until the
    /// projections have applied them (read-your-writes).
    pub async fn commit(self, db: &Db, projector: &ProjectorHandle) -> Result<(), CommitError> {
        if self.events.is_empty() && self.nonces.is_empty() {
            return Ok(());
        }
        // SQLite has no transaction ids; its positions are commit-ordered.
        let sql = match db {
            Db::Postgres(_) => INSERT_PG,
            Db::Sqlite(_) => INSERT_SQLITE,
        };
        let newest = with_db!(db, pool => {
            let mut tx = pool.begin().await.map_err(classify)?;
            for n in &self.nonces {
                let admitted = sqlx::query(nonces::ADMIT)
                    .bind(&n.scope)
                    .bind(&n.key)
                    .bind(n.expires_at)
                    .bind(n.now)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?
                    .rows_affected()
                    == 1;
                if !admitted {
                    // Dropping the transaction rolls it back.
                    return Err(CommitError::Replayed);
                }
            }
            let mut newest = None;
            for e in &self.events {
                let row = sqlx::query(sql)
                    .bind(e.aggregate_type)
                    .bind(&e.aggregate_id)
                    .bind(e.sequence)
                    .bind(&e.event_type)
                    .bind(&e.event_version)
                    .bind(&e.payload)
                    .bind(&e.metadata)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?;
                newest = Some(LogPosition {
                    tx_id: row.try_get("tx_id").map_err(classify)?,
                    position: row.try_get("position").map_err(classify)?,
                });
            }
            tx.commit().await.map_err(classify)?;
            newest
        });
        if let Some(n) = self.nonces.first() {
            if let Err(e) = nonces::prune_now_and_then(db, n.now).await {
                tracing::warn!(error = %e, "could not prune expired nonces");
            }
        }
        projector.nudge();
        if let Some(at) = newest {
            super::read_side::wait(projector, at).await;
        }
        Ok(())
    }
}

fn classify(e: sqlx::Error) -> CommitError {
    match &e {
        sqlx::Error::Database(db) if is_address_claimed(db.as_ref()) => CommitError::AddressClaimed,
        sqlx::Error::Database(db) if db.is_unique_violation() => CommitError::Conflict,
        _ if super::connect::is_unavailable(&e) => CommitError::Unavailable(e.to_string()),
        _ => CommitError::Store(e.to_string()),
    }
}

/// The address-claim trigger's refusal: SQLSTATE WDA01 on PostgreSQL, the
/// RAISE message on SQLite.
pub(crate) fn is_address_claimed(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.code().as_deref() == Some("WDA01") || db.message().starts_with("address_claimed")
}

impl<A> AggregateStore<A>
where
    A: Aggregate + 'static,
    A::Error: Send + Sync + 'static,
{
    /// Loads aggregate `id`, runs `commands` on it in order and stages the
    /// events in `uow`; nothing is written until `uow` commits. Returns the
    /// aggregate as the staged events leave it.
    pub async fn stage(
        &self,
        uow: &mut UnitOfWork,
        id: impl Display,
        commands: Vec<A::Command>,
        meta: &CommandMeta,
    ) -> Result<A, CommandError<A::Error>> {
        let aggregate_id = id.to_string();
        let loaded = self.load(&aggregate_id).await?;
        self.stage_loaded(uow, &aggregate_id, loaded, commands, meta)
            .await
    }

    /// Like [`Self::stage`], on an aggregate the caller has just loaded with
    /// [`AggregateStore::load`] (to compare before and after).
    pub async fn stage_loaded(
        &self,
        uow: &mut UnitOfWork,
        aggregate_id: &str,
        (mut aggregate, mut sequence): (A, usize),
        commands: Vec<A::Command>,
        meta: &CommandMeta,
    ) -> Result<A, CommandError<A::Error>> {
        let metadata =
            serde_json::to_value(meta.to_map()).map_err(|e| CommandError::Store(e.to_string()))?;
        for command in commands {
            let sink = cqrs_es::event_sink::EventSink::default();
            aggregate
                .handle(command, self.services(), &sink)
                .await
                .map_err(CommandError::Domain)?;
            for event in sink.collect().await {
                sequence += 1;
                uow.events.push(StagedEvent {
                    aggregate_type: A::TYPE,
                    aggregate_id: aggregate_id.to_string(),
                    sequence: sequence as i64,
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: serde_json::to_value(&event)
                        .map_err(|e| CommandError::Store(e.to_string()))?,
                    metadata: metadata.clone(),
                });
            }
        }
        Ok(aggregate)
    }
}
