//! Moving money, for every API dialect: issue, transfer and redeem as
//! commands on the `account` aggregate, each gated by the wallets' state as
//! their `wallet` aggregates hold it now; balances and history from the
//! ledger's read models. The dialects authenticate, check who may move
//! which wallet's money, parse amounts in their own wire forms and map
//! [`LedgerError`] to their own error bodies.
//!
//! Idempotency: a movement's id is chosen before the first attempt
//! (`MovementId::for_request(actor, key)`), so every retry of one request
//! names one movement. A retry finds the movement recorded (the history
//! view, then the account's window) and gets the first attempt's outcome;
//! the same id for a different movement is refused.

use std::time::Duration;

use tokio::sync::broadcast;

use walletd_projections::ledger_queries::{self, BalanceRow, MovementRow};

use crate::app::App;
use crate::domain::account::{AccountCommand, AccountError, Memo, MovementId, Reference};
use crate::domain::money::{Amount, Asset};
use crate::domain::WalletId;
use crate::ledger::money_gate;
use crate::store::{CommandError, CommandMeta};

/// How long a transfer waits for its second leg before answering
/// `pending` (the value is in transit; the process manager completes it).
pub const TRANSFER_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("wallet {0} not found")]
    WalletNotFound(WalletId),
    /// The account's rules refused the movement (funds, gate, duplicate id).
    #[error("{0}")]
    Refused(AccountError),
    #[error("too many concurrent changes to this wallet's balance; retry")]
    Contended,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CommandError<AccountError>> for LedgerError {
    fn from(e: CommandError<AccountError>) -> Self {
        match e {
            CommandError::Domain(e) => LedgerError::Refused(e),
            CommandError::Conflict => LedgerError::Contended,
            CommandError::Unavailable(m) => LedgerError::Unavailable(m),
            e
            @ (CommandError::Replayed | CommandError::AddressClaimed | CommandError::Store(_)) => {
                LedgerError::Internal(e.to_string())
            }
        }
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Unavailable(e.to_string())
    }
}

/// Who asked and under which movement id.
#[derive(Clone, Debug)]
pub struct Origin {
    pub movement_id: MovementId,
    /// Recorded in the event: `apikey:3`, `jwt:<sub>`, `sila:<app>/<user>`.
    pub requested_by: String,
}

/// A movement as the wallet it was asked of records it: the issue, the
/// redemption, or the transfer's outgoing leg (`status` pending, settled or
/// returned, with the return's reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub movement_id: MovementId,
    pub row: MovementRow,
}

impl Recorded {
    pub fn status(&self) -> &str {
        &self.row.status
    }
}

pub struct LedgerService<'a> {
    app: &'a App,
}

impl<'a> LedgerService<'a> {
    pub fn new(app: &'a App) -> Self {
        Self { app }
    }

    /// Credits `wallet_id` with value received outside walletd.
    pub async fn issue(
        &self,
        wallet_id: WalletId,
        asset: &Asset,
        amount: Amount,
        funding_reference: Reference,
        origin: &Origin,
        meta: &CommandMeta,
    ) -> Result<Recorded, LedgerError> {
        self.one_wallet(
            wallet_id,
            "issue",
            asset,
            amount,
            funding_reference,
            origin,
            meta,
            |gate, funding_reference| AccountCommand::Issue {
                wallet_id,
                movement_id: origin.movement_id,
                asset: asset.clone(),
                amount,
                funding_reference,
                gate,
                requested_by: origin.requested_by.clone(),
                at: meta.at,
            },
        )
        .await
    }

    /// Debits `from` and puts the value in transit to `to`; the process
    /// manager credits `to` (or returns the value if `to` may no longer
    /// receive). Waits up to `wait` for that second leg.
    #[allow(clippy::too_many_arguments)]
    pub async fn transfer(
        &self,
        from: WalletId,
        to: WalletId,
        asset: &Asset,
        amount: Amount,
        memo: Option<Memo>,
        origin: &Origin,
        meta: &CommandMeta,
        wait: Duration,
    ) -> Result<Recorded, LedgerError> {
        let to_text = to.to_string();
        let expect = Expect::new("transfer_out", asset, amount, &to_text);
        if let Some(done) = self.recorded(from, origin, &expect).await? {
            return self
                .settled_or_pending(from, origin, &expect, done, wait)
                .await;
        }
        if from == to {
            return Err(LedgerError::Refused(AccountError::SelfTransfer));
        }
        let [gate, to_gate] = self.gates([from, to]).await?;
        let command = AccountCommand::DebitForTransfer {
            wallet_id: from,
            movement_id: origin.movement_id,
            asset: asset.clone(),
            amount,
            to_wallet: to,
            memo,
            gate,
            to_gate,
            requested_by: origin.requested_by.clone(),
            at: meta.at,
        };
        self.app.accounts.execute(from, command, meta).await?;
        self.answer(from, origin, &expect, wait).await
    }

