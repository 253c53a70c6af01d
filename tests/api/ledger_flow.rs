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
use walletd::domain::account::{AccountError, MovementId, Reference};
use walletd::domain::money::Amount;
use walletd::domain::WalletId;
use walletd::ledger::check;
use walletd::service::ledger::{LedgerError, LedgerService, Origin};
use walletd::store::CommandMeta;

use crate::backend_tests;
use crate::helpers::{dump_projections, run_cli, spawn_app, Backend, TestApp};

backend_tests!(random_concurrent_movements_keep_every_invariant,);

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
