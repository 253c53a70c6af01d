//! Issue 13: compliance reports and the events endpoint. Every report as of
//! now (recomputed from the log) equals the live one (from the projections);
//! a report as of a past position equals the live report taken when the log
//! stood there, and names the tree it was computed from; the CLI prints the
//! same; the sealed events page over HTTP like the export.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use walletd::transparency::LogSigner;

use crate::backend_tests;
use crate::helpers::{run_cli, spawn_app_with, token, Backend, TestApp};
use crate::sila_client::{Key, SilaClient};

backend_tests!(
    reports_as_of_now_equal_the_live_ones_and_past_ones_replay,
    sealed_events_page_over_http_like_the_export,
);

const REPORTS: &[&str] = &[
    "wallets-created",
    "signing-activity",
    "kyc-changes",
    "whitelist-latency",
    "refusals",
    "default-wallet-changes",
    "key-material",
];

async fn report(app: &TestApp, admin: &str, name: &str, as_of: Option<&str>) -> Value {
    let path = match as_of {
        Some(a) => format!("/api/admin/reports/{name}?asOf={a}"),
        None => format!("/api/admin/reports/{name}"),
    };
    let r = app.jwt("GET", &path, Some(admin), None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

/// The number of events once the projections and the sealer have caught up
/// with the log and with each other.
async fn settled(app: &TestApp, admin: &str) -> u64 {
    let mut last = None;
    for _ in 0..300 {
        let n = walletd::projections::log::count(&app.app.db).await.unwrap() as u64;
        let live = report(app, admin, "key-material", None).await;
        let cp = app
            .jwt("GET", "/api/admin/log/checkpoint", Some(admin), None)
            .await;
        let sealed = cp.body["size"].as_u64();
        if live["asOf"]["events"].as_u64() == Some(n) && sealed == Some(n) {
            if last == Some(n) {
                return n;
            }
            last = Some(n);
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the projections and the sealer did not catch up with the log");
}

async fn checkpoint_root(app: &TestApp, admin: &str) -> Value {
    app.jwt("GET", "/api/admin/log/checkpoint", Some(admin), None)
        .await
        .body["root"]
        .clone()
}

fn rows_where<'a>(report: &'a Value, column: &str, value: &str) -> Vec<&'a Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[column] == value)
        .collect()
}

async fn reports_as_of_now_equal_the_live_ones_and_past_ones_replay(b: Backend) {
    let (skey, verifier) = LogSigner::generate("walletd.test/log").unwrap();
    let Some(app) = spawn_app_with(b, move |s| {
        s.log_key = Some(skey);
        s.whitelist_delay = Some(1);
    })
    .await
    else {
        return;
    };
    let admin = token("auditor", "ADMIN");

    // Phase 1: server wallets (API key) and a message signed by one.
    let w1 = app.create_wallet("rep-1").await;
    app.create_wallet("rep-2").await;
    let id1 = w1["walletId"].as_str().unwrap().to_string();
    let r = app
        .post_json(
            &format!("/api/wallets/{id1}/sign"),
            &json!({"message": "hello"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let n1 = settled(&app, &admin).await;
    let root1 = checkpoint_root(&app, &admin).await;
    // What an auditor saves now: the signed checkpoint.
    let note1 = app
        .jwt("GET", "/api/admin/log/checkpoint", Some(&admin), None)
        .await
        .body["checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let mut live1 = Vec::new();
    for name in REPORTS {
        live1.push(report(&app, &admin, name, None).await);
    }

    // Phase 2: JWT wallets and a default change; typed data and a
    // transaction; a Sila user through KYC to the whitelist; refusals.
    let alice = token("alice", "SUBSCRIBER");
    let mut jwt_ids = Vec::new();
    for _ in 0..2 {
        let r = app
            .jwt("POST", "/api/wallet/create", Some(&alice), Some(&json!({})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        jwt_ids.push(r.body["wallet"]["id"].as_str().unwrap().to_string());
    }
    for id in &jwt_ids {
        let r = app
            .jwt(
                "POST",
                "/api/wallet/primary",
                Some(&alice),
                Some(&json!({ "walletId": id })),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = app
        .post_json(
            &format!("/api/wallets/{id1}/sign-transaction"),
            &json!({"transaction": {
                "type": "legacy", "chainId": "137", "nonce": "0x0", "to": null,
                "value": "0", "data": "0x6080", "gas": "0x186a0", "gasPrice": "0x6fc23ac00"
            }}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let sila = SilaClient::register_app(&app, "reports.app").await;
    let k1 = sila.register_user("carol.eth").await;
    let body = sila.body(Some("carol.eth"), json!({"kyc_level": "DEFAULT"}));
    let r = sila
        .call("request_kyc", &body, Some(&sila.key), Some(&k1))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let k2 = Key::random();
    let r = sila.register_wallet("carol.eth", &k1, &k2, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    sila.wait_whitelisted("carol.eth", &k2, Duration::from_secs(20))
        .await;

    let member = token("mallory", "MEMBER");
    let r = app
        .jwt("GET", "/api/admin/reports/refusals", Some(&member), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Refusals are written in batches (every 5 s): wait for this one.
    let mut refusals = Value::Null;
    for _ in 0..200 {
        refusals = report(&app, &admin, "refusals", None).await;
        if !rows_where(&refusals, "reason", "insufficient_role").is_empty() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let denied = rows_where(&refusals, "reason", "insufficient_role");
    assert_eq!(denied.len(), 1, "{refusals}");
    assert_eq!(denied[0]["status"], 403);
    assert_eq!(denied[0]["kept"], "evidence");
    assert_eq!(denied[0]["refused"], 1);

    let n = settled(&app, &admin).await;
    assert!(n > n1);
    let now = walletd::domain::Timestamp::now().to_text();

    // As of now, from the log, equals live, from the projections; a time
    // after the last event is the same cut as its position.
    let mut live = std::collections::HashMap::new();
    for name in REPORTS {
        let l = report(&app, &admin, name, None).await;
        assert_eq!(l["source"], "projections");
        let by_time = report(&app, &admin, name, Some(&now)).await;
        assert_eq!(by_time["source"], "log");
        assert_eq!(by_time["rows"], l["rows"], "{name} as of {now}");
        assert_eq!(by_time["columns"], l["columns"], "{name}");
        assert_eq!(by_time["asOf"]["events"], n);
        if *name != "refusals" {
            let by_position = report(&app, &admin, name, Some(&n.to_string())).await;
            assert_eq!(by_position["rows"], l["rows"], "{name} as of {n}");
            assert_eq!(by_position["asOf"], l["asOf"], "{name}");
        }
        assert_eq!(l["input"]["treeSize"], n);
        assert_eq!(l["input"]["root"], checkpoint_root(&app, &admin).await);
        assert_eq!(l["input"]["checkpointSize"], n);
        assert!(l["input"]["checkpoint"]
            .as_str()
            .unwrap()
            .contains(&format!("\n{n}\n")));
        live.insert(*name, l);
    }

    // What each report says.
    let created = &live["wallets-created"];
    let server = rows_where(created, "api", "server-wallets");
    assert_eq!(server.len(), 1, "{created}");
    assert_eq!(server[0]["wallets"], 2);
    assert_eq!(server[0]["custody"], "local");
    assert_eq!(server[0]["kind"], "server");
    let jwt = rows_where(created, "api", "jwt");
    assert_eq!(jwt.len(), 1, "{created}");
    assert_eq!(jwt[0]["wallets"], 2);
    let sila_rows = rows_where(created, "api", "sila");
    assert_eq!(sila_rows.len(), 1, "{created}");
    assert_eq!(sila_rows[0]["kind"], "external");

    let signing = &live["signing-activity"];
    let of_wallet: Vec<_> = rows_where(signing, "wallet_id", &id1);
    assert_eq!(of_wallet.len(), 2, "{signing}");
    assert!(of_wallet
        .iter()
        .any(|r| r["kind"] == "message" && r["signatures"] == 1 && r["chain_id"].is_null()));
    assert!(of_wallet
        .iter()
        .any(|r| r["kind"] == "transaction" && r["chain_id"] == 137));
    let per_user = rows_where(signing, "level", "user");
    assert_eq!(per_user.len(), 2, "{signing}");
    assert!(per_user
        .iter()
        .all(|r| r["user_id"] == of_wallet[0]["user_id"]));

    let kyc = &live["kyc-changes"];
    let changes: Vec<(&str, &str)> = kyc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["from"].as_str().unwrap(), r["to"].as_str().unwrap()))
        .collect();
    assert_eq!(changes.first(), Some(&("unverified", "pending")), "{kyc}");
    assert_eq!(changes.last().map(|c| c.1), Some("passed"), "{kyc}");
    assert!(kyc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["handle"] == "carol.eth"));

    let wl = &live["whitelist-latency"]["rows"][0];
    assert!(wl["whitelisted"].as_u64().unwrap() >= 1, "{wl}");
    assert_eq!(wl["pending"], 0, "{wl}");
    assert!(
        wl["p50_ms"].as_i64().unwrap() >= 1000,
        "the delay is 1 s: {wl}"
    );
    assert!(wl["max_ms"].as_i64().unwrap() >= wl["p95_ms"].as_i64().unwrap());

    let defaults = &live["default-wallet-changes"];
    let first = rows_where(defaults, "to_wallet", &jwt_ids[0]);
    assert_eq!(first.len(), 1, "{defaults}");
    assert_eq!(first[0]["from_wallet"], "", "no default before");
    let moved = rows_where(defaults, "to_wallet", &jwt_ids[1]);
    assert_eq!(moved.len(), 1, "{defaults}");
    assert_eq!(moved[0]["from_wallet"], jwt_ids[0]);
    assert_eq!(moved[0]["api"], "jwt");
    assert_eq!(moved[0]["actor"], "jwt:alice");

    assert_eq!(live["key-material"]["rows"], json!([]));

    // As of the past position: exactly the live reports taken back then,
    // naming the tree the checkpoint of that size signed.
    for (name, then) in REPORTS.iter().zip(&live1) {
        if *name == "refusals" {
            continue;
        }
        let past = report(&app, &admin, name, Some(&n1.to_string())).await;
        assert_eq!(past["rows"], then["rows"], "{name} as of {n1}");
        assert_eq!(past["asOf"], then["asOf"], "{name}");
        assert_eq!(past["input"]["treeSize"], n1);
        assert_eq!(past["input"]["root"], root1, "{name}: the input's root");
        assert_eq!(past["input"]["checkpointSize"], n);
    }
    let past = report(&app, &admin, "wallets-created", Some(&n1.to_string())).await;
    assert_eq!(past["rows"].as_array().unwrap().len(), 1, "{past}");

    // Refused: unknown report, bad or future cut, other parameters.
    for (path, status) in [
        ("/api/admin/reports/nope".to_string(), 404),
        (
            "/api/admin/reports/refusals?asOf=yesterday".to_string(),
            400,
        ),
        (
            format!("/api/admin/reports/kyc-changes?asOf={}", n + 1000),
            400,
        ),
        ("/api/admin/reports/kyc-changes?as_of=1".to_string(), 400),
    ] {
        let r = app.jwt("GET", &path, Some(&admin), None).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.body["error"].is_string(), "{}", r.body);
    }
    let r = app
        .jwt("GET", "/api/admin/reports/kyc-changes", None, None)
        .await;
    assert_eq!(r.status, 401);

    // Proofs an auditor fetches: one event in the old checkpoint's tree, and
    // the new tree extending the old.
    let note2 = app
        .jwt("GET", "/api/admin/log/checkpoint", Some(&admin), None)
        .await
        .body["checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let inclusion = app
        .jwt(
            "GET",
            &format!("/api/admin/log/proof/inclusion?position=2&size={n1}"),
            Some(&admin),
            None,
        )
        .await
        .body;
    let consistency = app
        .jwt(
            "GET",
            &format!("/api/admin/log/proof/consistency?from={n1}&to={n}"),
            Some(&admin),
            None,
        )
        .await
        .body;

    // The CLI prints the same report, as JSON and as CSV.
    let tdb = app.shutdown().await;
    let env = [("DATABASE_URL", tdb.url.as_str())];
    let (ok, out, err) = run_cli(
        &["report", "signing-activity", "--as-of", &n1.to_string()],
        &env,
    )
    .await;
    assert!(ok, "{out} {err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli["rows"], live1[1]["rows"]);
    assert_eq!(cli["input"]["root"], root1);
    let (ok, out, err) = run_cli(&["report", "wallets-created", "--format", "csv"], &env).await;
    assert!(ok, "{out} {err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("day,api,kind,custody,wallets"));
    assert_eq!(
        lines.count(),
        created["rows"].as_array().unwrap().len(),
        "{out}"
    );
    assert!(err.contains("from the projections"), "{err}");
    let (ok, _, err) = run_cli(&["report", "nope"], &env).await;
    assert!(!ok);
    assert!(err.contains("wallets-created"), "{err}");

    // Offline, from an export: the same report as of the past position, and
    // the root of exactly the events it read — the one the checkpoint signed.
    let dir = tdb.dir.path();
    let export = dir.join("log.jsonl");
    let (ok, _, err) = run_cli(
        &["events", "export", "--output", export.to_str().unwrap()],
        &env,
    )
    .await;
    assert!(ok, "{err}");
    let offline = |name: &'static str, as_of: Option<u64>| {
        let export = export.clone();
        async move {
            let mut args = vec!["report".to_string(), name.into(), "--events".into()];
            args.push(export.to_str().unwrap().into());
            if let Some(a) = as_of {
                args.extend(["--as-of".to_string(), a.to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&args, &[]).await
        }
    };
    for (i, name) in REPORTS.iter().enumerate() {
        if *name == "refusals" {
            let (ok, _, err) = offline(name, Some(n1)).await;
            assert!(!ok && err.contains("not computed from events"), "{err}");
            continue;
        }
        let (ok, out, err) = offline(name, Some(n1)).await;
        assert!(ok, "{name}: {err}");
        let past: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(past["source"], "export");
        assert_eq!(past["rows"], live1[i]["rows"], "{name} offline as of {n1}");
        assert_eq!(past["input"]["root"], root1, "{name}");
        let (ok, out, err) = offline(name, None).await;
        assert!(ok, "{name}: {err}");
        let all: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            all["rows"], live[name]["rows"],
            "{name} offline, whole export"
        );
    }
    // An altered event in the export is refused, naming it.
    let mut lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let original = lines[1].clone();
    let mut v: Value = serde_json::from_str(&lines[1]).unwrap();
    v["metadata"]["actor"] = json!("someone else");
    lines[1] = v.to_string();
    let altered = dir.join("altered.jsonl");
    std::fs::write(&altered, lines.join("\n")).unwrap();
    let (ok, _, err) = run_cli(
        &[
            "report",
            "kyc-changes",
            "--events",
            altered.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(
        !ok && err.contains("line 2") && err.contains("altered"),
        "{err}"
    );
    lines[1] = original;

    // Proofs checked offline against the saved checkpoints and pinned key.
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (cp1, cp2) = (file("cp1.txt", &note1), file("cp2.txt", &note2));
    let event = file("event.json", &lines[2]);
    let other_event = file("other.json", &lines[3]);
    let proof = file("inclusion.json", &inclusion.to_string());
    let tree = file("consistency.json", &consistency.to_string());
    let check = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&args, &[]).await
    };
    let inclusion_args = |cp: &str, ev: &str| {
        [
            "check-proof",
            "inclusion",
            "--checkpoint",
            cp,
            "--key",
            &verifier,
            "--event",
            ev,
            "--proof",
            &proof,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let (ok, out, err) = check(inclusion_args(&cp1, &event)).await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("position 2 (store position"), "{out}");
    let (ok, _, err) = check(inclusion_args(&cp1, &other_event)).await;
    assert!(!ok && err.contains("the proof is for position 2"), "{err}");
    let mut changed: Value = serde_json::from_str(&lines[2]).unwrap();
    changed["payload"] = json!({"changed": true});
    let changed = file("changed.json", &changed.to_string());
    let (ok, _, err) = check(inclusion_args(&cp1, &changed)).await;
    assert!(!ok && err.contains("NOT VERIFIED"), "{err}");
    let (ok, _, err) = check(inclusion_args(&cp2, &event)).await;
    assert!(
        !ok && err.contains(&format!("the checkpoint signs {n}")),
        "{err}"
    );
    let consistency_args = |old: &str, new: &str| {
        [
            "check-proof",
            "consistency",
            "--old",
            old,
            "--new",
            new,
            "--key",
            &verifier,
            "--proof",
            &tree,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let (ok, out, err) = check(consistency_args(&cp1, &cp2)).await;
    assert!(ok, "{out} {err}");
    assert!(
        out.contains(&format!(
            "the log of {n} leaves extends the log of {n1} leaves"
        )),
        "{out}"
    );
    let mut bent = consistency.clone();
    bent["proof"][0] = json!(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let tree = file("consistency.json", &bent.to_string());
    let (ok, _, err) = check(consistency_args(&cp1, &cp2)).await;
    assert!(!ok && err.contains("does not extend"), "{err}");
    let (_, other_key) = LogSigner::generate("walletd.test/log").unwrap();
    let (ok, _, err) = check(
        [
            "check-proof",
            "consistency",
            "--old",
            &cp1,
            "--new",
            &cp2,
            "--key",
            &other_key,
            "--proof",
            &tree,
        ]
        .map(str::to_string)
        .to_vec(),
    )
    .await;
    assert!(!ok && err.contains("NOT VERIFIED"), "{err}");
}

async fn sealed_events_page_over_http_like_the_export(b: Backend) {
    let (skey, _) = LogSigner::generate("walletd.test/log").unwrap();
    let Some(app) = spawn_app_with(b, move |s| s.log_key = Some(skey)).await else {
        return;
    };
    let admin = token("auditor", "ADMIN");
    for i in 0..7 {
        app.create_wallet(&format!("ev-{i}")).await;
    }
    let n = settled(&app, &admin).await;

    // Pages of 3 from 0, followed by `next`, cover the log once, in order.
    let mut paged = Vec::new();
    let mut from = Some(0u64);
    while let Some(f) = from {
        let r = app
            .jwt(
                "GET",
                &format!("/api/admin/events?from={f}&limit=3"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["from"], f);
        assert_eq!(r.body["treeSize"], n);
        let events = r.body["events"].as_array().unwrap();
        assert!(events.len() <= 3);
        paged.extend(events.iter().cloned());
        from = r.body["next"].as_u64();
    }
    assert_eq!(paged.len() as u64, n);
    for (i, e) in paged.iter().enumerate() {
        assert_eq!(e["index"], i as u64);
    }
    // One big page is the same.
    let r = app
        .jwt("GET", "/api/admin/events", Some(&admin), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["events"], json!(paged));
    assert!(r.body["next"].is_null());
    // The end of the log is an empty page.
    let r = app
        .jwt(
            "GET",
            &format!("/api/admin/events?from={n}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["events"], json!([]));

    for path in [
        format!("/api/admin/events?from={}", n + 1),
        "/api/admin/events?limit=0".to_string(),
        "/api/admin/events?limit=10001".to_string(),
        "/api/admin/events?from=-1".to_string(),
        "/api/admin/events?to=3".to_string(),
    ] {
        let r = app.jwt("GET", &path, Some(&admin), None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body["error"].is_string());
    }
    let r = app
        .jwt(
            "GET",
            "/api/admin/events",
            Some(&token("x", "MEMBER")),
            None,
        )
        .await;
    assert_eq!(r.status, 403);

    // The export writes the same records.
    let tdb = app.shutdown().await;
    let (ok, out, err) =
        run_cli(&["events", "export"], &[("DATABASE_URL", tdb.url.as_str())]).await;
    assert!(ok, "{err}");
    let exported: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, paged);
}
