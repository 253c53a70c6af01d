//! Sila money over real HTTP (issue 14): issue_sila, transfer_sila,
//! redeem_sila, get_sila_balance, get_transactions, on both backends.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{now, spawn_app_with, Resp, TestApp};
use crate::sila_client::{assert_failure, assert_success, is_uuid, Key, SilaClient};

backend_tests!(
    issue_transfer_redeem_and_balances,
    not_whitelisted_then_accepted,
    one_reference_is_one_movement,
    transactions_filtered_and_paged,
    bad_amounts_move_nothing,
);

const ALICE: &str = "alice.eth";
const BOB: &str = "bob.eth";

async fn spawn(b: crate::helpers::Backend, delay: u64) -> Option<TestApp> {
    spawn_app_with(b, move |s| s.whitelist_delay = Some(delay)).await
}

/// A registered user whose first wallet passed KYC and is whitelisted.
async fn funded_ready(sila: &SilaClient, user: &str) -> Key {
    let key = sila.register_user(user).await;
    let r = sila.request_kyc(user, &key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    sila.wait_whitelisted(user, &key, Duration::from_secs(20))
        .await;
    key
}

/// Signs `extra` for `user` with `key`, with `reference` if given.
async fn money(
    sila: &SilaClient,
    endpoint: &str,
    user: &str,
    key: &Key,
    reference: Option<&str>,
    extra: Value,
) -> (Resp, Value) {
    let mut body = sila.body(Some(user), extra);
    if let Some(r) = reference {
        body["header"]["reference"] = json!(r);
        // A new signed request, not the same bytes again within a second
        // (an extra field: Sila's bodies carry fields walletd ignores).
        static ATTEMPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body["source_id"] = json!(format!("attempt-{n}"));
    }
    let r = sila.call(endpoint, &body, Some(&sila.key), Some(key)).await;
    (r, body)
}

async fn issue(sila: &SilaClient, user: &str, key: &Key, amount: u64) -> Resp {
    let (r, body) = money(
        sila,
        "issue_sila",
        user,
        key,
        None,
        json!({"amount": amount}),
    )
    .await;
    assert_success(&r, &body);
    assert!(is_uuid(&r.body["transaction_id"]), "{}", r.body);
    assert_eq!(r.body["transaction_status"], "success", "{}", r.body);
    r
}

async fn transfer(sila: &SilaClient, user: &str, key: &Key, extra: Value) -> Resp {
    let (r, body) = money(sila, "transfer_sila", user, key, None, extra).await;
    assert_success(&r, &body);
    // The credit is the process manager's; the answer waited up to 3 s.
    let status = r.body["transaction_status"].as_str().unwrap_or_default();
    assert!(["pending", "success"].contains(&status), "{}", r.body);
    r
}

/// Polls `get_sila_balance` until it reads `expected` (a transfer's credit
/// may still be in transit when its answer came).
async fn wait_balance(sila: &SilaClient, key: &Key, expected: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    loop {
        let got = balance(sila, key).await;
        if got == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: balance {got}, expected {expected}",
            key.address
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `get_sila_balance`: public, no header, no signature.
async fn balance(sila: &SilaClient, key: &Key) -> u64 {
    let bytes = serde_json::to_vec(&json!({ "address": key.address })).unwrap();
    let r = sila
        .send("get_sila_balance", "application/json", bytes, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    assert_eq!(r.body["address"], key.address, "{}", r.body);
    r.body["sila_balance"]
        .as_u64()
        .unwrap_or_else(|| panic!("sila_balance: {}", r.body))
}

async fn transactions(sila: &SilaClient, user: &str, key: Option<&Key>, filters: Value) -> Resp {
    let body = sila.body(Some(user), json!({ "search_filters": filters }));
    let r = sila
        .call("get_transactions", &body, Some(&sila.key), key)
        .await;
    assert_success(&r, &body);
    r
}

/// Waits until none of `user`'s transactions is pending (the process
/// manager settles a transfer on its source one pass after the credit).
async fn settled(sila: &SilaClient, user: &str, key: &Key) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = transactions(sila, user, Some(key), json!({"statuses": ["pending"]})).await;
        if r.body["total_count"] == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still pending: {}",
            r.body
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(r: &Resp) -> Vec<String> {
    r.body["transactions"]
        .as_array()
        .unwrap_or_else(|| panic!("transactions: {}", r.body))
        .iter()
        .map(|t| t["transaction_id"].as_str().unwrap().to_string())
        .collect()
}

async fn issue_transfer_redeem_and_balances(b: crate::helpers::Backend) {
    let Some(app) = spawn(b, 1).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "money.app").await;
    let ka = funded_ready(&sila, ALICE).await;
    let kb1 = funded_ready(&sila, BOB).await;
    let (kb2, _) = sila
        .add_wallet(BOB, &kb1, json!({"nickname": "savings"}))
        .await;
    // A transfer needs its destination whitelisted too.
    sila.wait_whitelisted(BOB, &kb2, Duration::from_secs(20))
        .await;

    let r = issue(&sila, ALICE, &ka, 1000).await;
    assert_eq!(
        r.body["message"],
        "Transaction submitted to processing queue."
    );
    assert_eq!(balance(&sila, &ka).await, 1000);
    let w = sila.get_wallet(ALICE, &ka).await;
    assert_eq!(w.body["sila_balance"], 1000, "{}", w.body);

    // To the handle: its default wallet, the first one.
    let r = transfer(
        &sila,
        ALICE,
        &ka,
        json!({"amount": 100, "destination_handle": BOB, "descriptor": "lunch"}),
    )
    .await;
    assert_eq!(r.body["destination_address"], kb1.address, "{}", r.body);
    assert_eq!(r.body["descriptor"], "lunch");
    wait_balance(&sila, &kb1, 100).await;

    // The default moves to the second wallet: the next transfer follows.
    let u = sila
        .user_call("update_wallet", BOB, &kb2, json!({"default": true}))
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let r = transfer(
        &sila,
        ALICE,
        &ka,
        json!({"amount": 50, "destination_handle": BOB}),
    )
    .await;
    assert_eq!(r.body["destination_address"], kb2.address, "{}", r.body);
    wait_balance(&sila, &kb2, 50).await;

    // By nickname, and by address alone.
    let r = transfer(
        &sila,
        ALICE,
        &ka,
        json!({"amount": 20, "destination_handle": BOB, "destination_wallet": "main"}),
    )
    .await;
    assert_eq!(r.body["destination_address"], kb1.address, "{}", r.body);
    let r = transfer(
        &sila,
        ALICE,
        &ka,
        json!({"amount": 30, "destination_address": kb2.address}),
    )
    .await;
    assert_eq!(r.body["destination_handle"], BOB, "{}", r.body);
    wait_balance(&sila, &kb1, 120).await;
    wait_balance(&sila, &kb2, 80).await;
    assert_eq!(
        (
            balance(&sila, &ka).await,
            balance(&sila, &kb1).await,
            balance(&sila, &kb2).await
        ),
        (800, 120, 80)
    );

    // Refusals change nothing.
    for (extra, what, needle) in [
        (
            json!({"amount": 801, "destination_handle": BOB}),
            "insufficient",
            "Insufficient funds",
        ),
        (
            json!({"amount": 1, "destination_handle": "nobody.eth"}),
            "unknown handle",
            "not a registered user",
        ),
        (
            json!({"amount": 1, "destination_handle": BOB, "destination_wallet": "nope"}),
            "unknown nickname",
            "names no wallet",
        ),
        (
            json!({"amount": 1, "destination_handle": ALICE}),
            "to itself",
            "signing wallet itself",
        ),
    ] {
        let (r, body) = money(&sila, "transfer_sila", ALICE, &ka, None, extra).await;
        assert_failure(&r, 400, Some(&body), what);
        assert!(
            r.body["message"].as_str().unwrap().contains(needle),
            "{what}: {}",
            r.body
        );
    }
    let (r, body) = money(
        &sila,
        "redeem_sila",
        BOB,
        &kb1,
        None,
        json!({"amount": 121}),
    )
    .await;
    assert_failure(&r, 400, Some(&body), "redeem beyond the balance");

    let (r, body) = money(
        &sila,
        "redeem_sila",
        ALICE,
        &ka,
        None,
        json!({"amount": 300, "account_name": "checking"}),
    )
    .await;
    assert_success(&r, &body);
    assert_eq!(r.body["transaction_status"], "success");
    assert_eq!(
        (
            balance(&sila, &ka).await,
            balance(&sila, &kb1).await,
            balance(&sila, &kb2).await
        ),
        (500, 120, 80)
    );
    // An address walletd does not know holds nothing.
    assert_eq!(balance(&sila, &Key::random()).await, 0);
    app.stop().await;
}

async fn not_whitelisted_then_accepted(b: crate::helpers::Backend) {
    let Some(app) = spawn(b, 2).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "money.app").await;
    let ka = sila.register_user(ALICE).await;
    // Before KYC, and right after it: not yet whitelisted.
    for step in ["before KYC", "right after KYC"] {
        let (r, body) = money(&sila, "issue_sila", ALICE, &ka, None, json!({"amount": 10})).await;
        assert_failure(&r, 400, Some(&body), step);
        let m = r.body["message"].as_str().unwrap();
        assert!(
            m.contains("allow a few minutes") && m.contains("whitelist"),
            "{m}"
        );
        if step == "before KYC" {
            let k = sila.request_kyc(ALICE, &ka).await;
            assert_eq!(k.status, 200, "{}", k.body);
        }
    }
    assert_eq!(balance(&sila, &ka).await, 0);
    sila.wait_whitelisted(ALICE, &ka, Duration::from_secs(20))
        .await;
    issue(&sila, ALICE, &ka, 10).await;
    assert_eq!(balance(&sila, &ka).await, 10);
    app.stop().await;
}

async fn one_reference_is_one_movement(b: crate::helpers::Backend) {
    let Some(app) = spawn(b, 1).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "money.app").await;
    let ka = funded_ready(&sila, ALICE).await;
    let kb = funded_ready(&sila, BOB).await;

    // Two new signed requests with one reference: one movement.
    let first = money(
        &sila,
        "issue_sila",
        ALICE,
        &ka,
        Some("issue-1"),
        json!({"amount": 500}),
    )
    .await;
    assert_success(&first.0, &first.1);
    let again = money(
        &sila,
        "issue_sila",
        ALICE,
        &ka,
        Some("issue-1"),
        json!({"amount": 500}),
    )
    .await;
    assert_success(&again.0, &again.1);
    assert_eq!(
        first.0.body["transaction_id"],
        again.0.body["transaction_id"]
    );
    assert_eq!(balance(&sila, &ka).await, 500);

    // The exact body again is a replay.
    let replay = sila
        .call("issue_sila", &first.1, Some(&sila.key), Some(&ka))
        .await;
    assert_failure(&replay, 400, Some(&first.1), "replayed body");
    // The same reference for another movement: refused, nothing moves.
    for (endpoint, extra) in [
        ("issue_sila", json!({"amount": 501})),
        (
            "issue_sila",
            json!({"amount": 500, "account_name": "other"}),
        ),
        ("redeem_sila", json!({"amount": 500})),
        (
            "transfer_sila",
            json!({"amount": 500, "destination_handle": BOB}),
        ),
    ] {
        let (r, body) = money(&sila, endpoint, ALICE, &ka, Some("issue-1"), extra.clone()).await;
        assert_failure(&r, 400, Some(&body), endpoint);
        assert!(
            r.body["message"].as_str().unwrap().contains("reference"),
            "{endpoint} {extra}: {}",
            r.body
        );
    }
    assert_eq!(balance(&sila, &ka).await, 500);

    // A transfer retried: one transaction, moved once.
    let extra = json!({"amount": 200, "destination_handle": BOB});
    let t1 = money(
        &sila,
        "transfer_sila",
        ALICE,
        &ka,
        Some("pay-1"),
        extra.clone(),
    )
    .await;
    assert_success(&t1.0, &t1.1);
    let t2 = money(&sila, "transfer_sila", ALICE, &ka, Some("pay-1"), extra).await;
    assert_success(&t2.0, &t2.1);
    assert_eq!(t1.0.body["transaction_id"], t2.0.body["transaction_id"]);
    wait_balance(&sila, &kb, 200).await;
    assert_eq!(balance(&sila, &ka).await, 300);
    // Bob's own reference "pay-1" is his, not Alice's.
    let own = money(
        &sila,
        "redeem_sila",
        BOB,
        &kb,
        Some("pay-1"),
        json!({"amount": 5}),
    )
    .await;
    assert_success(&own.0, &own.1);
    assert_ne!(own.0.body["transaction_id"], t1.0.body["transaction_id"]);
    assert_eq!(balance(&sila, &kb).await, 195);
    app.stop().await;
}

async fn transactions_filtered_and_paged(b: crate::helpers::Backend) {
    let Some(app) = spawn(b, 1).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "money.app").await;
    let ka = funded_ready(&sila, ALICE).await;
    let kb = funded_ready(&sila, BOB).await;
    let before = now();
    let issued = money(
        &sila,
        "issue_sila",
        ALICE,
        &ka,
        Some("in-1"),
        json!({"amount": 1000, "account_name": "checking"}),
    )
    .await;
    assert_success(&issued.0, &issued.1);
    let mut sent = Vec::new();
    for amount in [10, 20, 30] {
        let r = transfer(&sila, ALICE, &ka, json!({"amount": amount, "destination_handle": BOB, "descriptor": format!("t{amount}")})).await;
        sent.push(r.body["transaction_id"].as_str().unwrap().to_string());
    }
    let redeemed = money(
        &sila,
        "redeem_sila",
        ALICE,
        &ka,
        Some("out-1"),
        json!({"amount": 40}),
    )
    .await;
    assert_success(&redeemed.0, &redeemed.1);
    wait_balance(&sila, &kb, 60).await;
    // The credits are in; the senders' settlements follow a pass later.
    settled(&sila, ALICE, &ka).await;
    let issue_id = issued.0.body["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let redeem_id = redeemed.0.body["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Everything, newest first; the app signature alone suffices.
    let all = transactions(&sila, ALICE, None, json!({})).await;
    assert_eq!(all.body["total_count"], 5, "{}", all.body);
    assert_eq!(all.body["returned_count"], 5);
    assert_eq!(
        ids(&all),
        [
            redeem_id.clone(),
            sent[2].clone(),
            sent[1].clone(),
            sent[0].clone(),
            issue_id.clone()
        ]
    );
    let txs = all.body["transactions"].as_array().unwrap();
    let issue_tx = &txs[4];
    assert_eq!(issue_tx["transaction_type"], "issue");
    assert_eq!(issue_tx["sila_amount"], 1000);
    assert_eq!(issue_tx["status"], "success");
    assert_eq!(issue_tx["reference_id"], "in-1");
    assert_eq!(issue_tx["bank_account_name"], "checking");
    assert_eq!(issue_tx["destination_address"], ka.address);
    let t = &txs[1];
    assert_eq!(t["transaction_type"], "transfer");
    assert_eq!(
        (t["sila_amount"].clone(), t["descriptor"].clone()),
        (json!(30), json!("t30"))
    );
    assert_eq!(
        (t["handle"].clone(), t["destination_handle"].clone()),
        (json!(ALICE), json!(BOB))
    );
    assert_eq!(t["destination_address"], kb.address);
    assert!(t["created_epoch"].as_i64().unwrap() >= before, "{t}");
    assert_eq!(txs[0]["transaction_type"], "redeem");
    assert_eq!(txs[0]["bank_account_name"], "default");

    // Type and status filters.
    let r = transactions(
        &sila,
        ALICE,
        Some(&ka),
        json!({"transaction_types": ["transfer"]}),
    )
    .await;
    assert_eq!(ids(&r), [sent[2].clone(), sent[1].clone(), sent[0].clone()]);
    let r = transactions(
        &sila,
        ALICE,
        Some(&ka),
        json!({"transaction_types": ["issue", "redeem"], "sort_ascending": true}),
    )
    .await;
    assert_eq!(ids(&r), [issue_id.clone(), redeem_id.clone()]);
    let r = transactions(&sila, ALICE, Some(&ka), json!({"statuses": ["success"]})).await;
    assert_eq!(r.body["total_count"], 5);
    for status in ["pending", "failed", "queued"] {
        let r = transactions(&sila, ALICE, Some(&ka), json!({"statuses": [status]})).await;
        assert_eq!(r.body["total_count"], 0, "{status}: {}", r.body);
    }
    // Dates: the whole range, a future start, a past end.
    let later = now() + 5;
    let r = transactions(
        &sila,
        ALICE,
        None,
        json!({"start_epoch": before - 5, "end_epoch": later}),
    )
    .await;
    assert_eq!(r.body["total_count"], 5);
    let r = transactions(&sila, ALICE, None, json!({"start_epoch": later})).await;
    assert_eq!(r.body["total_count"], 0);
    let r = transactions(&sila, ALICE, None, json!({"end_epoch": before - 5})).await;
    assert_eq!(r.body["total_count"], 0);
    // Paging.
    let r = transactions(&sila, ALICE, None, json!({"per_page": 2, "page": 2})).await;
    assert_eq!(ids(&r), [sent[1].clone(), sent[0].clone()]);
    assert_eq!(
        (r.body["page"].clone(), r.body["total_page_count"].clone()),
        (json!(2), json!(3))
    );
    let r = transactions(&sila, ALICE, None, json!({"per_page": 2, "page": 4})).await;
    assert_eq!(r.body["returned_count"], 0);
    // By transaction id and by reference.
    let r = transactions(&sila, ALICE, None, json!({"transaction_id": sent[1]})).await;
    assert_eq!(ids(&r), [sent[1].clone()]);
    let r = transactions(&sila, ALICE, None, json!({"reference_id": "out-1"})).await;
    assert_eq!(ids(&r), [redeem_id]);
    assert_eq!(r.body["transactions"][0]["reference_id"], "out-1");
    // The receiver sees the transfers as received from Alice.
    let r = transactions(&sila, BOB, Some(&kb), json!({})).await;
    assert_eq!(r.body["total_count"], 3);
    assert_eq!(r.body["transactions"][0]["handle"], ALICE);
    assert_eq!(r.body["transactions"][0]["destination_handle"], BOB);
    // Bad filters are 400s.
    for (filters, field) in [
        (json!({"transaction_types": ["mint"]}), "transaction_types"),
        (json!({"statuses": ["done"]}), "statuses"),
        (json!({"per_page": 0}), "per_page"),
        (json!({"page": 0}), "page"),
        (json!({"transaction_id": "nope"}), "transaction_id"),
        (json!({"min_sila_amount": 5}), "min_sila_amount"),
    ] {
        let body = sila.body(Some(ALICE), json!({ "search_filters": filters }));
        let r = sila
            .call("get_transactions", &body, Some(&sila.key), None)
            .await;
        assert_failure(&r, 400, Some(&body), field);
        assert!(
            r.body["message"].as_str().unwrap().contains(field),
            "{}",
            r.body
        );
    }
    app.stop().await;
}

async fn bad_amounts_move_nothing(b: crate::helpers::Backend) {
    let Some(app) = spawn(b, 1).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "money.app").await;
    let ka = funded_ready(&sila, ALICE).await;
    funded_ready(&sila, BOB).await;
    for endpoint in ["issue_sila", "redeem_sila", "transfer_sila"] {
        for amount in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!("10"),
            json!(1u64 << 53),
            Value::Null,
        ] {
            let mut extra = json!({"destination_handle": BOB});
            extra["amount"] = amount.clone();
            let (r, body) = money(&sila, endpoint, ALICE, &ka, None, extra).await;
            assert_failure(&r, 400, Some(&body), &format!("{endpoint} {amount}"));
            assert!(
                r.body["validation_details"]["amount"].is_string(),
                "{}",
                r.body
            );
        }
    }
    let (r, body) = money(
        &sila,
        "issue_sila",
        ALICE,
        &ka,
        None,
        json!({"amount": 5, "account_name": "a/b"}),
    )
    .await;
    assert_failure(&r, 400, Some(&body), "account_name with a slash");
    assert_eq!(balance(&sila, &ka).await, 0);
    let r = transactions(&sila, ALICE, None, json!({})).await;
    assert_eq!(r.body["total_count"], 0);
    app.stop().await;
}
