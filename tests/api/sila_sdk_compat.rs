//! What Sila's own SDKs need beyond the document (issue 10): the message
//! templates the Python SDK fetches at start-up, bodies sent without a
//! Content-Type, and the SDK templates' alternative field names.

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{into_resp, spawn_app, Backend, Resp, TestApp};
use crate::sila_client::{
    assert_failure, assert_failure_shape, assert_success, reference_of, Key, SilaClient,
};

backend_tests!(
    getmessage_serves_the_sdk_templates,
    a_body_without_content_type_is_read_as_json_and_verified,
    alternative_field_names_are_accepted,
    conflicting_field_names_are_refused_and_write_nothing,
    an_empty_crypto_alias_is_no_alias,
);

const ALICE: &str = "alice.eth";

async fn event_count(app: &TestApp) -> i64 {
    walletd::projections::log::count(&app.app.db).await.unwrap()
}

async fn setup(app: &TestApp) -> (SilaClient, Key) {
    let sila = SilaClient::register_app(app, "sdkapp.eth").await;
    let alice = sila.register_user(ALICE).await;
    (sila, alice)
}

async fn getmessage(app: &TestApp, query: &str) -> Resp {
    let res = app
        .client
        .get(app.url(&format!("/0.2/getmessage{query}")))
        .send()
        .await
        .expect("request sent");
    into_resp(res).await
}

/// Sends exactly `bytes` with `headers` and no Content-Type at all, as
/// Sila's Python SDK does.
async fn send_untyped(
    sila: &SilaClient,
    endpoint: &str,
    bytes: Vec<u8>,
    headers: &[(&str, String)],
) -> Resp {
    let mut req = sila.client.post(sila.url(endpoint));
    for (k, v) in headers {
        req = req.insert_header((*k, v.as_str()));
    }
    assert!(!req.headers().contains_key("content-type"));
    let res = req.send_body(bytes).await.expect("request sent");
    into_resp(res).await
}

/// Python's `json.dumps` spelling (`", "` and `": "` separators), which is
/// what the Python SDK signs and sends.
fn python_json(v: &Value) -> Vec<u8> {
    match v {
        Value::Object(m) => {
            let fields: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        Value::String(k.clone()),
                        String::from_utf8(python_json(v)).unwrap()
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(", ")).into_bytes()
        }
        Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|v| String::from_utf8(python_json(v)).unwrap())
                .collect();
            format!("[{}]", items.join(", ")).into_bytes()
        }
        other => other.to_string().into_bytes(),
    }
}

// The five templates `silasdk` 1.1.3 asks for when an `App` is made, each
// filed by the SDK under its `message`; unknown or missing names are a 400
// in Sila's error shape.
async fn getmessage_serves_the_sdk_templates(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    for (name, message, fields) in [
        ("header", "header_msg", &[][..]),
        (
            "entity",
            "entity_msg",
            &["entity", "address", "identity", "contact", "crypto_entry"][..],
        ),
        ("identity", "identity_msg", &["identity"][..]),
        ("crypto", "crypto_msg", &["crypto_entry"][..]),
        ("linkAccount", "link_account_msg", &["account_name"][..]),
    ] {
        let r = getmessage(&app, &format!("?emptymessage={name}TestMessage")).await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.body["message"], message, "{name}: {}", r.body);
        let header = r.body["header"].as_object().expect("header");
        for key in ["created", "app_handle", "user_handle", "reference"] {
            assert!(header[key].is_null(), "{name}: header.{key}: {}", r.body);
        }
        assert_eq!(header["version"], "0.2");
        for field in fields {
            assert!(
                r.body.get(*field).is_some(),
                "{name}: no {field}: {}",
                r.body
            );
        }
    }
    let entity = getmessage(&app, "?emptymessage=EntityTestMessage").await;
    assert_eq!(entity.status, 200, "{}", entity.body);
    assert!(entity.body["crypto_entry"]
        .as_object()
        .unwrap()
        .contains_key("crypto_address"));

    for query in [
        "?emptymessage=transferTestMessage",
        "?emptymessage=header",
        "?emptymessage=",
        "",
        "?other=headerTestMessage",
    ] {
        let r = getmessage(&app, query).await;
        assert_failure(&r, 400, None, query);
        assert!(
            r.body["validation_details"]["emptymessage"].is_string(),
            "{query}: {}",
            r.body
        );
    }
    let r = getmessage(&app, "?emptymessage=nopeTestMessage").await;
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("headerTestMessage")),
        "names the known templates: {}",
        r.body
    );
    assert_eq!(event_count(&app).await, 0);
}

