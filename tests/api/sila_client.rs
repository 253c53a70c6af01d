//! A test-side Sila client, independent of walletd's own code: keys and
//! signatures from libsecp256k1, keccak and EIP-55 from alloy, requests as
//! exact bytes signed once.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use secp256k1::{All, Message, Secp256k1, SecretKey};
use serde_json::{json, Value};

use crate::helpers::{into_resp, now, Resp, TestApp};

static SECP: LazyLock<Secp256k1<All>> = LazyLock::new(Secp256k1::new);

/// A secp256k1 key and its EIP-55 address.
#[derive(Clone)]
pub struct Key {
    secret: SecretKey,
    /// EIP-55 checksummed.
    pub address: String,
}

impl Key {
    pub fn random() -> Key {
        loop {
            let mut b = [0u8; 32];
            getrandom::getrandom(&mut b).unwrap();
            if let Ok(secret) = SecretKey::from_byte_array(b) {
                let public = secret.public_key(&SECP).serialize_uncompressed();
                let address =
                    alloy_primitives::Address::from_raw_public_key(&public[1..]).to_checksum(None);
                return Key { secret, address };
            }
        }
    }

    /// Sila's signature: secp256k1 over keccak256(bytes), no Ethereum prefix,
    /// 65 bytes r‖s‖v with v = 27/28, as 130 hex digits.
    pub fn sign(&self, bytes: &[u8]) -> String {
        self.sign_with(bytes, false)
    }

    /// `zero_based_v`: v = 0/1 instead of 27/28.
    pub fn sign_with(&self, bytes: &[u8], zero_based_v: bool) -> String {
        let digest = alloy_primitives::keccak256(bytes);
        let sig = SECP.sign_ecdsa_recoverable(Message::from_digest(digest.0), &self.secret);
        let (recid, rs) = sig.serialize_compact();
        let v = i32::from(recid) as u8 + if zero_based_v { 0 } else { 27 };
        let mut out = rs.to_vec();
        out.push(v);
        hex::encode(out)
    }

    /// The `wallet_verification_signature`: the address text, signed.
    pub fn prove(&self, address_text: &str) -> String {
        self.sign(address_text.as_bytes())
    }

    pub fn address_lower(&self) -> String {
        self.address.to_lowercase()
    }
}

/// EIP-55 form of any 0x address, by alloy.
pub fn checksum(address: &str) -> String {
    address
        .parse::<alloy_primitives::Address>()
        .unwrap()
        .to_checksum(None)
}

/// One Sila client app (an `app_handle` and its signing key) talking to one
/// walletd over HTTP.
pub struct SilaClient {
    pub base: String,
    pub client: awc::Client,
    pub handle: String,
    pub key: Key,
}

impl SilaClient {
    /// A client for an app that is already registered (or registered by the caller).
    pub fn new(base: &str, handle: &str, key: Key) -> SilaClient {
        SilaClient {
            base: base.to_string(),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .finish(),
            handle: handle.to_string(),
            key,
        }
    }

    /// Registers app `handle` with a fresh key in `app`'s store.
    pub async fn register_app(app: &TestApp, handle: &str) -> SilaClient {
        let key = Key::random();
        walletd::service::apps::register_app(&app.app, handle, &key.address)
            .await
            .unwrap();
        SilaClient::new(&app.base, handle, key)
    }

    /// Adds another signing address to this app.
    pub async fn add_app_key(&self, app: &TestApp) -> Key {
        let key = Key::random();
        walletd::service::apps::register_app(&app.app, &self.handle, &key.address)
            .await
            .unwrap();
        key
    }

    /// The same app against another server (a restart, another process).
    pub fn on(&self, base: &str) -> SilaClient {
        SilaClient::new(base, &self.handle, self.key.clone())
    }

    // ---- bodies ----

