//! The Sila-style API (seed 003) over real HTTP, with request signatures made
//! by an independent implementation (see `sila_client`).

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{now, spawn_app, token_with, Backend, BinaryServer, TestApp};
use crate::sila_client::{
    assert_failure, assert_failure_4xx, assert_failure_shape, assert_reference, assert_success,
    checksum, is_uuid, keys, reference_of, set, Key, SilaClient,
};

backend_tests!(
    happy_path,
    generated_nickname_and_default_false,
    signature_encodings_and_header_variants,
    malformed_requests_are_refused_and_change_nothing,
    signature_failures_are_refused_and_change_nothing,
    invalid_wallets_are_refused_and_change_nothing,
    replays_and_stale_requests_are_refused_and_change_nothing,
    a_committed_write_sent_again_is_refused_as_a_replay,
    concurrent_registration_of_one_address_has_one_winner,
    concurrent_default_updates_leave_one_default,
    token_mode_register_wallet,
    token_mode_refusals,
);

const ALICE: &str = "alice.eth";
const BOB: &str = "bob.eth";

/// Every key of a `register_wallet` success answer (both modes).
const REGISTER_WALLET_KEYS: &[&str] = &[
    "message",
    "queued_for_whitelist",
    "reference",
    "response_time_ms",
    "statements_enabled",
    "status",
    "success",
    "wallet_id",
    "wallet_nickname",
];

const WALLET_KEYS: &[&str] = &[
    "blockchain_address",
    "blockchain_network",
    "default",
    "nickname",
    "statements_enabled",
    "wallet_id",
];

/// An app with alice and bob registered (one wallet each).
async fn setup(app: &TestApp) -> (SilaClient, Key, Key) {
    let sila = SilaClient::register_app(app, "myapp.eth").await;
    let alice = sila.register_user(ALICE).await;
    let bob = sila.register_user(BOB).await;
    (sila, alice, bob)
}

/// `get_wallet` by `key`: the answer's `wallet` object (asserting success).
async fn wallet_of(sila: &SilaClient, user: &str, key: &Key) -> Value {
    let r = sila.get_wallet(user, key).await;
    assert_eq!(r.status, 200, "get_wallet: {}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    r.body["wallet"].clone()
}

fn expect_generated_nickname(nickname: &Value, wallet_id: &Value) {
    let nickname = nickname.as_str().expect("nickname");
    let id = wallet_id.as_str().expect("wallet_id");
    let hex = nickname
        .strip_prefix("wallet-")
        .unwrap_or_else(|| panic!("{nickname}"));
    assert!(
        hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{nickname}"
    );
    assert_eq!(
        hex.to_lowercase(),
        id[..8].to_lowercase(),
        "the first 8 hex of the wallet id"
    );
}

/// A `changes` entry's value compared with the JSON value or its text form.
fn same_value(got: &Value, want: &Value) -> bool {
    got == want || got.as_str() == Some(want.to_string().trim_matches('"'))
}

fn change<'a>(changes: &'a Value, attribute: &str) -> &'a Value {
    changes
        .as_array()
        .expect("changes array")
        .iter()
        .find(|c| c["attribute"] == attribute)
        .unwrap_or_else(|| panic!("no change of {attribute}: {changes}"))
}

fn assert_change(changes: &Value, attribute: &str, old: Value, new: Value) {
    let c = change(changes, attribute);
    assert!(same_value(&c["old_value"], &old), "{attribute}: {c}");
    assert!(same_value(&c["new_value"], &new), "{attribute}: {c}");
}

/// Sets `field` of a JSON object, or removes it (`None`).
fn set_field(object: &mut Value, field: &str, value: Option<Value>) {
    match value {
        Some(v) => object[field] = v,
        None => {
            object.as_object_mut().unwrap().remove(field);
        }
    }
}

