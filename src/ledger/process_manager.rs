//! The ledger's process manager: every `TransferDebited` gets exactly one
//! second leg (`TransferCredited` on the destination, or `TransferReturned`
//! on the source when the destination may not receive), and every
//! `TransferCredited` a `TransferSettled` on the source.
//!
//! It reads the log in global order like the projections (below
//! PostgreSQL's horizon of running transactions, so a late commit is never
//! skipped), decides on the accounts purely, and appends what it decided
//! **with its checkpoint in the same transaction** ([`CheckpointMove`]): a
//! compare-and-set that fails the whole append if anybody moved the
//! checkpoint meanwhile. A crash before the commit loses the decisions and
//! leaves the checkpoint where it was, so the next pass decides them
//! again; after the commit both are there. Two instances deciding the same
//! batch serialise on the checkpoint row and the loser's append fails
//! whole. So a debit is resolved once, across crashes and instances,
//! whatever the accounts' windows remember.
//!
//! Hot accounts: one pass decides all of its batch's credits to one
//! destination in log order on one loaded state and appends them in the
//! one transaction, so 64 senders to one wallet cost that wallet one append
//! per pass, not one per transfer.
//!
//! The checkpoint lives in `ledger_checkpoints`, not with the projections':
//! replay and projection resets never rewind it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Weak;
use std::time::Duration;

use cqrs_es::Aggregate as _;
use futures_util::future::BoxFuture;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::Value;
use sqlx::Row;
use walletd_projections::{with_db, Db, LogPosition};

use super::money_gate;
use crate::app::App;
use crate::domain::account::{
    Account, AccountCommand, AccountError, AccountEvent, MovementId, ReturnReason, WalletGate,
};
use crate::domain::{Timestamp, WalletId};
use crate::store::append::{StagedEvent, StagedSnapshot};
use crate::store::checkpointed::{self, CheckpointMove, Restage};
use crate::store::staging::{decide, snapshot_due};
use crate::store::{AggregateStore, CommandError, CommandMeta, CommitError};

/// The checkpoint's name in `ledger_checkpoints`.
pub const NAME: &str = "ledger";
/// Events read per pass.
pub const BATCH: i64 = 2_000;
/// Lost races (with another instance or a client's command on one of the
/// accounts) before a pass gives up until its next turn.
const RETRIES: usize = 12;
/// Accounts and wallets loaded at once while preparing a pass.
const LOADS_IN_FLIGHT: usize = 16;
/// Without news from the projector, look again after this long.
const FALLBACK: Duration = Duration::from_secs(30);

/// Only the two event types the manager acts on carry their payload; every
/// other row is read for its position alone.
const READ_PG: &str = "
SELECT tx_id, position,
       CASE WHEN aggregate_type = 'account'
             AND event_type IN ('TransferDebited', 'TransferCredited')
            THEN payload::text END AS payload,
       CASE WHEN aggregate_type = 'account'
             AND event_type IN ('TransferDebited', 'TransferCredited')
            THEN metadata->>'request_id' END AS request_id
  FROM events
 WHERE (tx_id, position) > ($1, $2)
   AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
 ORDER BY tx_id, position
 LIMIT $3";

const READ_SQLITE: &str = "
SELECT 0 AS tx_id, position,
       CASE WHEN aggregate_type = 'account'
             AND event_type IN ('TransferDebited', 'TransferCredited')
            THEN payload END AS payload,
       CASE WHEN aggregate_type = 'account'
             AND event_type IN ('TransferDebited', 'TransferCredited')
            THEN json_extract(metadata, '$.request_id') END AS request_id
  FROM events
 WHERE position > $2 AND $1 = 0
 ORDER BY position
 LIMIT $3";

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("reading the log: {0}")]
    Read(#[from] sqlx::Error),
    #[error("the account event at log position {position} does not read: {why}")]
    Malformed { position: i64, why: String },
    /// A decision that would mean walletd itself is wrong (a return of a
    /// transfer not in flight, a credit refused for a reason no return
    /// covers): the manager stops rather than move value.
    #[error("transfer {movement_id}: {why}; the ledger's process manager stops here")]
    Refused {
        movement_id: MovementId,
        why: String,
    },
    #[error("storing: {0}")]
    Store(String),
    #[error("every attempt lost a race with another writer; retried later")]
    Contended,
}