// The Python SDK sends no Content-Type. Such a body is read as JSON and its
// signatures are checked over the exact bytes received; a Content-Type that
// is present and not JSON stays 415.
async fn a_body_without_content_type_is_read_as_json_and_verified(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "sdkapp.eth").await;

    // register, exactly as Python serialises it.
    let alice = Key::random();
    let body = sila.register_body(ALICE, &alice, Some("main"));
    let bytes = python_json(&body);
    assert!(bytes.windows(2).any(|w| w == b", "));
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), None);
    let r = send_untyped(&sila, "register", bytes, &headers).await;
    assert_success(&r, &body);
    assert_eq!(
        r.body["message"],
        format!("{ALICE} was successfully registered.")
    );
    let after_register = event_count(&app).await;

    // A signed register_wallet: the wallet is there afterwards.
    let new = Key::random();
    let body = sila.register_wallet_body(ALICE, &new, json!({"nickname": "untyped"}));
    let bytes = python_json(&body);
    let signed = SilaClient::signatures(&bytes, Some(&sila.key), Some(&alice));

    // The same bytes with a space added after signing: refused, nothing written.
    let mut altered = bytes.clone();
    altered.push(b' ');
    let r = send_untyped(&sila, "register_wallet", altered, &signed).await;
    assert_failure(&r, 403, Some(&body), "bytes changed after signing");
    // Signed by the app only: the user signature is still required. (Another
    // body: a refusal after the app authenticated uses its body up.)
    let other = sila.register_wallet_body(ALICE, &new, json!({"nickname": "untyped"}));
    let other_bytes = python_json(&other);
    let app_only = SilaClient::signatures(&other_bytes, Some(&sila.key), None);
    let r = send_untyped(&sila, "register_wallet", other_bytes, &app_only).await;
    assert_failure(&r, 403, Some(&other), "no usersignature");
    // A Content-Type that is present and not JSON: 415.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = sila
            .send("register_wallet", content_type, bytes.clone(), &signed)
            .await;
        assert_eq!(r.status, 415, "{content_type}: {}", r.body);
        assert_failure_shape(&r, content_type);
    }
    // Not JSON: 400.
    let r = send_untyped(&sila, "register_wallet", b"wallet=1".to_vec(), &signed).await;
    assert_failure(&r, 400, None, "no Content-Type, not JSON");
    assert_eq!(event_count(&app).await, after_register, "nothing written");

    // The untouched request, whose reference no refusal consumed.
    let r = send_untyped(&sila, "register_wallet", bytes, &signed).await;
    assert_success(&r, &body);
    assert_eq!(r.body["wallet_nickname"], "untyped");

    // Reads too: the new wallet signs get_wallet.
    let body = sila.body(Some(ALICE), json!({}));
    let bytes = python_json(&body);
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), Some(&new));
    let r = send_untyped(&sila, "get_wallet", bytes, &headers).await;
    assert_success(&r, &body);
    assert_eq!(r.body["wallet"]["blockchain_address"], new.address);
    assert_eq!(r.body["wallet"]["nickname"], "untyped");
}

