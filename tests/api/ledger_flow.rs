//! Issue 14's invariants under concurrency, through the service layer and
//! the process manager running in the server: random interleavings of
//! issue / transfer / redeem from concurrent clients over many wallets,
//! with retries of the same movement. Afterwards every transfer has both
//! legs, no balance is negative, balances sum to supply = issued −
//! redeemed, the ledger check passes at every position, and the read
//! models equal a rebuild.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use walletd::app::App;
use walletd::domain::account::{
    Account, AccountCommand, AccountError, MovementId, Reference, WalletGate,
};
use walletd::domain::money::Amount;
use walletd::domain::Timestamp;
use walletd::domain::WalletId;
use walletd::ledger::check;
use walletd::ledger::process_manager::{self, PassError, BATCH};
use walletd::service::ledger::{LedgerError, LedgerService, Origin};
use walletd::store::AggregateStore;
use walletd::store::CommandMeta;

use crate::backend_tests;
use crate::helpers::{
    dump_projections, run_cli, settings, spawn_app, spawn_app_with, Backend, TestApp,
};

backend_tests!(
    random_concurrent_movements_keep_every_invariant,
    a_client_write_between_decisions_and_commit_is_decided_again,
    two_process_managers_give_every_transfer_one_second_leg,
);

const WALLETS: usize = 12;
const CLIENTS: usize = 8;
const STEPS: usize = 40;

/// A small deterministic generator per client, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Tally {
    /// Accepted issues and redemptions per asset (minor units).
    issued: BTreeMap<String, u128>,
    redeemed: BTreeMap<String, u128>,
    transfers: u64,
    refused_for_funds: u64,
}

async fn wallets(app: &TestApp) -> Vec<WalletId> {
    let mut out = Vec::new();
    for i in 0..WALLETS {
        let w = app.create_wallet(&format!("ledger-user-{i}")).await;
        out.push(WalletId::parse(w["walletId"].as_str().unwrap()).unwrap());
    }
    out
}

