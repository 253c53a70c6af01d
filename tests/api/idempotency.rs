//! Idempotency-Key through the event log (issue 9, items 7 and 17): a request
//! whose first attempt committed but whose answer was never stored (a crash,
//! simulated by deleting the stored row or leaving a claim behind that has
//! gone stale) is answered from what it recorded, never run twice; expired
//! rows are pruned.

use serde_json::{json, Value};
use walletd::domain::wallet::WalletKind;
use walletd::domain::UserId;
use walletd::service::{ServiceError, WalletService};
use walletd::store::CommandMeta;

use crate::backend_tests;
use crate::helpers::{into_resp, spawn_app, token, Backend, Resp, TestApp};

backend_tests!(
    jwt_create_is_not_run_twice_under_one_key,
    a_retried_sign_returns_the_recorded_signature,
    a_sign_under_a_key_finds_the_wallet_while_the_read_side_trails,
    jwt_primary_is_recorded_once_under_one_key,
    a_jwt_wallet_is_found_through_the_log_while_the_read_side_trails,
    expired_rows_are_pruned,
);

const STALE_CLAIM: &str = "2000-01-01T00:00:00.000000Z";

async fn sql(app: &TestApp, statement: &str) {
    walletd::projections::with_db!(&app.app.db, pool => {
        sqlx::query(statement).execute(pool).await.unwrap();
    });
}

async fn count(app: &TestApp, query: &str) -> i64 {
    walletd::projections::with_db!(&app.app.db, pool => {
        sqlx::query_scalar::<_, i64>(query).fetch_one(pool).await.unwrap()
    })
}

async fn events_of_type(app: &TestApp, event_type: &str) -> i64 {
    count(
        app,
        &format!("SELECT COUNT(*) FROM events WHERE event_type = '{event_type}'"),
    )
    .await
}

/// The first attempt committed, then its process died before storing the
/// answer: no row at all.
async fn lose_response(app: &TestApp, key: &str) {
    sql(
        app,
        &format!("DELETE FROM idempotency_keys WHERE key = '{key}'"),
    )
    .await;
}

/// The first attempt committed, then its process died while the claim was
/// still pending; the claim has gone stale.
async fn leave_stale_claim(app: &TestApp, key: &str) {
    sql(
        app,
        &format!(
            "UPDATE idempotency_keys SET status_code = NULL, response_body = NULL,
                    created_at = '{STALE_CLAIM}' WHERE key = '{key}'"
        ),
    )
    .await;
}

async fn jwt_post(app: &TestApp, path: &str, token: &str, body: &Value, key: &str) -> Resp {
    let res = app
        .client
        .post(app.url(path))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Idempotency-Key", key))
        .send_body(body.to_string())
        .await
        .expect("request sent");
    into_resp(res).await
}

async fn jwt_create_is_not_run_twice_under_one_key(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let t = token("ivy", "SUBSCRIBER");
    let body = json!({"label": "Savings"});
    let first = jwt_post(&app, "/api/wallet/create", &t, &body, "ivy-1").await;
    assert_eq!(first.status, 200, "{}", first.body);

    lose_response(&app, "ivy-1").await;
    let retry = jwt_post(&app, "/api/wallet/create", &t, &body, "ivy-1").await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(
        retry.body, first.body,
        "the same wallet, answered the same way"
    );

    leave_stale_claim(&app, "ivy-1").await;
    let retry = jwt_post(&app, "/api/wallet/create", &t, &body, "ivy-1").await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body, first.body);
    assert_eq!(events_of_type(&app, "WalletCreated").await, 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM rate_limit_grants").await,
        1,
        "answering a retry does not use up the rate limit"
    );

    // The key names one request even after its stored answer is gone.
    lose_response(&app, "ivy-1").await;
    let other = jwt_post(
        &app,
        "/api/wallet/create",
        &t,
        &json!({"label": "Other"}),
        "ivy-1",
    )
    .await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(events_of_type(&app, "WalletCreated").await, 1);

    // Two attempts running at once (one outlived its claim): the wallet id
    // derives from (caller, key), so the store lets one of them in.
    let mut meta = CommandMeta::system("jwt:ivy");
    meta.idempotency_key = Some("ivy-2".into());
    let service = WalletService::new(&app.app);
    let ivy = UserId::parse("ivy").unwrap();
    let (a, b2) = futures_util::join!(
        service.create_custodial(ivy.clone(), WalletKind::Custodial, None, &meta),
        service.create_custodial(ivy.clone(), WalletKind::Custodial, None, &meta),
    );
    let (won, lost) = match (a, b2) {
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        (a, b2) => panic!(
            "exactly one attempt creates: {:?} / {:?}",
            a.is_ok(),
            b2.is_ok()
        ),
    };
    assert!(
        matches!(lost, ServiceError::ServerWalletExists { .. }),
        "{lost}"
    );
    // The HTTP retry of that request finds the wallet the winner created.
    let retry = jwt_post(&app, "/api/wallet/create", &t, &json!({}), "ivy-2").await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["wallet"]["id"], won.wallet_id.to_string());
    assert_eq!(events_of_type(&app, "WalletCreated").await, 2);
}