    /// A header with `created` now and a fresh reference.
    pub fn header(&self, user: Option<&str>) -> Value {
        let mut h = json!({
            "created": now(),
            "app_handle": self.handle,
            "version": "0.2",
            "crypto": "ETH",
            "reference": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(u) = user {
            h["user_handle"] = json!(u);
        }
        h
    }

    /// `{"header": <fresh header>, ...extra}`.
    pub fn body(&self, user: Option<&str>, extra: Value) -> Value {
        let mut body = json!({ "header": self.header(user) });
        if let Value::Object(fields) = extra {
            for (k, v) in fields {
                body[k] = v;
            }
        }
        body
    }

    /// A `register_wallet` (ECDSA) body for `new`'s address; `wallet_extra`
    /// (nickname, default, statements_enabled, or overrides) is merged into `wallet`.
    pub fn register_wallet_body(&self, user: &str, new: &Key, wallet_extra: Value) -> Value {
        let mut wallet = json!({
            "blockchain_address": new.address,
            "blockchain_network": "ETH",
        });
        if let Value::Object(fields) = wallet_extra {
            for (k, v) in fields {
                wallet[k] = v;
            }
        }
        let proof = new.prove(wallet["blockchain_address"].as_str().unwrap_or_default());
        self.body(
            Some(user),
            json!({ "wallet_verification_signature": proof, "wallet": wallet }),
        )
    }

    // ---- transport ----

    pub fn url(&self, endpoint: &str) -> String {
        format!("{}/0.2/{}", self.base, endpoint)
    }

    /// Sends exactly `bytes` with exactly `headers` (plus Content-Type).
    pub async fn send(
        &self,
        endpoint: &str,
        content_type: &str,
        bytes: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Resp {
        let mut req = self
            .client
            .post(self.url(endpoint))
            .insert_header(("Content-Type", content_type));
        for (k, v) in headers {
            req = req.insert_header((*k, v.as_str()));
        }
        let res = req.send_body(bytes).await.expect("request sent");
        into_resp(res).await
    }

    /// The signature headers for `bytes`.
    pub fn signatures(
        bytes: &[u8],
        auth: Option<&Key>,
        user: Option<&Key>,
    ) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(k) = auth {
            headers.push(("authsignature", k.sign(bytes)));
        }
        if let Some(k) = user {
            headers.push(("usersignature", k.sign(bytes)));
        }
        headers
    }

    /// Serialises `body` once and sends those bytes signed by `auth` / `user`.
    pub async fn call(
        &self,
        endpoint: &str,
        body: &Value,
        auth: Option<&Key>,
        user: Option<&Key>,
    ) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers = Self::signatures(&bytes, auth, user);
        self.send(endpoint, "application/json", bytes, &headers)
            .await
    }

    /// Token mode: only `Authorization: Bearer <token>` (if any), no signatures.
    pub async fn call_token(&self, endpoint: &str, body: &Value, token: Option<&str>) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        self.send(endpoint, "application/json", bytes, &headers)
            .await
    }

    /// A request for `user` signed by this app's key and `user_key`.
    pub async fn user_call(
        &self,
        endpoint: &str,
        user: &str,
        user_key: &Key,
        extra: Value,
    ) -> Resp {
        let body = self.body(Some(user), extra);
        self.call(endpoint, &body, Some(&self.key), Some(user_key))
            .await
    }

    // ---- endpoints ----

    pub async fn check_handle(&self, handle: &str) -> Resp {
        let body = self.body(Some(handle), json!({}));
        self.call("check_handle", &body, Some(&self.key), None)
            .await
    }

    pub fn register_body(&self, handle: &str, key: &Key, alias: Option<&str>) -> Value {
        let mut entry = json!({ "crypto_address": key.address, "crypto_code": "ETH" });
        if let Some(a) = alias {
            entry["crypto_alias"] = json!(a);
        }
        self.body(
            Some(handle),
            json!({
                "message": "entity_msg",
                "crypto_entry": entry,
                "entity": {
                    "first_name": "Test",
                    "last_name": "User",
                    "entity_name": "Test User",
                    "type": "individual",
                },
            }),
        )
    }