    /// Debits `wallet_id` for value paid out outside walletd.
    pub async fn redeem(
        &self,
        wallet_id: WalletId,
        asset: &Asset,
        amount: Amount,
        destination_reference: Reference,
        origin: &Origin,
        meta: &CommandMeta,
    ) -> Result<Recorded, LedgerError> {
        self.one_wallet(
            wallet_id,
            "redeem",
            asset,
            amount,
            destination_reference,
            origin,
            meta,
            |gate, destination_reference| AccountCommand::Redeem {
                wallet_id,
                movement_id: origin.movement_id,
                asset: asset.clone(),
                amount,
                destination_reference,
                gate,
                requested_by: origin.requested_by.clone(),
                at: meta.at,
            },
        )
        .await
    }

    /// An issue or a redemption: one command on one account against an
    /// outside reference, answered from the history view (a retry with the
    /// first outcome).
    #[allow(clippy::too_many_arguments)]
    async fn one_wallet(
        &self,
        wallet_id: WalletId,
        kind: &'static str,
        asset: &Asset,
        amount: Amount,
        reference: Reference,
        origin: &Origin,
        meta: &CommandMeta,
        command: impl FnOnce(crate::domain::account::WalletGate, Reference) -> AccountCommand,
    ) -> Result<Recorded, LedgerError> {
        let counterparty = reference.as_str().to_string();
        let expect = Expect::new(kind, asset, amount, &counterparty);
        if let Some(done) = self.recorded(wallet_id, origin, &expect).await? {
            return Ok(done);
        }
        let [gate] = self.gates([wallet_id]).await?;
        let command = command(gate, reference);
        self.app.accounts.execute(wallet_id, command, meta).await?;
        self.answer(wallet_id, origin, &expect, Duration::ZERO)
            .await
    }

    /// The wallet's balance of `asset` (zero if it never held any), as the
    /// read model has it after every acknowledged movement.
    pub async fn balance(&self, wallet_id: WalletId, asset: &Asset) -> Result<Amount, LedgerError> {
        Ok(self
            .balances(wallet_id)
            .await?
            .into_iter()
            .find(|b| b.asset == asset.code().as_str())
            .map(|b| Amount::from_minor(b.balance))
            .unwrap_or(Amount::ZERO))
    }

    pub async fn balances(&self, wallet_id: WalletId) -> Result<Vec<BalanceRow>, LedgerError> {
        Ok(ledger_queries::wallet_balances(&self.app.db, &wallet_id.to_string()).await?)
    }

    /// The movement's rows on every wallet it touched (a transfer has one
    /// on each side, and a `return` row when it came back).
    pub async fn movement(&self, movement_id: MovementId) -> Result<Vec<MovementRow>, LedgerError> {
        Ok(ledger_queries::movement_rows(&self.app.db, &movement_id.to_string()).await?)
    }

    /// May these wallets move money now: read from their aggregates (one
    /// query for both ends of a transfer), not a view, so a freeze or a
    /// deletion stops money the moment it commits (a cached state counts
    /// only when its stream is proven not to have moved past it).
    async fn gates<const N: usize>(
        &self,
        wallet_ids: [WalletId; N],
    ) -> Result<[crate::domain::account::WalletGate; N], LedgerError> {
        let ids: Vec<String> = wallet_ids.iter().map(ToString::to_string).collect();
        let states = self
            .app
            .wallets
            .load_current(&ids)
            .await
            .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
        let mut gates = [crate::domain::account::WalletGate::OPEN; N];
        for (gate, (wallet_id, id)) in gates.iter_mut().zip(wallet_ids.iter().zip(&ids)) {
            *gate = states
                .get(id)
                .and_then(|(wallet, _)| money_gate(wallet))
                .ok_or(LedgerError::WalletNotFound(*wallet_id))?;
        }
        Ok(gates)
    }

