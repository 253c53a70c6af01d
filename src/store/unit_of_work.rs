//! Commands on several aggregates committed in one append.
//!
//! Some changes span aggregates (a Sila wallet joins its user; KYC passing
//! queues each of the user's wallets), and "nothing is written on error"
//! means all of them or none. A unit of work loads each aggregate, decides
//! its commands and stages the events; `commit` stores them all with one
//! [`Append`], the same one a single command uses. Each aggregate's
//! (aggregate, sequence) key still gives it optimistic concurrency: if any of
//! them moved meanwhile, the whole unit fails with `Conflict` and the caller
//! runs it again from the start (see [`super::retry`]).

use std::fmt::Display;

use walletd_projections::{Db, ProjectorHandle};

use super::aggregate_store::{AggregateStore, StoredAggregate};
use super::append::Append;
use super::error::{CommandError, CommitError};
use super::staging::{decide, snapshot_if_due};
use super::CommandMeta;
use crate::domain::CommandName;

#[derive(Default)]
pub struct UnitOfWork {
    append: Append,
    /// (aggregate, command) of each staged command, counted in
    /// `walletd_commands_total` with the unit's outcome.
    commands: Vec<(&'static str, &'static str)>,
}

impl UnitOfWork {
    pub fn new() -> Self {
        Self::default()
    }

    /// A unit that also records the request's nonces (`meta.nonces`), so the
    /// request is refused as a replay unless its events are the first stored.
    pub fn for_request(meta: &CommandMeta) -> Self {
        let mut uow = Self::default();
        uow.append.nonces = meta.nonces.clone();
        uow
    }

    pub fn is_empty(&self) -> bool {
        self.append.events.is_empty()
    }

    /// Stores every staged event at once, then waits until the projections
    /// have applied them (read-your-writes).
    pub async fn commit(self, db: &Db, projector: &ProjectorHandle) -> Result<(), CommitError> {
        let committed = self.append.commit(db).await;
        // A lost race is not the commands' outcome: the unit runs again (and
        // the race counts in `walletd_concurrency_retries_total`).
        if !matches!(committed, Err(CommandError::Conflict)) {
            let outcome = crate::metrics::command_outcome(&committed);
            for &(aggregate, command) in &self.commands {
                crate::metrics::record_command(aggregate, command, outcome);
            }
        }
        if let Some(at) = committed? {
            projector.nudge();
            super::read_side::wait(projector, at).await;
        }
        Ok(())
    }
}

impl<A: StoredAggregate> AggregateStore<A> {
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
        (mut aggregate, loaded_sequence): (A, usize),
        commands: Vec<A::Command>,
        meta: &CommandMeta,
    ) -> Result<A, CommandError<A::Error>> {
        // The unit is about to change this aggregate behind the command
        // queue's cached state.
        self.forget(aggregate_id);
        let metadata =
            serde_json::to_value(meta.to_map()).map_err(|e| CommandError::Store(e.to_string()))?;
        let mut sequence = loaded_sequence;
        for command in commands {
            let name = command.name();
            let decided = decide(
                &aggregate,
                sequence,
                command,
                self.services(),
                aggregate_id,
                &metadata,
                &mut uow.append.events,
            )
            .await;
            if decided.is_err() {
                // The unit stops here and is not committed.
                let outcome = crate::metrics::command_outcome(&decided);
                crate::metrics::record_command(A::TYPE, name, outcome);
            }
            if let Some((next, next_sequence)) = decided? {
                aggregate = next;
                sequence = next_sequence;
            }
            uow.commands.push((A::TYPE, name));
        }
        snapshot_if_due(
            &mut uow.append,
            aggregate_id,
            loaded_sequence,
            sequence,
            &aggregate,
        );
        Ok(aggregate)
    }
}