    /// `register` with `key` as the first wallet (alias "main"); asserts success.
    pub async fn register_user_with(&self, handle: &str, key: &Key) {
        let body = self.register_body(handle, key, Some("main"));
        let r = self.call("register", &body, Some(&self.key), None).await;
        assert_success(&r, &body);
        assert_eq!(
            r.body["message"],
            format!("{handle} was successfully registered."),
            "{}",
            r.body
        );
    }

    /// Registers `handle` with a fresh key as its first wallet.
    pub async fn register_user(&self, handle: &str) -> Key {
        let key = Key::random();
        self.register_user_with(handle, &key).await;
        key
    }

    pub async fn register_wallet(
        &self,
        user: &str,
        user_key: &Key,
        new: &Key,
        wallet_extra: Value,
    ) -> Resp {
        let body = self.register_wallet_body(user, new, wallet_extra);
        self.call("register_wallet", &body, Some(&self.key), Some(user_key))
            .await
    }

    /// Registers a fresh key as another wallet of `user`; returns it and its wallet id.
    pub async fn add_wallet(
        &self,
        user: &str,
        user_key: &Key,
        wallet_extra: Value,
    ) -> (Key, String) {
        let new = Key::random();
        let r = self
            .register_wallet(user, user_key, &new, wallet_extra)
            .await;
        assert_eq!(r.status, 200, "register_wallet: {}", r.body);
        assert_eq!(r.body["success"], true, "{}", r.body);
        let id = r.body["wallet_id"].as_str().expect("wallet_id").to_string();
        (new, id)
    }

    pub async fn get_wallet(&self, user: &str, key: &Key) -> Resp {
        self.user_call("get_wallet", user, key, json!({})).await
    }

    pub async fn get_wallets(&self, user: &str, key: &Key, filters: Option<Value>) -> Resp {
        let extra = match filters {
            Some(f) => json!({ "search_filters": f }),
            None => json!({}),
        };
        self.user_call("get_wallets", user, key, extra).await
    }

    /// `total_count` of `get_wallets` (asserting the call succeeds).
    pub async fn wallet_count(&self, user: &str, key: &Key) -> i64 {
        let r = self
            .get_wallets(user, key, Some(json!({"per_page": 100})))
            .await;
        assert_eq!(r.status, 200, "get_wallets: {}", r.body);
        assert_eq!(r.body["success"], true, "{}", r.body);
        r.body["total_count"].as_i64().expect("total_count")
    }

    /// Every wallet of `user` (one page of up to 100).
    pub async fn wallets(&self, user: &str, key: &Key) -> Vec<Value> {
        let r = self
            .get_wallets(user, key, Some(json!({"per_page": 100})))
            .await;
        assert_eq!(r.status, 200, "get_wallets: {}", r.body);
        r.body["wallets"].as_array().expect("wallets").clone()
    }

    pub async fn check_kyc(&self, user: &str, key: &Key) -> Resp {
        self.user_call("check_kyc", user, key, json!({})).await
    }

    pub async fn request_kyc(&self, user: &str, key: &Key) -> Resp {
        self.user_call("request_kyc", user, key, json!({})).await
    }

