//! Deciding a command on an aggregate's state and staging what it decided.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;

use super::aggregate_store::SNAPSHOT_EVERY;
use super::append::{Append, StagedEvent, StagedSnapshot};
use super::error::CommandError;

/// Runs `command` on a copy of `state` (at `sequence`). Accepted with
/// events: they are staged in `events` and the new state and sequence come
/// back. Accepted without events: `None`. Refused: the aggregate's error.
/// `state` is untouched either way.
pub(crate) async fn decide<A: Aggregate + Clone>(
    state: &A,
    sequence: usize,
    command: A::Command,
    services: &A::Services,
    aggregate_id: &str,
    metadata: &Value,
    events: &mut Vec<StagedEvent>,
) -> Result<Option<(A, usize)>, CommandError<A::Error>> {
    let mut next = state.clone();
    let sink = EventSink::default();
    next.handle(command, services, &sink)
        .await
        .map_err(CommandError::Domain)?;
    let decided = sink.collect().await;
    if decided.is_empty() {
        return Ok(None);
    }
    let mut sequence = sequence;
    let mut staged = Vec::with_capacity(decided.len());
    for event in decided {
        sequence += 1;
        let payload =
            serde_json::to_value(&event).map_err(|e| CommandError::Store(e.to_string()))?;
        staged.push(StagedEvent {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_string(),
            sequence: sequence as i64,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload,
            metadata: metadata.clone(),
        });
    }
    events.append(&mut staged);
    Ok(Some((next, sequence)))
}

/// Stages a snapshot of `state` when this append crosses a multiple of
/// [`SNAPSHOT_EVERY`], so loading reads at most that many events.
pub(crate) fn snapshot_if_due<A: Aggregate>(
    append: &mut Append,
    aggregate_id: &str,
    before: usize,
    after: usize,
    state: &A,
) {
    if let Some(s) = snapshot_due(aggregate_id, before, after, state) {
        append.snapshots.push(s);
    }
}

/// The snapshot an append from sequence `before` to `after` should store.
pub(crate) fn snapshot_due<A: Aggregate>(
    aggregate_id: &str,
    before: usize,
    after: usize,
    state: &A,
) -> Option<StagedSnapshot> {
    if after / SNAPSHOT_EVERY == before / SNAPSHOT_EVERY {
        return None;
    }
    match serde_json::to_value(state) {
        Ok(payload) => Some(StagedSnapshot {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_string(),
            last_sequence: after as i64,
            payload,
        }),
        // A snapshot only speeds loading up; without it the events still are
        // the truth.
        Err(e) => {
            tracing::warn!(error = %e, "could not snapshot an aggregate");
            None
        }
    }
}