async fn random_concurrent_movements_keep_every_invariant(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let wallets = Arc::new(wallets(&app).await);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let retried = Arc::new(AtomicU64::new(0));
    let seed0 = 0x5eed_0000_0000_0001u64 ^ u64::from(b == Backend::Postgres);

    let clients = (0..CLIENTS).map(|c| {
        let (app, wallets, tally, retried) = (
            app.app.clone(),
            wallets.clone(),
            tally.clone(),
            retried.clone(),
        );
        async move {
            let mut rng = Rng(seed0.wrapping_add(c as u64 * 0x9e37_79b9));
            let ledger = LedgerService::new(&app);
            let meta = CommandMeta::system("ledger-test");
            for step in 0..STEPS {
                let asset = if rng.below(3) == 0 {
                    app.settings.assets.eth().clone()
                } else {
                    app.settings.assets.sila().clone()
                };
                let w = wallets[rng.below(WALLETS as u64) as usize];
                let origin = Origin {
                    movement_id: MovementId::random(),
                    requested_by: format!("client:{c}"),
                };
                let amount = Amount::from_minor(u128::from(1 + rng.below(900)));
                let what = format!("seed {seed0} client {c} step {step}");
                let reference = Reference::parse(&format!("ref-{c}-{step}")).unwrap();
                // Sometimes the client "loses" the answer and sends the
                // same movement again: it must get the same outcome.
                let retry = rng.below(5) == 0;
                match rng.below(10) {
                    0..=2 => {
                        let first = ledger
                            .issue(w, &asset, amount, reference.clone(), &origin, &meta)
                            .await
                            .unwrap_or_else(|e| panic!("{what}: issue: {e}"));
                        if retry {
                            retried.fetch_add(1, Ordering::Relaxed);
                            let again = ledger
                                .issue(w, &asset, amount, reference, &origin, &meta)
                                .await
                                .unwrap();
                            assert_eq!(again.row.movement_id, first.row.movement_id);
                            assert_eq!(again.row.seq, first.row.seq, "{what}: issued once");
                        }
                        let mut t = tally.lock().unwrap();
                        *t.issued.entry(asset.code().to_string()).or_default() += amount.minor();
                    }
                    3..=8 => {
                        let mut to = wallets[rng.below(WALLETS as u64) as usize];
                        if to == w {
                            to = wallets
                                [(wallets.iter().position(|x| *x == w).unwrap() + 1) % WALLETS];
                        }
                        let wait = if rng.below(2) == 0 {
                            Duration::ZERO
                        } else {
                            Duration::from_secs(3)
                        };
                        let sent = ledger
                            .transfer(w, to, &asset, amount, None, &origin, &meta, wait)
                            .await;
                        match sent {
                            Ok(first) => {
                                assert_eq!(first.row.kind, "transfer_out");
                                if retry {
                                    retried.fetch_add(1, Ordering::Relaxed);
                                    let again = ledger
                                        .transfer(w, to, &asset, amount, None, &origin, &meta, wait)
                                        .await
                                        .unwrap();
                                    assert_eq!(
                                        again.row.seq, first.row.seq,
                                        "{what}: debited once"
                                    );
                                    // The same id for another amount is refused.
                                    let other = Amount::from_minor(amount.minor() + 1);
                                    let refused = ledger
                                        .transfer(w, to, &asset, other, None, &origin, &meta, wait)
                                        .await;
                                    assert!(
                                        matches!(
                                            refused,
                                            Err(LedgerError::Refused(
                                                AccountError::DuplicateMovement { .. }
                                            ))
                                        ),
                                        "{what}: {refused:?}"
                                    );
                                }
                                tally.lock().unwrap().transfers += 1;
                            }
                            Err(LedgerError::Refused(AccountError::InsufficientFunds {
                                ..
                            })) => {
                                tally.lock().unwrap().refused_for_funds += 1;
                            }
                            Err(e) => panic!("{what}: transfer: {e}"),
                        }
                    }
                    _ => {
                        let redeemed = ledger
                            .redeem(w, &asset, amount, reference, &origin, &meta)
                            .await;
                        match redeemed {
                            Ok(_) => {
                                let mut t = tally.lock().unwrap();
                                *t.redeemed.entry(asset.code().to_string()).or_default() +=
                                    amount.minor();
                            }
                            Err(LedgerError::Refused(AccountError::InsufficientFunds {
                                ..
                            })) => {
                                tally.lock().unwrap().refused_for_funds += 1;
                            }
                            Err(e) => panic!("{what}: redeem: {e}"),
                        }
                    }
                }
            }
        }
    });
    join_all(clients).await;

    // The process manager gives every debit its second leg; then the
    // projections catch up with its events.
    let report = settled(&app).await;
    let t = std::mem::take(&mut *tally.lock().unwrap());
    assert!(
        t.transfers > 50,
        "too few transfers to mean much: {}",
        t.transfers
    );
    assert!(t.refused_for_funds > 0, "no overdraft was ever tried");
    assert!(retried.load(Ordering::Relaxed) > 10);
    assert!(report.ok(), "{report:#?}");
    assert!(report.read_models.compared, "{report:#?}");
    assert_eq!(report.transfers, t.transfers);
    assert_eq!(report.awaiting_second_leg, 0);
    // Server wallets all pass the gate, so every transfer was credited.
    assert_eq!(report.credited, t.transfers, "{report:#?}");
    for line in &report.assets {
        let issued = t.issued.get(&line.asset).copied().unwrap_or_default();
        let redeemed = t.redeemed.get(&line.asset).copied().unwrap_or_default();
        assert_eq!(line.issued, issued.to_string(), "{}", line.asset);
        assert_eq!(line.redeemed, redeemed.to_string(), "{}", line.asset);
        assert_eq!(line.supply, (issued - redeemed).to_string());
        assert_eq!(line.held_by_wallets, line.supply, "all value is held");
        assert_eq!(line.in_transit, "0");
    }

    // The read models equal a rebuild.
    let live = dump_projections(&app.app.db).await;
    let (ok, out, err) = run_cli(&["replay"], &[("DATABASE_URL", &app.db.url)]).await;
    assert!(ok, "replay failed: {out} {err}");
    assert_eq!(live, dump_projections(&app.app.db).await);
    // Replay leaves the process manager's checkpoint alone: nothing is
    // credited again.
    let again = settled(&app).await;
    assert_eq!(again.account_events, report.account_events);
    assert!(again.ok(), "{again:#?}");

    // The CLI says the same.
    let (ok, out, err) = run_cli(&["ledger", "check"], &[("DATABASE_URL", &app.db.url)]).await;
    assert!(ok, "ledger check failed: {out} {err}");
    assert!(out.contains("ledger OK"), "{out}");
    assert!(out.contains("0 awaiting their second leg"), "{out}");
}