    /// `get_wallet` by `key` until `is_whitelisted` is true; panics after `within`.
    pub async fn wait_whitelisted(&self, user: &str, key: &Key, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get_wallet(user, key).await;
            assert_eq!(r.status, 200, "get_wallet: {}", r.body);
            if r.body["is_whitelisted"] == true {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{} of {user} not whitelisted within {within:?}: {}",
                key.address,
                r.body
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `check_kyc` until `verification_status` is `status`; panics after `within`.
    pub async fn wait_kyc(&self, user: &str, key: &Key, status: &str, within: Duration) -> Resp {
        let deadline = Instant::now() + within;
        loop {
            let r = self.check_kyc(user, key).await;
            if r.body["verification_status"] == status {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{user}: KYC not {status} within {within:?}: {} {}",
                r.status,
                r.body
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---- answers ----

/// The reference a body's header carries.
pub fn reference_of(body: &Value) -> Option<&str> {
    body["header"]["reference"].as_str()
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::try_parse(s).is_ok())
}

/// 200, `success: true`, `status: "SUCCESS"`, the request's reference echoed,
/// `response_time_ms` a string of digits.
pub fn assert_success(r: &Resp, sent: &Value) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    assert_eq!(r.body["status"], "SUCCESS", "{}", r.body);
    assert_reference(r, reference_of(sent));
    assert_response_time(r);
}

pub fn assert_response_time(r: &Resp) {
    let ms = r.body["response_time_ms"]
        .as_str()
        .unwrap_or_else(|| panic!("response_time_ms not a string: {}", r.body));
    assert!(
        !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()),
        "response_time_ms {ms:?}"
    );
}

/// `reference` is present: the sent one, or null when none was sent.
pub fn assert_reference(r: &Resp, reference: Option<&str>) {
    let obj = r
        .body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {}", r.body));
    assert!(obj.contains_key("reference"), "no reference: {}", r.body);
    match reference {
        Some(s) => assert_eq!(r.body["reference"], s, "reference not echoed: {}", r.body),
        None => assert!(r.body["reference"].is_null(), "{}", r.body),
    }
}

/// The error shape: `success: false`, `status: "FAILURE"`, a non-empty
/// message, a `validation_details` key.
pub fn assert_failure_shape(r: &Resp, what: &str) {
    let b = &r.body;
    assert!(b.is_object(), "{what}: not a JSON object: {b}");
    assert_eq!(b["success"], false, "{what}: {b}");
    assert_eq!(b["status"], "FAILURE", "{what}: {b}");
    assert!(
        b["message"].as_str().is_some_and(|m| !m.trim().is_empty()),
        "{what}: message: {b}"
    );
    assert!(
        b.as_object().unwrap().contains_key("validation_details"),
        "{what}: no validation_details: {b}"
    );
}

/// `code`, the error shape, and the reference of `sent` echoed (null when
/// `sent` has none, e.g. a body that is not JSON).
pub fn assert_failure(r: &Resp, code: u16, sent: Option<&Value>, what: &str) {
    assert_eq!(r.status, code, "{what}: {}", r.body);
    assert_failure_shape(r, what);
    assert_reference(r, sent.and_then(reference_of));
}

/// Like [`assert_failure`] for a 4xx whose exact code the contract leaves open.
pub fn assert_failure_4xx(r: &Resp, codes: &[u16], sent: &Value, what: &str) {
    assert!(
        codes.contains(&r.status),
        "{what}: status {} not in {codes:?}: {}",
        r.status,
        r.body
    );
    assert_failure_shape(r, what);
    assert_reference(r, reference_of(sent));
}

#[test]
fn client_signatures_recover_to_the_key_address() {
    // Checked with alloy's recovery, so the client itself is not the only judge.
    let key = Key::random();
    for bytes in [&b"{\"header\": {}}"[..], key.address.as_bytes(), b""] {
        for zero_based in [false, true] {
            let sig = hex::decode(key.sign_with(bytes, zero_based)).unwrap();
            assert_eq!(sig.len(), 65);
            assert!(if zero_based {
                sig[64] <= 1
            } else {
                sig[64] == 27 || sig[64] == 28
            });
            let parsed = alloy_primitives::Signature::from_raw(&sig).unwrap();
            let signer = parsed
                .recover_address_from_prehash(&alloy_primitives::keccak256(bytes))
                .unwrap();
            assert_eq!(signer.to_checksum(None), key.address);
        }
    }
    assert_eq!(checksum(&key.address_lower()), key.address);
}