    /// The movement as already recorded on `wallet_id`, if this is a retry.
    /// The same id for another movement is refused.
    async fn recorded(
        &self,
        wallet_id: WalletId,
        origin: &Origin,
        expect: &Expect<'_>,
    ) -> Result<Option<Recorded>, LedgerError> {
        let rows = self.movement(origin.movement_id).await?;
        let Some(row) = rows.into_iter().find(|r| {
            r.wallet_id == wallet_id.to_string() && r.kind != "transfer_in" && r.kind != "return"
        }) else {
            return Ok(None);
        };
        if !expect.matches(&row) {
            return Err(LedgerError::Refused(AccountError::DuplicateMovement {
                movement_id: origin.movement_id,
            }));
        }
        Ok(Some(Recorded {
            movement_id: origin.movement_id,
            row,
        }))
    }

    /// After the command: the movement as recorded (the command waited for
    /// the read models), a transfer after up to `wait` for its second leg.
    async fn answer(
        &self,
        wallet_id: WalletId,
        origin: &Origin,
        expect: &Expect<'_>,
        wait: Duration,
    ) -> Result<Recorded, LedgerError> {
        let Some(done) = self.recorded(wallet_id, origin, expect).await? else {
            // The read side is behind (its wait timed out): the event is
            // stored, so answer from the request itself.
            return Err(LedgerError::Unavailable(
                "the movement is recorded but not yet readable; retry with the same key".into(),
            ));
        };
        self.settled_or_pending(wallet_id, origin, expect, done, wait)
            .await
    }

    async fn settled_or_pending(
        &self,
        wallet_id: WalletId,
        origin: &Origin,
        expect: &Expect<'_>,
        mut done: Recorded,
        wait: Duration,
    ) -> Result<Recorded, LedgerError> {
        if done.status() != "pending" || wait.is_zero() {
            return Ok(done);
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut resolved = self.app.ledger_resolved.subscribe();
        loop {
            // The process manager in this process says which transfers it
            // resolved; one in another process is not heard, so look again
            // now and then regardless.
            let heard = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(done),
                _ = tokio::time::sleep(UNHEARD_POLL) => None,
                news = resolved.recv() => match news {
                    Ok(batch) => match batch.movements.get(&origin.movement_id) {
                        // Credited: once the projections have the credit
                        // (read-your-writes) the source's row says settled,
                        // as the answer does; no need to read it back.
                        Some(true) => {
                            crate::store::read_side::wait(self.app.accounts.projector(), batch.at)
                                .await;
                            done.row.status = "settled".into();
                            return Ok(done);
                        }
                        Some(false) => Some(batch.at),
                        None => continue,
                    },
                    // Missed some news: look.
                    Err(broadcast::error::RecvError::Lagged(_)) => None,
                    Err(broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep(UNHEARD_POLL).await;
                        None
                    }
                },
            };
            if let Some(at) = heard {
                crate::store::read_side::wait(self.app.accounts.projector(), at).await;
            }
            if let Some(now) = self.recorded(wallet_id, origin, expect).await? {
                done = now;
                if done.status() != "pending" {
                    return Ok(done);
                }
            }
        }
    }
}

/// Without news from this process's process manager, a waiting transfer
/// looks again this often (the manager may run in another process).
const UNHEARD_POLL: Duration = Duration::from_millis(100);

/// What a retry's recorded movement must match.
struct Expect<'s> {
    kind: &'static str,
    asset: &'s Asset,
    amount: Amount,
    counterparty: &'s str,
}

impl<'s> Expect<'s> {
    fn new(kind: &'static str, asset: &'s Asset, amount: Amount, counterparty: &'s str) -> Self {
        Self {
            kind,
            asset,
            amount,
            counterparty,
        }
    }

    fn matches(&self, row: &MovementRow) -> bool {
        row.kind == self.kind
            && row.asset == self.asset.code().as_str()
            && row.amount == self.amount.minor()
            && row.counterparty == self.counterparty
    }
}
