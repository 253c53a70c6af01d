//! Issue 14's read side: `ledger_balances`, `ledger_movements` and
//! `ledger_supply`, built from account events appended through walletd's
//! own write path, checked against the domain's `Books` fold of the same
//! log, and against a rebuild.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;

use uuid::Uuid;
use walletd::domain::account::{
    Account, AccountCommand, AccountEvent, Books, LedgerAccount, Memo, MovementId, Reference,
    ReturnReason, WalletGate,
};
use walletd::domain::money::{Amount, Asset, AssetCode};
use walletd::domain::{Timestamp, WalletId};
use walletd::projections::ledger_queries::{
    count_movements, supply, wallet_balances, wallet_movements, MovementPage, MovementRow,
};
use walletd::projections::{log::read_after, LogPosition};
use walletd::store::{AggregateStore, CommandMeta};

use crate::backend_tests;
use crate::helpers::{dump_projections, run_cli, spawn_app_with, Backend, TestApp};

backend_tests!(
    ledger_read_models_match_the_books_and_a_rebuild,
    random_concurrent_movements_keep_the_read_models_equal_to_the_books,
);

/// More than a u64 holds: the read side must not narrow amounts anywhere.
const BIG: u128 = (1u128 << 64) + 12_345;

fn usd() -> Asset {
    Asset::new(AssetCode::parse("USD").unwrap(), 2).unwrap()
}

fn sila() -> Asset {
    Asset::new(AssetCode::parse("SILA").unwrap(), 0).unwrap()
}

fn wallet() -> WalletId {
    WalletId::parse(&Uuid::new_v4().to_string()).unwrap()
}

struct Ledger {
    store: AggregateStore<Account>,
    meta: CommandMeta,
}

impl Ledger {
    fn new(app: &TestApp) -> Self {
        Self {
            store: AggregateStore::new(app.app.db.clone(), (), app.app.wallets.projector().clone()),
            meta: CommandMeta::system("test"),
        }
    }

    async fn run(&self, command: AccountCommand) {
        let id = command.wallet_id();
        self.store.execute(id, command, &self.meta).await.unwrap();
    }

    async fn issue(&self, to: WalletId, asset: Asset, amount: u128) -> MovementId {
        let movement_id = MovementId::random();
        self.run(AccountCommand::Issue {
            wallet_id: to,
            movement_id,
            asset,
            amount: Amount::from_minor(amount),
            funding_reference: Reference::parse("ach-2026-12-01-0042").unwrap(),
            gate: WalletGate::OPEN,
            requested_by: "jwt:issuer".into(),
            at: Timestamp::now(),
        })
        .await;
        movement_id
    }

    async fn debit(&self, from: WalletId, to: WalletId, asset: Asset, amount: u128) -> MovementId {
        let movement_id = MovementId::random();
        self.run(AccountCommand::DebitForTransfer {
            wallet_id: from,
            movement_id,
            asset,
            amount: Amount::from_minor(amount),
            to_wallet: to,
            memo: Some(Memo::parse("rent, December").unwrap()),
            gate: WalletGate::OPEN,
            to_gate: WalletGate::OPEN,
            requested_by: "jwt:alice".into(),
            at: Timestamp::now(),
        })
        .await;
        movement_id
    }

    /// The process manager's part of a delivered transfer.
    async fn credit_and_settle(
        &self,
        movement_id: MovementId,
        from: WalletId,
        to: WalletId,
        asset: Asset,
        amount: u128,
    ) {
        self.run(AccountCommand::CreditTransfer {
            wallet_id: to,
            movement_id,
            asset: asset.clone(),
            amount: Amount::from_minor(amount),
            from_wallet: from,
            gate: WalletGate::OPEN,
            at: Timestamp::now(),
        })
        .await;
        self.run(AccountCommand::SettleTransfer {
            wallet_id: from,
            movement_id,
            asset,
            amount: Amount::from_minor(amount),
            at: Timestamp::now(),
        })
        .await;
    }