/// Waits until the process manager has resolved every transfer and the
/// read models are at the log's head, then returns the check's report.
async fn settled(app: &TestApp) -> check::CheckReport {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        app.app.wallets.projector().nudge();
        let report = check::run(&app.app.db).await.unwrap();
        // Settlements come one pass after the credits.
        if report.awaiting_second_leg == 0
            && report.awaiting_settlement == 0
            && report.read_models.compared
        {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ledger did not settle: {report:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn origin() -> Origin {
    Origin {
        movement_id: MovementId::random(),
        requested_by: "test".into(),
    }
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// Another process's view of the accounts: it writes behind this
/// process's cached states.
fn elsewhere(app: &TestApp) -> AggregateStore<Account> {
    AggregateStore::new(app.app.db.clone(), (), app.app.wallets.projector().clone())
}

async fn a_client_write_between_decisions_and_commit_is_decided_again(b: Backend) {
    let Some(app) = spawn_app_with(b, |s| s.ledger_process_manager = false).await else {
        return;
    };
    let ws = wallets(&app).await;
    let (from, to) = (ws[0], ws[1]);
    let ledger = LedgerService::new(&app.app);
    let meta = CommandMeta::system("test");
    let sila = app.app.settings.assets.sila().clone();
    let units = |n: u128| Amount::from_minor(n);
    ledger
        .issue(
            from,
            &sila,
            units(100),
            reference("fund-a"),
            &origin(),
            &meta,
        )
        .await
        .unwrap();
    // Cached in this process at its first event...
    ledger
        .issue(to, &sila, units(1), reference("fund-b"), &origin(), &meta)
        .await
        .unwrap();
    // ...and moved on by another process.
    elsewhere(&app)
        .execute(
            to,
            AccountCommand::Issue {
                wallet_id: to,
                movement_id: MovementId::random(),
                asset: sila.clone(),
                amount: units(5),
                funding_reference: reference("fund-b-2"),
                gate: WalletGate::OPEN,
                requested_by: "elsewhere".into(),
                at: Timestamp::now(),
            },
            &meta,
        )
        .await
        .unwrap();
    let sent = ledger
        .transfer(
            from,
            to,
            &sila,
            units(10),
            None,
            &origin(),
            &meta,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(sent.status(), "pending");

    // The pass decides the credit on the stale cached state; its commit
    // finds the account moved and decides that one account again (on
    // PostgreSQL inside the transaction; on SQLite, whose transaction holds
    // the one write lock, the batch again on fresh state).
    let pass = process_manager::pass(&app.app, BATCH).await.unwrap();
    let restaged = usize::from(b == Backend::Postgres);
    assert_eq!(
        (pass.credited, pass.returned, pass.restaged),
        (1, 0, restaged),
        "{pass:?}"
    );
    let rest = process_manager::catch_up(&app.app).await.unwrap();
    assert_eq!(rest.settled, 1, "{rest:?}");
    let report = settled(&app).await;
    assert!(report.ok(), "{report:#?}");
    assert_eq!(ledger.balance(to, &sila).await.unwrap(), units(16));
    assert_eq!(ledger.balance(from, &sila).await.unwrap(), units(90));
}

async fn two_process_managers_give_every_transfer_one_second_leg(b: Backend) {
    let Some(app) = spawn_app_with(b, |s| s.ledger_process_manager = false).await else {
        return;
    };
    let mut second = settings(&app.db, app.master_key.clone(), &app.api_key);
    second.ledger_process_manager = false;
    let other: Arc<App> = App::build_one_shot(second)
        .await
        .expect("a second instance");
    let ws = wallets(&app).await;
    let ledger = LedgerService::new(&app.app);
    let meta = CommandMeta::system("test");
    let sila = app.app.settings.assets.sila().clone();
    for (i, w) in ws.iter().enumerate() {
        ledger
            .issue(
                *w,
                &sila,
                Amount::from_minor(1_000),
                reference(&format!("f{i}")),
                &origin(),
                &meta,
            )
            .await
            .unwrap();
    }
    let mut rng = Rng(0xfeed);
    let mut sent = 0;
    for round in 0..6 {
        // Transfers while both managers run passes side by side.
        for _ in 0..10 {
            let from = ws[rng.below(WALLETS as u64) as usize];
            let to = ws[(rng.below(WALLETS as u64 - 1) as usize
                + 1
                + ws.iter().position(|w| *w == from).unwrap())
                % WALLETS];
            ledger
                .transfer(
                    from,
                    to,
                    &sila,
                    Amount::from_minor(1 + u128::from(rng.below(20))),
                    None,
                    &origin(),
                    &meta,
                    Duration::ZERO,
                )
                .await
                .unwrap();
            sent += 1;
        }
        let (a, b2) = futures_util::join!(
            process_manager::pass(&app.app, 7 + round),
            process_manager::pass(&other, 5 + round)
        );
        for r in [a, b2] {
            match r {
                Ok(_) | Err(PassError::Contended) => {}
                Err(e) => panic!("a pass failed: {e}"),
            }
        }
    }
    for _ in 0..20 {
        let (a, b2) = futures_util::join!(
            process_manager::catch_up(&app.app),
            process_manager::catch_up(&other)
        );
        for r in [a, b2] {
            if let Err(e) = r {
                assert!(matches!(e, PassError::Contended), "{e}");
            }
        }
    }
    let report = settled(&app).await;
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.transfers, sent);
    assert_eq!(report.credited, sent);
    App::finish(other).await;
}