// 1. The whole life of a user's wallets.
async fn happy_path(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    // The app has two addresses; either signs.
    let second_app_key = sila.add_app_key(&app).await;

    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("check_handle", &body, Some(&second_app_key), None)
        .await;
    assert_success(&r, &body);
    assert_eq!(r.body["message"], "alice.eth is available.", "{}", r.body);

    let k1 = sila.register_user(ALICE).await;

    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("check_handle", &body, Some(&sila.key), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], false, "{}", r.body);
    assert_eq!(r.body["status"], "FAILURE", "{}", r.body);
    assert_eq!(
        r.body["message"], "alice.eth is already taken.",
        "{}",
        r.body
    );
    assert_reference(&r, reference_of(&body));
    // Handles are case-insensitive.
    let r = sila.check_handle("ALICE.eth").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], false, "{}", r.body);

    // The first wallet: from `register`, default, nickname = crypto_alias.
    let w1 = wallet_of(&sila, ALICE, &k1).await;
    assert_eq!(keys(&w1), set(WALLET_KEYS), "{w1}");
    assert_eq!(w1["nickname"], "main");
    assert_eq!(w1["default"], true);
    assert_eq!(w1["blockchain_address"], k1.address);
    assert!(is_uuid(&w1["wallet_id"]), "{w1}");
    let w1_id = w1["wallet_id"].as_str().unwrap().to_string();

    // register_wallet, ECDSA.
    let k2 = Key::random();
    let body = sila.register_wallet_body(
        ALICE,
        &k2,
        json!({"nickname": "savings", "default": true, "statements_enabled": true}),
    );
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&k1))
        .await;
    assert_success(&r, &body);
    assert_eq!(keys(&r.body), set(REGISTER_WALLET_KEYS), "{}", r.body);
    assert_eq!(
        r.body["message"],
        format!("Blockchain address {} registered.", k2.address)
    );
    assert_eq!(r.body["wallet_nickname"], "savings");
    assert_eq!(r.body["statements_enabled"], true);
    assert_eq!(r.body["queued_for_whitelist"], false, "no KYC yet");
    assert!(is_uuid(&r.body["wallet_id"]), "{}", r.body);
    let w2_id = r.body["wallet_id"].as_str().unwrap().to_string();
    assert_ne!(w1_id, w2_id);

    // The new wallet's key signs; it is the default now.
    let r = sila.get_wallet(ALICE, &k2).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    assert_eq!(r.body["status"], "SUCCESS");
    assert_eq!(r.body["is_whitelisted"], false);
    assert_eq!(r.body["sila_balance"], 0);
    let w2 = r.body["wallet"].clone();
    assert_eq!(keys(&w2), set(WALLET_KEYS), "{w2}");
    assert_eq!(w2["wallet_id"], w2_id.as_str());
    assert_eq!(w2["nickname"], "savings");
    assert_eq!(w2["default"], true);
    assert_eq!(w2["blockchain_address"], k2.address, "EIP-55");
    assert_eq!(w2["blockchain_network"], "ETH");
    assert_eq!(w2["statements_enabled"], true);
    let w1 = wallet_of(&sila, ALICE, &k1).await;
    assert_eq!(w1["default"], false, "the default moved: {w1}");

    // get_wallets: both, newest first, paged.
    let r = sila.get_wallets(ALICE, &k2, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["page"], 1);
    assert_eq!(r.body["returned_count"], 2);
    assert_eq!(r.body["total_count"], 2);
    assert_eq!(r.body["total_page_count"], 1);
    let list = r.body["wallets"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], w2, "newest first");
    assert_eq!(list[1], w1);
    let r = sila
        .get_wallets(ALICE, &k1, Some(json!({"sort_ascending": true})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["wallets"][0]["wallet_id"], w1_id.as_str());
    let r = sila
        .get_wallets(ALICE, &k1, Some(json!({"page": 2, "per_page": 1})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["page"], 2);
    assert_eq!(r.body["returned_count"], 1);
    assert_eq!(r.body["total_count"], 2);
    assert_eq!(r.body["total_page_count"], 2);
    assert_eq!(r.body["wallets"][0]["wallet_id"], w1_id.as_str());
    for (filter, id) in [
        (json!({"nickname": "SAV"}), &w2_id),
        (json!({"blockchain_address": k1.address}), &w1_id),
        (json!({"wallet_id": w2_id}), &w2_id),
    ] {
        let r = sila.get_wallets(ALICE, &k1, Some(filter.clone())).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(r.body["total_count"], 1, "{filter}: {}", r.body);
        assert_eq!(r.body["wallets"][0]["wallet_id"], id.as_str(), "{filter}");
    }

    // update_wallet: nickname and default, with the changes listed.
    let body = sila.body(Some(ALICE), json!({"nickname": "primary", "default": true}));
    let r = sila
        .call("update_wallet", &body, Some(&sila.key), Some(&k1))
        .await;
    assert_success(&r, &body);
    assert_eq!(r.body["message"], "Wallet updated.");
    assert_eq!(r.body["wallet"]["wallet_id"], w1_id.as_str());
    assert_eq!(r.body["wallet"]["nickname"], "primary");
    assert_eq!(r.body["wallet"]["default"], true);
    assert_eq!(r.body["changes"].as_array().unwrap().len(), 2, "{}", r.body);
    assert_change(
        &r.body["changes"],
        "nickname",
        json!("main"),
        json!("primary"),
    );
    assert_change(&r.body["changes"], "default", json!(false), json!(true));
    assert_eq!(wallet_of(&sila, ALICE, &k2).await["default"], false);
    // Only what changed is listed (default is already true).
    let r = sila
        .user_call(
            "update_wallet",
            ALICE,
            &k1,
            json!({"nickname": "primary-2", "default": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["changes"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_change(
        &r.body["changes"],
        "nickname",
        json!("primary"),
        json!("primary-2"),
    );

    // delete_wallet of a wallet that is not the last.
    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("delete_wallet", &body, Some(&sila.key), Some(&k2))
        .await;
    assert_success(&r, &body);
    assert_eq!(
        r.body["message"],
        format!("Blockchain address {} removed.", k2.address)
    );
    assert_eq!(sila.wallet_count(ALICE, &k1).await, 1);
    // A deleted wallet no longer signs for the user.
    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("get_wallet", &body, Some(&sila.key), Some(&k2))
        .await;
    assert_failure(&r, 403, Some(&body), "deleted wallet signs");

    // The last wallet cannot be deleted.
    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("delete_wallet", &body, Some(&sila.key), Some(&k1))
        .await;
    assert_failure(&r, 400, Some(&body), "delete last wallet");
    assert_eq!(sila.wallet_count(ALICE, &k1).await, 1);
    assert_eq!(
        wallet_of(&sila, ALICE, &k1).await["wallet_id"],
        w1_id.as_str()
    );

    // A deleted address can be registered again.
    let r = sila
        .register_wallet(ALICE, &k1, &k2, json!({"nickname": "again"}))
        .await;
    assert_eq!(r.status, 200, "re-register a deleted address: {}", r.body);
    assert_eq!(sila.wallet_count(ALICE, &k1).await, 2);
}

// 2. Defaults of register_wallet and register.
async fn generated_nickname_and_default_false(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(BOB).await;

    let k2 = Key::random();
    let body = sila.register_wallet_body(BOB, &k2, json!({}));
    assert!(body["wallet"].get("nickname").is_none());
    assert!(body["wallet"].get("default").is_none());
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&k1))
        .await;
    assert_success(&r, &body);
    assert_eq!(keys(&r.body), set(REGISTER_WALLET_KEYS), "{}", r.body);
    expect_generated_nickname(&r.body["wallet_nickname"], &r.body["wallet_id"]);
    let w2 = wallet_of(&sila, BOB, &k2).await;
    assert_eq!(w2["nickname"], r.body["wallet_nickname"]);
    assert_eq!(w2["wallet_id"], r.body["wallet_id"]);
    assert_eq!(w2["default"], false, "default absent means false");
    assert_eq!(wallet_of(&sila, BOB, &k1).await["default"], true);

    // A lower-case address, proven over that same text: stored, answered EIP-55.
    let k3 = Key::random();
    let lower = k3.address_lower();
    let body = sila.register_wallet_body(BOB, &k3, json!({"blockchain_address": lower}));
    assert_eq!(body["wallet"]["blockchain_address"], lower.as_str());
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&k1))
        .await;
    assert_success(&r, &body);
    let message = r.body["message"].as_str().unwrap().to_lowercase();
    assert_eq!(message, format!("blockchain address {lower} registered."));
    let w3 = wallet_of(&sila, BOB, &k3).await;
    assert_eq!(w3["blockchain_address"], k3.address);
    assert_eq!(w3["blockchain_address"], checksum(&lower));

    // `register` without crypto_alias: the first wallet gets a generated nickname.
    let kc = Key::random();
    let body = sila.register_body("carol.eth", &kc, None);
    let r = sila.call("register", &body, Some(&sila.key), None).await;
    assert_success(&r, &body);
    assert_eq!(r.body["message"], "carol.eth was successfully registered.");
    let wc = wallet_of(&sila, "carol.eth", &kc).await;
    expect_generated_nickname(&wc["nickname"], &wc["wallet_id"]);
    assert_eq!(wc["default"], true);
    assert_eq!(sila.wallet_count(BOB, &k1).await, 3);
    assert_eq!(sila.wallet_count("carol.eth", &kc).await, 1);
}

// Accepted encodings of signatures and headers.
async fn signature_encodings_and_header_variants(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (sila, alice, _) = setup(&app).await;

    // v = 0/1, a 0x prefix, upper-case hex.
    let body = sila.body(Some(ALICE), json!({}));
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = [
        ("authsignature", sila.key.sign_with(&bytes, true)),
        (
            "usersignature",
            format!("0x{}", alice.sign(&bytes).to_uppercase()),
        ),
    ];
    let r = sila
        .send("get_wallet", "application/json", bytes, &headers)
        .await;
    assert_success(&r, &body);
    assert_eq!(r.body["wallet"]["blockchain_address"], alice.address);

    // auth_handle (the old name), "v0.2", no version/crypto, unknown extra fields.
    let variants = [
        vec![
            ("app_handle", None),
            ("auth_handle", Some(json!(sila.handle))),
        ],
        vec![("version", Some(json!("v0.2")))],
        vec![("version", None), ("crypto", None)],
        vec![("message", Some(json!("header_msg")))],
    ];
    for (i, edits) in variants.into_iter().enumerate() {
        let mut body = sila.body(Some(ALICE), json!({"message": "get_wallet_msg"}));
        for (field, value) in edits {
            set_field(&mut body["header"], field, value);
        }
        let r = sila
            .call("get_wallet", &body, Some(&sila.key), Some(&alice))
            .await;
        assert_success(&r, &body);
        assert_eq!(
            r.body["wallet"]["blockchain_address"], alice.address,
            "variant {i}"
        );
    }
}

// 3a. Requests that are not well-formed Sila requests.
async fn malformed_requests_are_refused_and_change_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (sila, alice, bob) = setup(&app).await;
    let signed = |bytes: &[u8]| SilaClient::signatures(bytes, Some(&sila.key), Some(&alice));

    // Not JSON, not an object, no header: no reference to echo.
    let not_json = br#"{"header": {"created": 1, "app_handle": "myapp.eth""#.to_vec();
    for (what, bytes) in [
        ("bad JSON", not_json),
        ("array", b"[1, 2]".to_vec()),
        ("string", br#""register_wallet""#.to_vec()),
        ("number", b"42".to_vec()),
        ("empty", Vec::new()),
        (
            "no header",
            serde_json::to_vec(&json!({"wallet": {"blockchain_address": Key::random().address}}))
                .unwrap(),
        ),
        (
            "header not an object",
            serde_json::to_vec(&json!({"header": "alice.eth"})).unwrap(),
        ),
    ] {
        let headers = signed(&bytes);
        let r = sila
            .send("register_wallet", "application/json", bytes, &headers)
            .await;
        assert_failure(&r, 400, None, what);
    }

    // Bad headers: the reference is echoed.
    let header_cases = [
        ("no created", 400, ("created", None)),
        (
            "created as text",
            400,
            ("created", Some(json!("yesterday"))),
        ),
        ("version 0.3", 400, ("version", Some(json!("0.3")))),
        ("crypto BTC", 400, ("crypto", Some(json!("BTC")))),
        ("no app_handle", 401, ("app_handle", None)),
        ("no user_handle", 401, ("user_handle", None)),
        (
            "unknown user",
            400,
            ("user_handle", Some(json!("nobody.eth"))),
        ),
        (
            "unknown app",
            403,
            ("app_handle", Some(json!("nosuchapp.eth"))),
        ),
    ];
    for (what, code, (field, value)) in header_cases {
        let new = Key::random();
        let mut body = sila.register_wallet_body(ALICE, &new, json!({"nickname": "x"}));
        set_field(&mut body["header"], field, value);
        let r = sila
            .call("register_wallet", &body, Some(&sila.key), Some(&alice))
            .await;
        assert_failure(&r, code, Some(&body), what);
    }

    // Too large: 413; not JSON by content type: 415.
    let body = sila.body(
        Some(ALICE),
        json!({"padding": "a".repeat(70_000), "wallet": {"nickname": "big"}}),
    );
    let bytes = serde_json::to_vec(&body).unwrap();
    assert!(bytes.len() > 65_536);
    let headers = signed(&bytes);
    let r = sila
        .send("register_wallet", "application/json", bytes, &headers)
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_failure_shape(&r, "413");
    assert!(r.body.as_object().unwrap().contains_key("reference"));

    let new = Key::random();
    let body = sila.register_wallet_body(ALICE, &new, json!({}));
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = signed(&bytes);
    let r = sila
        .send("register_wallet", "text/plain", bytes, &headers)
        .await;
    assert_eq!(r.status, 415, "{}", r.body);
    assert_failure_shape(&r, "415");
    let reference = &r.body["reference"];
    assert!(
        reference.is_null() || reference.as_str() == reference_of(&body),
        "{}",
        r.body
    );

    // No such endpoint.
    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("no_such_endpoint", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A handle that is taken cannot be registered again.
    let body = sila.register_body(ALICE, &Key::random(), Some("other"));
    let r = sila.call("register", &body, Some(&sila.key), None).await;
    assert_failure(&r, 400, Some(&body), "register a taken handle");

    assert_eq!(sila.wallet_count(ALICE, &alice).await, 1);
    assert_eq!(sila.wallet_count(BOB, &bob).await, 1);
}

// 3b. Missing, foreign or malformed signatures.
async fn signature_failures_are_refused_and_change_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (sila, alice, bob) = setup(&app).await;
    let stranger = Key::random();

    let new = Key::random();
    let cases: Vec<(&str, u16, Option<&Key>, Option<&Key>)> = vec![
        ("no authsignature", 403, None, Some(&alice)),
        (
            "authsignature by an unregistered key",
            403,
            Some(&stranger),
            Some(&alice),
        ),
        (
            "authsignature by a user's key",
            403,
            Some(&alice),
            Some(&alice),
        ),
        ("no usersignature", 403, Some(&sila.key), None),
        (
            "usersignature by another user's wallet",
            403,
            Some(&sila.key),
            Some(&bob),
        ),
        (
            "usersignature by an unknown key",
            403,
            Some(&sila.key),
            Some(&stranger),
        ),
        (
            "usersignature by the app key",
            403,
            Some(&sila.key),
            Some(&sila.key),
        ),
    ];
    for (what, code, auth, user) in cases {
        let body = sila.register_wallet_body(ALICE, &new, json!({"nickname": "n"}));
        let r = sila.call("register_wallet", &body, auth, user).await;
        assert_failure(&r, code, Some(&body), what);
    }

    // Neither signatures nor a token.
    let body = sila.register_wallet_body(ALICE, &new, json!({}));
    let r = sila.call("register_wallet", &body, None, None).await;
    assert_failure(&r, 403, Some(&body), "no authentication at all");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("authsignature"),
        "{}",
        r.body
    );

    // Signatures over other bytes (a valid signature of another body).
    let body = sila.register_wallet_body(ALICE, &new, json!({}));
    let other = serde_json::to_vec(&sila.body(Some(ALICE), json!({}))).unwrap();
    let headers = [
        ("authsignature", sila.key.sign(&other)),
        ("usersignature", alice.sign(&other)),
    ];
    let r = sila
        .send(
            "register_wallet",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
            &headers,
        )
        .await;
    assert_failure(&r, 403, Some(&body), "signatures over other bytes");

    // Malformed signature text, in either header: 400 (format) or 403 (does not verify).
    let sample = sila.key.sign(b"sample");
    for bad in [
        "zz".repeat(65),
        "0x1234".to_string(),
        sample[..128].to_string(),
        format!("{sample}00"),
        format!("{}1d", &sample[..128]),
        String::new(),
    ] {
        for bad_header in ["authsignature", "usersignature"] {
            let body = sila.register_wallet_body(ALICE, &new, json!({}));
            let bytes = serde_json::to_vec(&body).unwrap();
            let mut headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&alice));
            for (name, value) in headers.iter_mut() {
                if *name == bad_header {
                    *value = bad.clone();
                }
            }
            let r = sila
                .send("register_wallet", "application/json", bytes, &headers)
                .await;
            assert_failure_4xx(
                &r,
                &[400, 403],
                &body,
                &format!("malformed {bad_header} {bad:?}"),
            );
        }
    }

    // wallet_verification_signature: by another key, over another address, absent.
    let mut body = sila.register_wallet_body(ALICE, &new, json!({}));
    body["wallet_verification_signature"] = json!(stranger.prove(&new.address));
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 403, Some(&body), "proof by another key");
    let mut body = sila.register_wallet_body(ALICE, &new, json!({}));
    body["wallet_verification_signature"] = json!(new.prove(&stranger.address));
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 403, Some(&body), "proof of another address");
    let mut body = sila.register_wallet_body(ALICE, &new, json!({}));
    body.as_object_mut()
        .unwrap()
        .remove("wallet_verification_signature");
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 403, Some(&body), "no proof");
    for bad in ["0x1234".to_string(), "zz".repeat(65)] {
        let mut body = sila.register_wallet_body(ALICE, &new, json!({}));
        body["wallet_verification_signature"] = json!(bad);
        let r = sila
            .call("register_wallet", &body, Some(&sila.key), Some(&alice))
            .await;
        assert_failure_4xx(&r, &[400, 403], &body, &format!("malformed proof {bad}"));
    }

    // Another app, with a valid signature, for a user it did not register.
    let other_app = SilaClient::register_app(&app, "otherapp.eth").await;
    let body = other_app.register_wallet_body(ALICE, &new, json!({}));
    let r = other_app
        .call("register_wallet", &body, Some(&other_app.key), Some(&alice))
        .await;
    assert_failure(&r, 403, Some(&body), "user of another app");
    let body = other_app.body(Some(ALICE), json!({}));
    let r = other_app
        .call("get_wallet", &body, Some(&other_app.key), Some(&alice))
        .await;
    assert_failure(&r, 403, Some(&body), "get_wallet of another app's user");

    assert_eq!(sila.wallet_count(ALICE, &alice).await, 1);
    assert_eq!(sila.wallet_count(BOB, &bob).await, 1);
    // The address was never taken: it registers now.
    let r = sila.register_wallet(ALICE, &alice, &new, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// 3c. Wallet fields that break the rules.
async fn invalid_wallets_are_refused_and_change_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (sila, alice, bob) = setup(&app).await;
    let new = Key::random();
    let hex40 = &new.address[2..];

    let mut cases: Vec<(String, Value)> = Vec::new();
    for bad in [
        "0x123".to_string(),
        format!("0x{}", "zz".repeat(20)),
        format!("0x{}", &hex40[..39]),
        format!("0x{hex40}0"),
        hex40.to_string(),
        String::new(),
    ] {
        cases.push((
            format!("address {bad:?}"),
            json!({"blockchain_address": bad}),
        ));
    }
    cases.push(("address a number".into(), json!({"blockchain_address": 42})));
    cases.push(("network BTC".into(), json!({"blockchain_network": "BTC"})));
    cases.push(("nickname 41".into(), json!({"nickname": "n".repeat(41)})));
    cases.push(("nickname empty".into(), json!({"nickname": ""})));
    cases.push(("nickname control".into(), json!({"nickname": "a\nb"})));
    cases.push(("nickname duplicate".into(), json!({"nickname": "main"})));
    cases.push((
        "nickname duplicate, case".into(),
        json!({"nickname": "MAIN"}),
    ));
    cases.push(("default not a bool".into(), json!({"default": "yes"})));
    for (what, wallet) in cases {
        let body = sila.register_wallet_body(ALICE, &new, wallet);
        let r = sila
            .call("register_wallet", &body, Some(&sila.key), Some(&alice))
            .await;
        assert_failure(&r, 400, Some(&body), &what);
    }
    let mut body = sila.register_wallet_body(ALICE, &new, json!({}));
    body.as_object_mut().unwrap().remove("wallet");
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 400, Some(&body), "no wallet object");

    // Addresses already registered: alice's own, bob's (each proven by its key).
    for (what, taken) in [("own address", &alice), ("another user's address", &bob)] {
        let body = sila.register_wallet_body(ALICE, taken, json!({"nickname": "dup"}));
        let r = sila
            .call("register_wallet", &body, Some(&sila.key), Some(&alice))
            .await;
        assert_failure(&r, 400, Some(&body), what);
    }
    // A taken address in `register` too.
    let body = sila.register_body("carol.eth", &bob, Some("main"));
    let r = sila.call("register", &body, Some(&sila.key), None).await;
    assert_failure(&r, 400, Some(&body), "register with a taken address");
    assert_eq!(sila.check_handle("carol.eth").await.body["success"], true);

    // update_wallet: nothing to update, bad nickname, wrong types.
    for (what, extra) in [
        ("update nothing", json!({})),
        ("update nickname 41", json!({"nickname": "n".repeat(41)})),
        ("update nickname empty", json!({"nickname": ""})),
        ("update default not bool", json!({"default": 1})),
    ] {
        let body = sila.body(Some(ALICE), extra);
        let r = sila
            .call("update_wallet", &body, Some(&sila.key), Some(&alice))
            .await;
        assert_failure(&r, 400, Some(&body), what);
    }

    assert_eq!(sila.wallet_count(ALICE, &alice).await, 1);
    assert_eq!(sila.wallet_count(BOB, &bob).await, 1);
    assert_eq!(sila.wallets(ALICE, &alice).await[0]["nickname"], "main");

    // The limits themselves are fine: a 40-character nickname, then a clash by update.
    let forty = "n".repeat(40);
    let r = sila
        .register_wallet(ALICE, &alice, &new, json!({"nickname": forty}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["wallet_nickname"], forty.as_str());
    let body = sila.body(Some(ALICE), json!({"nickname": "Main"}));
    let r = sila
        .call("update_wallet", &body, Some(&sila.key), Some(&new))
        .await;
    assert_failure(&r, 400, Some(&body), "update to another wallet's nickname");
    assert_eq!(
        wallet_of(&sila, ALICE, &new).await["nickname"],
        forty.as_str()
    );
}