// `wallet.wallet_address` / `wallet.network` (the Python SDK template's
// names) in register_wallet, and the same names in get_wallets' filters.
async fn alternative_field_names_are_accepted(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (sila, alice) = setup(&app).await;

    // Only the alternative names (as the SDK's own tests send them).
    let one = Key::random();
    let body = sila.body(
        Some(ALICE),
        json!({
            "wallet_verification_signature": one.prove(&one.address),
            "wallet": {"wallet_address": one.address, "network": "ETH", "nickname": "alt one"},
        }),
    );
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_success(&r, &body);
    assert_eq!(
        r.body["message"],
        format!("Blockchain address {} registered.", one.address)
    );
    assert_eq!(r.body["wallet_nickname"], "alt one");

    // Both names with one value (the SDK template carries both).
    let two = Key::random();
    let body = sila.body(
        Some(ALICE),
        json!({
            "wallet_verification_signature": two.prove(&two.address),
            "wallet": {
                "blockchain_address": two.address, "wallet_address": two.address,
                "blockchain_network": "ETH", "network": "ETH", "nickname": "alt two",
            },
        }),
    );
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_success(&r, &body);

    // A malformed address under the alternative name is reported under it.
    let body = sila.body(
        Some(ALICE),
        json!({
            "wallet_verification_signature": one.prove("0x12"),
            "wallet": {"wallet_address": "0x12"},
        }),
    );
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 400, Some(&body), "malformed wallet_address");
    assert!(
        r.body["validation_details"]["wallet"]["wallet_address"].is_string(),
        "{}",
        r.body
    );

    // get_wallets filters by either name.
    for filters in [
        json!({"wallet_address": one.address, "network": "ETH"}),
        json!({"wallet_address": one.address.to_lowercase()}),
        json!({"blockchain_address": one.address, "wallet_address": one.address}),
    ] {
        let r = sila.get_wallets(ALICE, &alice, Some(filters.clone())).await;
        assert_eq!(r.status, 200, "{filters}: {}", r.body);
        assert_eq!(r.body["total_count"], 1, "{filters}: {}", r.body);
        assert_eq!(r.body["wallets"][0]["blockchain_address"], one.address);
        assert_eq!(r.body["wallets"][0]["nickname"], "alt one");
    }
    let r = sila
        .get_wallets(ALICE, &alice, Some(json!({"network": "ETH"})))
        .await;
    assert_eq!(r.body["total_count"], 3, "{}", r.body);
    let r = sila
        .get_wallets(ALICE, &alice, Some(json!({"network": "BTC"})))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["validation_details"]["search_filters"]["network"].is_string(),
        "{}",
        r.body
    );
}

// Both names with different values: 400 naming both, nothing written, and
// the reference is not consumed.
async fn conflicting_field_names_are_refused_and_write_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (sila, alice) = setup(&app).await;
    let before = event_count(&app).await;
    let new = Key::random();
    let other = Key::random();

    let mut body = sila.register_wallet_body(ALICE, &new, json!({"wallet_address": other.address}));
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 400, Some(&body), "two addresses");
    let details = &r.body["validation_details"]["wallet"];
    assert!(details["blockchain_address"].is_string(), "{}", r.body);
    assert!(details["wallet_address"].is_string(), "{}", r.body);

    // Differently spelled address: the text is what was signed, so it must agree.
    let lower = sila.register_wallet_body(
        ALICE,
        &new,
        json!({"wallet_address": new.address.to_lowercase()}),
    );
    let r = sila
        .call("register_wallet", &lower, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 400, Some(&lower), "two spellings");

    let network = sila.register_wallet_body(ALICE, &new, json!({"network": "BTC"}));
    let r = sila
        .call("register_wallet", &network, Some(&sila.key), Some(&alice))
        .await;
    assert_failure(&r, 400, Some(&network), "two networks");
    assert!(
        r.body["validation_details"]["wallet"]["network"].is_string(),
        "{}",
        r.body
    );

    let filters = json!({"blockchain_address": new.address, "wallet_address": other.address});
    let r = sila.get_wallets(ALICE, &alice, Some(filters)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["validation_details"]["search_filters"]["wallet_address"].is_string(),
        "{}",
        r.body
    );

    assert_eq!(event_count(&app).await, before, "nothing written");
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 1);

    // The first request corrected, with its reference: accepted.
    body["wallet"]
        .as_object_mut()
        .unwrap()
        .remove("wallet_address");
    assert!(reference_of(&body).is_some());
    let r = sila
        .call("register_wallet", &body, Some(&sila.key), Some(&alice))
        .await;
    assert_success(&r, &body);
    assert_eq!(sila.wallet_count(ALICE, &alice).await, 2);
}

// Sila's Node SDK sends `crypto_alias: ""` in register when the caller set
// none: the wallet gets a generated nickname, as with no alias at all.
async fn an_empty_crypto_alias_is_no_alias(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "sdkapp.eth").await;
    let key = Key::random();
    let body = sila.register_body(ALICE, &key, Some(""));
    let r = sila.call("register", &body, Some(&sila.key), None).await;
    assert_success(&r, &body);
    let r = sila.get_wallet(ALICE, &key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let nickname = r.body["wallet"]["nickname"].as_str().unwrap_or_default();
    let id = r.body["wallet"]["wallet_id"].as_str().unwrap_or_default();
    assert_eq!(nickname, format!("wallet-{}", &id[..8]), "{}", r.body);
    assert_eq!(r.body["wallet"]["default"], true, "{}", r.body);
}