    async fn give_back(&self, movement_id: MovementId, from: WalletId, asset: Asset, amount: u128) {
        self.run(AccountCommand::ReturnTransfer {
            wallet_id: from,
            movement_id,
            asset,
            amount: Amount::from_minor(amount),
            reason: ReturnReason::DestinationFrozen,
            at: Timestamp::now(),
        })
        .await;
    }

    async fn redeem(&self, from: WalletId, asset: Asset, amount: u128) -> MovementId {
        let movement_id = MovementId::random();
        self.run(AccountCommand::Redeem {
            wallet_id: from,
            movement_id,
            asset,
            amount: Amount::from_minor(amount),
            destination_reference: Reference::parse("payout-7781").unwrap(),
            gate: WalletGate::OPEN,
            requested_by: "jwt:alice".into(),
            at: Timestamp::now(),
        })
        .await;
        movement_id
    }
}

/// The domain's fold of every account event in the log.
async fn books(app: &TestApp) -> Books {
    let mut books = Books::default();
    for e in read_after(&app.app.db, LogPosition::START, 1_000_000)
        .await
        .unwrap()
    {
        if e.aggregate_type != "account" {
            continue;
        }
        let event: AccountEvent = serde_json::from_value(e.payload.clone()).unwrap();
        books.post(&event.postings()).unwrap();
    }
    books.check().unwrap();
    books
}

fn find<'a>(rows: &'a [MovementRow], movement: MovementId, kind: &str) -> &'a MovementRow {
    let id = movement.as_uuid().to_string();
    rows.iter()
        .find(|r| r.movement_id == id && r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} row of {id} in {rows:#?}"))
}

async fn all_movements(app: &TestApp, w: WalletId) -> Vec<MovementRow> {
    let page = MovementPage {
        limit: 1000,
        ..MovementPage::default()
    };
    wallet_movements(&app.app.db, &w.to_string(), &page)
        .await
        .unwrap()
}