// 3d. Replays and requests outside the clock window.
async fn replays_and_stale_requests_are_refused_and_change_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (sila, alice, _) = setup(&app).await;

    // The exact same signed bytes twice.
    let k3 = Key::random();
    let body3 = sila.register_wallet_body(ALICE, &k3, json!({"nickname": "three"}));
    let bytes = serde_json::to_vec(&body3).unwrap();
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&alice));
    let r = sila
        .send(
            "register_wallet",
            "application/json",
            bytes.clone(),
            &headers,
        )
        .await;
    assert_success(&r, &body3);
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 2);
    let r = sila
        .send("register_wallet", "application/json", bytes, &headers)
        .await;
    assert_replayed(&r, &body3, "replayed register_wallet");
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 2);

    // The same signed bytes six times at once: one is accepted.
    let k5 = Key::random();
    let body5 = sila.register_wallet_body(ALICE, &k5, json!({"nickname": "five"}));
    let bytes = serde_json::to_vec(&body5).unwrap();
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&alice));
    let answers = futures_util::future::join_all((0..6).map(|_| {
        sila.send(
            "register_wallet",
            "application/json",
            bytes.clone(),
            &headers,
        )
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        5,
        "{statuses:?}"
    );
    // However the race went, a loser's refusal is the replay's.
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_replayed(r, &body5, "one of six at once");
    }
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 3);

    // The same reference on another body, freshly signed by the same app.
    let k4 = Key::random();
    let mut body4 = sila.register_wallet_body(ALICE, &k4, json!({"nickname": "four"}));
    body4["header"]["reference"] = body3["header"]["reference"].clone();
    let r = sila
        .call("register_wallet", &body4, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 400, Some(&body4), "reused reference");
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 3);

    // A read replayed is refused too.
    let body = sila.body(Some(ALICE), json!({}));
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&alice));
    let r = sila
        .send("get_wallet", "application/json", bytes.clone(), &headers)
        .await;
    assert_success(&r, &body);
    let r = sila
        .send("get_wallet", "application/json", bytes, &headers)
        .await;
    assert_failure(&r, 400, Some(&body), "replayed get_wallet");

    // Without a reference: once per exact body; the answer's reference is null.
    let mut body = sila.body(Some(ALICE), json!({"search_filters": {"page": 1}}));
    body["header"].as_object_mut().unwrap().remove("reference");
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&alice));
    let r = sila
        .send("get_wallets", "application/json", bytes.clone(), &headers)
        .await;
    assert_success(&r, &body);
    assert!(r.body["reference"].is_null());
    let r = sila
        .send("get_wallets", "application/json", bytes, &headers)
        .await;
    assert_failure(&r, 400, None, "replay without reference");
    let mut other = sila.body(
        Some(ALICE),
        json!({"search_filters": {"page": 1, "per_page": 5}}),
    );
    other["header"].as_object_mut().unwrap().remove("reference");
    let r = sila
        .call("get_wallets", &other, Some(&sila.key), Some(&alice))
        .await;
    assert_success(&r, &other);

    // `created` ten minutes off either way; inside the window is fine.
    for (what, offset) in [("10 min past", -600), ("10 min future", 600)] {
        let mut body = sila.register_wallet_body(ALICE, &k4, json!({"nickname": "four"}));
        body["header"]["created"] = json!(now() + offset);
        let r = sila
            .call("register_wallet", &body, Some(&sila.key), Some(&alice))
            .await;
        assert_failure(&r, 400, Some(&body), what);
    }
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 3);
    let mut body = sila.register_wallet_body(ALICE, &k4, json!({"nickname": "four"}));
    body["header"]["created"] = json!(now() - 200);
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_success(&r, &body);
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 4);
}

