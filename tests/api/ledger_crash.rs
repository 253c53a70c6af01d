//! kill -9 under transfer load, ten times: after every restart each
//! acknowledged transfer is there and completes, nothing is lost or
//! doubled (the ledger check: every debit has exactly one second leg, the
//! books balance, supply = issued − redeemed), idempotent retries answer
//! the same transfer and move nothing, and the read models equal a rebuild.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    dump_projections, open_db, random_master_key, run_cli, token, Backend, BinaryServer, TestDb,
    JWT_SECRET,
};

backend_tests!(sigkill_under_transfer_load_loses_and_doubles_nothing);

const CYCLES: usize = 10;
const WORKERS: usize = 6;
const WALLETS: usize = 6;

/// A transfer the server acknowledged: its Idempotency-Key, body and id.
#[derive(Clone)]
struct Acked {
    key: String,
    body: Value,
    id: String,
}

#[derive(Default)]
struct Load {
    acked: Vec<Acked>,
    sent: usize,
    /// Answers other than 201 / 202, for the failure message.
    refused: Vec<String>,
}

async fn post(
    client: &awc::Client,
    url: String,
    auth: &str,
    key: Option<&str>,
    body: &Value,
) -> Option<(u16, Value)> {
    let mut req = client.post(url).insert_header(("Authorization", auth));
    if let Some(k) = key {
        req = req.insert_header(("Idempotency-Key", k));
    }
    let res = req.send_json(body).await.ok()?;
    crate::helpers::into_resp_lenient(res).await
}

async fn worker(
    base: String,
    cycle: usize,
    n: usize,
    wallets: Rc<Vec<String>>,
    load: Rc<RefCell<Load>>,
) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let auth = format!("Bearer {}", token("ledger-crash-ops", "ADMIN"));
    for i in 0.. {
        let from = (n + i) % WALLETS;
        let to = (from + 1 + (i % (WALLETS - 1))) % WALLETS;
        let key = format!("c{cycle}-w{n}-{i}");
        let body = json!({
            "fromWalletId": wallets[from],
            "toWalletId": wallets[to],
            "amount": "0.001",
            "currency": "ETH",
        });
        load.borrow_mut().sent += 1;
        let url = format!("{base}/api/wallet/transfer");
        // Half answered at the debit, half after the second leg.
        let mut req = client
            .post(url)
            .insert_header(("Authorization", auth.as_str()))
            .insert_header(("Idempotency-Key", key.as_str()));
        if i % 2 == 0 {
            req = req.insert_header(("Prefer", "respond-async"));
        }
        let Ok(res) = req.send_json(&body).await else {
            return;
        };
        let Some((status, answer)) = crate::helpers::into_resp_lenient(res).await else {
            return;
        };
        if status != 201 && status != 202 {
            load.borrow_mut().refused.push(format!("{status} {answer}"));
            // Contention is answered 503 with Retry-After: back off, go on.
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let id = answer["transfer"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!id.is_empty(), "{answer}");
        load.borrow_mut().acked.push(Acked { key, body, id });
    }
}

