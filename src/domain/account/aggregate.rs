use std::collections::{BTreeMap, VecDeque};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::domain::money::{Amount, Asset, AssetCode};
use crate::domain::{Timestamp, WalletId};

use super::{AccountCommand, AccountEvent, MovementId};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    /// The command names another wallet than this account's: a routing bug.
    #[error("this account is wallet {account}'s, not {given}'s")]
    WrongAccount { account: WalletId, given: WalletId },
    #[error("wallet {wallet_id} is not whitelisted, so it cannot move funds yet")]
    NotWhitelisted { wallet_id: WalletId },
    #[error("wallet {wallet_id} is frozen and cannot move funds")]
    Frozen { wallet_id: WalletId },
    #[error("wallet {wallet_id} is deleted and cannot move funds")]
    Deleted { wallet_id: WalletId },
    #[error(
        "insufficient funds: {requested} {asset} requested, {available} available (minor units)"
    )]
    InsufficientFunds {
        asset: AssetCode,
        available: Amount,
        requested: Amount,
    },
    /// The movement id was used on this account for a different movement.
    #[error("movement {movement_id} was already used for a different movement")]
    DuplicateMovement { movement_id: MovementId },
    #[error("asset {asset} has {held_decimals} decimals here, not {given_decimals}")]
    AssetMismatch {
        asset: AssetCode,
        held_decimals: u8,
        given_decimals: u8,
    },
    #[error("a movement's amount must be greater than zero")]
    AmountNotPositive,
    #[error("the {asset} balance would exceed the largest representable amount")]
    Overflow { asset: AssetCode },
    #[error("a transfer needs two different wallets")]
    SelfTransfer,
    /// A return or settlement of a transfer this account does not hold in
    /// flight (never debited here, or already resolved long ago).
    #[error("transfer {movement_id} is not in flight from this account")]
    NotInFlight { movement_id: MovementId },
    #[error("transfer {movement_id} was debited with another asset or amount")]
    TransferMismatch { movement_id: MovementId },
}

/// How many of its most recent movements an account remembers, to answer a
/// repeated command with "already done" (see [`Account`]).
pub const RECENT_MOVEMENTS: usize = 256;

/// One asset held: its decimals as first recorded here, and the balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Holding {
    decimals: u8,
    balance: Amount,
}

/// A transfer debited here and not yet settled (after its credit) or
/// returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub asset: Asset,
    pub amount: Amount,
    pub to_wallet: WalletId,
    pub at: Timestamp,
}

/// A movement recorded here: its id and a fingerprint of what it did (kind,
/// asset, amount, counterparty), so a repeat of the same command is told
/// from another command that reuses the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Recent {
    movement_id: MovementId,
    fingerprint: u64,
}

/// A wallet's money: one stream per wallet, aggregate id = the wallet id,
/// apart from the `wallet` aggregate so that signing and moving money never
/// contend on one stream.
///
/// Exactly once, with bounded state:
///
/// - Transfers sent from here are held in flight, exactly, from the debit
///   until the process manager either settles them (the destination was
///   credited) or returns them. So a return or settlement applies once
///   whatever is repeated, and the state grows with the transfers
///   *in flight*, not with history.
/// - Everything else, including the credit on a destination, is
///   recognised as a repeat by the window of the last
///   [`RECENT_MOVEMENTS`] movements: a repeat is a no-op (no event, no
///   error), the same id for a different movement is `DuplicateMovement`.
///   The window is not what makes a credit apply once: the process manager
///   is. It reads the log in global order and appends each credit (or
///   return) with its checkpoint in one transaction, so a debit is resolved
///   exactly once across crashes and instances. The window is the second
///   line, for a repeat soon after (a process manager that retries a batch
///   whose commit it could not confirm without re-reading its checkpoint
///   first); client retries are the service's
///   Idempotency-Key and Sila nonces first, this window second. A set of
///   every id ever seen would make a busy account's state (cached, and
///   written in every snapshot) grow without bound. The cost is stated in
///   `docs/ledger.md`: a repeat older than the window would apply again,
///   and the ledger check (each debit has exactly one credit or return;
///   transit never below the transfers awaiting their second leg) is what
///   would show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    wallet_id: Option<WalletId>,
    holdings: BTreeMap<AssetCode, Holding>,
    in_flight: BTreeMap<MovementId, InFlight>,
    recent: VecDeque<Recent>,
}