/// The replay refusal: 400, the error shape, the reference echoed.
fn assert_replayed(r: &crate::helpers::Resp, sent: &Value, what: &str) {
    assert_failure(r, 400, Some(sent), what);
    assert_eq!(
        r.body["message"],
        walletd::service::sila_users::SilaError::Replayed.to_string(),
        "{what}"
    );
}

async fn event_total(app: &TestApp) -> i64 {
    walletd::projections::with_db!(&app.app.db, pool => {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

// 3e. A committed write sent again verbatim (a client retrying after a lost
// answer), to the same process or another one on the database: the replay
// refusal, not the endpoint's refusal of the write's own effects ("user
// handle is already taken"), and nothing is written.
async fn a_committed_write_sent_again_is_refused_as_a_replay(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let alice = Key::random();
    let register = sila.register_body(ALICE, &alice, Some("main"));
    let register_bytes = serde_json::to_vec(&register).unwrap();
    let register_headers = SilaClient::signatures(&register_bytes, Some(&sila.key), None);
    let r = sila
        .send(
            "register",
            "application/json",
            register_bytes.clone(),
            &register_headers,
        )
        .await;
    assert_success(&r, &register);
    let second = Key::random();
    let add = sila.register_wallet_body(ALICE, &second, json!({"nickname": "two"}));
    let add_bytes = serde_json::to_vec(&add).unwrap();
    let add_headers = SilaClient::signatures(&add_bytes, Some(&sila.key), Some(&alice));
    let r = sila
        .send(
            "register_wallet",
            "application/json",
            add_bytes.clone(),
            &add_headers,
        )
        .await;
    assert_success(&r, &add);
    let events = event_total(&app).await;

    // Started off this thread: the in-process server's projector must go on
    // meanwhile, or the new process waits on the projection lock it holds.
    let (url, master, key) = (
        app.db.url.clone(),
        app.master_key.clone(),
        app.api_key.clone(),
    );
    let log = app.db.dir.path().join("other-process.log");
    let other = actix_web::rt::task::spawn_blocking(move || {
        BinaryServer::start(&url, master.as_deref(), &key, &log)
    })
    .await
    .unwrap();
    for (process, base) in [("same process", &app.base), ("other process", &other.base)] {
        let client = sila.on(base);
        let r = client
            .send(
                "register",
                "application/json",
                register_bytes.clone(),
                &register_headers,
            )
            .await;
        assert_replayed(&r, &register, &format!("register, {process}"));
        let r = client
            .send(
                "register_wallet",
                "application/json",
                add_bytes.clone(),
                &add_headers,
            )
            .await;
        assert_replayed(&r, &add, &format!("register_wallet, {process}"));
    }
    drop(other);
    assert_eq!(event_total(&app).await, events, "nothing written");
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 2);
}

// 4a. One new address, many users at once: one winner.
async fn concurrent_registration_of_one_address_has_one_winner(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let mut users = Vec::new();
    for i in 0..8 {
        let handle = format!("racer-{i}.eth");
        let key = sila.register_user(&handle).await;
        users.push((handle, key));
    }
    let rounds = 5;
    let mut winners = vec![0i64; users.len()];
    for round in 0..rounds {
        let contested = Key::random();
        let nickname = format!("race-{round}");
        let answers =
            join_all(users.iter().map(|(h, k)| {
                sila.register_wallet(h, k, &contested, json!({"nickname": nickname}))
            }))
            .await;
        let won: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == 200)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one winner");
        for (i, r) in answers.iter().enumerate() {
            if i != won[0] {
                assert_eq!(r.status, 400, "round {round}, user {i}: {}", r.body);
                assert_failure_shape(r, "lost the race");
            } else {
                assert_eq!(r.body["success"], true);
            }
        }
        winners[won[0]] += 1;
        // The address belongs to the winner, once.
        let (h, k) = &users[won[0]];
        let r = sila
            .get_wallets(h, k, Some(json!({"blockchain_address": contested.address})))
            .await;
        assert_eq!(r.body["total_count"], 1, "{}", r.body);
        assert_eq!(
            wallet_of(&sila, h, &contested).await["blockchain_address"],
            contested.address
        );
    }
    let mut total = 0;
    for (i, (h, k)) in users.iter().enumerate() {
        let n = sila.wallet_count(h, k).await;
        assert_eq!(n, 1 + winners[i], "{h}");
        total += n;
    }
    assert_eq!(total, users.len() as i64 + rounds);
}

// 4b. Concurrent `default: true` from every wallet of one user: one default.
async fn concurrent_default_updates_leave_one_default(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let first = sila.register_user(ALICE).await;
    let mut wallets = vec![first.clone()];
    for i in 0..4 {
        let (k, _) = sila
            .add_wallet(ALICE, &first, json!({"nickname": format!("w{i}")}))
            .await;
        wallets.push(k);
    }
    for round in 0..3 {
        let answers = join_all((0..20).map(|i| {
            sila.user_call(
                "update_wallet",
                ALICE,
                &wallets[i % wallets.len()],
                json!({"default": true}),
            )
        }))
        .await;
        for r in &answers {
            assert_eq!(r.status, 200, "round {round}: {}", r.body);
            assert_eq!(r.body["success"], true);
            assert_eq!(r.body["wallet"]["default"], true);
        }
        let listed = sila.wallets(ALICE, &first).await;
        assert_eq!(listed.len(), wallets.len());
        let defaults: Vec<_> = listed.iter().filter(|w| w["default"] == true).collect();
        assert_eq!(defaults.len(), 1, "round {round}: {listed:?}");
        // get_wallet agrees with the list.
        let mut by_key = 0;
        for k in &wallets {
            if wallet_of(&sila, ALICE, k).await["default"] == true {
                by_key += 1;
                assert_eq!(defaults[0]["blockchain_address"], k.address);
            }
        }
        assert_eq!(by_key, 1);
    }
}

fn user_token(user: &str, app_handle: &str) -> String {
    token_with(json!({
        "sub": user,
        "role": "MEMBER",
        "exp": now() + 600,
        "app_handle": app_handle,
        "aud": walletd::auth::jwt::DEFAULT_SILA_AUDIENCE,
    }))
}

// 5a. register_wallet with an authentication token.
async fn token_mode_register_wallet(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "tokapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let token = user_token(ALICE, "tokapp.eth");

    let body = sila.body(Some(ALICE), json!({"wallet": {}}));
    let r = sila
        .call_token("register_wallet", &body, Some(&token))
        .await;
    assert_success(&r, &body);
    assert_eq!(keys(&r.body), set(REGISTER_WALLET_KEYS), "{}", r.body);
    assert!(is_uuid(&r.body["wallet_id"]), "{}", r.body);
    let id = r.body["wallet_id"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["message"],
        format!("New ledger account created, id: {id}")
    );
    assert_eq!(r.body["wallet_nickname"], format!("wallet-{}", &id[..8]));
    assert_eq!(r.body["queued_for_whitelist"], false);
    assert!(r.body["statements_enabled"].is_boolean(), "{}", r.body);

    // The new wallet is the user's, with a server-made address.
    let listed = sila.wallets(ALICE, &k1).await;
    assert_eq!(listed.len(), 2);
    let w = listed
        .iter()
        .find(|w| w["wallet_id"] == id.as_str())
        .expect("listed");
    assert_eq!(w["nickname"], format!("wallet-{}", &id[..8]));
    assert_eq!(w["default"], false);
    assert_eq!(w["blockchain_network"], "ETH");
    let address = w["blockchain_address"].as_str().unwrap();
    assert_eq!(address, checksum(address), "EIP-55");
    assert_ne!(address, k1.address);

    // Nickname and default given.
    let body = sila.body(
        Some(ALICE),
        json!({"wallet": {"nickname": "tok", "default": true}}),
    );
    let r = sila
        .call_token("register_wallet", &body, Some(&token))
        .await;
    assert_success(&r, &body);
    assert_eq!(r.body["wallet_nickname"], "tok");
    let tok_id = r.body["wallet_id"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["message"],
        format!("New ledger account created, id: {tok_id}")
    );
    let listed = sila.wallets(ALICE, &k1).await;
    assert_eq!(listed.len(), 3);
    let defaults: Vec<_> = listed.iter().filter(|w| w["default"] == true).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["wallet_id"], tok_id.as_str());
    assert_eq!(defaults[0]["nickname"], "tok");
    assert_eq!(wallet_of(&sila, ALICE, &k1).await["default"], false);
}

