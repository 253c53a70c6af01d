//! The JWT-role wallet API (seed 001) over real HTTP.

use base64::Engine;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    now, spawn_app, spawn_app_with, token, token_with, Backend, TestApp, JWT_SECRET,
};
use crate::refusals::spawn_peer;
use crate::server_wallets::event_count;

backend_tests!(
    document_test_cases,
    wallet_has_the_documented_shape,
    every_bad_token_is_unauthorized_and_recorded,
    label_rules,
    eleventh_create_in_a_minute_is_429,
    rate_limit_holds_across_instances,
    admin_creates_on_behalf_others_may_not,
    users_see_and_change_only_their_own_wallets,
    concurrent_set_primary_leaves_exactly_one_primary,
    history_is_newest_first_and_paged,
    admin_audit_shows_successes_and_refusals,
);

const CREATE: &str = "/api/wallet/create";

// The four cases printed in the API document, as written there.
async fn document_test_cases(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let valid = token("user_987654321", "SUBSCRIBER");
    let visitor = token("visitor_1", "VISITOR");

    // should create wallet successfully with label
    let r = app
        .jwt(
            "POST",
            CREATE,
            Some(&valid),
            Some(&json!({"label": "Test Wallet"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("wallet").is_some());
    assert!(r.body["wallet"].get("id").is_some());
    assert!(r.body["wallet"].get("address").is_some());
    assert_eq!(r.body["wallet"]["label"], "Test Wallet");

    // should create wallet without label
    let r = app
        .jwt("POST", CREATE, Some(&valid), Some(&json!({})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["wallet"].get("label").is_none(),
        "label must be absent: {}",
        r.body
    );

    // should return 401 for unauthenticated requests
    let r = app
        .jwt("POST", CREATE, None, Some(&json!({"label": "Test"})))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "Unauthorized");

    // should return 403 for visitor role
    let r = app
        .jwt("POST", CREATE, Some(&visitor), Some(&json!({})))
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("Insufficient permissions"));
    assert_eq!(r.body["error"], "Forbidden: Insufficient permissions");

    assert_eq!(event_count(&app).await, 2);
}

async fn wallet_has_the_documented_shape(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    for role in ["SUBSCRIBER", "MEMBER", "CONFIDENTIAL", "ADMIN"] {
        let t = token(&format!("shape-{role}"), role);
        let r = app
            .jwt(
                "POST",
                CREATE,
                Some(&t),
                Some(&json!({"label": "My Primary Wallet"})),
            )
            .await;
        assert_eq!(r.status, 200, "{role}: {}", r.body);
        let w = &r.body["wallet"];
        let mut keys: Vec<_> = w.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "address",
                "balance",
                "createdAt",
                "currency",
                "id",
                "isActive",
                "isPrimary",
                "label",
                "network",
                "updatedAt",
                "userId"
            ]
        );
        assert_eq!(w["balance"], "0");
        assert_eq!(w["currency"], "ETH");
        assert_eq!(w["network"], "ethereum");
        assert_eq!(w["isActive"], true);
        assert_eq!(w["isPrimary"], false);
        assert_eq!(w["userId"], format!("shape-{role}"));
        assert_eq!(w["createdAt"], w["updatedAt"]);
        let address = w["address"].as_str().unwrap();
        assert!(address.starts_with("0x") && address.len() == 42);
        // The same wallet, read back through the list.
        let list = app.jwt("GET", "/api/wallet/list", Some(&t), None).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.body["wallets"][0], *w);
    }
    // A body-less request and the React example's empty label also work.
    let t = token("shape-empty", "MEMBER");
    let r = app.jwt("POST", CREATE, Some(&t), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .jwt("POST", CREATE, Some(&t), Some(&json!({"label": ""})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["wallet"].get("label").is_none());
    let r = app
        .jwt("POST", CREATE, Some(&t), Some(&json!({"label": null})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn alg_none_token() -> String {
    let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        enc(json!({"alg": "none", "typ": "JWT"})),
        enc(json!({"sub": "mallory", "role": "ADMIN", "exp": now() + 600}))
    )
}

async fn every_bad_token_is_unauthorized_and_recorded(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let wrong_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "u", "role": "ADMIN", "exp": now() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-secret"),
    )
    .unwrap();
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &json!({"sub": "u", "role": "ADMIN", "exp": now() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let valid = token("u", "ADMIN");
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"sub": "u", "role": "ADMIN", "exp": now() + 6000}).to_string());
        parts.join(".")
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("not-a-jwt".into())),
        ("empty", Some(String::new())),
        (
            "expired",
            Some(token_with(
                json!({"sub": "u", "role": "ADMIN", "exp": now() - 3600}),
            )),
        ),
        (
            "no exp",
            Some(token_with(json!({"sub": "u", "role": "ADMIN"}))),
        ),
        (
            "not yet valid",
            Some(token_with(
                json!({"sub": "u", "role": "ADMIN", "exp": now() + 7200, "nbf": now() + 3600}),
            )),
        ),
        ("wrong secret", Some(wrong_secret)),
        ("tampered payload", Some(tampered)),
        ("alg none", Some(alg_none_token())),
        ("HS512", Some(hs512)),
        ("unknown role", Some(token("u", "ROOT"))),
        ("lower-case role", Some(token("u", "admin"))),
        (
            "no role",
            Some(token_with(json!({"sub": "u", "exp": now() + 600}))),
        ),
        (
            "no sub",
            Some(token_with(json!({"role": "ADMIN", "exp": now() + 600}))),
        ),
        ("bad sub", Some(token("0xnot-a-user", "ADMIN"))),
    ];
    for (name, t) in &cases {
        let r = app
            .jwt("POST", CREATE, t.as_deref(), Some(&json!({})))
            .await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert_eq!(r.body, json!({"error": "Unauthorized"}), "{name}");
    }
    // A token within the leeway still works; so does every other route's 401.
    let r = app
        .jwt(
            "POST",
            CREATE,
            Some(&token_with(
                json!({"sub": "u", "role": "MEMBER", "exp": now() - 5}),
            )),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (m, p) in [
        ("GET", "/api/wallet/list"),
        ("GET", "/api/admin/audit"),
        ("POST", "/api/wallet/primary"),
    ] {
        let r = app.jwt(m, p, Some("nope"), None).await;
        assert_eq!(r.status, 401, "{p}");
        assert_eq!(r.body["error"], "Unauthorized");
    }
    assert_eq!(
        event_count(&app).await,
        1,
        "no refused request wrote an event"
    );

    let audit = app
        .jwt(
            "GET",
            "/api/admin/audit?action=wallet.create&perPage=100",
            Some(&valid),
            None,
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let refusals: Vec<&Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "refusal")
        .collect();
    // Counted per source, action and reason: one entry per reason, whose
    // counts add up to every refusal.
    let counted: u64 = refusals.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, cases.len() as u64, "every refusal is counted");
    assert!(refusals.len() < cases.len(), "same reasons share an entry");
    let reasons: Vec<&str> = refusals
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    for expected in [
        "missing_token",
        "expired",
        "bad_signature",
        "unknown_role",
        "unsupported_algorithm",
    ] {
        assert!(reasons.contains(&expected), "{expected} in {reasons:?}");
    }
    // The security log cannot be rewritten: refusals of a known principal
    // land there.
    let r = app
        .jwt(
            "POST",
            CREATE,
            Some(&token("v", "VISITOR")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.app.refusals.flush(&app.app.db).await.unwrap(), 1);
    walletd::projections::with_db!(&app.app.db, pool => {
        assert!(sqlx::query("DELETE FROM security_log").execute(pool).await.is_err());
        assert!(sqlx::query("UPDATE security_log SET reason = 'x'").execute(pool).await.is_err());
    });
}

