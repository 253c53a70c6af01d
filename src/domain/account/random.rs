//! A deterministic random walk over the ledger: thousands of issues,
//! transfers (debited now, credited or returned later, in any order, with
//! the destination's gate as it is then), settlements, redemptions, gate
//! changes and repeated commands across 20 accounts and two assets, with
//! every invariant checked after every step. Seeded, so a failure
//! reproduces; no dependency (xorshift64*).

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use uuid::Uuid;

use super::postings::sums_to_zero;
use super::*;
use crate::domain::money::{Amount, Asset, AssetCode, SignedAmount};
use crate::domain::{Timestamp, WalletId};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// 1 to 10^k minor units, k in 0..=6: small amounts often, so that
    /// insufficient funds happen as much as transfers that go through.
    fn amount(&mut self) -> Amount {
        let k = self.below(7) as u32;
        Amount::from_minor(1 + u128::from(self.next()) % 10u128.pow(k))
    }
}

const WALLETS: usize = 20;

fn wallet(i: usize) -> WalletId {
    WalletId::parse(&Uuid::from_u128(0x5000 + i as u128).to_string()).expect("a uuid")
}

fn at(step: usize) -> Timestamp {
    Timestamp::from_datetime(
        chrono::DateTime::from_timestamp(1_800_000_000 + step as i64, 0).expect("in range"),
    )
}

/// A transfer debited and waiting for the process manager.
#[derive(Clone)]
struct Pending {
    movement_id: MovementId,
    from: usize,
    to: usize,
    asset: Asset,
    amount: Amount,
}

struct World {
    rng: Rng,
    assets: Vec<Asset>,
    accounts: Vec<Account>,
    gates: Vec<WalletGate>,
    books: Books,
    /// Debited, neither credited nor returned.
    pending: Vec<Pending>,
    /// Credited, not yet settled on the source.
    to_settle: Vec<Pending>,
    /// Per debited transfer: how many credits and returns it got.
    legs: BTreeMap<MovementId, (u32, u32)>,
    issued: BTreeMap<AssetCode, u128>,
    redeemed: BTreeMap<AssetCode, u128>,
    /// Recent accepted commands (account, command), to repeat.
    recent: Vec<(usize, AccountCommand)>,
    next_movement: u128,
    step: usize,
    counts: BTreeMap<&'static str, usize>,
}

impl World {
    fn new(seed: u64) -> Self {
        let gates = (0..WALLETS)
            .map(|i| WalletGate {
                // A few start outside the whitelist.
                whitelisted: i % 7 != 3,
                ..WalletGate::OPEN
            })
            .collect();
        Self {
            rng: Rng(seed),
            assets: vec![
                Asset::new(AssetCode::parse("USD").expect("code"), 2).expect("asset"),
                Asset::sila(),
            ],
            accounts: vec![Account::default(); WALLETS],
            gates,
            books: Books::default(),
            pending: Vec::new(),
            to_settle: Vec::new(),
            legs: BTreeMap::new(),
            issued: BTreeMap::new(),
            redeemed: BTreeMap::new(),
            recent: Vec::new(),
            next_movement: 0,
            step: 0,
            counts: BTreeMap::new(),
        }
    }

