//! Who may touch which wallet (issue 9): each dialect reaches only its own
//! wallets, a token or signed body made for one use is refused elsewhere, one
//! address is one wallet across every kind, and one whitelist schedule holds
//! for every process on a database.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    now, run_cli, spawn_app, spawn_app_with, token, token_with, Backend, TestApp,
};
use crate::sila_client::{assert_failure, assert_success, Key, SilaClient};

backend_tests!(
    each_dialect_touches_only_its_own_wallets,
    sila_tokens_are_bound_to_their_user_and_api,
    a_refused_signed_body_cannot_be_sent_elsewhere,
    a_read_consumes_its_nonce_only_when_it_succeeds,
    one_address_is_one_wallet_across_kinds,
    the_whitelist_delay_is_the_same_for_every_process,
);

const ALICE: &str = "alice.eth";
const BOB: &str = "bob.eth";

/// A Sila token-mode token for `user` of `app_handle`.
fn sila_token(user: &str, app_handle: &str) -> String {
    token_with(json!({
        "sub": user,
        "exp": now() + 600,
        "app_handle": app_handle,
        "aud": walletd::auth::jwt::DEFAULT_SILA_AUDIENCE,
    }))
}

async fn event_count(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) FROM events";
    match &app.app.db {
        walletd::projections::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        walletd::projections::Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
    }
    .expect("count events")
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

const TX: &str = r#"{"transaction": {"type":"eip1559","chainId":1,"nonce":0,
    "to":"0x3535353535353535353535353535353535353535","value":"1","data":"0x","gas":21000,
    "maxFeePerGas":"30000000000","maxPriorityFeePerGas":"1000000000"}}"#;