async fn label_rules(b: Backend) {
    let Some(app) = spawn_app_with(b, |s| s.create_rate_per_minute = 1000).await else {
        return;
    };
    let t = token("labeller", "MEMBER");
    let ok = [
        "a",
        "My Wallet",
        "with-hyphen_and_underscore 42",
        &"x".repeat(50),
    ];
    for label in ok {
        let r = app
            .jwt("POST", CREATE, Some(&t), Some(&json!({ "label": label })))
            .await;
        assert_eq!(r.status, 200, "{label}: {}", r.body);
        assert_eq!(r.body["wallet"]["label"], label);
    }
    let created = event_count(&app).await;
    let too_long = "x".repeat(51);
    let bad: Vec<(&str, &str)> = vec![
        (&too_long, "at most 50"),
        ("dot.", "only letters"),
        ("bang!", "only letters"),
        ("at@", "only letters"),
        ("slash/", "only letters"),
        ("tab\there", "only letters"),
        ("new\nline", "only letters"),
        ("café", "only letters"),
        ("emoji 🙂", "only letters"),
        ("ünïcödé", "only letters"),
        ("<script>", "only letters"),
    ];
    for (label, rule) in bad {
        let r = app
            .jwt("POST", CREATE, Some(&t), Some(&json!({ "label": label })))
            .await;
        assert_eq!(r.status, 400, "{label:?}: {}", r.body);
        assert!(
            r.body["error"].as_str().unwrap().contains(rule),
            "{label:?}: {}",
            r.body
        );
    }
    for body in [
        json!({"label": 5}),
        json!({"label": ["a"]}),
        json!({"name": "x"}),
        json!([1]),
    ] {
        let r = app.jwt("POST", CREATE, Some(&t), Some(&body)).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body["error"].is_string());
    }
    assert_eq!(
        event_count(&app).await,
        created,
        "nothing written for bad labels"
    );
}