// 5b. Token-mode refusals.
async fn token_mode_refusals(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "tokapp.eth").await;
    let other = SilaClient::register_app(&app, "otherapp.eth").await;
    let alice = sila.register_user(ALICE).await;
    let bob = other.register_user(BOB).await;
    let good = user_token(ALICE, "tokapp.eth");
    let wallet = json!({"wallet": {"nickname": "t"}});

    // Neither signatures nor a token.
    let body = sila.body(Some(ALICE), wallet.clone());
    let r = sila.call_token("register_wallet", &body, None).await;
    assert_failure(&r, 403, Some(&body), "no token, no signatures");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("authsignature"),
        "{}",
        r.body
    );

    let wrong_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": ALICE, "role": "MEMBER", "exp": now() + 600, "app_handle": "tokapp.eth"}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-secret-not-the-secret-00"),
    )
    .unwrap();
    let expired = token_with(json!({
        "sub": ALICE, "role": "MEMBER", "exp": now() - 600, "app_handle": "tokapp.eth"
    }));
    let no_claim = token_with(json!({"sub": ALICE, "role": "MEMBER", "exp": now() + 600}));
    for (what, token) in [
        ("not a JWT", "not-a-jwt".to_string()),
        ("wrong secret", wrong_secret),
        ("expired", expired),
        ("no app_handle claim", no_claim),
    ] {
        let body = sila.body(Some(ALICE), wallet.clone());
        let r = sila
            .call_token("register_wallet", &body, Some(&token))
            .await;
        assert_failure_4xx(&r, &[401, 403], &body, what);
    }

    // The header names another (registered) app than the token.
    let body = other.body(Some(ALICE), wallet.clone());
    let r = other
        .call_token("register_wallet", &body, Some(&good))
        .await;
    assert_failure_4xx(&r, &[400, 401, 403], &body, "header app != token app");

    // A token for an unregistered app, with the header naming it or not.
    let ghost = user_token(ALICE, "ghost.eth");
    let mut body = sila.body(Some(ALICE), wallet.clone());
    body["header"]["app_handle"] = json!("ghost.eth");
    let r = sila
        .call_token("register_wallet", &body, Some(&ghost))
        .await;
    assert_failure_4xx(
        &r,
        &[400, 401, 403],
        &body,
        "unregistered app in token and header",
    );
    let body = sila.body(Some(ALICE), wallet.clone());
    let r = sila
        .call_token("register_wallet", &body, Some(&ghost))
        .await;
    assert_failure_4xx(&r, &[400, 401, 403], &body, "unregistered app in token");

    // A user that app did not register; a user nobody registered; no user_handle.
    let body = sila.body(Some(BOB), wallet.clone());
    let r = sila
        .call_token(
            "register_wallet",
            &body,
            Some(&user_token(BOB, "tokapp.eth")),
        )
        .await;
    assert_failure_4xx(&r, &[400, 401, 403], &body, "user of another app");
    let body = sila.body(Some("nobody.eth"), wallet.clone());
    let r = sila
        .call_token(
            "register_wallet",
            &body,
            Some(&user_token("nobody.eth", "tokapp.eth")),
        )
        .await;
    assert_failure_4xx(&r, &[400, 401, 403], &body, "unknown user");
    let body = sila.body(None, wallet.clone());
    let r = sila.call_token("register_wallet", &body, Some(&good)).await;
    assert_failure(&r, 401, Some(&body), "no user_handle");

    // Invalid wallet fields are still refused.
    let body = sila.body(Some(ALICE), json!({"wallet": {"nickname": "n".repeat(41)}}));
    let r = sila.call_token("register_wallet", &body, Some(&good)).await;
    assert_failure(&r, 400, Some(&body), "token mode, nickname 41");
    let body = sila.body(Some(ALICE), json!({"wallet": {"nickname": "main"}}));
    let r = sila.call_token("register_wallet", &body, Some(&good)).await;
    assert_failure(&r, 400, Some(&body), "token mode, duplicate nickname");

    assert_eq!(sila.wallet_count(ALICE, &alice).await, 1);
    assert_eq!(other.wallet_count(BOB, &bob).await, 1);
    // The good token still works afterwards.
    let body = sila.body(Some(ALICE), wallet.clone());
    let r = sila.call_token("register_wallet", &body, Some(&good)).await;
    assert_success(&r, &body);
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 2);
}