async fn sigkill_under_transfer_load_loses_and_doubles_nothing(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let master = random_master_key();
    // The server-wallet API is not used; `serve` wants a key all the same.
    let api_key = "ledger-crash-key";
    let log = tdb.dir.path().join("ledger-crash.log");
    let env = [("WALLETD_JWT_SECRET", JWT_SECRET)];
    let start = || BinaryServer::start_with(&tdb.url, Some(&master), api_key, &env, &log);
    let mut server = start();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let admin = format!("Bearer {}", token("ledger-crash-ops", "ADMIN"));

    let mut wallets = Vec::new();
    for i in 0..WALLETS {
        let holder = format!(
            "Bearer {}",
            token(&format!("crash-holder-{i}"), "SUBSCRIBER")
        );
        let (status, body) = post(
            &client,
            format!("{}/api/wallet/create", server.base),
            &holder,
            None,
            &json!({ "label": format!("holder {i}") }),
        )
        .await
        .expect("create");
        assert_eq!(status, 200, "{body}");
        let id = body["wallet"]["id"].as_str().unwrap().to_string();
        let (status, body) = post(
            &client,
            format!("{}/api/wallet/{id}/issue", server.base),
            &admin,
            Some(&format!("fund-{i}")),
            &json!({ "amount": "1000", "reference": format!("fund-{i}") }),
        )
        .await
        .expect("issue");
        assert_eq!(status, 201, "{body}");
        wallets.push(id);
    }
    let wallets = Rc::new(wallets);
    let load = Rc::new(RefCell::new(Load::default()));

    for cycle in 0..CYCLES {
        let before = load.borrow().acked.len();
        let tasks: Vec<_> = (0..WORKERS)
            .map(|n| {
                actix_web::rt::spawn(worker(
                    server.base.clone(),
                    cycle,
                    n,
                    wallets.clone(),
                    load.clone(),
                ))
            })
            .collect();
        // Kill with transfers in flight, at a different point each cycle.
        let want = before + 10 + 3 * cycle;
        for _ in 0..500 {
            if load.borrow().acked.len() >= want {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        server.kill();
        for t in tasks {
            let _ = t.await;
        }
        let _ = std::fs::copy(&log, format!("/tmp/ledger-crash-{b:?}.log"));
        assert!(
            load.borrow().acked.len() > before,
            "cycle {cycle}: no transfer was acknowledged ({:?}); see {}",
            load.borrow().refused,
            log.display()
        );
        server = start();
    }
    let load = load.take();
    eprintln!(
        "ledger crash: {} sent, {} acknowledged, {} refused (first: {:?})",
        load.sent,
        load.acked.len(),
        load.refused.len(),
        load.refused.first()
    );

    // After the last restart the process manager resolves whatever the
    // crashes left in transit.
    let db = open_db(&tdb.url).await;
    let report = settled(&db).await;
    assert!(report.ok(), "{report:#?}");
    let transfers = report.transfers;
    assert!(
        transfers >= load.acked.len() as u64 && transfers <= load.sent as u64,
        "{transfers} debits for {} acknowledged and {} sent",
        load.acked.len(),
        load.sent
    );
    assert_eq!(report.credited, transfers, "every transfer credited");
    for line in &report.assets {
        assert_eq!(line.held_by_wallets, line.supply, "{}", line.asset);
    }

    // Every acknowledged transfer is in the log once, and completed.
    let mut seen = BTreeMap::new();
    for a in &load.acked {
        assert!(
            seen.insert(a.id.clone(), ()).is_none(),
            "one id acknowledged twice"
        );
        let rows = walletd::projections::ledger_queries::movement_rows(&db, &a.id)
            .await
            .unwrap();
        let out: Vec<_> = rows.iter().filter(|r| r.kind == "transfer_out").collect();
        assert_eq!(
            out.len(),
            1,
            "acknowledged transfer {} ({}) lost",
            a.id,
            a.key
        );
        assert_eq!(out[0].status, "settled", "{}", a.id);
        assert!(rows.iter().any(|r| r.kind == "transfer_in"));
    }

    // Idempotent retries answer the same transfer and move nothing.
    for a in load.acked.iter().step_by(3) {
        let (status, answer) = post(
            &client,
            format!("{}/api/wallet/transfer", server.base),
            &admin,
            Some(&a.key),
            &a.body,
        )
        .await
        .expect("retry");
        assert!(status == 201 || status == 202, "{status} {answer}");
        assert_eq!(answer["transfer"]["id"], a.id.as_str(), "{answer}");
    }
    let again = settled(&db).await;
    assert_eq!(again.transfers, transfers, "a retry moved money again");
    assert!(again.ok(), "{again:#?}");

    // The read models equal a rebuild.
    drop(server);
    let live = dump_projections(&db).await;
    let (ok, out, err) = run_cli(&["replay"], &[("DATABASE_URL", &tdb.url)]).await;
    assert!(ok, "{out} {err}");
    assert_eq!(live, dump_projections(&db).await);
    db.close().await;
}

async fn settled(db: &walletd::projections::Db) -> walletd::ledger::check::CheckReport {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let report = walletd::ledger::check::run(db).await.unwrap();
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
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}