/// The transfers one committed pass credited or returned, and the newest
/// position it wrote: a transfer waiting for its second leg in this process
/// waits for the projections to reach `at`, then reads its outcome.
#[derive(Debug)]
pub struct Resolved {
    pub at: LogPosition,
    /// Each transfer resolved, and whether it was credited (else returned).
    pub movements: HashMap<MovementId, bool>,
}

/// How many passes' news a slow listener may fall behind by before it
/// looks for itself.
pub const RESOLVED_BACKLOG: usize = 256;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events read (of any kind).
    pub read: usize,
    pub credited: usize,
    pub returned: usize,
    pub settled: usize,
    /// Accounts a client wrote to between this pass's decisions and its
    /// commit, decided again inside the commit's transaction.
    pub restaged: usize,
}

enum Attempt {
    /// Lost a race, or decided on a cached state that may be stale: again,
    /// on state read from the store.
    Again,
    Fail(PassError),
}

impl From<PassError> for Attempt {
    fn from(e: PassError) -> Self {
        Attempt::Fail(e)
    }
}

impl From<sqlx::Error> for Attempt {
    fn from(e: sqlx::Error) -> Self {
        Attempt::Fail(e.into())
    }
}

/// A row of the log as the manager reads it.
struct LogRow {
    at: LogPosition,
    /// The event, for the two types acted on.
    event: Option<(AccountEvent, Option<String>)>,
}

/// Where the manager has read to.
pub async fn checkpoint(db: &Db) -> Result<LogPosition, sqlx::Error> {
    Ok(with_db!(db, pool => {
        let row = sqlx::query("SELECT tx_id, position FROM ledger_checkpoints WHERE name = $1")
            .bind(NAME)
            .fetch_one(pool)
            .await?;
        LogPosition { tx_id: row.try_get("tx_id")?, position: row.try_get("position")? }
    }))
}

async fn read(db: &Db, after: LogPosition, limit: i64) -> Result<Vec<LogRow>, PassError> {
    let sql = match db {
        Db::Postgres(_) => READ_PG,
        Db::Sqlite(_) => READ_SQLITE,
    };
    let raw: Vec<(LogPosition, Option<String>, Option<String>)> = with_db!(db, pool => {
        let rows = sqlx::query(sql)
            .bind(after.tx_id)
            .bind(after.position)
            .bind(limit)
            .fetch_all(pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((
                LogPosition { tx_id: r.try_get("tx_id")?, position: r.try_get("position")? },
                r.try_get("payload")?,
                r.try_get("request_id")?,
            ));
        }
        out
    });
    raw.into_iter()
        .map(|(at, payload, request_id)| {
            let event = match payload {
                None => None,
                Some(p) => Some((
                    serde_json::from_str::<AccountEvent>(&p).map_err(|e| PassError::Malformed {
                        position: at.position,
                        why: e.to_string(),
                    })?,
                    request_id,
                )),
            };
            Ok(LogRow { at, event })
        })
        .collect()
}

/// Runs one pass over at most `batch` events; a lost race is decided again
/// on fresh state, up to [`RETRIES`] times.
pub async fn pass(app: &App, batch: i64) -> Result<Outcome, PassError> {
    let mut fresh = false;
    for attempt in 0..RETRIES {
        match try_pass(app, batch, fresh).await {
            Ok(outcome) => return Ok(outcome),
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::Again) => {
                if attempt > 0 {
                    crate::metrics::record_retry("ledger");
                    crate::store::retry::backoff(attempt).await;
                }
                fresh = true;
            }
        }
    }
    Err(PassError::Contended)
}