async fn ledger_read_models_match_the_books_and_a_rebuild(b: Backend) {
    // These tests play the process manager's part themselves.
    let Some(app) = spawn_app_with(b, |s| s.ledger_process_manager = false).await else {
        return;
    };
    let ledger = Ledger::new(&app);
    let (a, bw, c) = (wallet(), wallet(), wallet());

    let issue_usd = ledger.issue(a, usd(), BIG).await;
    ledger.issue(a, sila(), 10_000).await;
    ledger.issue(bw, usd(), 500).await;
    // Delivered: debited, credited, settled.
    let delivered = ledger.debit(a, bw, usd(), 1_000).await;
    ledger
        .credit_and_settle(delivered, a, bw, usd(), 1_000)
        .await;
    // Returned, for more than a u64.
    let returned = ledger.debit(a, c, usd(), 1u128 << 64).await;
    ledger.give_back(returned, a, usd(), 1u128 << 64).await;
    // Still in transit.
    let in_flight = ledger.debit(bw, c, usd(), 200).await;
    let redeemed = ledger.redeem(a, sila(), 2_500).await;
    for _ in 0..5 {
        ledger.issue(c, sila(), 7).await;
    }

    // Balances are the Books' wallet accounts, exactly.
    let books = books(&app).await;
    let wallets = [a, bw, c];
    let mut held: BTreeMap<String, u128> = Default::default();
    for w in wallets {
        let rows = wallet_balances(&app.app.db, &w.to_string()).await.unwrap();
        let assets: BTreeSet<String> = rows.iter().map(|r| r.asset.clone()).collect();
        let expected: BTreeSet<String> = books
            .assets()
            .filter(|asset| !books.balance(&LedgerAccount::Wallet(w), asset).is_zero())
            .map(|asset| asset.as_str().to_string())
            .collect();
        // A wallet that held an asset keeps its row at zero; none here is zero.
        assert_eq!(assets, expected, "{w}");
        for r in &rows {
            let code = AssetCode::parse(&r.asset).unwrap();
            let want = books.balance(&LedgerAccount::Wallet(w), &code);
            assert!(!want.is_negative());
            assert_eq!(r.balance, want.magnitude().minor(), "{w} {}", r.asset);
            assert_eq!(r.decimals, if r.asset == "USD" { 2 } else { 0 });
            *held.entry(r.asset.clone()).or_default() += r.balance;
        }
    }
    let a_usd = wallet_balances(&app.app.db, &a.to_string()).await.unwrap();
    assert_eq!(a_usd[1].asset, "USD");
    assert_eq!(a_usd[1].balance, BIG - 1_000);
    assert!(a_usd[1].balance > u128::from(u64::MAX));

    // Supply: the Books' issuance, redemption and transit accounts, and
    // Σ balances + in transit = issued − redeemed.
    let supply_rows = supply(&app.app.db).await.unwrap();
    assert_eq!(
        supply_rows
            .iter()
            .map(|s| s.asset.as_str())
            .collect::<Vec<_>>(),
        ["SILA", "USD"]
    );
    for s in &supply_rows {
        let code = AssetCode::parse(&s.asset).unwrap();
        assert_eq!(s.issued, books.issued(&code).magnitude().minor());
        assert_eq!(s.redeemed, books.redeemed(&code).magnitude().minor());
        assert_eq!(
            s.in_transit,
            books
                .balance(&LedgerAccount::Transit(code.clone()), &code)
                .magnitude()
                .minor()
        );
        assert_eq!(held[&s.asset] + s.in_transit, s.issued - s.redeemed);
        assert_eq!(books.supply(&code).unwrap().minor(), s.issued - s.redeemed);
    }
    let usd_supply = &supply_rows[1];
    assert_eq!(
        (
            usd_supply.issued,
            usd_supply.redeemed,
            usd_supply.in_transit
        ),
        (BIG + 500, 0, 200)
    );
    assert_eq!(
        (supply_rows[0].issued, supply_rows[0].redeemed),
        (10_035, 2_500)
    );

    // The ledger's reports: live (the audit-log projection) equals as of
    // now (the log), and both equal the Books and the read models.
    let admin = crate::helpers::token("auditor", "ADMIN");
    let events = read_after(&app.app.db, LogPosition::START, 1_000_000)
        .await
        .unwrap()
        .len();
    let mut reports = BTreeMap::new();
    for name in [
        "ledger-balances",
        "ledger-supply",
        "ledger-movements-per-day",
    ] {
        let live = app
            .jwt(
                "GET",
                &format!("/api/admin/reports/{name}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(live.status, 200, "{}", live.body);
        assert_eq!(
            live.body["asOf"]["events"], events,
            "{name}: the projection caught up"
        );
        let logged = app
            .jwt(
                "GET",
                &format!("/api/admin/reports/{name}?asOf={events}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(logged.status, 200, "{}", logged.body);
        assert_eq!(logged.body["rows"], live.body["rows"], "{name}");
        reports.insert(name, live.body);
    }
    for row in reports["ledger-supply"]["rows"].as_array().unwrap() {
        let s = supply_rows
            .iter()
            .find(|s| row["asset"] == s.asset.as_str())
            .unwrap();
        assert_eq!(row["issued"], s.issued.to_string());
        assert_eq!(row["redeemed"], s.redeemed.to_string());
        assert_eq!(row["in_transit"], s.in_transit.to_string());
        assert_eq!(row["held_by_wallets"], held[&s.asset].to_string());
        assert_eq!(row["supply"], (s.issued - s.redeemed).to_string());
        assert_eq!(row["balanced"], true);
        assert_eq!(row["refused_events"], 0);
    }
    let balance_rows = reports["ledger-balances"]["rows"].as_array().unwrap();
    let big = balance_rows
        .iter()
        .find(|r| r["wallet_id"] == a.to_string().as_str() && r["asset"] == "USD")
        .unwrap();
    assert_eq!(big["balance"], (BIG - 1_000).to_string());
    assert_eq!(big["decimals"], 2);
    let days = reports["ledger-movements-per-day"]["rows"]
        .as_array()
        .unwrap();
    let issued_usd: u128 = days
        .iter()
        .filter(|r| r["asset"] == "USD" && r["kind"] == "issue")
        .map(|r| r["amount"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(issued_usd, BIG + 500);

    // Movements: each leg as its wallet sees it.
    let of_a = all_movements(&app, a).await;
    let of_b = all_movements(&app, bw).await;
    let of_c = all_movements(&app, c).await;
    assert_eq!((of_a.len(), of_b.len(), of_c.len()), (6, 3, 5));
    let issue = find(&of_a, issue_usd, "issue");
    assert_eq!(
        (
            issue.amount,
            issue.status.as_str(),
            issue.counterparty.as_str()
        ),
        (BIG, "settled", "ach-2026-12-01-0042")
    );
    assert_eq!(issue.requested_by.as_deref(), Some("jwt:issuer"));
    let out = find(&of_a, delivered, "transfer_out");
    let inn = find(&of_b, delivered, "transfer_in");
    assert_eq!(
        (out.status.as_str(), inn.status.as_str()),
        ("settled", "settled")
    );
    assert_eq!(out.counterparty, bw.to_string());
    assert_eq!(inn.counterparty, a.to_string());
    assert_eq!((out.amount, inn.amount), (1_000, 1_000));
    // The credit carries the sender's memo and who asked, from the debit.
    assert_eq!(inn.memo.as_deref(), Some("rent, December"));
    assert_eq!(inn.requested_by.as_deref(), Some("jwt:alice"));
    let back_out = find(&of_a, returned, "transfer_out");
    let back = find(&of_a, returned, "return");
    assert_eq!(
        (back_out.status.as_str(), back.status.as_str()),
        ("returned", "returned")
    );
    assert_eq!((back_out.amount, back.amount), (1u128 << 64, 1u128 << 64));
    assert_eq!(back.reason.as_deref(), Some("destination_frozen"));
    assert!(of_c
        .iter()
        .all(|r| r.movement_id != returned.as_uuid().to_string()));
    let pending = find(&of_b, in_flight, "transfer_out");
    assert_eq!(pending.status, "pending");
    assert!(of_c.iter().all(|r| r.kind == "issue"));
    let redeem = find(&of_a, redeemed, "redeem");
    assert_eq!(
        (
            redeem.amount,
            redeem.counterparty.as_str(),
            redeem.asset.as_str()
        ),
        (2_500, "payout-7781", "SILA")
    );

    // Paging: newest first, by page and by cursor, with a kind filter.
    assert!(of_a.windows(2).all(|w| w[0].seq > w[1].seq), "{of_a:#?}");
    assert_eq!(of_a[0].kind, "redeem");
    assert_eq!(of_a[5].kind, "issue");
    let wid = a.to_string();
    let page = |offset, before_seq, kind| MovementPage {
        kind,
        before_seq,
        offset,
        limit: 4,
        ..MovementPage::default()
    };
    let first = wallet_movements(&app.app.db, &wid, &page(0, None, None))
        .await
        .unwrap();
    let second = wallet_movements(&app.app.db, &wid, &page(4, None, None))
        .await
        .unwrap();
    assert_eq!([first.clone(), second.clone()].concat(), of_a);
    let after_cursor = wallet_movements(&app.app.db, &wid, &page(0, Some(first[3].seq), None))
        .await
        .unwrap();
    assert_eq!(after_cursor, second);
    let outs = wallet_movements(&app.app.db, &wid, &page(0, None, Some("transfer_out")))
        .await
        .unwrap();
    assert_eq!(
        outs.iter()
            .map(|r| r.movement_id.clone())
            .collect::<Vec<_>>(),
        [returned, delivered].map(|m| m.as_uuid().to_string())
    );
    assert_eq!(count_movements(&app.app.db, &wid, None).await.unwrap(), 6);
    assert_eq!(
        count_movements(&app.app.db, &wid, Some("transfer_out"))
            .await
            .unwrap(),
        2
    );
    let c_page = wallet_movements(
        &app.app.db,
        &c.to_string(),
        &MovementPage {
            kind: Some("issue"),
            offset: 2,
            limit: 2,
            before_seq: None,
            ..MovementPage::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(c_page, of_c[2..4]);

    // The live rows equal a rebuild: by `walletd replay`, and folded in
    // passes small enough to split every transfer's legs.
    let live = dump_projections(&app.app.db).await;
    for table in ["ledger_balances:", "ledger_movements:", "ledger_supply:"] {
        assert!(live.iter().any(|l| l.starts_with(table)), "{table}");
    }
    assert!(
        live.iter().any(|l| l.contains(&(BIG - 1_000).to_string())),
        "amounts dump exactly: {live:#?}"
    );
    let (ok, out, err) = run_cli(&["replay"], &[("DATABASE_URL", &app.db.url)]).await;
    assert!(ok, "replay failed: {out} {err}");
    assert_eq!(live, dump_projections(&app.app.db).await);
    let projector = walletd::projections::Projector::new(
        app.app.db.clone(),
        walletd::projections::views::all(),
    );
    for batch in [1, 2, 3, 7] {
        projector.reset().await.unwrap();
        while projector.pass_up_to(batch).await.unwrap().applied > 0 {}
        assert_eq!(
            live,
            dump_projections(&app.app.db).await,
            "rebuilt in passes of {batch}"
        );
    }
}

/// A small deterministic generator: the same run every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Up to `max`, at least 1.
    fn amount(&mut self, max: u128) -> u128 {
        if max <= 1 {
            return max;
        }
        let r = (u128::from(self.next()) << 64) | u128::from(self.next());
        1 + r % max
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Outcome {
    Delivered,
    Returned,
    Pending,
}

/// Rounds of issues, transfers and redemptions across wallets, each round's
/// commands concurrent (so the projector folds many at once); the model
/// below only lets a wallet spend what it held when the round began.
async fn random_concurrent_movements_keep_the_read_models_equal_to_the_books(b: Backend) {
    // These tests play the process manager's part themselves.
    let Some(app) = spawn_app_with(b, |s| s.ledger_process_manager = false).await else {
        return;
    };
    let ledger = Ledger::new(&app);
    let wallets: Vec<WalletId> = (0..6).map(|_| wallet()).collect();
    let assets = [usd(), sila()];
    let mut rng = Lcg(0x5eed_1e4d);
    let mut model: BTreeMap<(WalletId, String), u128> = BTreeMap::new();
    let mut transfers: Vec<(MovementId, WalletId, WalletId, Outcome)> = Vec::new();
    let mut legs: BTreeMap<WalletId, usize> = BTreeMap::new();
    for _round in 0..8 {
        // Phase 1: one first leg per wallet.
        let mut firsts = Vec::new();
        let mut seconds = Vec::new();
        // Credits and returns land in phase 2: spend only what was held before.
        let at_start = model.clone();
        for (i, &w) in wallets.iter().enumerate() {
            let asset = assets[rng.below(2) as usize].clone();
            let code = asset.code().as_str().to_string();
            let held = at_start.get(&(w, code.clone())).copied().unwrap_or(0);
            let op = if held == 0 { 0 } else { rng.below(4) };
            match op {
                0 => {
                    // Now and then an amount no u64 holds.
                    let amount = if rng.below(3) == 0 {
                        (1u128 << 64) + rng.amount(1u128 << 70)
                    } else {
                        rng.amount(100_000)
                    };
                    *model.entry((w, code)).or_default() += amount;
                    *legs.entry(w).or_default() += 1;
                    let ledger = &ledger;
                    firsts.push(Box::pin(async move {
                        ledger.issue(w, asset, amount).await;
                    })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>);
                }
                3 => {
                    let amount = rng.amount(held);
                    *model.entry((w, code)).or_default() -= amount;
                    *legs.entry(w).or_default() += 1;
                    let ledger = &ledger;
                    firsts.push(Box::pin(async move {
                        ledger.redeem(w, asset, amount).await;
                    }));
                }
                _ => {
                    let to = wallets[(i + 1 + rng.below(5) as usize) % wallets.len()];
                    let amount = rng.amount(held);
                    let movement_id = MovementId::random();
                    let outcome = [Outcome::Delivered, Outcome::Returned, Outcome::Pending]
                        [rng.below(3) as usize];
                    *model.entry((w, code.clone())).or_default() -= amount;
                    *legs.entry(w).or_default() += 1;
                    match outcome {
                        Outcome::Delivered => {
                            *model.entry((to, code)).or_default() += amount;
                            *legs.entry(to).or_default() += 1;
                        }
                        Outcome::Returned => {
                            *model.entry((w, code)).or_default() += amount;
                            *legs.entry(w).or_default() += 1;
                        }
                        Outcome::Pending => {}
                    }
                    transfers.push((movement_id, w, to, outcome));
                    let ledger = &ledger;
                    let debit_asset = asset.clone();
                    firsts.push(Box::pin(async move {
                        ledger
                            .run(AccountCommand::DebitForTransfer {
                                wallet_id: w,
                                movement_id,
                                asset: debit_asset,
                                amount: Amount::from_minor(amount),
                                to_wallet: to,
                                memo: None,
                                gate: WalletGate::OPEN,
                                to_gate: WalletGate::OPEN,
                                requested_by: "jwt:random".into(),
                                at: Timestamp::now(),
                            })
                            .await;
                    }));
                    seconds.push(Box::pin(async move {
                        match outcome {
                            Outcome::Delivered => {
                                ledger
                                    .credit_and_settle(movement_id, w, to, asset, amount)
                                    .await
                            }
                            Outcome::Returned => {
                                ledger.give_back(movement_id, w, asset, amount).await
                            }
                            Outcome::Pending => {}
                        }
                    })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>);
                }
            }
        }
        join_all(firsts).await;
        // Phase 2: the process manager's legs, concurrently too.
        join_all(seconds).await;
    }

    let books = books(&app).await;
    let mut held: BTreeMap<String, u128> = BTreeMap::new();
    for &w in &wallets {
        for r in wallet_balances(&app.app.db, &w.to_string()).await.unwrap() {
            let code = AssetCode::parse(&r.asset).unwrap();
            let want = books.balance(&LedgerAccount::Wallet(w), &code);
            assert_eq!(r.balance, want.magnitude().minor(), "{w} {}", r.asset);
            assert_eq!(
                r.balance,
                model.get(&(w, r.asset.clone())).copied().unwrap_or(0)
            );
            *held.entry(r.asset).or_default() += r.balance;
        }
        let rows = all_movements(&app, w).await;
        assert_eq!(rows.len(), legs.get(&w).copied().unwrap_or(0), "{w}");
        assert!(rows.windows(2).all(|p| p[0].seq > p[1].seq));
    }
    for s in supply(&app.app.db).await.unwrap() {
        let code = AssetCode::parse(&s.asset).unwrap();
        assert_eq!(s.issued, books.issued(&code).magnitude().minor());
        assert_eq!(s.redeemed, books.redeemed(&code).magnitude().minor());
        assert_eq!(held[&s.asset] + s.in_transit, s.issued - s.redeemed);
    }
    let mut seen = BTreeSet::new();
    for (movement_id, from, to, outcome) in &transfers {
        let out_rows = all_movements(&app, *from).await;
        let out = find(&out_rows, *movement_id, "transfer_out");
        let in_rows = all_movements(&app, *to).await;
        let id = movement_id.as_uuid().to_string();
        let credited = in_rows
            .iter()
            .any(|r| r.movement_id == id && r.kind == "transfer_in");
        let expected = match outcome {
            Outcome::Delivered => "settled",
            Outcome::Returned => "returned",
            Outcome::Pending => "pending",
        };
        assert_eq!(out.status, expected, "{id}");
        assert_eq!(credited, *outcome == Outcome::Delivered, "{id}");
        seen.insert(*outcome);
    }
    assert_eq!(seen.len(), 3, "every outcome occurred");

    let live = dump_projections(&app.app.db).await;
    let (ok, out, err) = run_cli(&["replay"], &[("DATABASE_URL", &app.db.url)]).await;
    assert!(ok, "replay failed: {out} {err}");
    assert_eq!(live, dump_projections(&app.app.db).await);
    let projector = walletd::projections::Projector::new(
        app.app.db.clone(),
        walletd::projections::views::all(),
    );
    for batch in [1, 5, 16] {
        projector.reset().await.unwrap();
        while projector.pass_up_to(batch).await.unwrap().applied > 0 {}
        assert_eq!(
            live,
            dump_projections(&app.app.db).await,
            "rebuilt in passes of {batch}"
        );
    }
}
