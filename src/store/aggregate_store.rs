//! Running an aggregate's commands on either backend, then waiting for the
//! read side.
//!
//! cqrs-es provides the aggregate model (`Aggregate`, its test framework)
//! and loading (postgres-es / sqlite-es repositories, snapshots included).
//! Appending is ours ([`super::append`]): the crates' repositories cannot
//! return an event's global position from the INSERT, nor put several
//! aggregates, once-only keys or several queued commands into one append.

use std::fmt::Display;
use std::sync::{Arc, Weak};

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, EventStore};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::Row;
use tokio::sync::oneshot;
use walletd_projections::{with_db, Db, LogPosition, ProjectorHandle};

use super::append::Append;
use super::command_queue::CommandQueue;
use super::error::CommandError;
use super::group_commit::GroupCommit;
use super::staging::{decide, snapshot_if_due};
use super::state_cache::StateCache;
use super::CommandMeta;
use crate::domain::wallet::Wallet;
use crate::domain::CommandName;

/// Snapshot every this many events, so a much-used aggregate loads quickly.
pub(crate) const SNAPSHOT_EVERY: usize = 50;
/// At most this many queued commands of one aggregate go into one append.
const MAX_BATCH: usize = 256;
/// How many times a batch is decided again after another process won the
/// race for the aggregate's next sequence number.
const RETRIES: usize = 12;
/// Aggregates whose state is kept between commands, per store.
const CACHED_STATES: usize = 4096;

/// What the store needs of an aggregate: queued commands are kept for a
/// retry and cross tasks; states are cached.
pub trait StoredAggregate:
    Aggregate<Command: Clone + Send + Sync + CommandName, Error: Send + Sync + 'static>
    + Clone
    + 'static
{
}

impl<A> StoredAggregate for A where
    A: Aggregate<Command: Clone + Send + Sync + CommandName, Error: Send + Sync + 'static>
        + Clone
        + 'static
{
}

/// The wallet aggregate's store.
pub type WalletStore = AggregateStore<Wallet>;

/// Loads aggregates (events after the newest snapshot) through cqrs-es.
enum Loader<A: Aggregate> {
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
    Sqlite(PersistedEventStore<SqliteEventRepository, A>),
}

type Reply<E> = Result<Option<LogPosition>, CommandError<E>>;

/// A command waiting in its aggregate's queue.
struct Pending<A: Aggregate> {
    command: A::Command,
    metadata: Value,
    nonces: Vec<super::Nonce>,
    /// The command starts the aggregate: decide it without loading.
    expect_new: bool,
    reply: oneshot::Sender<Reply<A::Error>>,
}

pub struct AggregateStore<A: Aggregate> {
    inner: Arc<Inner<A>>,
}

struct Inner<A: Aggregate> {
    loader: Loader<A>,
    services: A::Services,
    db: Db,
    projector: ProjectorHandle,
    queue: CommandQueue<Pending<A>>,
    states: StateCache<A>,
    group: GroupCommit,
    /// Told after every append of this store's events, for a log reader in
    /// this process that should not wait for the projections (the ledger's
    /// process manager after a debit).
    committed: Option<Arc<tokio::sync::Notify>>,
}

impl<A: StoredAggregate> AggregateStore<A> {
    pub fn new(db: Db, services: A::Services, projector: ProjectorHandle) -> Self {
        let group_db = db.clone();
        let loader = match &db {
            // Old event versions are brought to the current one as they are
            // read; the aggregate only ever sees current events.
            Db::Postgres(pool) => Loader::Postgres(
                PersistedEventStore::new_snapshot_store(
                    PostgresEventRepository::new(pool.clone()),
                    SNAPSHOT_EVERY,
                )
                .with_upcasters(super::upcast::upcasters(A::TYPE)),
            ),
            Db::Sqlite(pool) => Loader::Sqlite(
                PersistedEventStore::new_snapshot_store(
                    SqliteEventRepository::new(pool.clone()),
                    SNAPSHOT_EVERY,
                )
                .with_upcasters(super::upcast::upcasters(A::TYPE)),
            ),
        };
        Self {
            inner: Arc::new(Inner {
                loader,
                services,
                db,
                projector,
                queue: CommandQueue::default(),
                states: StateCache::new(CACHED_STATES),
                group: GroupCommit::new(group_db),
                committed: None,
            }),
        }
    }