fn typed_data() -> Value {
    json!({"typedData": {
        "types": {
            "EIP712Domain": [{"name":"name","type":"string"},{"name":"version","type":"string"},
                             {"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
            "Person": [{"name":"name","type":"string"},{"name":"wallet","type":"address"}],
            "Mail": [{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},
        "primaryType": "Mail",
        "domain": {"name":"Ether Mail","version":"1","chainId":1,
                   "verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                    "to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                    "contents":"Hello, Bob!"}}})
}

fn transaction() -> Value {
    json!({"transaction": {"type":"eip1559","chainId":1,"nonce":0,
        "to":"0x3535353535353535353535353535353535353535","value":"1000000000000000000",
        "data":"0x","gas":21000,"maxFeePerGas":"30000000000","maxPriorityFeePerGas":"1000000000"}})
}

async fn a_retried_sign_returns_the_recorded_signature(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("sam").await;
    let cases = [
        ("/api/wallets/sam/sign", json!({"message": "hello"})),
        ("/api/wallets/sam/sign-typed-data", typed_data()),
        ("/api/wallets/sam/sign-transaction", transaction()),
    ];
    for (i, (path, body)) in cases.iter().enumerate() {
        let key = format!("sign-{i}");
        let h = [("Idempotency-Key", key.as_str())];
        let bytes = body.to_string().into_bytes();
        let first = app
            .post_raw(path, "application/json", bytes.clone(), &h)
            .await;
        assert_eq!(first.status, 200, "{path}: {}", first.body);

        lose_response(&app, &key).await;
        let retry = app
            .post_raw(path, "application/json", bytes.clone(), &h)
            .await;
        assert_eq!(retry.status, 200, "{path}: {}", retry.body);
        assert_eq!(retry.body, first.body, "{path}: the recorded signature");

        leave_stale_claim(&app, &key).await;
        let retry = app.post_raw(path, "application/json", bytes, &h).await;
        assert_eq!(retry.status, 200, "{path}: {}", retry.body);
        assert_eq!(retry.body, first.body, "{path}: the recorded signature");
        assert_eq!(
            events_of_type(&app, "MessageSigned").await,
            i as i64 + 1,
            "{path}: one signature per request"
        );
    }
    // Another message under a used key, once its stored answer is gone: 422,
    // and nothing is signed.
    lose_response(&app, "sign-0").await;
    let other = app
        .post_raw(
            "/api/wallets/sam/sign",
            "application/json",
            br#"{"message":"something else"}"#.to_vec(),
            &[("Idempotency-Key", "sign-0")],
        )
        .await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(events_of_type(&app, "MessageSigned").await, 3);
    // Without a key, signing again is a new signature.
    let again = app
        .post_json("/api/wallets/sam/sign", &json!({"message": "hello"}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(events_of_type(&app, "MessageSigned").await, 4);
}

/// Signatures recorded under one Idempotency-Key.
async fn signatures_under_key(app: &TestApp, b: Backend, key: &str) -> i64 {
    let field = match b {
        Backend::Postgres => "metadata->>'idempotency_key'",
        Backend::Sqlite => "json_extract(metadata, '$.idempotency_key')",
    };
    count(
        app,
        &format!(
            "SELECT COUNT(*) FROM events WHERE event_type = 'MessageSigned' AND {field} = '{key}'"
        ),
    )
    .await
}

/// Takes a wallet out of the read side, as if its create were not projected
/// yet (committed by another process, or the projector held back by a long
/// transaction elsewhere); `show` puts it back, as the projector would.
async fn hide_from_read_side(app: &TestApp, wallet_id: &str, tag: &str) {
    for table in ["wallet_directory", "user_wallets"] {
        sql(
            app,
            &format!("CREATE TABLE hidden_{tag}_{table} AS SELECT * FROM {table} WHERE wallet_id = '{wallet_id}'"),
        )
        .await;
        sql(
            app,
            &format!("DELETE FROM {table} WHERE wallet_id = '{wallet_id}'"),
        )
        .await;
    }
}

async fn show_in_read_side(app: &TestApp, tag: &str) {
    for table in ["wallet_directory", "user_wallets"] {
        sql(
            app,
            &format!("INSERT INTO {table} SELECT * FROM hidden_{tag}_{table}"),
        )
        .await;
    }
}

/// A sign under an Idempotency-Key while the read side does not show the
/// wallet yet used to answer 404 "wallet not found" and store that 404 as the
/// key's answer, so every retry got 404 even once the wallet was visible. The
/// wallet is found through the event store instead, by each of the names the
/// path accepts (user id, wallet id, address); a wallet of another dialect
/// stays "not found" there too.
async fn a_sign_under_a_key_finds_the_wallet_while_the_read_side_trails(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("trailing-signer").await;
    let wallet_id = created["walletId"].as_str().unwrap().to_string();
    let address = created["address"].as_str().unwrap().to_string();
    hide_from_read_side(&app, &wallet_id, "server").await;
    let r = app.get("/api/wallets/trailing-signer").await;
    assert_eq!(r.status, 404, "the read side trails: {}", r.body);

    let body = br#"{"message":"signed while the read side trails"}"#.to_vec();
    let names = [
        ("user", "trailing-signer".to_string()),
        ("wallet", wallet_id.clone()),
        ("address", address.clone()),
    ];
    let mut firsts = Vec::new();
    for (name, id) in &names {
        let key = format!("trailing-{name}");
        let r = app
            .post_raw(
                &format!("/api/wallets/{id}/sign"),
                "application/json",
                body.clone(),
                &[("Idempotency-Key", key.as_str())],
            )
            .await;
        assert_eq!(r.status, 200, "by {name}: {}", r.body);
        assert_eq!(r.body["walletId"], wallet_id.as_str(), "by {name}");
        assert_eq!(r.body["address"], address.as_str(), "by {name}");
        firsts.push(r.body);
    }

    // A JWT wallet is not this API's, whichever side it is looked up on.
    let t = token("trailing-jwt", "SUBSCRIBER");
    let jwt = jwt_post(&app, "/api/wallet/create", &t, &json!({}), "trailing-jwt").await;
    assert_eq!(jwt.status, 200, "{}", jwt.body);
    let jwt_wallet = jwt.body["wallet"]["id"].as_str().unwrap().to_string();
    let jwt_address = jwt.body["wallet"]["address"].as_str().unwrap().to_string();
    hide_from_read_side(&app, &jwt_wallet, "jwt").await;
    for id in [&jwt_wallet, &jwt_address] {
        let r = app
            .post_raw(
                &format!("/api/wallets/{id}/sign"),
                "application/json",
                body.clone(),
                &[],
            )
            .await;
        assert_eq!(r.status, 404, "{id}: {}", r.body);
    }

    // The read side catches up: every retry answers what its first attempt
    // did, which is what a fresh sign answers (RFC 6979), and nothing was
    // signed twice.
    show_in_read_side(&app, "server").await;
    show_in_read_side(&app, "jwt").await;
    let fresh = app
        .post_raw(
            "/api/wallets/trailing-signer/sign",
            "application/json",
            body.clone(),
            &[],
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    for ((name, id), first) in names.iter().zip(&firsts) {
        let key = format!("trailing-{name}");
        let retry = app
            .post_raw(
                &format!("/api/wallets/{id}/sign"),
                "application/json",
                body.clone(),
                &[("Idempotency-Key", key.as_str())],
            )
            .await;
        assert_eq!(retry.status, 200, "by {name}: {}", retry.body);
        assert_eq!(&retry.body, first, "by {name}");
        assert_eq!(retry.body, fresh.body, "by {name}");
        assert_eq!(signatures_under_key(&app, b, &key).await, 1, "by {name}");
    }
    assert_eq!(events_of_type(&app, "MessageSigned").await, 4);
}

async fn jwt_primary_is_recorded_once_under_one_key(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let t = token("pat", "SUBSCRIBER");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = app
            .jwt("POST", "/api/wallet/create", Some(&t), Some(&json!({})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.body["wallet"]["id"].as_str().unwrap().to_string());
    }
    let before = events_of_type(&app, "DefaultWalletSet").await;
    let body = json!({"walletId": ids[1]});
    let first = jwt_post(&app, "/api/wallet/primary", &t, &body, "prim-1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["wallet"]["isPrimary"], true);

    lose_response(&app, "prim-1").await;
    let retry = jwt_post(&app, "/api/wallet/primary", &t, &body, "prim-1").await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["wallet"]["id"], ids[1].as_str());
    assert_eq!(retry.body["wallet"]["isPrimary"], true);
    // A stored answer is replayed as stored.
    let replay = jwt_post(&app, "/api/wallet/primary", &t, &body, "prim-1").await;
    assert_eq!(replay.body, retry.body);
    assert_eq!(
        events_of_type(&app, "DefaultWalletSet").await,
        before + 1,
        "one default recorded for one request"
    );
    // The same key for another wallet: 422, nothing recorded.
    lose_response(&app, "prim-1").await;
    let other = jwt_post(
        &app,
        "/api/wallet/primary",
        &t,
        &json!({"walletId": ids[0]}),
        "prim-1",
    )
    .await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(events_of_type(&app, "DefaultWalletSet").await, before + 1);
}

/// The JWT API's wallet check (primary, history) used to read the read side
/// only, so a keyed primary while the create was not projected yet stored a
/// lasting 404. A miss there is now decided by the event store; ownership and
/// dialect still hold.
async fn a_jwt_wallet_is_found_through_the_log_while_the_read_side_trails(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let owner = token("trail-owner", "SUBSCRIBER");
    let r = app
        .jwt("POST", "/api/wallet/create", Some(&owner), Some(&json!({})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["wallet"]["id"].as_str().unwrap().to_string();
    let server = app.create_wallet("trail-server").await;
    let server_id = server["walletId"].as_str().unwrap().to_string();
    hide_from_read_side(&app, &id, "jwt").await;
    hide_from_read_side(&app, &server_id, "server").await;

    let history = format!("/api/wallet/{id}/history");
    let r = app.jwt("GET", &history, Some(&owner), None).await;
    assert_eq!(
        r.status, 200,
        "the owner, while the read side trails: {}",
        r.body
    );
    assert_eq!(r.body["walletId"], id.as_str());
    let admin = token("trail-admin", "ADMIN");
    let r = app.jwt("GET", &history, Some(&admin), None).await;
    assert_eq!(r.status, 200, "an admin: {}", r.body);
    let stranger = token("trail-stranger", "SUBSCRIBER");
    let r = app.jwt("GET", &history, Some(&stranger), None).await;
    assert_eq!(r.status, 404, "another user: {}", r.body);
    let r = app
        .jwt(
            "GET",
            &format!("/api/wallet/{server_id}/history"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        r.status, 404,
        "a server wallet is not this API's: {}",
        r.body
    );
    show_in_read_side(&app, "jwt").await;
    show_in_read_side(&app, "server").await;
}

async fn expired_rows_are_pruned(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let h = [("Idempotency-Key", "fresh")];
    let r = app
        .post_raw(
            "/api/wallets",
            "application/json",
            br#"{"userId":"quinn"}"#.to_vec(),
            &h,
        )
        .await;
    assert_eq!(r.status, 200);
    let old = (chrono::Utc::now() - chrono::Duration::hours(25))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    sql(
        &app,
        &format!(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body, created_at)
             VALUES ('apikey:x', 'old-answer', 'h', 200, '{{}}', '{old}'),
                    ('apikey:x', 'old-claim', 'h', NULL, NULL, '{old}')"
        ),
    )
    .await;
    let an_hour_ago_ms = chrono::Utc::now().timestamp_millis() - 3_600_000;
    sql(
        &app,
        &format!(
            "INSERT INTO rate_limit_grants (bucket, subject, at_ms) VALUES ('wallet.create', 'old', {an_hour_ago_ms})"
        ),
    )
    .await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM idempotency_keys").await,
        3
    );
    walletd::api::housekeeping::prune(&app.app).await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM idempotency_keys").await,
        1,
        "only the fresh key is left"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM rate_limit_grants").await,
        0
    );
    // A fresh key still replays.
    let again = app
        .post_raw(
            "/api/wallets",
            "application/json",
            br#"{"userId":"quinn"}"#.to_vec(),
            &h,
        )
        .await;
    assert_eq!(again.body, r.body);
}
