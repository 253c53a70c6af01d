//! The Sila phases of `walletd bench`: `sila-register` (one new user per
//! request, authsignature) and `sila-register-wallet` (one new address per
//! request: authsignature, usersignature and the wallet's proof of ownership,
//! so the server recovers three signatures). Requests are signed before each
//! phase starts, so the client's signing does not compete with the server.

use std::rc::Rc;

use k256::ecdsa::SigningKey;
use serde_json::json;

use super::{run_phase, Http, Phase};
use crate::domain::eth;
use crate::domain::Address;

/// The bench's own app, registered in the store before the HTTP phases.
pub struct SilaBench {
    pub app_handle: String,
    pub app_key: SigningKey,
}

impl SilaBench {
    pub async fn register(store_url: &str, run_id: &str) -> Result<Self, String> {
        let app_key = SigningKey::random(&mut k256::elliptic_curve::rand_core::OsRng);
        let app_handle = format!("bench-{run_id}.app");
        let address = eth::address_of(app_key.verifying_key());
        crate::cli::app::register_on(store_url, &app_handle, &address.to_checksum())
            .await
            .map_err(|e| format!("cannot register the bench app: {e}"))?;
        Ok(Self {
            app_handle,
            app_key,
        })
    }
}

/// A request ready to send: the exact body bytes and their signature headers.
struct Signed {
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

fn sign(key: &SigningKey, bytes: &[u8]) -> Result<String, String> {
    eth::sign_digest(key, &eth::keccak256(bytes))
        .map(|s| s.to_hex())
        .map_err(|e| format!("cannot sign: {e}"))
}

fn random_key() -> SigningKey {
    SigningKey::random(&mut k256::elliptic_curve::rand_core::OsRng)
}

fn address(key: &SigningKey) -> Address {
    eth::address_of(key.verifying_key())
}

pub async fn phases(
    http: Rc<Http>,
    sila: SilaBench,
    run_id: &str,
    total: usize,
    concurrency: usize,
) -> Result<Vec<Phase>, String> {
    let header = |user: &str, i: usize, kind: &str| {
        json!({
            "created": chrono::Utc::now().timestamp(),
            "app_handle": sila.app_handle,
            "user_handle": user,
            "version": "0.2",
            "crypto": "ETH",
            "reference": format!("{run_id}-{kind}-{i}"),
        })
    };
    let users: Vec<(String, SigningKey)> = (0..total)
        .map(|i| (format!("u{i}-{run_id}.bench"), random_key()))
        .collect();

    let mut requests = Vec::with_capacity(total);
    for (i, (user, key)) in users.iter().enumerate() {
        let body = json!({
            "header": header(user, i, "register"),
            "message": "entity_msg",
            "crypto_entry": { "crypto_address": address(key).to_checksum(), "crypto_code": "ETH" },
            "entity": { "type": "individual" },
        })
        .to_string()
        .into_bytes();
        let auth = sign(&sila.app_key, &body)?;
        requests.push(Signed {
            body,
            headers: vec![("authsignature", auth)],
        });
    }
    let register = send_all(
        http.clone(),
        "sila-register",
        "/0.2/register",
        requests,
        concurrency,
    )
    .await?;
    register.print();

    let mut requests = Vec::with_capacity(total);
    for i in 0..total {
        let (user, user_key) = &users[i % users.len()];
        let wallet = random_key();
        let text = address(&wallet).to_checksum();
        let proof = sign(&wallet, text.as_bytes())?;
        let body = json!({
            "header": header(user, i, "wallet"),
            "wallet_verification_signature": proof,
            "wallet": { "blockchain_address": text, "blockchain_network": "ETH", "default": i % 2 == 0 },
        })
        .to_string()
        .into_bytes();
        let headers = vec![
            ("authsignature", sign(&sila.app_key, &body)?),
            ("usersignature", sign(user_key, &body)?),
        ];
        requests.push(Signed { body, headers });
    }
    let register_wallet = send_all(
        http,
        "sila-register-wallet",
        "/0.2/register_wallet",
        requests,
        concurrency,
    )
    .await?;
    register_wallet.print();
    Ok(vec![register, register_wallet])
}

async fn send_all(
    http: Rc<Http>,
    name: &'static str,
    path: &'static str,
    requests: Vec<Signed>,
    concurrency: usize,
) -> Result<Phase, String> {
    let requests: Rc<[Signed]> = requests.into();
    let total = requests.len();
    let (phase, _) = run_phase(name, total, concurrency, move |i| {
        let (http, requests) = (http.clone(), requests.clone());
        async move {
            let r = &requests[i];
            http.post_signed(path, r.body.clone(), &r.headers)
                .await
                .map(drop)
        }
    })
    .await?;
    Ok(phase)
}