/// One wallet of each kind, for one person called "alice" in every dialect:
/// the server wallet of userId `alice`, the JWT wallet of subject `alice`, and
/// the Sila user `alice.eth` with a registered address and a token-mode account.
async fn each_dialect_touches_only_its_own_wallets(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let server = app.create_wallet("alice").await;
    let alice_jwt = token("alice", "SUBSCRIBER");
    let admin = token("root", "ADMIN");
    let r = app
        .jwt(
            "POST",
            "/api/wallet/create",
            Some(&alice_jwt),
            Some(&json!({"label": "mine"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let jwt_wallet = r.body["wallet"].clone();
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let body = sila.body(Some(ALICE), json!({"wallet": {"nickname": "tok"}}));
    let r = sila
        .call_token(
            "register_wallet",
            &body,
            Some(&sila_token(ALICE, "myapp.eth")),
        )
        .await;
    assert_success(&r, &body);
    let token_account = str_of(&r.body, "wallet_id").to_string();
    let sila_registered = sila.get_wallet(ALICE, &k1).await.body["wallet"].clone();

    let foreign: Vec<(&str, String)> = vec![
        ("JWT wallet id", str_of(&jwt_wallet, "id").into()),
        ("JWT wallet address", str_of(&jwt_wallet, "address").into()),
        ("Sila token account id", token_account.clone()),
        (
            "Sila registered wallet id",
            str_of(&sila_registered, "wallet_id").into(),
        ),
        ("Sila registered address", k1.address.clone()),
    ];
    let before = event_count(&app).await;

    // The server-wallet API (any API key): read, sign, sign typed data, sign a
    // transaction: every foreign identifier is "not found".
    for (what, id) in &foreign {
        let r = app.get(&format!("/api/wallets/{id}")).await;
        assert_eq!(r.status, 404, "server API reads {what}: {}", r.body);
        let r = app
            .post_json(
                &format!("/api/wallets/{id}/sign"),
                &json!({"message": "hi"}),
            )
            .await;
        assert_eq!(r.status, 404, "server API signs with {what}: {}", r.body);
        let tx: Value = serde_json::from_str(TX).unwrap();
        let r = app
            .post_json(&format!("/api/wallets/{id}/sign-transaction"), &tx)
            .await;
        assert_eq!(
            r.status, 404,
            "server API signs a tx with {what}: {}",
            r.body
        );
    }
    // Its own wallet still answers.
    let r = app.get("/api/wallets/alice").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["walletId"], server["walletId"]);

    // The JWT API, as alice and as ADMIN: list, history, primary.
    for (who, t) in [("alice", &alice_jwt), ("ADMIN", &admin)] {
        let r = app
            .jwt("GET", "/api/wallet/list?userId=alice", Some(t), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let ids: Vec<&Value> = r.body["wallets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| &w["id"])
            .collect();
        assert_eq!(ids, vec![&jwt_wallet["id"]], "{who} lists only JWT wallets");
        assert_eq!(r.body["total"], 1);
        let server_id = str_of(&server, "walletId");
        for (what, id) in [
            ("server wallet", server_id),
            ("Sila token account", token_account.as_str()),
            ("Sila wallet", str_of(&sila_registered, "wallet_id")),
        ] {
            let r = app
                .jwt("GET", &format!("/api/wallet/{id}/history"), Some(t), None)
                .await;
            assert_eq!(r.status, 404, "{who} reads history of {what}: {}", r.body);
            assert_eq!(r.body, json!({"error": "Wallet not found"}));
            let r = app
                .jwt(
                    "POST",
                    "/api/wallet/primary",
                    Some(t),
                    Some(&json!({ "walletId": id })),
                )
                .await;
            assert_eq!(r.status, 404, "{who} sets {what} primary: {}", r.body);
        }
    }

    // The Sila API: alice.eth lists only her Sila wallets, and cannot take
    // over the server or JWT wallet's address (register without a proof).
    let listed = sila.wallets(ALICE, &k1).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for (what, address) in [
        ("server wallet", str_of(&server, "address")),
        ("JWT wallet", str_of(&jwt_wallet, "address")),
    ] {
        let mut body = sila.register_body(BOB, &Key::random(), None);
        body["crypto_entry"]["crypto_address"] = json!(address);
        let r = sila.call("register", &body, Some(&sila.key), None).await;
        assert_failure(&r, 400, Some(&body), what);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("already registered"),
            "{}",
            r.body
        );
    }
    assert_eq!(event_count(&app).await, before, "nothing was written");
    assert_eq!(sila.check_handle(BOB).await.body["success"], true);
    // And their owners still have them.
    let r = app
        .get(&format!("/api/wallets/{}", str_of(&server, "address")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["userId"], "alice");
}

async fn sila_tokens_are_bound_to_their_user_and_api(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "tokapp.eth").await;
    let alice = sila.register_user(ALICE).await;
    let bob = sila.register_user(BOB).await;
    let wallet = json!({"wallet": {"default": true}});

    // Bob's token cannot act for Alice, though both are users of the app.
    let body = sila.body(Some(ALICE), wallet.clone());
    let r = sila
        .call_token(
            "register_wallet",
            &body,
            Some(&sila_token(BOB, "tokapp.eth")),
        )
        .await;
    assert_failure(&r, 403, Some(&body), "bob's token for alice");
    // A JWT-API token (no Sila audience) is refused by the Sila API, even
    // with every other claim right.
    let jwt_api = token_with(json!({
        "sub": ALICE, "role": "MEMBER", "exp": now() + 600, "app_handle": "tokapp.eth"
    }));
    let body = sila.body(Some(ALICE), wallet.clone());
    let r = sila
        .call_token("register_wallet", &body, Some(&jwt_api))
        .await;
    assert_failure(&r, 401, Some(&body), "JWT API token at the Sila API");
    let other_aud = token_with(json!({
        "sub": ALICE, "exp": now() + 600, "app_handle": "tokapp.eth", "aud": "walletd-jwt"
    }));
    let r = sila
        .call_token("register_wallet", &body, Some(&other_aud))
        .await;
    assert_failure(&r, 401, Some(&body), "another audience at the Sila API");
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 1);
    assert_eq!(sila.wallet_count(BOB, &bob).await, 1);

    // A Sila token is refused by the JWT API, even with a role.
    let sila_with_role = token_with(json!({
        "sub": "alice", "role": "ADMIN", "exp": now() + 600,
        "aud": walletd::auth::jwt::DEFAULT_SILA_AUDIENCE,
    }));
    for (method, path, body) in [
        ("POST", "/api/wallet/create", Some(json!({}))),
        ("GET", "/api/wallet/list", None),
        ("GET", "/api/admin/audit", None),
    ] {
        let r = app
            .jwt(method, path, Some(&sila_with_role), body.as_ref())
            .await;
        assert_eq!(r.status, 401, "Sila token at {path}: {}", r.body);
    }

    // The right token works, for its own user only.
    let body = sila.body(Some(ALICE), wallet.clone());
    let r = sila
        .call_token(
            "register_wallet",
            &body,
            Some(&sila_token(ALICE, "tokapp.eth")),
        )
        .await;
    assert_success(&r, &body);
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 2);
    assert_eq!(sila.wallet_count(BOB, &bob).await, 1);
}

/// A refused `update_wallet` re-sent byte for byte, signatures and all, to
/// `delete_wallet`: refused as a replay, and the wallet stays.
async fn a_refused_signed_body_cannot_be_sent_elsewhere(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let k2 = Key::random();
    let r = sila
        .register_wallet(ALICE, &k1, &k2, json!({"nickname": "second"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // "main" is k1's nickname: refused.
    let body = sila.body(Some(ALICE), json!({"nickname": "main"}));
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&k2));
    let r = sila
        .send("update_wallet", "application/json", bytes.clone(), &headers)
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = sila
        .send("delete_wallet", "application/json", bytes.clone(), &headers)
        .await;
    assert_eq!(r.status, 400, "the refused body is used up: {}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("already processed"),
        "{}",
        r.body
    );
    assert_eq!(sila.wallet_count(ALICE, &k1).await, 2, "k2 is still there");
    let r = sila
        .send("update_wallet", "application/json", bytes, &headers)
        .await;
    assert_eq!(r.status, 400, "{}", r.body);

    // A corrected request may reuse the reference.
    let mut corrected = sila.body(Some(ALICE), json!({"nickname": "renamed"}));
    corrected["header"]["reference"] = body["header"]["reference"].clone();
    let r = sila
        .call("update_wallet", &corrected, Some(&sila.key), Some(&k2))
        .await;
    assert_success(&r, &corrected);
    // A successful body is used up too, on every endpoint.
    let bytes = serde_json::to_vec(&corrected).unwrap();
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&k2));
    let r = sila
        .send("delete_wallet", "application/json", bytes, &headers)
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(sila.wallet_count(ALICE, &k1).await, 2);
}

async fn a_read_consumes_its_nonce_only_when_it_succeeds(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let bad = sila.body(Some(ALICE), json!({"search_filters": {"per_page": 0}}));
    let r = sila
        .call("get_wallets", &bad, Some(&sila.key), Some(&k1))
        .await;
    assert_failure(&r, 400, Some(&bad), "per_page 0");
    let mut good = sila.body(Some(ALICE), json!({"search_filters": {"per_page": 5}}));
    good["header"]["reference"] = bad["header"]["reference"].clone();
    let r = sila
        .call("get_wallets", &good, Some(&sila.key), Some(&k1))
        .await;
    assert_success(&r, &good);
    assert_eq!(r.body["returned_count"], 1);
    let r = sila
        .call("get_wallets", &good, Some(&sila.key), Some(&k1))
        .await;
    assert_failure(&r, 400, Some(&good), "a read answered once");
}

async fn one_address_is_one_wallet_across_kinds(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let server = app.create_wallet("carol").await;
    let address = str_of(&server, "address").to_string();
    let before = event_count(&app).await;
    // Sila users racing for a server wallet's address (register needs no proof).
    let attempts = (0..4).map(|i| {
        let sila = &sila;
        let address = address.clone();
        async move {
            let handle = format!("racer{i}.eth");
            let mut body = sila.register_body(&handle, &Key::random(), None);
            body["crypto_entry"]["crypto_address"] = json!(address.to_lowercase());
            sila.call("register", &body, Some(&sila.key), None).await
        }
    });
    for r in futures_util::future::join_all(attempts).await {
        assert_eq!(r.status, 400, "{}", r.body);
    }
    assert_eq!(event_count(&app).await, before);
    // The directory has one wallet for the address, the server wallet.
    let r = app.get(&format!("/api/wallets/{address}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["walletId"], server["walletId"]);

    // The store refuses it whatever the write path: a hand-made event for a
    // new wallet id naming a claimed address.
    let id = uuid::Uuid::new_v4().to_string();
    let payload = json!({"WalletRegistered": {"wallet_id": id, "user_id": "sila:x.eth",
        "address": k1.address, "at": "2026-01-01T00:00:00.000000Z"}});
    let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                  event_version, payload, metadata) VALUES ('wallet', $1, 1, 'WalletRegistered', '1', $2, $3)";
    let err = match &app.app.db {
        walletd::projections::Db::Postgres(p) => sqlx::query(insert)
            .bind(&id)
            .bind(&payload)
            .bind(json!({}))
            .execute(p)
            .await
            .map(|_| ()),
        walletd::projections::Db::Sqlite(p) => sqlx::query(insert)
            .bind(&id)
            .bind(payload.to_string())
            .bind("{}")
            .execute(p)
            .await
            .map(|_| ()),
    }
    .expect_err("a second wallet for a claimed address");
    assert!(err.to_string().contains("address_claimed"), "{err}");

    // A deleted Sila address can be registered again (same wallet id).
    let k2 = Key::random();
    let r = sila.register_wallet(ALICE, &k1, &k2, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = sila.user_call("delete_wallet", ALICE, &k2, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = sila.register_wallet(ALICE, &k1, &k2, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The server runs with a 2 s delay; `walletd kyc pass`, run from a shell
/// with another delay in its environment, still schedules with 2 s.
async fn the_whitelist_delay_is_the_same_for_every_process(b: Backend) {
    let Some(app) = spawn_app_with(b, |s| {
        s.kyc_mode = walletd::config::KycMode::Manual;
        s.whitelist_delay = Some(2);
    })
    .await
    else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let r = sila.request_kyc(ALICE, &k1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let env = [
        ("DATABASE_URL", app.db.url.as_str()),
        ("WALLETD_KYC_MODE", "manual"),
        ("WALLETD_WHITELIST_DELAY", "300"),
    ];
    let (ok, out, err) = run_cli(&["kyc", "pass", ALICE], &env).await;
    assert!(ok, "{out} {err}");
    sila.wait_whitelisted(ALICE, &k1, Duration::from_secs(15))
        .await;
    assert_eq!(
        walletd::service::whitelist_policy::current(&app.app.db)
            .await
            .unwrap(),
        2
    );
}

/// A removed app key stops authenticating at once, even while the projections
/// are held back (an open transaction elsewhere holds PostgreSQL's snapshot
/// horizon, so the projector cannot pass the removal).
#[actix_web::test]
async fn a_removed_app_key_stops_at_once_while_projections_lag() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let new_key = sila.add_app_key(&app).await;
    let walletd::projections::Db::Postgres(pool) = &app.app.db else {
        unreachable!()
    };
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *blocker)
        .await
        .unwrap();

    let store = app.app.clone();
    let old = walletd::domain::Address::parse(&sila.key.address).unwrap();
    let handle = walletd::domain::Handle::parse("myapp.eth").unwrap();
    let removal = actix_web::rt::spawn(async move {
        let meta = walletd::store::CommandMeta::system("test");
        store
            .apps
            .execute(
                &handle,
                walletd::domain::client_app::AppCommand::RemoveAddress {
                    address: old,
                    at: meta.at,
                },
                &meta,
            )
            .await
    });
    // Wait until the removal is committed (its read-your-writes wait is held up).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE event_type = 'AppAddressRemoved'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "removal not committed"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let projected = walletd::projections::queries::apps(&app.app.db)
        .await
        .unwrap();
    assert!(
        projected[0].1.contains(&sila.key.address),
        "the projection still lists the removed key: {projected:?}"
    );
    let r = sila.check_handle("someone.eth").await;
    assert_eq!(r.status, 403, "removed key: {}", r.body);
    let with_new = SilaClient::new(&app.base, "myapp.eth", new_key);
    let r = with_new.check_handle("someone.eth").await;
    assert_eq!(r.status, 200, "remaining key: {}", r.body);
    blocker.rollback().await.unwrap();
    removal.await.unwrap().unwrap();
}