/// Passes until the manager has read the whole log below the horizon.
pub async fn catch_up(app: &App) -> Result<Outcome, PassError> {
    let mut total = Outcome::default();
    loop {
        let o = pass(app, BATCH).await?;
        total.read += o.read;
        total.credited += o.credited;
        total.returned += o.returned;
        total.settled += o.settled;
        total.restaged += o.restaged;
        if (o.read as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// One account during a pass: its state, the commands decided on it in
/// log order (with whether each was accepted) and the events they staged.
struct Work {
    state: Account,
    /// The sequence the decisions were made on.
    loaded: usize,
    sequence: usize,
    decisions: Vec<Decision>,
    events: Vec<StagedEvent>,
}

struct Decision {
    command: AccountCommand,
    metadata: Value,
    accepted: bool,
}

impl Work {
    fn new((state, loaded): (Account, usize)) -> Self {
        Self {
            state,
            loaded,
            sequence: loaded,
            decisions: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Decides `command` on the current state and stages its events; a
    /// repeat (accepted, nothing to record) stages none.
    async fn decide(
        &mut self,
        id: WalletId,
        command: AccountCommand,
        metadata: Value,
    ) -> Result<Result<(), AccountError>, CommitError> {
        let decided = decide(
            &self.state,
            self.sequence,
            command.clone(),
            &(),
            &id.to_string(),
            &metadata,
            &mut self.events,
        )
        .await;
        let outcome = match decided {
            Ok(Some((next, sequence))) => {
                self.state = next;
                self.sequence = sequence;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(CommandError::Domain(e)) => Err(e),
            Err(e) => return Err(CommitError::Store(e.to_string())),
        };
        self.decisions.push(Decision {
            command,
            metadata,
            accepted: outcome.is_ok(),
        });
        Ok(outcome)
    }
}

/// A pass's decisions, by account, as the checkpointed append stores them.
struct Batch<'a> {
    store: &'a AggregateStore<Account>,
    accounts: BTreeMap<WalletId, Work>,
    restaged: usize,
}

impl Batch<'_> {
    async fn decide(
        &mut self,
        id: WalletId,
        command: AccountCommand,
        metadata: &Value,
    ) -> Result<Result<(), AccountError>, Attempt> {
        let work = self.accounts.get_mut(&id).expect("loaded before deciding");
        work.decide(id, command, metadata.clone())
            .await
            .map_err(|e| Attempt::Fail(PassError::Store(e.to_string())))
    }
}

impl Restage for Batch<'_> {
    fn bases(&self) -> Vec<(String, i64)> {
        self.accounts
            .iter()
            .filter(|(_, w)| !w.decisions.is_empty())
            .map(|(id, w)| (id.to_string(), w.loaded as i64))
            .collect()
    }

    fn events(&self) -> Vec<&StagedEvent> {
        self.accounts
            .values()
            .flat_map(|w| w.events.iter())
            .collect()
    }

    fn restage<'a>(
        &'a mut self,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommitError>> {
        Box::pin(async move {
            let id = WalletId::parse(aggregate_id).ok_or_else(|| {
                CommitError::Store(format!("{aggregate_id} is not an account id"))
            })?;
            self.store.forget(aggregate_id);
            let stored = self
                .store
                .load(aggregate_id)
                .await
                .map_err(|e| CommitError::Store(e.to_string()))?;
            let Some(old) = self.accounts.remove(&id) else {
                return Ok(false);
            };
            let mut fresh = Work::new(stored);
            for d in &old.decisions {
                let outcome = fresh
                    .decide(id, d.command.clone(), d.metadata.clone())
                    .await?;
                if outcome.is_ok() != d.accepted {
                    return Ok(false);
                }
            }
            self.accounts.insert(id, fresh);
            self.restaged += 1;
            Ok(true)
        })
    }

    fn snapshots(&self) -> Vec<StagedSnapshot> {
        self.accounts
            .iter()
            .filter_map(|(id, w)| snapshot_due(&id.to_string(), w.loaded, w.sequence, &w.state))
            .collect()
    }
}

async fn try_pass(app: &App, batch: i64, fresh: bool) -> Result<Outcome, Attempt> {
    let db = &app.db;
    let from = checkpoint(db).await?;
    let rows = read(db, from, batch).await?;
    let Some(to) = rows.last().map(|r| r.at) else {
        return Ok(Outcome::default());
    };
    let mut outcome = Outcome {
        read: rows.len(),
        ..Outcome::default()
    };
    let events: Vec<(&AccountEvent, Option<&String>)> = rows
        .iter()
        .filter_map(|r| r.event.as_ref().map(|(e, id)| (e, id.as_ref())))
        .collect();

    // Everything the decisions need, loaded up front and concurrently:
    // the accounts touched and the destinations' gates. A cached state may
    // be stale; the append finds out and has it decided again.
    let mut ids = BTreeSet::new();
    let mut destinations = BTreeSet::new();
    for (event, _) in &events {
        match event {
            AccountEvent::TransferDebited {
                wallet_id,
                to_wallet,
                ..
            } => {
                ids.insert(*wallet_id);
                ids.insert(*to_wallet);
                destinations.insert(*to_wallet);
            }
            AccountEvent::TransferCredited { from_wallet, .. } => {
                ids.insert(*from_wallet);
            }
            _ => {}
        }
    }
    let store = &app.accounts;
    let accounts: BTreeMap<WalletId, Work> = stream::iter(ids)
        .map(|id| async move {
            let key = id.to_string();
            let hit = if fresh { None } else { store.cached(&key) };
            let loaded = match hit {
                Some(hit) => hit,
                None => store.load(&key).await.map_err(store_failure)?,
            };
            Ok::<_, Attempt>((id, Work::new(loaded)))
        })
        .buffer_unordered(LOADS_IN_FLIGHT)
        .try_collect()
        .await?;
    // One query proves which cached wallet states are current; only the
    // others are loaded.
    let wanted: Vec<String> = destinations.iter().map(ToString::to_string).collect();
    let wallets = app
        .wallets
        .load_current(&wanted)
        .await
        .map_err(|e| Attempt::Fail(PassError::Store(e.to_string())))?;
    let gates: HashMap<WalletId, WalletGate> = destinations
        .iter()
        .map(|id| {
            // A wallet that never existed: the debit's own gate check makes
            // this impossible, and treating it as deleted returns the value.
            let gate = wallets
                .get(&id.to_string())
                .and_then(|(wallet, _)| money_gate(wallet))
                .unwrap_or(WalletGate {
                    whitelisted: false,
                    frozen: false,
                    deleted: true,
                });
            (*id, gate)
        })
        .collect();

    let mut work = Batch {
        store,
        accounts,
        restaged: 0,
    };
    let mut resolved = HashMap::new();
    let now = Timestamp::now();
    for (event, request_id) in events {
        let metadata = metadata(request_id, &now)?;
        match event {
            AccountEvent::TransferDebited {
                wallet_id,
                movement_id,
                asset,
                amount,
                to_wallet,
                ..
            } => {
                let credit = AccountCommand::CreditTransfer {
                    wallet_id: *to_wallet,
                    movement_id: *movement_id,
                    asset: asset.clone(),
                    amount: *amount,
                    from_wallet: *wallet_id,
                    gate: gates[to_wallet],
                    at: now,
                };
                let credited = work.decide(*to_wallet, credit, &metadata).await?;
                resolved.insert(*movement_id, credited.is_ok());
                match credited {
                    Ok(()) => outcome.credited += 1,
                    Err(refusal) => {
                        let Some(reason) = ReturnReason::for_refused_credit(&refusal) else {
                            return Err(refused(*movement_id, &refusal, fresh));
                        };
                        let back = AccountCommand::ReturnTransfer {
                            wallet_id: *wallet_id,
                            movement_id: *movement_id,
                            asset: asset.clone(),
                            amount: *amount,
                            reason,
                            at: now,
                        };
                        work.decide(*wallet_id, back, &metadata)
                            .await?
                            .map_err(|e| refused(*movement_id, &e, fresh))?;
                        outcome.returned += 1;
                    }
                }
            }
            AccountEvent::TransferCredited {
                movement_id,
                asset,
                amount,
                from_wallet,
                ..
            } => {
                let settle = AccountCommand::SettleTransfer {
                    wallet_id: *from_wallet,
                    movement_id: *movement_id,
                    asset: asset.clone(),
                    amount: *amount,
                    at: now,
                };
                work.decide(*from_wallet, settle, &metadata)
                    .await?
                    .map_err(|e| refused(*movement_id, &e, fresh))?;
                outcome.settled += 1;
            }
            _ => {}
        }
    }

    let checkpoint = CheckpointMove {
        name: NAME,
        from,
        to,
    };
    match checkpointed::commit(db, Account::TYPE, &checkpoint, &mut work).await {
        Ok(newest) => {
            outcome.restaged = work.restaged;
            for (id, w) in work.accounts {
                if w.sequence > w.loaded {
                    store.remember(&id.to_string(), w.state, w.sequence);
                }
            }
            if let Some(at) = newest {
                store.projector().nudge();
                if !resolved.is_empty() {
                    // Nobody listening is fine.
                    let _ = app.ledger_resolved.send(std::sync::Arc::new(Resolved {
                        at,
                        movements: resolved,
                    }));
                }
            }
            Ok(outcome)
        }
        Err(CommandError::Conflict) => {
            for id in work.accounts.keys() {
                store.forget(&id.to_string());
            }
            Err(Attempt::Again)
        }
        Err(e) => Err(Attempt::Fail(PassError::Store(e.to_string()))),
    }
}

/// A refusal that would mean walletd is wrong. Decided on a cached state,
/// it may only mean the state was stale (another process debited the source
/// since): the pass runs again on stored state before anything stops.
fn refused(movement_id: MovementId, e: &AccountError, fresh: bool) -> Attempt {
    if !fresh {
        return Attempt::Again;
    }
    Attempt::Fail(PassError::Refused {
        movement_id,
        why: e.to_string(),
    })
}

fn store_failure(e: CommandError<AccountError>) -> Attempt {
    Attempt::Fail(PassError::Store(e.to_string()))
}

/// The manager's events name it as their actor and carry the debit's
/// request id, so a transfer's events share one request id.
fn metadata(request_id: Option<&String>, at: &Timestamp) -> Result<Value, Attempt> {
    let mut meta = CommandMeta::system(NAME);
    if let Some(id) = request_id {
        meta.request_id = id.clone();
    }
    meta.at = *at;
    serde_json::to_value(meta.to_map()).map_err(|e| Attempt::Fail(PassError::Store(e.to_string())))
}

/// Runs beside the API until the app is dropped: a pass whenever the
/// projector moves (new events are below the horizon), so an idle service
/// costs nothing here.
pub fn spawn(app: Weak<App>) {
    let Some((mut progress, appended)) = app
        .upgrade()
        .map(|a| (a.wallets.projector().progress(), a.ledger_appended.clone()))
    else {
        return;
    };
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            // Seen before the pass: progress made during it wakes the next.
            progress.borrow_and_update();
            let wait = {
                let Some(app) = app.upgrade() else { return };
                let started = std::time::Instant::now();
                match pass(&app, BATCH).await {
                    Ok(o) => {
                        if o.read > 0 {
                            tracing::debug!(
                                read = o.read,
                                credited = o.credited,
                                returned = o.returned,
                                settled = o.settled,
                                restaged = o.restaged,
                                ms = started.elapsed().as_millis() as u64,
                                "ledger pass"
                            );
                        }
                        if failing {
                            tracing::info!("the ledger's process manager runs again");
                            failing = false;
                        }
                        if o.read as i64 == BATCH {
                            Duration::ZERO
                        } else {
                            FALLBACK
                        }
                    }
                    Err(PassError::Contended) => Duration::from_millis(50),
                    Err(e) => {
                        if !failing {
                            tracing::error!(error = %e, "the ledger's process manager failed; transfers wait in transit");
                            failing = true;
                        }
                        Duration::from_secs(2)
                    }
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A debit committed in this process: it is in the log now,
                // before the projections have it.
                _ = appended.notified() => {}
                changed = progress.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    });
}