impl Account {
    /// The wallet, once the account has its first event.
    pub fn wallet_id(&self) -> Option<WalletId> {
        self.wallet_id
    }

    /// The balance of an asset (zero if never held).
    pub fn balance(&self, asset: &AssetCode) -> Amount {
        self.holdings.get(asset).map_or(Amount::ZERO, |h| h.balance)
    }

    /// Every asset ever held here, with its decimals and balance.
    pub fn balances(&self) -> impl Iterator<Item = (&AssetCode, u8, Amount)> {
        self.holdings
            .iter()
            .map(|(c, h)| (c, h.decimals, h.balance))
    }

    /// Transfers debited here and not yet settled or returned.
    pub fn in_flight(&self) -> impl Iterator<Item = (&MovementId, &InFlight)> {
        self.in_flight.iter()
    }

    /// How many movements the duplicate window holds (at most
    /// [`RECENT_MOVEMENTS`]).
    pub fn remembered(&self) -> usize {
        self.recent.len()
    }

    /// What the command records: no event for a repeat, one otherwise. Pure,
    /// so the random tests and the process manager's planning can run it
    /// without the cqrs-es machinery.
    pub fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let given = command.wallet_id();
        if let Some(account) = self.wallet_id.filter(|w| *w != given) {
            return Err(AccountError::WrongAccount { account, given });
        }
        match command {
            AccountCommand::Issue {
                wallet_id,
                movement_id,
                asset,
                amount,
                funding_reference,
                gate,
                requested_by,
                at,
            } => {
                let fp = fingerprint(Kind::Issue, &asset, amount, funding_reference.as_str());
                if self.is_repeat(movement_id, fp)? {
                    return Ok(vec![]);
                }
                self.check_amount(&asset, amount)?;
                gate.check(wallet_id)?;
                self.credited_balance(&asset, amount)?;
                Ok(vec![AccountEvent::FundsIssued {
                    wallet_id,
                    movement_id,
                    asset,
                    amount,
                    funding_reference,
                    requested_by,
                    at,
                }])
            }
            AccountCommand::DebitForTransfer {
                wallet_id,
                movement_id,
                asset,
                amount,
                to_wallet,
                memo,
                gate,
                to_gate,
                requested_by,
                at,
            } => {
                let fp = fingerprint(Kind::Debit, &asset, amount, &to_wallet.to_string());
                if self.is_repeat(movement_id, fp)? {
                    return Ok(vec![]);
                }
                // Still in flight but pushed out of the window: the same
                // transfer again is a repeat, anything else a reuse.
                if let Some(f) = self.in_flight.get(&movement_id) {
                    return if (&f.asset, f.amount, f.to_wallet) == (&asset, amount, to_wallet) {
                        Ok(vec![])
                    } else {
                        Err(AccountError::DuplicateMovement { movement_id })
                    };
                }
                if to_wallet == wallet_id {
                    return Err(AccountError::SelfTransfer);
                }
                self.check_amount(&asset, amount)?;
                gate.check(wallet_id)?;
                to_gate.check(to_wallet)?;
                self.debited_balance(&asset, amount)?;
                Ok(vec![AccountEvent::TransferDebited {
                    wallet_id,
                    movement_id,
                    asset,
                    amount,
                    to_wallet,
                    memo,
                    requested_by,
                    at,
                }])
            }
            AccountCommand::CreditTransfer {
                wallet_id,
                movement_id,
                asset,
                amount,
                from_wallet,
                gate,
                at,
            } => {
                let fp = fingerprint(Kind::Credit, &asset, amount, &from_wallet.to_string());
                // Before the gate: a repeat of a credit that was applied is
                // done, even if the wallet was frozen since.
                if self.is_repeat(movement_id, fp)? {
                    return Ok(vec![]);
                }
                if from_wallet == wallet_id {
                    return Err(AccountError::SelfTransfer);
                }
                self.check_amount(&asset, amount)?;
                gate.check(wallet_id)?;
                self.credited_balance(&asset, amount)?;
                Ok(vec![AccountEvent::TransferCredited {
                    wallet_id,
                    movement_id,
                    asset,
                    amount,
                    from_wallet,
                    at,
                }])
            }
            AccountCommand::ReturnTransfer {
                wallet_id,
                movement_id,
                asset,
                amount,
                reason,
                at,
            } => {
                let fp = fingerprint(Kind::Return, &asset, amount, "");
                if self.recent_has(movement_id, fp) {
                    return Ok(vec![]);
                }
                let f = self.in_flight_matching(movement_id, &asset, amount)?;
                // The value was debited from this balance, so it fits again
                // unless credits since filled it to the brim; then it stays
                // in transit and the refusal says why.
                self.credited_balance(&asset, amount)?;
                Ok(vec![AccountEvent::TransferReturned {
                    wallet_id,
                    movement_id,
                    asset,
                    amount,
                    to_wallet: f.to_wallet,
                    reason,
                    at,
                }])
            }
            AccountCommand::SettleTransfer {
                wallet_id,
                movement_id,
                asset,
                amount,
                at,
            } => {
                let fp = fingerprint(Kind::Settle, &asset, amount, "");
                if self.recent_has(movement_id, fp) {
                    return Ok(vec![]);
                }
                let f = self.in_flight_matching(movement_id, &asset, amount)?;
                Ok(vec![AccountEvent::TransferSettled {
                    wallet_id,
                    movement_id,
                    asset,
                    amount,
                    to_wallet: f.to_wallet,
                    at,
                }])
            }
            AccountCommand::Redeem {
                wallet_id,
                movement_id,
                asset,
                amount,
                destination_reference,
                gate,
                requested_by,
                at,
            } => {
                let fp = fingerprint(Kind::Redeem, &asset, amount, destination_reference.as_str());
                if self.is_repeat(movement_id, fp)? {
                    return Ok(vec![]);
                }
                self.check_amount(&asset, amount)?;
                gate.check(wallet_id)?;
                self.debited_balance(&asset, amount)?;
                Ok(vec![AccountEvent::FundsRedeemed {
                    wallet_id,
                    movement_id,
                    asset,
                    amount,
                    destination_reference,
                    requested_by,
                    at,
                }])
            }
        }
    }

    /// `true` for a repeat of a recorded movement; the id recorded for
    /// another movement is an error.
    fn is_repeat(&self, movement_id: MovementId, fp: u64) -> Result<bool, AccountError> {
        let mut seen = self
            .recent
            .iter()
            .filter(|r| r.movement_id == movement_id)
            .peekable();
        if seen.peek().is_none() {
            return Ok(false);
        }
        if seen.any(|r| r.fingerprint == fp) {
            Ok(true)
        } else {
            Err(AccountError::DuplicateMovement { movement_id })
        }
    }

    fn recent_has(&self, movement_id: MovementId, fp: u64) -> bool {
        self.recent
            .iter()
            .any(|r| r.movement_id == movement_id && r.fingerprint == fp)
    }

    fn in_flight_matching(
        &self,
        movement_id: MovementId,
        asset: &Asset,
        amount: Amount,
    ) -> Result<&InFlight, AccountError> {
        let f = self
            .in_flight
            .get(&movement_id)
            .ok_or(AccountError::NotInFlight { movement_id })?;
        if (&f.asset, f.amount) != (asset, amount) {
            return Err(AccountError::TransferMismatch { movement_id });
        }
        Ok(f)
    }

    /// A positive amount of an asset this account knows with the same
    /// decimals (or does not know yet).
    fn check_amount(&self, asset: &Asset, amount: Amount) -> Result<(), AccountError> {
        if amount.is_zero() {
            return Err(AccountError::AmountNotPositive);
        }
        match self.holdings.get(asset.code()) {
            Some(h) if h.decimals != asset.decimals() => Err(AccountError::AssetMismatch {
                asset: asset.code().clone(),
                held_decimals: h.decimals,
                given_decimals: asset.decimals(),
            }),
            _ => Ok(()),
        }
    }

    fn credited_balance(&self, asset: &Asset, amount: Amount) -> Result<Amount, AccountError> {
        self.balance(asset.code())
            .checked_add(amount)
            .map_err(|_| AccountError::Overflow {
                asset: asset.code().clone(),
            })
    }

    fn debited_balance(&self, asset: &Asset, amount: Amount) -> Result<Amount, AccountError> {
        let available = self.balance(asset.code());
        available
            .checked_sub(amount)
            .map_err(|_| AccountError::InsufficientFunds {
                asset: asset.code().clone(),
                available,
                requested: amount,
            })
    }

    fn remember(&mut self, movement_id: MovementId, fingerprint: u64) {
        if self.recent.len() == RECENT_MOVEMENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            movement_id,
            fingerprint,
        });
    }

    /// Adds to or takes from a holding. `decide` refused every event that
    /// would leave `u128`, so on a log walletd wrote this never saturates;
    /// `apply` cannot fail, and saturating beats a panic on a corrupt log.
    fn change(&mut self, asset: &Asset, amount: Amount, credit: bool) {
        let holding = self
            .holdings
            .entry(asset.code().clone())
            .or_insert(Holding {
                decimals: asset.decimals(),
                balance: Amount::ZERO,
            });
        let b = holding.balance.minor();
        holding.balance = Amount::from_minor(if credit {
            b.saturating_add(amount.minor())
        } else {
            b.saturating_sub(amount.minor())
        });
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccountCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        self.wallet_id = Some(event.wallet_id());
        match event {
            AccountEvent::FundsIssued {
                movement_id,
                asset,
                amount,
                funding_reference,
                ..
            } => {
                self.change(&asset, amount, true);
                let fp = fingerprint(Kind::Issue, &asset, amount, funding_reference.as_str());
                self.remember(movement_id, fp);
            }
            AccountEvent::TransferDebited {
                movement_id,
                asset,
                amount,
                to_wallet,
                at,
                ..
            } => {
                self.change(&asset, amount, false);
                let fp = fingerprint(Kind::Debit, &asset, amount, &to_wallet.to_string());
                self.remember(movement_id, fp);
                self.in_flight.insert(
                    movement_id,
                    InFlight {
                        asset,
                        amount,
                        to_wallet,
                        at,
                    },
                );
            }
            AccountEvent::TransferCredited {
                movement_id,
                asset,
                amount,
                from_wallet,
                ..
            } => {
                self.change(&asset, amount, true);
                let fp = fingerprint(Kind::Credit, &asset, amount, &from_wallet.to_string());
                self.remember(movement_id, fp);
            }
            AccountEvent::TransferReturned {
                movement_id,
                asset,
                amount,
                ..
            } => {
                self.change(&asset, amount, true);
                self.in_flight.remove(&movement_id);
                self.remember(movement_id, fingerprint(Kind::Return, &asset, amount, ""));
            }
            AccountEvent::TransferSettled {
                movement_id,
                asset,
                amount,
                ..
            } => {
                self.in_flight.remove(&movement_id);
                self.remember(movement_id, fingerprint(Kind::Settle, &asset, amount, ""));
            }
            AccountEvent::FundsRedeemed {
                movement_id,
                asset,
                amount,
                destination_reference,
                ..
            } => {
                self.change(&asset, amount, false);
                let fp = fingerprint(Kind::Redeem, &asset, amount, destination_reference.as_str());
                self.remember(movement_id, fp);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Issue,
    Debit,
    Credit,
    Return,
    Settle,
    Redeem,
}

/// FNV-1a (64 bits) of what a movement did. Written into snapshots, so it
/// must never change: a fixed function of fixed spellings, not `Hash`
/// (whose output Rust does not promise across releases).
fn fingerprint(kind: Kind, asset: &Asset, amount: Amount, counterparty: &str) -> u64 {
    let tag: &[u8] = match kind {
        Kind::Issue => b"issue",
        Kind::Debit => b"debit",
        Kind::Credit => b"credit",
        Kind::Return => b"return",
        Kind::Settle => b"settle",
        Kind::Redeem => b"redeem",
    };
    let amount = amount.to_string();
    let decimals = [asset.decimals()];
    let parts: [&[u8]; 5] = [
        tag,
        asset.code().as_str().as_bytes(),
        &decimals,
        amount.as_bytes(),
        counterparty.as_bytes(),
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
pub(super) fn fingerprint_for_tests() -> u64 {
    let asset = Asset::new(AssetCode::parse("USD").expect("valid"), 2).expect("valid");
    fingerprint(Kind::Issue, &asset, Amount::from_minor(1234), "ref-1")
}
