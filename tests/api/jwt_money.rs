//! The JWT API's money endpoints over real HTTP (issue 14): issue, balance,
//! transfer (by id, by address, waiting or `Prefer: respond-async`),
//! transactions, redeem; the refusals, idempotency, the gate, the server
//! wallets' balances, and a hot receiving account.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};
use walletd::domain::key::KeyFreezeReason;
use walletd::domain::wallet::WalletCommand;
use walletd::domain::{Timestamp, WalletId};
use walletd::service::ledger::{LedgerService, TRANSFER_WAIT};
use walletd::store::CommandMeta;

use crate::backend_tests;
use crate::helpers::{spawn_app, token, Backend, Resp, TestApp};

backend_tests!(
    issue_transfer_balance_and_history,
    refused_movements_change_nothing,
    frozen_and_deleted_wallets_move_nothing,
    idempotency_key_moves_money_once,
    respond_async_answers_after_the_debit,
    server_wallet_get_shows_balances,
    hot_account_takes_64_concurrent_transfers,
);

const TRANSFER: &str = "/api/wallet/transfer";
/// 10^18: one ETH in minor units.
const ETH: u128 = 1_000_000_000_000_000_000;

/// A JWT request with extra headers (`Idempotency-Key`, `Prefer`).
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = match method {
        "POST" => app.client.post(app.url(path)),
        _ => app.client.get(app.url(path)),
    }
    .insert_header(("Authorization", format!("Bearer {token}")));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let res = match body {
        Some(b) => {
            req.insert_header(("Content-Type", "application/json"))
                .send_body(b.to_string())
                .await
        }
        None => req.send().await,
    }
    .expect("request sent");
    crate::helpers::into_resp(res).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> Resp {
    send(app, "POST", path, token, Some(&body), &[]).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> Resp {
    send(app, "GET", path, token, None, &[]).await
}

/// A JWT wallet of `user`: (id, address).
async fn wallet_of(app: &TestApp, user: &str) -> (String, String) {
    let r = post(
        app,
        "/api/wallet/create",
        &token(user, "SUBSCRIBER"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (
        r.body["wallet"]["id"].as_str().unwrap().to_string(),
        r.body["wallet"]["address"].as_str().unwrap().to_string(),
    )
}

fn admin() -> String {
    token("money-admin", "ADMIN")
}

async fn issue(app: &TestApp, wallet: &str, amount: &str) -> Resp {
    let r = post(
        app,
        &format!("/api/wallet/{wallet}/issue"),
        &admin(),
        json!({ "amount": amount, "reference": "wire-2026-12-01" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r
}

async fn balance(app: &TestApp, wallet: &str) -> String {
    let r = get(app, &format!("/api/wallet/{wallet}/balance"), &admin()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["balance"].as_str().unwrap().to_string()
}

async fn transactions(app: &TestApp, wallet: &str, query: &str) -> Value {
    let r = get(
        app,
        &format!("/api/wallet/{wallet}/transactions{query}"),
        &admin(),
    )
    .await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.body
}

/// Waits for the process manager to finish every transfer out of `wallet`.
/// Generously: PostgreSQL's read horizon is cluster-wide, and a test that
/// holds it on purpose (`ownership::…while_projections_lag`) stalls every
/// other test's projector and process manager for up to its 10 s.
async fn settled(app: &TestApp, wallet: &str) -> Value {
    for _ in 0..1200 {
        let page = transactions(app, wallet, "?type=transfer_out&limit=100").await;
        if page["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] != "pending")
        {
            return page;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("transfers out of {wallet} still pending");
}

/// A transfer without `Prefer: respond-async`: 201, and it waited for the
/// credit: `completed`, or `pending` only once the whole wait had passed
/// (a loaded machine can hold the process manager back that long).
async fn transfer_waiting(app: &TestApp, token: &str, body: Value) -> Value {
    let started = std::time::Instant::now();
    let r = send(app, "POST", TRANSFER, token, Some(&body), &[]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t = r.body["transfer"].clone();
    match t["status"].as_str() {
        Some("completed") => {}
        Some("pending") => assert!(
            started.elapsed() >= TRANSFER_WAIT,
            "pending after only {:?}: {t}",
            started.elapsed()
        ),
        _ => panic!("{t}"),
    }
    t
}

async fn issue_transfer_balance_and_history(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let alice = token("alice", "SUBSCRIBER");
    let (a, _) = wallet_of(&app, "alice").await;
    let (bw, b_address) = wallet_of(&app, "bob").await;
    assert_eq!(balance(&app, &a).await, "0");

    let issued = issue(&app, &a, "10").await;
    let t = &issued.body["transaction"];
    assert_eq!(
        (&t["type"], &t["amount"], &t["currency"], &t["status"]),
        (
            &json!("issue"),
            &json!("10"),
            &json!("ETH"),
            &json!("completed")
        )
    );
    assert_eq!(t["walletId"], a.as_str());
    assert_eq!(t["reference"], "wire-2026-12-01");
    // The owner reads the same balance as ADMIN.
    let own = get(&app, &format!("/api/wallet/{a}/balance"), &alice).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(
        own.body,
        json!({ "walletId": a, "currency": "ETH", "balance": "10" })
    );

    // By id, with a memo: the answer waits for the credit.
    let tr = transfer_waiting(
        &app,
        &alice,
        json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1.5", "currency": "ETH", "memo": "lunch" }),
    )
    .await;
    let tr = &tr;
    assert_eq!(
        (
            &tr["fromWalletId"],
            &tr["toWalletId"],
            &tr["amount"],
            &tr["currency"],
            &tr["memo"]
        ),
        (
            &json!(a),
            &json!(bw),
            &json!("1.5"),
            &json!("ETH"),
            &json!("lunch")
        )
    );
    assert!(tr.get("reason").is_none());
    // By address (any case), the smallest unit.
    let by_address = transfer_waiting(
        &app,
        &alice,
        json!({ "fromWalletId": a, "toAddress": b_address.to_lowercase(), "amount": "0.000000000000000001" }),
    )
    .await;
    assert_eq!(by_address["toWalletId"], bw.as_str());
    settled(&app, &a).await;
    assert_eq!(balance(&app, &a).await, "8.499999999999999999");
    assert_eq!(balance(&app, &bw).await, "1.500000000000000001");
    // The wallet object carries the real balance, in the list and primary.
    let list = get(&app, "/api/wallet/list", &alice).await;
    assert_eq!(list.body["wallets"][0]["balance"], "8.499999999999999999");
    let bob = token("bob", "SUBSCRIBER");
    let primary = post(&app, "/api/wallet/primary", &bob, json!({ "walletId": bw })).await;
    assert_eq!(primary.status, 200, "{}", primary.body);
    assert_eq!(primary.body["wallet"]["balance"], "1.500000000000000001");

    // Alice redeems her own money.
    let redeemed = post(
        &app,
        &format!("/api/wallet/{a}/redeem"),
        &alice,
        json!({ "amount": "0.499999999999999999", "reference": "payout-1" }),
    )
    .await;
    assert_eq!(redeemed.status, 201, "{}", redeemed.body);
    assert_eq!(redeemed.body["transaction"]["type"], "redeem");
    assert_eq!(balance(&app, &a).await, "8");

    // History: newest first, filtered, paged.
    let all = transactions(&app, &a, "").await;
    assert_eq!(
        (
            all["total"].as_i64(),
            all["page"].as_i64(),
            all["limit"].as_i64()
        ),
        (Some(4), Some(1), Some(20))
    );
    let kinds: Vec<&str> = all["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["redeem", "transfer_out", "transfer_out", "issue"]);
    let first_out = &all["transactions"][2];
    assert_eq!(first_out["id"], tr["id"]);
    assert_eq!(first_out["counterpartyWalletId"], bw.as_str());
    assert_eq!(first_out["memo"], "lunch");
    assert_eq!(first_out["status"], "completed");
    let outs = transactions(&app, &a, "?type=transfer_out").await;
    assert_eq!(outs["total"], 2);
    assert!(outs["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["type"] == "transfer_out"));
    let second = transactions(&app, &a, "?limit=1&page=2").await;
    assert_eq!(second["total"], 4);
    assert_eq!(second["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(second["transactions"][0], all["transactions"][1]);
    let beyond = transactions(&app, &a, "?limit=3&page=2").await;
    assert_eq!(beyond["transactions"].as_array().unwrap().len(), 1);
    // Dates: the issue's own time bounds it on both sides.
    let issued_at = all["transactions"][3]["createdAt"]
        .as_str()
        .unwrap()
        .to_string();
    let enc = |s: &str| s.replace(':', "%3A").replace('+', "%2B");
    let from_issue = transactions(&app, &a, &format!("?from={}", enc(&issued_at))).await;
    assert_eq!(from_issue["total"], 4);
    let before_issue = transactions(&app, &a, &format!("?to={}", enc(&issued_at))).await;
    assert_eq!(before_issue["total"], 0);
    let after_last = all["transactions"][0]["createdAt"].as_str().unwrap();
    let later = Timestamp::parse(after_last)
        .unwrap()
        .plus_seconds(1)
        .to_text();
    assert_eq!(
        transactions(&app, &a, &format!("?from={}", enc(&later))).await["total"],
        0
    );
    let window = transactions(
        &app,
        &a,
        &format!("?type=issue&from=2000-01-01&to={}", enc(&later)),
    )
    .await;
    assert_eq!(window["total"], 1);
    assert_eq!(window["transactions"][0]["type"], "issue");
    // Bob sees the credit, with the memo.
    let of_b = transactions(&app, &bw, "?type=transfer_in").await;
    assert_eq!(of_b["total"], 2);
    let credit = &of_b["transactions"][1];
    assert_eq!(
        (
            &credit["id"],
            &credit["amount"],
            &credit["counterpartyWalletId"],
            &credit["memo"],
            &credit["status"]
        ),
        (
            &tr["id"],
            &json!("1.5"),
            &json!(a),
            &json!("lunch"),
            &json!("completed")
        )
    );
    for bad in [
        "?type=deposit",
        "?limit=0",
        "?limit=101",
        "?page=0",
        "?from=yesterday",
        "?to=2026-13-01",
        "?perPage=5",
    ] {
        let r = get(&app, &format!("/api/wallet/{a}/transactions{bad}"), &alice).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let report = walletd::ledger::check::run(&app.app.db).await.unwrap();
    assert!(report.ok(), "{report:#?}");
    app.stop().await;
}

async fn refused_movements_change_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let alice = token("alice", "MEMBER");
    let mallory = token("mallory", "MEMBER");
    let (a, _) = wallet_of(&app, "alice").await;
    let (bw, _) = wallet_of(&app, "bob").await;
    let (m, _) = wallet_of(&app, "mallory").await;
    issue(&app, &a, "2").await;
    let events = crate::server_wallets::event_count(&app).await;

    // More than she has: 422, nothing moves.
    let r = post(
        &app,
        TRANSFER,
        &alice,
        json!({ "fromWalletId": a, "toWalletId": bw, "amount": "2.000000000000000001" }),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["error"], "Insufficient funds");
    let r = post(
        &app,
        &format!("/api/wallet/{a}/redeem"),
        &alice,
        json!({ "amount": "3", "reference": "p" }),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);

    // Bad amounts: 400.
    for amount in [
        json!("0"),
        json!("-1"),
        json!("1.0000000000000000001"),
        json!(1.5),
        json!("abc"),
        json!(""),
        json!("01"),
        json!("1."),
        json!(null),
    ] {
        let r = post(
            &app,
            TRANSFER,
            &alice,
            json!({ "fromWalletId": a, "toWalletId": bw, "amount": amount }),
        )
        .await;
        assert_eq!(r.status, 400, "{amount}: {}", r.body);
        let r = post(
            &app,
            &format!("/api/wallet/{a}/issue"),
            &admin(),
            json!({ "amount": amount, "reference": "r" }),
        )
        .await;
        assert_eq!(r.status, 400, "issue {amount}: {}", r.body);
    }
    let cases = [
        (
            json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1", "currency": "DOGE" }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1", "currency": "SILA" }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toWalletId": a, "amount": "1" }),
            400,
        ),
        (json!({ "fromWalletId": a, "amount": "1" }), 400),
        (
            json!({ "fromWalletId": a, "toWalletId": bw, "toAddress": "0x0000000000000000000000000000000000000001", "amount": "1" }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toAddress": "0x12", "amount": "1" }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toWalletId": "not-a-uuid", "amount": "1" }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1", "memo": "" }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1", "memo": "a\nb" }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1", "extra": 1 }),
            400,
        ),
        (
            json!({ "fromWalletId": a, "toWalletId": uuid::Uuid::new_v4().to_string(), "amount": "1" }),
            404,
        ),
        (
            json!({ "fromWalletId": a, "toAddress": "0x0000000000000000000000000000000000000001", "amount": "1" }),
            404,
        ),
    ];
    for (body, status) in cases {
        let r = post(&app, TRANSFER, &alice, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.body["error"].is_string(), "{}", r.body);
    }
    // Mallory cannot move, redeem or read Alice's money: to her it does not exist.
    let r = post(
        &app,
        TRANSFER,
        &mallory,
        json!({ "fromWalletId": a, "toWalletId": m, "amount": "1" }),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"], "Wallet not found");
    let r = post(
        &app,
        &format!("/api/wallet/{a}/redeem"),
        &mallory,
        json!({ "amount": "1", "reference": "x" }),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    for path in ["balance", "transactions"] {
        let r = get(&app, &format!("/api/wallet/{a}/{path}"), &mallory).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    // Only ADMIN issues; a VISITOR moves nothing.
    let r = post(
        &app,
        &format!("/api/wallet/{m}/issue"),
        &mallory,
        json!({ "amount": "1", "reference": "x" }),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        &app,
        TRANSFER,
        &token("alice", "VISITOR"),
        json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1" }),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/wallet/{}/issue", uuid::Uuid::new_v4()),
        &admin(),
        json!({ "amount": "1", "reference": "x" }),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/wallet/{a}/issue"),
        &admin(),
        json!({ "amount": "1", "reference": " padded" }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Nothing was written, and the balances are as they were.
    assert_eq!(crate::server_wallets::event_count(&app).await, events);
    assert_eq!(balance(&app, &a).await, "2");
    assert_eq!(balance(&app, &bw).await, "0");
    assert_eq!(transactions(&app, &a, "").await["total"], 1);
    // The refusals are in the admin audit.
    let audit = get(
        &app,
        "/api/admin/audit?action=wallet.transfer&perPage=100",
        &admin(),
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let reasons: Vec<&str> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "refusal")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for reason in [
        "insufficient_funds",
        "wallet_not_visible",
        "insufficient_role",
    ] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
    app.stop().await;
}

/// Records a custody freeze of the wallet's key, as custody would.
async fn freeze(app: &TestApp, wallet: &str) {
    let (w, _) = app.app.wallets.load(wallet).await.unwrap();
    let key_id = w.signing_key().unwrap().key.key_id;
    let command = WalletCommand::RecordKeyFrozen {
        key_id,
        reason: KeyFreezeReason::ShareFrozen,
        at: Timestamp::now(),
    };
    app.app
        .wallets
        .execute(wallet, command, &CommandMeta::system("test"))
        .await
        .unwrap();
}

async fn delete(app: &TestApp, wallet: &str) {
    let command = WalletCommand::Delete {
        at: Timestamp::now(),
    };
    app.app
        .wallets
        .execute(wallet, command, &CommandMeta::system("test"))
        .await
        .unwrap();
}

async fn frozen_and_deleted_wallets_move_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let alice = token("alice", "SUBSCRIBER");
    let (a, _) = wallet_of(&app, "alice").await;
    let (a2, _) = wallet_of(&app, "alice").await;
    let (bw, _) = wallet_of(&app, "bob").await;
    let (cw, _) = wallet_of(&app, "carol").await;
    issue(&app, &a, "5").await;
    issue(&app, &a2, "5").await;

    // A frozen destination: refused at the debit.
    freeze(&app, &bw).await;
    let r = post(
        &app,
        TRANSFER,
        &alice,
        json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1" }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("frozen"),
        "{}",
        r.body
    );
    // A frozen source.
    freeze(&app, &a).await;
    let r = post(
        &app,
        TRANSFER,
        &alice,
        json!({ "fromWalletId": a, "toWalletId": cw, "amount": "1" }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/wallet/{a}/redeem"),
        &alice,
        json!({ "amount": "1", "reference": "p" }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/wallet/{bw}/issue"),
        &admin(),
        json!({ "amount": "1", "reference": "p" }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // A deleted destination.
    delete(&app, &cw).await;
    let r = post(
        &app,
        TRANSFER,
        &alice,
        json!({ "fromWalletId": a2, "toWalletId": cw, "amount": "1" }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("deleted"),
        "{}",
        r.body
    );
    // A deleted source is gone for its owner, as on every other endpoint
    // (404); the ledger's gate would refuse it anyway.
    delete(&app, &a2).await;
    let r = post(
        &app,
        TRANSFER,
        &alice,
        json!({ "fromWalletId": a2, "toWalletId": a, "amount": "1" }),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post(
        &app,
        &format!("/api/wallet/{a2}/redeem"),
        &admin(),
        json!({ "amount": "1", "reference": "p" }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("deleted"),
        "{}",
        r.body
    );
    let ledger = LedgerService::new(&app.app);
    let eth = app.app.settings.assets.eth();
    for (w, expect) in [(&a, 5), (&a2, 5), (&bw, 0), (&cw, 0)] {
        let id = WalletId::parse(w).unwrap();
        assert_eq!(
            ledger.balance(id, eth).await.unwrap().minor(),
            expect * ETH,
            "{w}"
        );
    }
    let report = walletd::ledger::check::run(&app.app.db).await.unwrap();
    assert!(report.ok(), "{report:#?}");
    app.stop().await;
}

async fn idempotency_key_moves_money_once(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let alice = token("alice", "SUBSCRIBER");
    let (a, _) = wallet_of(&app, "alice").await;
    let (bw, _) = wallet_of(&app, "bob").await;
    // An issue retried under one key issues once.
    let key = [("Idempotency-Key", "fund-alice-1")];
    let body = json!({ "amount": "3", "reference": "wire-9" });
    let path = format!("/api/wallet/{a}/issue");
    let first = send(&app, "POST", &path, &admin(), Some(&body), &key).await;
    let again = send(&app, "POST", &path, &admin(), Some(&body), &key).await;
    assert_eq!((first.status, again.status), (201, 201), "{}", again.body);
    assert_eq!(first.body, again.body);
    assert_eq!(balance(&app, &a).await, "3");

    let key = [("Idempotency-Key", "pay-bob-1")];
    let body = json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1.25" });
    let first = send(&app, "POST", TRANSFER, &alice, Some(&body), &key).await;
    assert_eq!(first.status, 201, "{}", first.body);
    // Concurrent and later retries: the same transfer, moved once.
    let retries =
        join_all((0..4).map(|_| send(&app, "POST", TRANSFER, &alice, Some(&body), &key))).await;
    for r in &retries {
        assert!(
            r.status == 201 || r.status == 409,
            "{}: {}",
            r.status,
            r.body
        );
        if r.status == 201 {
            assert_eq!(r.body["transfer"]["id"], first.body["transfer"]["id"]);
        }
    }
    let later = send(&app, "POST", TRANSFER, &alice, Some(&body), &key).await;
    assert_eq!(later.status, 201);
    assert_eq!(later.body, first.body);
    settled(&app, &a).await;
    assert_eq!(balance(&app, &a).await, "1.75");
    assert_eq!(balance(&app, &bw).await, "1.25");
    assert_eq!(
        transactions(&app, &a, "?type=transfer_out").await["total"],
        1
    );
    // The same key for another transfer: 422, nothing moves.
    let other = json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1" });
    let r = send(&app, "POST", TRANSFER, &alice, Some(&other), &key).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    // Once the stored answers are gone, the movement id (caller, key) still
    // finds the transfer for a retry, and still refuses another body.
    walletd::api::idempotency::prune(&app.app.db, 0, 1_000)
        .await
        .unwrap();
    let r = send(&app, "POST", TRANSFER, &alice, Some(&body), &key).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["transfer"]["id"], first.body["transfer"]["id"]);
    walletd::api::idempotency::prune(&app.app.db, 0, 1_000)
        .await
        .unwrap();
    let r = send(&app, "POST", TRANSFER, &alice, Some(&other), &key).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(balance(&app, &a).await, "1.75");
    assert_eq!(balance(&app, &bw).await, "1.25");
    let r = send(
        &app,
        "POST",
        TRANSFER,
        &alice,
        Some(&body),
        &[("Idempotency-Key", "")],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    app.stop().await;
}

async fn respond_async_answers_after_the_debit(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let alice = token("alice", "SUBSCRIBER");
    let (a, _) = wallet_of(&app, "alice").await;
    let (bw, _) = wallet_of(&app, "bob").await;
    issue(&app, &a, "4").await;
    let body = json!({ "fromWalletId": a, "toWalletId": bw, "amount": "1" });
    let r = send(
        &app,
        "POST",
        TRANSFER,
        &alice,
        Some(&body),
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let t = &r.body["transfer"];
    assert!(
        t["status"] == "pending" || t["status"] == "completed",
        "{t}"
    );
    assert_eq!(t["amount"], "1");
    // The debit is recorded at once; the credit follows.
    let page = settled(&app, &a).await;
    assert_eq!(page["transactions"][0]["id"], t["id"]);
    assert_eq!(page["transactions"][0]["status"], "completed");
    assert_eq!(balance(&app, &bw).await, "1");
    // With other preferences around it, too.
    let r = send(
        &app,
        "POST",
        TRANSFER,
        &alice,
        Some(&body),
        &[("Prefer", "return=minimal, Respond-Async; wait=5")],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    // Without: it waits for the credit.
    transfer_waiting(&app, &alice, body.clone()).await;
    settled(&app, &a).await;
    assert_eq!(balance(&app, &a).await, "1");
    assert_eq!(balance(&app, &bw).await, "3");
    app.stop().await;
}

async fn server_wallet_get_shows_balances(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("srv-user").await;
    let id = created["walletId"].as_str().unwrap().to_string();
    let r = app.get(&format!("/api/wallets/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["balances"], json!([]));
    for key in [
        "success",
        "userId",
        "address",
        "walletId",
        "publicKey",
        "createdAt",
    ] {
        assert!(r.body.get(key).is_some(), "{key}: {}", r.body);
    }
    issue(&app, &id, "2.5").await;
    let r = post(
        &app,
        &format!("/api/wallet/{id}/issue"),
        &admin(),
        json!({ "amount": "100", "reference": "ach-1", "currency": "SILA" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    for lookup in [
        id.clone(),
        "srv-user".to_string(),
        created["address"].as_str().unwrap().to_string(),
    ] {
        let r = app.get(&format!("/api/wallets/{lookup}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["balances"],
            json!([{ "asset": "ETH", "balance": "2.5" }, { "asset": "SILA", "balance": "100" }]),
            "{lookup}"
        );
    }
    // Not a JWT wallet: the JWT API does not show it to its owner's namesake.
    let r = get(
        &app,
        &format!("/api/wallet/{id}/balance"),
        &token("srv-user", "ADMIN"),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    app.stop().await;
}

async fn hot_account_takes_64_concurrent_transfers(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    const SENDERS: usize = 64;
    let (hot, _) = wallet_of(&app, "merchant").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let user = format!("payer-{i}");
        let (w, _) = wallet_of(&app, &user).await;
        issue(&app, &w, "1").await;
        senders.push((user, w));
    }
    // Each pays a different amount, so the sum checks every one arrived once.
    let answers = join_all(senders.iter().enumerate().map(|(i, (user, w))| {
        let app = &app;
        let hot = hot.clone();
        async move {
            let amount = format!("0.{:02}", i + 1);
            let body = json!({ "fromWalletId": w, "toWalletId": hot, "amount": amount });
            send(
                app,
                "POST",
                TRANSFER,
                &token(user, "SUBSCRIBER"),
                Some(&body),
                &[],
            )
            .await
        }
    }))
    .await;
    let mut completed_at_once = 0;
    for r in &answers {
        assert_eq!(r.status, 201, "{}", r.body);
        let status = r.body["transfer"]["status"].as_str().unwrap();
        assert!(status == "completed" || status == "pending", "{}", r.body);
        completed_at_once += usize::from(status == "completed");
    }
    // Every one completes (most within the answer's wait).
    for (_, w) in &senders {
        settled(&app, w).await;
    }
    let expected: u128 = (1..=SENDERS as u128).map(|i| i * ETH / 100).sum();
    assert_eq!(
        balance(&app, &hot).await,
        walletd::api::amounts::wire_amount(expected, 18)
    );
    assert_eq!(balance(&app, &hot).await, "20.8");
    for (i, (_, w)) in senders.iter().enumerate() {
        let left = ETH - (i as u128 + 1) * ETH / 100;
        assert_eq!(
            balance(&app, w).await,
            walletd::api::amounts::wire_amount(left, 18)
        );
    }
    let received = transactions(&app, &hot, "?type=transfer_in&limit=100").await;
    assert_eq!(received["total"], SENDERS);
    assert!(received["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "completed"));
    let report = walletd::ledger::check::run(&app.app.db).await.unwrap();
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.awaiting_second_leg, 0);
    eprintln!(
        "hot account ({b:?}): {completed_at_once} of {SENDERS} completed within the answer's wait"
    );
    app.stop().await;
}