    fn movement(&mut self) -> MovementId {
        self.next_movement += 1;
        MovementId::from_uuid(Uuid::from_u128(0x7700_0000_0000 + self.next_movement))
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    /// Decides on account `i` and, when accepted, applies and posts the
    /// events, checking that each balances.
    fn exec(
        &mut self,
        i: usize,
        command: AccountCommand,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        let before = self.accounts[i].clone();
        let result = self.accounts[i].decide(command.clone());
        match &result {
            Ok(events) => {
                for e in events {
                    let lines = e.postings();
                    assert!(sums_to_zero(&lines), "unbalanced {e:?}");
                    self.books.post(&lines).expect("postings fit");
                    self.accounts[i].apply(e.clone());
                }
                if !events.is_empty() {
                    self.recent.push((i, command));
                    if self.recent.len() > 40 {
                        self.recent.remove(0);
                    }
                }
            }
            Err(_) => assert_eq!(self.accounts[i], before),
        }
        result
    }

    fn pick_asset(&mut self) -> Asset {
        let n = self.rng.below(self.assets.len());
        self.assets[n].clone()
    }

    fn step(&mut self) {
        self.step += 1;
        let roll = self.rng.below(100);
        // The process manager runs less often than clients debit, so
        // transfers wait in flight while gates change under them.
        match roll {
            0..=21 => self.issue(),
            22..=53 => self.debit(),
            54..=65 => self.credit_or_return(),
            66..=73 => self.settle(),
            74..=83 => self.redeem(),
            84..=93 => self.change_a_gate(),
            _ => self.repeat(),
        }
        self.check();
    }

    fn issue(&mut self) {
        let i = self.rng.below(WALLETS);
        let (asset, amount, movement_id) = (self.pick_asset(), self.rng.amount(), self.movement());
        let command = AccountCommand::Issue {
            wallet_id: wallet(i),
            movement_id,
            asset: asset.clone(),
            amount,
            funding_reference: Reference::parse("ach-1").expect("reference"),
            gate: self.gates[i],
            requested_by: "test".into(),
            at: at(self.step),
        };
        match self.exec(i, command) {
            Ok(events) => {
                assert_eq!(events.len(), 1);
                *self.issued.entry(asset.code().clone()).or_default() += amount.minor();
                self.count("issued");
            }
            Err(e) => {
                assert!(self.gates[i].check(wallet(i)).is_err(), "{e}");
                self.count("issue refused");
            }
        }
    }

    fn debit(&mut self) {
        let from = self.rng.below(WALLETS);
        let to = (from + 1 + self.rng.below(WALLETS - 1)) % WALLETS;
        let (asset, amount, movement_id) = (self.pick_asset(), self.rng.amount(), self.movement());
        let available = self.accounts[from].balance(asset.code());
        let command = AccountCommand::DebitForTransfer {
            wallet_id: wallet(from),
            movement_id,
            asset: asset.clone(),
            amount,
            to_wallet: wallet(to),
            memo: None,
            gate: self.gates[from],
            to_gate: self.gates[to],
            requested_by: "test".into(),
            at: at(self.step),
        };
        match self.exec(from, command) {
            Ok(events) => {
                assert_eq!(events.len(), 1);
                assert!(amount <= available);
                self.legs.insert(movement_id, (0, 0));
                self.pending.push(Pending {
                    movement_id,
                    from,
                    to,
                    asset,
                    amount,
                });
                self.count("debited");
            }
            Err(AccountError::InsufficientFunds { available: a, .. }) => {
                assert_eq!(a, available);
                assert!(amount > available);
                self.count("insufficient funds");
            }
            Err(e) => {
                let gated = self.gates[from].check(wallet(from)).is_err()
                    || self.gates[to].check(wallet(to)).is_err();
                assert!(gated, "{e}");
                self.count("debit refused by a gate");
            }
        }
    }

    /// The process manager's turn for one debited transfer, picked at
    /// random (so out of log order): credit it, or return it when the
    /// destination refuses. Sometimes the same command is delivered twice.
    fn credit_or_return(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let n = self.rng.below(self.pending.len());
        let p = self.pending.swap_remove(n);
        let credit = AccountCommand::CreditTransfer {
            wallet_id: wallet(p.to),
            movement_id: p.movement_id,
            asset: p.asset.clone(),
            amount: p.amount,
            from_wallet: wallet(p.from),
            gate: self.gates[p.to],
            at: at(self.step),
        };
        let twice = self.rng.chance(20);
        match self.exec(p.to, credit.clone()) {
            Ok(events) => {
                assert_eq!(events.len(), 1);
                if twice {
                    assert_eq!(self.exec(p.to, credit), Ok(vec![]));
                }
                self.legs.get_mut(&p.movement_id).expect("debited").0 += 1;
                self.to_settle.push(p);
                self.count("credited");
            }
            Err(e) => {
                let reason = ReturnReason::for_refused_credit(&e).expect("a refusal to return");
                let back = AccountCommand::ReturnTransfer {
                    wallet_id: wallet(p.from),
                    movement_id: p.movement_id,
                    asset: p.asset.clone(),
                    amount: p.amount,
                    reason,
                    at: at(self.step),
                };
                assert_eq!(self.exec(p.from, back.clone()).map(|e| e.len()), Ok(1));
                if twice {
                    assert_eq!(self.exec(p.from, back), Ok(vec![]));
                }
                self.legs.get_mut(&p.movement_id).expect("debited").1 += 1;
                self.count("returned");
            }
        }
    }

    fn settle(&mut self) {
        if self.to_settle.is_empty() {
            return;
        }
        let n = self.rng.below(self.to_settle.len());
        let p = self.to_settle.swap_remove(n);
        let command = AccountCommand::SettleTransfer {
            wallet_id: wallet(p.from),
            movement_id: p.movement_id,
            asset: p.asset.clone(),
            amount: p.amount,
            at: at(self.step),
        };
        assert_eq!(self.exec(p.from, command.clone()).map(|e| e.len()), Ok(1));
        // A settled transfer can no longer be returned.
        let back = AccountCommand::ReturnTransfer {
            wallet_id: wallet(p.from),
            movement_id: p.movement_id,
            asset: p.asset,
            amount: p.amount,
            reason: ReturnReason::DestinationRefused,
            at: at(self.step),
        };
        assert_eq!(
            self.exec(p.from, back),
            Err(AccountError::NotInFlight {
                movement_id: p.movement_id
            })
        );
        self.count("settled");
    }

    fn redeem(&mut self) {
        let i = self.rng.below(WALLETS);
        let (asset, amount, movement_id) = (self.pick_asset(), self.rng.amount(), self.movement());
        let available = self.accounts[i].balance(asset.code());
        let command = AccountCommand::Redeem {
            wallet_id: wallet(i),
            movement_id,
            asset: asset.clone(),
            amount,
            destination_reference: Reference::parse("payout-1").expect("reference"),
            gate: self.gates[i],
            requested_by: "test".into(),
            at: at(self.step),
        };
        match self.exec(i, command) {
            Ok(_) => {
                assert!(amount <= available);
                *self.redeemed.entry(asset.code().clone()).or_default() += amount.minor();
                self.count("redeemed");
            }
            Err(AccountError::InsufficientFunds { .. }) => assert!(amount > available),
            Err(e) => assert!(self.gates[i].check(wallet(i)).is_err(), "{e}"),
        }
    }

    fn change_a_gate(&mut self) {
        let i = self.rng.below(WALLETS);
        let roll = self.rng.below(10);
        let g = &mut self.gates[i];
        // Most changes reopen the wallet (whitelisting done, key replaced,
        // a deleted Sila address registered again), so the walk keeps
        // mostly open wallets and some gated ones.
        match roll {
            0..=6 => *g = WalletGate::OPEN,
            7 => g.whitelisted = false,
            8 => g.frozen = true,
            _ => g.deleted = true,
        }
        self.count("gate changed");
    }

    /// A recent accepted command again: nothing is recorded, nothing
    /// changes.
    fn repeat(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let n = self.rng.below(self.recent.len());
        let (i, command) = self.recent[n].clone();
        let books = self.books.clone();
        assert_eq!(self.exec(i, command), Ok(vec![]));
        assert_eq!(self.books, books);
        self.count("repeated");
    }

    fn check(&self) {
        self.books.check().expect("the books hold");
        for asset in &self.assets {
            let code = asset.code();
            let mut wallets = SignedAmount::ZERO;
            for (i, a) in self.accounts.iter().enumerate() {
                // Derivable from the aggregates: each account's own balance
                // is its wallet account in the books.
                let balance = a.balance(code);
                assert_eq!(
                    self.books.balance(&LedgerAccount::Wallet(wallet(i)), code),
                    SignedAmount::plus(balance)
                );
                wallets = wallets
                    .checked_add(SignedAmount::plus(balance))
                    .expect("fits");
            }
            let transit = self
                .books
                .balance(&LedgerAccount::Transit(code.clone()), code);
            let waiting: u128 = self
                .pending
                .iter()
                .filter(|p| p.asset.code() == code)
                .map(|p| p.amount.minor())
                .sum();
            assert_eq!(transit, SignedAmount::plus(Amount::from_minor(waiting)));
            // The sources hold in flight what the process manager has not
            // credited or returned, plus what it credited and not settled.
            let unsettled: u128 = self
                .to_settle
                .iter()
                .filter(|p| p.asset.code() == code)
                .map(|p| p.amount.minor())
                .sum();
            let held_in_flight: u128 = self
                .accounts
                .iter()
                .flat_map(|a| a.in_flight())
                .filter(|(_, f)| f.asset.code() == code)
                .map(|(_, f)| f.amount.minor())
                .sum();
            assert_eq!(held_in_flight, waiting + unsettled);
            // Supply: wallets + transit = issued − redeemed, as counted by
            // the test itself and as the books say.
            let issued = self.issued.get(code).copied().unwrap_or(0);
            let redeemed = self.redeemed.get(code).copied().unwrap_or(0);
            let supply = Amount::from_minor(issued - redeemed);
            assert_eq!(wallets.checked_add(transit), Ok(SignedAmount::plus(supply)));
            if issued > 0 {
                assert_eq!(self.books.supply(code), Ok(supply));
            }
        }
        assert!(self
            .accounts
            .iter()
            .all(|a| a.remembered() <= RECENT_MOVEMENTS));
    }

    /// The process manager catches up: every transfer resolves.
    fn drain(&mut self) {
        while !self.pending.is_empty() {
            self.credit_or_return();
            self.check();
        }
        while !self.to_settle.is_empty() {
            self.settle();
            self.check();
        }
        for (movement, legs) in &self.legs {
            assert!(
                *legs == (1, 0) || *legs == (0, 1),
                "{movement}: {legs:?} credits and returns"
            );
        }
        assert!(self.accounts.iter().all(|a| a.in_flight().count() == 0));
        for asset in &self.assets {
            let code = asset.code();
            assert!(self
                .books
                .balance(&LedgerAccount::Transit(code.clone()), code)
                .is_zero());
        }
    }
}

fn run(seed: u64, steps: usize) -> BTreeMap<&'static str, usize> {
    let mut world = World::new(seed);
    for _ in 0..steps {
        world.step();
    }
    world.drain();
    world.counts
}

#[test]
fn random_movements_keep_every_invariant() {
    for seed in [0x9e37_79b9_7f4a_7c15, 0xdead_beef_cafe_f00d, 42] {
        let counts = run(seed, 10_000);
        eprintln!("seed {seed:#x}: {counts:?}");
        // The walk reaches every case, not just the easy one.
        for what in [
            "issued",
            "issue refused",
            "debited",
            "insufficient funds",
            "debit refused by a gate",
            "credited",
            "returned",
            "settled",
            "redeemed",
            "repeated",
        ] {
            assert!(
                counts.get(what).copied().unwrap_or(0) >= 20,
                "seed {seed:#x}: only {:?} of {what} in {counts:?}",
                counts.get(what)
            );
        }
    }
}