async fn eleventh_create_in_a_minute_is_429(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let t = token("hasty", "SUBSCRIBER");
    for i in 0..10 {
        let r = app.jwt("POST", CREATE, Some(&t), Some(&json!({}))).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
    }
    let r = app.jwt("POST", CREATE, Some(&t), Some(&json!({}))).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("10"));
    let retry: u64 = r
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        event_count(&app).await,
        10,
        "nothing written for the refused call"
    );
    // Another user is not affected.
    let r = app
        .jwt(
            "POST",
            CREATE,
            Some(&token("patient", "SUBSCRIBER")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 200);
}

/// Seed 001's 10 creates per minute per user hold for the whole service, not
/// per process: 30 creates by one user spread over three instances on one
/// database, 10 at a time, let exactly 10 through.
async fn rate_limit_holds_across_instances(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let peers = [spawn_peer(&app).await, spawn_peer(&app).await];
    let t = token("spread", "SUBSCRIBER");
    let body = json!({});
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for _round in 0..3 {
        let requests = (0..10).map(|i| {
            let (t, body) = (t.clone(), body.clone());
            let (app, peers) = (&app, &peers);
            async move {
                match i % 3 {
                    0 => app.jwt("POST", CREATE, Some(&t), Some(&body)).await,
                    n => {
                        peers[n - 1]
                            .jwt("POST", CREATE, Some(&t), Some(&body))
                            .await
                    }
                }
            }
        });
        for r in join_all(requests).await {
            if r.status == 429 {
                assert!(
                    r.body["error"].as_str().unwrap().contains("10"),
                    "{}",
                    r.body
                );
                let secs: u64 = r
                    .headers
                    .get("retry-after")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(r.body["retryAfter"], secs);
                retry_after.push(secs);
            }
            statuses.push(r.status);
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (10, 20), "{statuses:?}");
    assert!(
        retry_after.iter().all(|s| (1..=60).contains(s)),
        "{retry_after:?}"
    );
    assert_eq!(
        event_count(&app).await,
        10,
        "nothing written for the refused creates"
    );
    let grants: i64 = walletd::projections::with_db!(&app.app.db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM rate_limit_grants")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(grants, 10);
    // Another user is not affected.
    let r = peers[1]
        .jwt(
            "POST",
            CREATE,
            Some(&token("calm", "SUBSCRIBER")),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200);
    for p in peers {
        p.stop().await;
    }
}

async fn admin_creates_on_behalf_others_may_not(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let admin = token("root-admin", "ADMIN");
    let r = app
        .jwt(
            "POST",
            CREATE,
            Some(&admin),
            Some(&json!({"userId": "customer-7", "label": "Ops"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["wallet"]["userId"], "customer-7");
    let customer = token("customer-7", "MEMBER");
    let list = app
        .jwt("GET", "/api/wallet/list", Some(&customer), None)
        .await;
    assert_eq!(list.body["total"], 1);
    // The event records who really did it.
    let id = r.body["wallet"]["id"].as_str().unwrap();
    let h = app
        .jwt(
            "GET",
            &format!("/api/wallet/{id}/history"),
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(h.body["events"][0]["actor"], "jwt:root-admin");
    assert_eq!(h.body["events"][0]["role"], "ADMIN");

    for role in ["SUBSCRIBER", "MEMBER", "CONFIDENTIAL"] {
        let t = token("sneaky", role);
        let r = app
            .jwt(
                "POST",
                CREATE,
                Some(&t),
                Some(&json!({"userId": "customer-7"})),
            )
            .await;
        assert_eq!(r.status, 403, "{role}");
        assert_eq!(r.body["error"], "Forbidden: Insufficient permissions");
    }
    let r = app
        .jwt("POST", CREATE, Some(&admin), Some(&json!({"userId": ""})))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(event_count(&app).await, 1);
}

async fn create_for(app: &TestApp, user: &str) -> String {
    let r = app
        .jwt(
            "POST",
            CREATE,
            Some(&token(user, "MEMBER")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["wallet"]["id"].as_str().unwrap().to_string()
}

async fn users_see_and_change_only_their_own_wallets(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let alice_wallet = create_for(&app, "alice").await;
    let bob = token("bob", "MEMBER");
    let admin = token("admin", "ADMIN");

    let list = app.jwt("GET", "/api/wallet/list", Some(&bob), None).await;
    assert_eq!(list.body["wallets"], json!([]));
    let r = app
        .jwt("GET", "/api/wallet/list?userId=alice", Some(&bob), None)
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .jwt(
            "POST",
            "/api/wallet/primary",
            Some(&bob),
            Some(&json!({"walletId": alice_wallet})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"], "Wallet not found");
    let r = app
        .jwt(
            "GET",
            &format!("/api/wallet/{alice_wallet}/history"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        let r = app
            .jwt(
                "GET",
                &format!("/api/wallet/{missing}/history"),
                Some(&bob),
                None,
            )
            .await;
        assert_eq!(r.status, 404);
    }

    // ADMIN sees and changes all.
    let r = app
        .jwt("GET", "/api/wallet/list?userId=alice", Some(&admin), None)
        .await;
    assert_eq!(r.body["total"], 1);
    let r = app
        .jwt(
            "GET",
            &format!("/api/wallet/{alice_wallet}/history"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .jwt(
            "POST",
            "/api/wallet/primary",
            Some(&admin),
            Some(&json!({"walletId": alice_wallet})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["wallet"]["isPrimary"], true);
}

async fn concurrent_set_primary_leaves_exactly_one_primary(b: Backend) {
    let Some(app) = spawn_app_with(b, |s| s.create_rate_per_minute = 1000).await else {
        return;
    };
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(create_for(&app, "carol").await);
    }
    let t = token("carol", "MEMBER");
    let results = join_all(ids.iter().map(|id| {
        let (app, t) = (&app, &t);
        async move {
            app.jwt(
                "POST",
                "/api/wallet/primary",
                Some(t),
                Some(&json!({ "walletId": id })),
            )
            .await
        }
    }))
    .await;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let list = app.jwt("GET", "/api/wallet/list", Some(&t), None).await;
    let primaries: Vec<&Value> = list.body["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["isPrimary"] == true)
        .collect();
    assert_eq!(primaries.len(), 1, "exactly one primary");
    // Twenty more, all on one wallet, racing on its event stream.
    let results = join_all((0..20).map(|_| {
        let (app, t, id) = (&app, &t, &ids[3]);
        async move {
            app.jwt(
                "POST",
                "/api/wallet/primary",
                Some(t),
                Some(&json!({ "walletId": id })),
            )
            .await
        }
    }))
    .await;
    assert!(results.iter().all(|r| r.status == 200));
    let list = app.jwt("GET", "/api/wallet/list", Some(&t), None).await;
    let primaries: Vec<&Value> = list.body["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["isPrimary"] == true)
        .collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["id"], ids[3].as_str());
}

async fn history_is_newest_first_and_paged(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let id = create_for(&app, "dora").await;
    let t = token("dora", "MEMBER");
    for _ in 0..2 {
        let r = app
            .jwt(
                "POST",
                "/api/wallet/primary",
                Some(&t),
                Some(&json!({ "walletId": id })),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let h = app
        .jwt("GET", &format!("/api/wallet/{id}/history"), Some(&t), None)
        .await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.body["total"], 3);
    let types: Vec<&str> = h.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["DefaultWalletSet", "DefaultWalletSet", "WalletCreated"]
    );
    let first = &h.body["events"][2];
    assert_eq!(first["actor"], "jwt:dora");
    assert_eq!(first["authMethod"], "jwt");
    assert_eq!(first["role"], "MEMBER");
    assert!(first["requestId"].is_string());
    assert_eq!(first["clientAddr"], "127.0.0.1");
    let p2 = app
        .jwt(
            "GET",
            &format!("/api/wallet/{id}/history?page=2&perPage=2"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(p2.body["events"].as_array().unwrap().len(), 1);
    assert_eq!(p2.body["events"][0]["type"], "WalletCreated");
    for bad in ["page=0", "perPage=101", "perPage=x", "bogus=1"] {
        let r = app
            .jwt(
                "GET",
                &format!("/api/wallet/{id}/history?{bad}"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.body["error"].is_string());
    }
}

async fn admin_audit_shows_successes_and_refusals(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let admin = token("auditor", "ADMIN");
    let before = chrono::Utc::now();
    let id = create_for(&app, "erin").await;
    let _ = app
        .jwt(
            "POST",
            CREATE,
            Some(&token("erin-visitor", "VISITOR")),
            Some(&json!({})),
        )
        .await;
    let _ = app.jwt("POST", CREATE, Some("bad"), Some(&json!({}))).await;
    let r = app
        .jwt(
            "GET",
            "/api/admin/audit",
            Some(&token("erin", "CONFIDENTIAL")),
            None,
        )
        .await;
    assert_eq!(r.status, 403);

    let all = app.jwt("GET", "/api/admin/audit", Some(&admin), None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let entries = all.body["entries"].as_array().unwrap();
    assert_eq!(all.body["total"], 4, "{}", all.body);
    assert!(entries.iter().any(|e| e["source"] == "event"
        && e["action"] == "WalletCreated"
        && e["walletId"] == id.as_str()));
    assert!(entries
        .iter()
        .any(|e| e["status"] == 403 && e["userId"] == "erin-visitor"));
    assert!(entries.iter().any(|e| e["status"] == 401));
    assert!(entries
        .iter()
        .any(|e| e["status"] == 403 && e["action"] == "audit.read"));
    let ats: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = ats.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ats, sorted, "newest first");

    let by_user = app
        .jwt("GET", "/api/admin/audit?userId=erin", Some(&admin), None)
        .await;
    assert_eq!(by_user.body["total"], 2, "{}", by_user.body);
    let by_wallet = app
        .jwt(
            "GET",
            &format!("/api/admin/audit?walletId={id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(by_wallet.body["total"], 1);
    let from = (before - chrono::Duration::seconds(1)).to_rfc3339();
    let to = (before - chrono::Duration::milliseconds(1)).to_rfc3339();
    let enc = |s: &str| s.replace('+', "%2B");
    let window = app
        .jwt(
            "GET",
            &format!("/api/admin/audit?from={}&to={}", enc(&from), enc(&to)),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(window.status, 200, "{}", window.body);
    assert_eq!(window.body["total"], 0);
    let since = app
        .jwt(
            "GET",
            &format!("/api/admin/audit?from={}", enc(&from)),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(since.body["total"], 4);
    let r = app
        .jwt("GET", "/api/admin/audit?from=yesterday", Some(&admin), None)
        .await;
    assert_eq!(r.status, 400);
}

#[actix_web::test]
async fn asymmetric_tokens_rs256_and_es256() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    for (alg, private, public) in [
        (
            jsonwebtoken::Algorithm::ES256,
            "es256.pk8.pem",
            "es256.pub.pem",
        ),
        (
            jsonwebtoken::Algorithm::RS256,
            "rs256.key.pem",
            "rs256.pub.pem",
        ),
    ] {
        let public_path = format!("{fixtures}/{public}");
        let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
            s.jwt_secret = None;
            s.jwt_public_key = Some(public_path.clone());
            s.jwt_issuer = Some("https://idp.example".into());
            s.jwt_audience = Some("walletd".into());
        })
        .await
        else {
            return;
        };
        let pem = std::fs::read(format!("{fixtures}/{private}")).unwrap();
        let key = match alg {
            jsonwebtoken::Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
        };
        let sign = |claims: Value| {
            jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
        };
        let good = sign(
            json!({"sub": "idp-user", "role": "MEMBER", "exp": now() + 600, "iss": "https://idp.example", "aud": "walletd"}),
        );
        let r = app.jwt("POST", CREATE, Some(&good), Some(&json!({}))).await;
        assert_eq!(r.status, 200, "{alg:?}: {}", r.body);
        for bad in [
            sign(
                json!({"sub": "idp-user", "role": "MEMBER", "exp": now() + 600, "iss": "https://evil.example", "aud": "walletd"}),
            ),
            sign(
                json!({"sub": "idp-user", "role": "MEMBER", "exp": now() + 600, "iss": "https://idp.example", "aud": "other"}),
            ),
            sign(json!({"sub": "idp-user", "role": "MEMBER", "exp": now() + 600})),
            // HS256 is not accepted when only a public key is configured.
            token("idp-user", "MEMBER"),
        ] {
            let r = app.jwt("POST", CREATE, Some(&bad), Some(&json!({}))).await;
            assert_eq!(r.status, 401, "{alg:?}: {}", r.body);
        }
    }
}

#[actix_web::test]
async fn jwt_api_without_configuration_is_401() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| s.jwt_secret = None).await else {
        return;
    };
    let r = app
        .jwt("POST", CREATE, Some(&token("u", "ADMIN")), Some(&json!({})))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "Unauthorized");
}

#[actix_web::test]
async fn postgres_without_master_key_is_server_configuration_error() {
    let Some(db) = crate::helpers::TestDb::new(Backend::Postgres).await else {
        return;
    };
    let app = crate::helpers::spawn_app_custom(db, None, |_| {}).await;
    let r = app
        .jwt(
            "POST",
            CREATE,
            Some(&token("u", "MEMBER")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body, json!({"error": "Server configuration error"}));
}