    /// Like [`Self::new`], telling `committed` after every append.
    pub fn with_commit_signal(
        db: Db,
        services: A::Services,
        projector: ProjectorHandle,
        committed: Arc<tokio::sync::Notify>,
    ) -> Self {
        let mut store = Self::new(db, services, projector);
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.committed = Some(committed);
        }
        store
    }

    pub(crate) fn services(&self) -> &A::Services {
        &self.inner.services
    }

    /// The aggregate's current state and its newest sequence number, read
    /// from the store.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, usize), CommandError<A::Error>> {
        self.inner.load(aggregate_id).await
    }

    pub fn projector(&self) -> &ProjectorHandle {
        &self.inner.projector
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// This process's cached state of `id` may be older than what a unit of
    /// work is about to store.
    pub(crate) fn forget(&self, aggregate_id: &str) {
        self.inner.states.forget(aggregate_id);
    }

    /// This process's cached state of `id`, which may be stale: whoever
    /// decides on it must find out from the append's conflict.
    pub(crate) fn cached(&self, aggregate_id: &str) -> Option<(A, usize)> {
        self.inner.states.get(aggregate_id)
    }

    /// The current states of `ids`: one query for every stream's newest
    /// sequence, then a cached state at that sequence is used as it is
    /// (proven current, not trusted), and only the others are loaded (and
    /// cached). An aggregate with no events comes back at sequence 0.
    pub async fn load_current(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, (A, usize)>, CommandError<A::Error>> {
        let heads = super::heads::newest(&self.inner.db, A::TYPE, ids)
            .await
            .map_err(|e| {
                CommandError::Unavailable(format!("reading where the streams stand: {e}"))
            })?;
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            let head = heads.get(id).copied().unwrap_or(0);
            let current = self
                .inner
                .states
                .get(id)
                .filter(|(_, sequence)| *sequence as i64 == head);
            let state = match current {
                Some(hit) => hit,
                None if head == 0 => (A::default(), 0),
                None => {
                    let (state, sequence) = self.inner.load(id).await?;
                    self.inner.states.put(id, state.clone(), sequence);
                    (state, sequence)
                }
            };
            out.insert(id.clone(), state);
        }
        Ok(out)
    }

    /// A state this process has just stored outside the command queue.
    pub(crate) fn remember(&self, aggregate_id: &str, state: A, sequence: usize) {
        self.inner.states.put(aggregate_id, state, sequence);
    }

    /// Runs `command` against aggregate `id`. On success its events are
    /// durably stored and every projection has applied them, so the caller
    /// may read its own write at once. A race lost to another process is
    /// decided again on fresh state here; `Conflict` means every retry lost.
    pub async fn execute(
        &self,
        id: impl Display,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<(), CommandError<A::Error>> {
        self.submit(id.to_string(), command, meta, false).await
    }

    /// [`Self::execute`] for a command that starts a new aggregate (a
    /// create): it is decided on the empty state without loading anything.
    /// Should the aggregate exist after all, the append finds its sequence
    /// number taken and the command is decided again on the stored state,
    /// so the answer is the same as `execute`'s, one round trip cheaper.
    pub async fn execute_new(
        &self,
        id: impl Display,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<(), CommandError<A::Error>> {
        self.submit(id.to_string(), command, meta, true).await
    }

    async fn submit(
        &self,
        aggregate_id: String,
        command: A::Command,
        meta: &CommandMeta,
        expect_new: bool,
    ) -> Result<(), CommandError<A::Error>> {
        let name = command.name();
        let metadata =
            serde_json::to_value(meta.to_map()).map_err(|e| CommandError::Store(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            command,
            metadata,
            nonces: meta.nonces.clone(),
            expect_new,
            reply,
        };
        if self.inner.queue.push(&aggregate_id, pending) {
            // A task of its own, so that a caller that goes away (a client
            // that hung up) cannot strand the commands queued behind it.
            // It holds the store only while it runs a batch, so that dropping
            // the store (a CLI command ending) stops its projector at once.
            let inner = Arc::downgrade(&self.inner);
            tokio::spawn(drain(inner, aggregate_id));
        }
        let answered = answer
            .await
            .unwrap_or_else(|_| Err(CommandError::Store("the command queue stopped".into())));
        crate::metrics::record_command(A::TYPE, name, crate::metrics::command_outcome(&answered));
        if let Some(at) = answered? {
            super::read_side::wait(&self.inner.projector, at).await;
        }
        Ok(())
    }

    /// Metadata of an aggregate's first event (its creation), if it exists.
    pub async fn first_event_metadata(
        &self,
        id: impl Display,
    ) -> Result<Option<serde_json::Value>, sqlx::Error> {
        let sql = match &self.inner.db {
            Db::Postgres(_) => {
                "SELECT metadata::text AS m FROM events
                  WHERE aggregate_type = $2 AND aggregate_id = $1 AND sequence = 1"
            }
            Db::Sqlite(_) => {
                "SELECT metadata AS m FROM events
                  WHERE aggregate_type = $2 AND aggregate_id = $1 AND sequence = 1"
            }
        };
        let text: Option<String> = with_db!(&self.inner.db, pool => {
            match sqlx::query(sql).bind(id.to_string()).bind(A::TYPE).fetch_optional(pool).await? {
                Some(row) => Some(row.try_get("m")?),
                None => None,
            }
        });
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}

/// Runs the batches queued for `aggregate_id` until its queue is empty.
async fn drain<A: StoredAggregate>(inner: Weak<Inner<A>>, aggregate_id: String) {
    loop {
        // Gone: the store was dropped, and with it every queued reply, so
        // each waiting caller hears that the queue stopped.
        let Some(inner) = inner.upgrade() else { return };
        let Some(batch) = inner.queue.next_batch(&aggregate_id, MAX_BATCH) else {
            return;
        };
        if let Err(batch) = inner.run(&aggregate_id, batch).await {
            // The batch's append failed for one of its commands (an address
            // already claimed, a replayed nonce): each alone, so only that
            // one fails. A batch of one always answers.
            for pending in batch {
                let _ = inner.run(&aggregate_id, vec![pending]).await;
            }
        }
    }
}

/// What became of one command in a batch.
enum Decided<E: std::error::Error> {
    /// Its events are staged in the batch's append.
    Appends,
    /// Refused, or accepted without events: answered without appending.
    Answered(Reply<E>),
}

impl<A: StoredAggregate> Inner<A> {
    async fn load(&self, aggregate_id: &str) -> Result<(A, usize), CommandError<A::Error>> {
        let context = match &self.loader {
            Loader::Postgres(s) => s.load_aggregate(aggregate_id).await,
            Loader::Sqlite(s) => s.load_aggregate(aggregate_id).await,
        }
        .map_err(CommandError::from_load)?;
        Ok((context.aggregate, context.current_sequence))
    }

    /// Decides every command of `batch` in turn on the aggregate's state and
    /// appends all their events at once, retrying on fresh state when
    /// another process won the race. Answers each command, except when the
    /// append failed for a reason other than a race and the batch has more
    /// than one command: then the batch comes back to be run one by one.
    async fn run(&self, aggregate_id: &str, batch: Vec<Pending<A>>) -> Result<(), Vec<Pending<A>>> {
        let mut fresh_only = false;
        for attempt in 0..RETRIES {
            // A new aggregate's state is known without loading: empty. Like
            // a cached state it may be wrong (it exists after all), and is
            // treated the same way.
            let cached = if fresh_only {
                None
            } else {
                self.states
                    .get(aggregate_id)
                    .or_else(|| batch[0].expect_new.then(|| (A::default(), 0)))
            };
            let from_cache = cached.is_some();
            let (mut state, loaded_sequence) = match cached {
                Some(hit) => hit,
                None => match self.load(aggregate_id).await {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        answer_all(batch, |_| Err(copy_error(&e)));
                        return Ok(());
                    }
                },
            };
            let mut sequence = loaded_sequence;
            let mut append = Append::default();
            let mut decided = Vec::with_capacity(batch.len());
            for p in &batch {
                let outcome = decide(
                    &state,
                    sequence,
                    p.command.clone(),
                    &self.services,
                    aggregate_id,
                    &p.metadata,
                    &mut append.events,
                )
                .await;
                decided.push(match outcome {
                    Ok(Some((next, next_sequence))) => {
                        state = next;
                        sequence = next_sequence;
                        append.nonces.extend(p.nonces.iter().cloned());
                        Decided::Appends
                    }
                    Ok(None) => Decided::Answered(Ok(None)),
                    Err(e) => Decided::Answered(Err(e)),
                });
            }
            // An answer that appends nothing is given on state read from the
            // store, never on a cached state that may be stale.
            if from_cache && decided.iter().any(|d| matches!(d, Decided::Answered(_))) {
                self.states.forget(aggregate_id);
                fresh_only = true;
                continue;
            }
            snapshot_if_due(&mut append, aggregate_id, loaded_sequence, sequence, &state);
            let committed = self.group.commit(append, &self.db).await;
            match committed {
                Ok(at) => {
                    if sequence > loaded_sequence {
                        self.states.put(aggregate_id, state, sequence);
                        self.projector.nudge();
                        if let Some(c) = &self.committed {
                            c.notify_one();
                        }
                    }
                    answer(batch, decided, at);
                    return Ok(());
                }
                Err(CommandError::Conflict) => {
                    if attempt + 1 < RETRIES {
                        crate::metrics::record_retry(A::TYPE);
                    }
                    self.states.forget(aggregate_id);
                    fresh_only = true;
                    if attempt > 0 {
                        super::retry::backoff(attempt).await;
                    }
                }
                Err(e) => {
                    self.states.forget(aggregate_id);
                    let appending = decided
                        .iter()
                        .filter(|d| matches!(d, Decided::Appends))
                        .count();
                    if appending > 1 && !matches!(e, CommandError::Unavailable(_)) {
                        return Err(batch);
                    }
                    let e = e.widen::<A::Error>();
                    answer_each(batch, decided, |_| Err(copy_error(&e)));
                    return Ok(());
                }
            }
        }
        answer_all(batch, |_| Err(CommandError::Conflict));
        Ok(())
    }
}

fn answer<A: Aggregate>(
    batch: Vec<Pending<A>>,
    decided: Vec<Decided<A::Error>>,
    at: Option<LogPosition>,
) {
    answer_each(batch, decided, |_| Ok(at));
}

/// Answers each command: the ones answered while deciding with that answer,
/// the appending ones with `appended`.
fn answer_each<A: Aggregate>(
    batch: Vec<Pending<A>>,
    decided: Vec<Decided<A::Error>>,
    appended: impl Fn(usize) -> Reply<A::Error>,
) {
    for (i, (p, d)) in batch.into_iter().zip(decided).enumerate() {
        let reply = match d {
            Decided::Appends => appended(i),
            Decided::Answered(reply) => reply,
        };
        // The caller may have gone; its write stands regardless.
        let _ = p.reply.send(reply);
    }
}

fn answer_all<A: Aggregate>(batch: Vec<Pending<A>>, reply: impl Fn(usize) -> Reply<A::Error>) {
    for (i, p) in batch.into_iter().enumerate() {
        let _ = p.reply.send(reply(i));
    }
}

/// The same store failure for each command of a batch (a domain error is
/// never shared: it is each command's own).
fn copy_error<E: std::error::Error>(e: &CommandError<E>) -> CommandError<E> {
    match e {
        CommandError::Conflict => CommandError::Conflict,
        CommandError::Replayed => CommandError::Replayed,
        CommandError::AddressClaimed => CommandError::AddressClaimed,
        CommandError::Unavailable(m) => CommandError::Unavailable(m.clone()),
        CommandError::Store(m) => CommandError::Store(m.clone()),
        CommandError::Domain(d) => CommandError::Store(d.to_string()),
    }
}
