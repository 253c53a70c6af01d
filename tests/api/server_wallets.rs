//! The server-wallet API over real HTTP: every endpoint and every error.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{spawn_app, spawn_app_on, Backend, TestApp, TestDb};

backend_tests!(
    create_get_sign_round_trip,
    signatures_verify_with_alloy,
    create_rejects_bad_input_and_writes_nothing,
    second_create_for_a_user_is_409_with_existing_wallet_id,
    get_errors,
    sign_errors,
    auth_errors,
    idempotency_key_replays_and_refuses_mismatch,
    seed_000_bodies_not_valid_for_the_endpoint_are_400,
    health_and_routing,
);

pub async fn event_count(app: &TestApp) -> i64 {
    walletd::projections::log::count(&app.app.db).await.unwrap()
}

async fn create_get_sign_round_trip(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("user_123").await;
    assert_eq!(created["success"], true);
    assert_eq!(created["userId"], "user_123");
    let address = created["address"].as_str().unwrap().to_string();
    let wallet_id = created["walletId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&wallet_id).is_ok());
    assert_eq!(address.len(), 42);
    let public_key = created["publicKey"].as_str().unwrap();
    assert_eq!(public_key.len(), 2 + 130, "uncompressed SEC1 public key");

    // The address is keccak(pubkey)[12..], EIP-55 checksummed, by an independent implementation.
    let pk = hex::decode(&public_key[2..]).unwrap();
    let expected = alloy_primitives::Address::from_raw_public_key(&pk[1..]);
    assert_eq!(expected.to_checksum(None), address);

    // Read-your-writes: every form of identifier finds it at once.
    let upper = format!("0x{}", address[2..].to_uppercase());
    for id in [
        "user_123".to_string(),
        wallet_id.clone(),
        address.clone(),
        address.to_lowercase(),
        upper,
    ] {
        let r = app.get(&format!("/api/wallets/{id}")).await;
        assert_eq!(r.status, 200, "GET {id}: {}", r.body);
        assert_eq!(r.body["walletId"], wallet_id.as_str());
        assert_eq!(r.body["address"], address.as_str());
        assert_eq!(r.body["userId"], "user_123");
        assert_eq!(r.body["publicKey"], public_key);
        assert!(r.body["createdAt"].as_str().unwrap().ends_with('Z'));
    }

    let r = app
        .post_json(
            &format!("/api/wallets/{wallet_id}/sign"),
            &json!({"message": "hello"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["walletId"], wallet_id.as_str());
    assert_eq!(r.body["address"], address.as_str());
    let sig = r.body["signature"].as_str().unwrap();
    assert!(sig.starts_with("0x") && sig.len() == 132);
    assert_eq!(event_count(&app).await, 2, "WalletCreated + MessageSigned");
}

async fn signatures_verify_with_alloy(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("alice").await;
    let address = created["address"].as_str().unwrap();
    let messages = [
        "hello".to_string(),
        "Register API key for exchange: 1234".into(),
        "ünïcødé ✓".into(),
        "x".repeat(10_000),
        "0xdeadbeef".into(),
    ];
    // Address forms as path identifiers, too.
    for (i, m) in messages.iter().enumerate() {
        let id = if i % 2 == 0 {
            address.to_string()
        } else {
            "alice".to_string()
        };
        let r = app
            .post_json(&format!("/api/wallets/{id}/sign"), &json!({ "message": m }))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let bytes = hex::decode(&r.body["signature"].as_str().unwrap()[2..]).unwrap();
        assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27 or 28");
        let sig = alloy_primitives::Signature::from_raw(&bytes).unwrap();
        let half_n = alloy_primitives::U256::from_be_slice(
            &hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")
                .unwrap(),
        );
        assert!(sig.s() <= half_n, "low-s");
        let recovered = sig.recover_address_from_msg(m.as_bytes()).unwrap();
        assert_eq!(recovered.to_checksum(None), address);
        let expected_hash = alloy_primitives::eip191_hash_message(m.as_bytes());
        assert_eq!(r.body["messageHash"], format!("{expected_hash}"));
    }
}

async fn create_rejects_bad_input_and_writes_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", br#"{"userId": ""}"#.to_vec(), 400),
        (
            "application/json",
            format!(r#"{{"userId": "{}"}}"#, "a".repeat(129)).into_bytes(),
            400,
        ),
        (
            "application/json",
            "{\"userId\": \"jürgen\"}".as_bytes().to_vec(),
            400,
        ),
        (
            "application/json",
            br#"{"userId": "tab\there"}"#.to_vec(),
            400,
        ),
        ("application/json", br#"{"userId": "0xabc"}"#.to_vec(), 400),
        ("application/json", br#"{"userId": "#.to_vec(), 400),
        ("application/json", b"not json".to_vec(), 400),
        ("application/json", b"".to_vec(), 400),
        ("application/json", br#"{}"#.to_vec(), 400),
        ("application/json", br#"{"userId": 42}"#.to_vec(), 400),
        ("application/json", br#"{"userId": null}"#.to_vec(), 400),
        ("application/json", br#"["user"]"#.to_vec(), 400),
        (
            "application/json",
            br#"{"userId": "u", "extra": 1}"#.to_vec(),
            400,
        ),
        ("text/plain", br#"{"userId": "u1"}"#.to_vec(), 415),
        (
            "application/x-www-form-urlencoded",
            b"userId=u1".to_vec(),
            415,
        ),
        (
            "application/json",
            format!(r#"{{"userId": "u", "pad": "{}"}}"#, "x".repeat(70_000)).into_bytes(),
            413,
        ),
    ];
    for (ct, body, status) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).to_string();
        let r = app.post_raw("/api/wallets", ct, body, &[]).await;
        assert_eq!(r.status, status, "{ct} {shown}: {}", r.body);
        assert_eq!(r.body["success"], false, "{shown}");
        assert!(
            r.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{shown}"
        );
    }
    // The longest valid userId is accepted.
    app.create_wallet(&"a".repeat(128)).await;
    assert_eq!(
        event_count(&app).await,
        1,
        "only the valid create wrote an event"
    );
}

async fn second_create_for_a_user_is_409_with_existing_wallet_id(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let first = app.create_wallet("bob").await;
    let r = app
        .post_json("/api/wallets", &json!({"userId": "bob"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["success"], false);
    assert_eq!(r.body["walletId"], first["walletId"]);
    assert_eq!(event_count(&app).await, 1);
}

async fn get_errors(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("carol").await;
    for (id, status) in [
        ("nobody".to_string(), 404),
        (uuid::Uuid::new_v4().to_string(), 404),
        (format!("0x{}", "ab".repeat(20)), 404),
        ("0x123".to_string(), 400),
        (format!("0x{}", "zz".repeat(20)), 400),
        (format!("0x{}", "ab".repeat(21)), 400),
        ("a".repeat(129), 400),
        ("%C3%BC".to_string(), 400),
    ] {
        let r = app.get(&format!("/api/wallets/{id}")).await;
        assert_eq!(r.status, status, "GET {id}: {}", r.body);
        assert_eq!(r.body["success"], false);
        assert!(r.body["error"].is_string());
    }
}

async fn sign_errors(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("dave").await;
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "/api/wallets/nobody/sign",
            "application/json",
            br#"{"message":"m"}"#.to_vec(),
            404,
        ),
        (
            "/api/wallets/0x12/sign",
            "application/json",
            br#"{"message":"m"}"#.to_vec(),
            400,
        ),
        (
            "/api/wallets/dave/sign",
            "application/json",
            br#"{"message":""}"#.to_vec(),
            400,
        ),
        (
            "/api/wallets/dave/sign",
            "application/json",
            br#"{}"#.to_vec(),
            400,
        ),
        (
            "/api/wallets/dave/sign",
            "application/json",
            br#"{"message": 7}"#.to_vec(),
            400,
        ),
        (
            "/api/wallets/dave/sign",
            "application/json",
            b"{".to_vec(),
            400,
        ),
        (
            "/api/wallets/dave/sign",
            "text/plain",
            b"hello".to_vec(),
            415,
        ),
    ];
    for (path, ct, body, status) in cases {
        let r = app.post_raw(path, ct, body, &[]).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.body["success"], false);
    }
    assert_eq!(event_count(&app).await, 1, "no signing was recorded");
}

async fn auth_errors(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let bodies = [
        ("POST", "/api/wallets"),
        ("GET", "/api/wallets/someone"),
        ("POST", "/api/wallets/someone/sign"),
    ];
    for header in [
        None,
        Some("Bearer wrong"),
        Some("Basic abc"),
        Some("Bearer "),
        Some("bearer"),
    ] {
        for (method, path) in bodies {
            let mut req = match method {
                "POST" => app.client.post(app.url(path)),
                _ => app.client.get(app.url(path)),
            };
            if let Some(h) = header {
                req = req.insert_header(("Authorization", h));
            }
            let res = req
                .insert_header(("Content-Type", "application/json"))
                .send_body(r#"{"userId":"x","message":"m"}"#)
                .await
                .unwrap();
            let r = crate::helpers::into_resp(res).await;
            assert_eq!(r.status, 401, "{method} {path} {header:?}");
            assert_eq!(r.body["success"], false);
            assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
        }
    }
    assert_eq!(event_count(&app).await, 0);

    // A key created with the CLI's code path authenticates; only its hash is stored.
    let created = app.app.api_keys.create("ci").await.unwrap();
    let res = app
        .client
        .post(app.url("/api/wallets"))
        .insert_header(("Authorization", format!("Bearer {}", created.token)))
        .insert_header(("Content-Type", "application/json"))
        .send_body(r#"{"userId":"via-db-key"}"#)
        .await
        .unwrap();
    assert_eq!(crate::helpers::into_resp(res).await.status, 200);
    let dump = walletd::projections::queries::dump_tables(&app.app.db, &["api_keys"])
        .await
        .unwrap();
    assert!(!dump.concat().contains(&created.token));

    // Revoked through the CLI, it stops working (a fresh server has no cache).
    let (ok, out, err) =
        crate::helpers::run_cli(&["api-key", "list"], &[("DATABASE_URL", &app.db.url)]).await;
    assert!(
        ok && out.contains(&created.id) && out.contains("active"),
        "{out} {err}"
    );
    let (ok, out, err) = crate::helpers::run_cli(
        &["api-key", "revoke", "--id", &created.id],
        &[("DATABASE_URL", &app.db.url)],
    )
    .await;
    assert!(ok, "{out} {err}");
    let (ok, _, _) = crate::helpers::run_cli(
        &["api-key", "revoke", "--id", &created.id],
        &[("DATABASE_URL", &app.db.url)],
    )
    .await;
    assert!(!ok, "revoking twice fails");
    assert!(app.app.api_keys.list().await.unwrap()[0].3.is_some());
}

async fn idempotency_key_replays_and_refuses_mismatch(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("erin").await;
    let body = br#"{"message":"pay 1"}"#.to_vec();
    let headers = [("Idempotency-Key", "k-1")];
    let first = app
        .post_raw(
            "/api/wallets/erin/sign",
            "application/json",
            body.clone(),
            &headers,
        )
        .await;
    let second = app
        .post_raw("/api/wallets/erin/sign", "application/json", body, &headers)
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, second.body);
    assert_eq!(event_count(&app).await, 2, "signed once");

    let other = app
        .post_raw(
            "/api/wallets/erin/sign",
            "application/json",
            br#"{"message":"pay 2"}"#.to_vec(),
            &headers,
        )
        .await;
    assert_eq!(other.status, 422, "{}", other.body);

    // Creates too, including the replay of an error response.
    let h = [("Idempotency-Key", "create-frank")];
    let c1 = app
        .post_raw(
            "/api/wallets",
            "application/json",
            br#"{"userId":"frank"}"#.to_vec(),
            &h,
        )
        .await;
    let c2 = app
        .post_raw(
            "/api/wallets",
            "application/json",
            br#"{"userId":"frank"}"#.to_vec(),
            &h,
        )
        .await;
    assert_eq!((c1.status, c2.status), (200, 200));
    assert_eq!(c1.body, c2.body);

    // A crash after the create committed but before its response was stored:
    // the retry with the same key gets the original answer, not a 409.
    let h = [("Idempotency-Key", "create-gina")];
    let gina = br#"{"userId":"gina"}"#.to_vec();
    let first = app
        .post_raw("/api/wallets", "application/json", gina.clone(), &h)
        .await;
    assert_eq!(first.status, 200);
    walletd::projections::with_db!(&app.app.db, pool => {
        sqlx::query("DELETE FROM idempotency_keys WHERE key = 'create-gina'")
            .execute(pool)
            .await
            .unwrap();
    });
    let retry = app
        .post_raw("/api/wallets", "application/json", gina.clone(), &h)
        .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body, first.body);
    // Another key makes it a second create: 409.
    let other = app
        .post_raw(
            "/api/wallets",
            "application/json",
            gina,
            &[("Idempotency-Key", "x")],
        )
        .await;
    assert_eq!(other.status, 409);

    let bad = app
        .post_raw(
            "/api/wallets",
            "application/json",
            br#"{"userId":"g"}"#.to_vec(),
            &[("Idempotency-Key", "")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(event_count(&app).await, 4);
}

async fn health_and_routing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let r = app.get("/healthz").await;
    assert_eq!(r.status, 200);
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.get("/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["success"], false);
    let res = app
        .client
        .delete(app.url("/api/wallets/x"))
        .send()
        .await
        .unwrap();
    let r = crate::helpers::into_resp(res).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["success"], false);
    let r = app.get("/api/wallets").await;
    assert_eq!(r.status, 405);
    assert!(r.headers.get("x-request-id").is_some());
}

#[actix_web::test]
async fn postgres_without_master_key_is_a_configuration_error() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let app = spawn_app_on(db, None).await;
    let r = app.post_json("/api/wallets", &json!({"userId": "u"})).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body["error"], "Server configuration error");
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(
        r.body["problems"].to_string().contains("master key"),
        "{}",
        r.body
    );
    assert_eq!(event_count(&app).await, 0);
}

/// Seed 000 documents 400 Bad Request for its errors: a body that is not
/// valid for the endpoint (missing `userId` or `message`, wrong JSON types,
/// unknown fields) is 400 on every endpoint, not 422, and writes nothing.
/// 422 stays for the documented semantic refusal of an Idempotency-Key
/// reused with another body.
async fn seed_000_bodies_not_valid_for_the_endpoint_are_400(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("frank").await;
    let typed = |extra: serde_json::Value| {
        let mut typed_data = json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}],
                "Note": [{"name": "text", "type": "string"}],
            },
            "primaryType": "Note",
            "domain": {"name": "walletd"},
            "message": {"text": "hi"},
        });
        if let serde_json::Value::Object(m) = extra {
            for (k, v) in m {
                typed_data[k] = v;
            }
        }
        json!({ "typedData": typed_data })
    };
    let tx = |extra: serde_json::Value| {
        let mut t = json!({
            "type": "eip1559", "chainId": 1, "nonce": 0, "value": "0", "gas": 21000,
            "maxFeePerGas": "2", "maxPriorityFeePerGas": "1",
        });
        if let serde_json::Value::Object(m) = extra {
            for (k, v) in m {
                if v.is_null() {
                    t.as_object_mut().unwrap().remove(&k);
                } else {
                    t[k] = v;
                }
            }
        }
        json!({ "transaction": t })
    };
    let cases = [
        ("/api/wallets", json!({}), "missing field `userId`"),
        ("/api/wallets", json!({"userId": 7}), "invalid type"),
        ("/api/wallets", json!({"userId": ["a"]}), "invalid type"),
        ("/api/wallets", json!({"userId": null}), "invalid type"),
        ("/api/wallets", json!(["frank2"]), "must be a JSON object"),
        (
            "/api/wallets",
            json!({"userId": "frank2", "wallet": "x"}),
            "unknown field `wallet`",
        ),
        (
            "/api/wallets/frank/sign",
            json!({}),
            "missing field `message`",
        ),
        (
            "/api/wallets/frank/sign",
            json!({"message": 1}),
            "invalid type",
        ),
        (
            "/api/wallets/frank/sign",
            json!({"message": {"text": "m"}}),
            "invalid type",
        ),
        (
            "/api/wallets/frank/sign",
            json!({"message": "m", "encoding": "hex"}),
            "unknown field `encoding`",
        ),
        (
            "/api/wallets/frank/sign-typed-data",
            json!({}),
            "missing field `typedData`",
        ),
        (
            "/api/wallets/frank/sign-typed-data",
            typed(json!({"primaryType": 3})),
            "primaryType must be a string",
        ),
        (
            "/api/wallets/frank/sign-typed-data",
            typed(json!({"extra": true})),
            "unknown field `extra`",
        ),
        (
            "/api/wallets/frank/sign-transaction",
            tx(json!({"chainId": null})),
            "missing field `chainId`",
        ),
        (
            "/api/wallets/frank/sign-transaction",
            tx(json!({"nonce": "zero"})),
            "nonce",
        ),
        (
            "/api/wallets/frank/sign-transaction",
            tx(json!({"accessList": []})),
            "unknown field `accessList`",
        ),
    ];
    for (path, body, message) in cases {
        let r = app.post_json(path, &body).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(r.body["success"], false, "{path} {body}");
        let error = r.body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(message),
            "{path} {body}: {error:?} lacks {message:?}"
        );
    }
    assert_eq!(
        event_count(&app).await,
        1,
        "only frank's create was written"
    );

    // The semantic refusal keeps its 422.
    let key = [("Idempotency-Key", "seed-000")];
    let first = app
        .post_raw(
            "/api/wallets/frank/sign",
            "application/json",
            br#"{"message":"one"}"#.to_vec(),
            &key,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let reused = app
        .post_raw(
            "/api/wallets/frank/sign",
            "application/json",
            br#"{"message":"two"}"#.to_vec(),
            &key,
        )
        .await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert_eq!(event_count(&app).await, 2, "signed once");
}
