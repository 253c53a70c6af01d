//! Bad input never costs a 5xx, a dropped connection or a panic.
//!
//! A bounded random-input run against all three dialects on the real binary
//! (malformed JSON, wrong types, huge and non-ASCII strings, odd paths,
//! percent-encoded bytes, headers and query strings, valid and invalid
//! credentials), with a seeded PRNG so a failure can be replayed
//! (`WALLETD_FUZZ_SEED`; `WALLETD_FUZZ_TRACE=jwt401` prints a few requests that
//! got that dialect and status), plus the specific inputs that once broke walletd.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    now, random_master_key, run_cli, spawn_app, token, token_with, Backend, BinaryServer, TestDb,
    JWT_SECRET,
};
use crate::sila_client::{Key, SilaClient};

backend_tests!(
    random_requests_never_fail_the_server,
    non_ascii_wallet_path_is_a_json_error,
    page_numbers_beyond_the_cap_are_refused,
);

// ---------------------------------------------------------------------------
// Regressions found by review or by the random run.

/// `GET /api/wallets/a%E2%82%AC` panicked on `id[..2]` (a byte index inside
/// '€') and the connection dropped. Every identifier shape that is not ASCII
/// now gets a JSON 4xx, on every route that takes a wallet identifier.
async fn non_ascii_wallet_path_is_a_json_error(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("ascii-user").await;
    for id in [
        "a%E2%82%AC",
        "%E2%82%AC",
        "0%E2%82%AC",
        "%C3%A9x",
        "x%F0%9F%98%80",
        "%E2%82",
        "%FF",
        "0x%E2%82%AC",
    ] {
        let r = app.get(&format!("/api/wallets/{id}")).await;
        assert!(
            r.status == 400 || r.status == 404,
            "GET {id}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(r.body["success"], false, "GET {id}: {}", r.body);
        assert!(r.body["error"].is_string(), "GET {id}: {}", r.body);
        for sign in ["sign", "sign-typed-data", "sign-transaction"] {
            let r = app
                .post_json(&format!("/api/wallets/{id}/{sign}"), &json!({}))
                .await;
            assert!(
                (400..500).contains(&r.status),
                "POST {id}/{sign}: {} {}",
                r.status,
                r.body
            );
            assert_eq!(r.body["success"], false, "{}", r.body);
        }
    }
    // The same client (and connection pool) still works.
    let r = app.get("/api/wallets/ascii-user").await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// `page=9223372036854775807&perPage=100` wrapped `(page - 1) * perPage`
/// (a panic in a debug build, a negative OFFSET in release). Pages beyond
/// the documented cap are a 400 that names it; the cap itself is served.
async fn page_numbers_beyond_the_cap_are_refused(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let owner = token("pager", "SUBSCRIBER");
    let admin = token("auditor", "ADMIN");
    let r = app
        .jwt("POST", "/api/wallet/create", Some(&owner), Some(&json!({})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["wallet"]["id"].as_str().unwrap().to_string();
    let routes = [
        (format!("/api/wallet/{id}/history?"), &owner),
        ("/api/admin/audit?".to_string(), &admin),
    ];
    for (prefix, tok) in routes {
        let path = |q: &str| format!("{prefix}{q}");
        for q in [
            "page=9223372036854775807&perPage=100",
            "page=9223372036854775807",
            "page=1000001&perPage=1",
            "page=92233720368547758070",
            "page=-9223372036854775808",
            "page=0",
        ] {
            let r = app.jwt("GET", &path(q), Some(tok), None).await;
            assert_eq!(r.status, 400, "{q}: {}", r.body);
            let msg = r.body["error"].as_str().unwrap_or_default();
            assert!(msg.contains("page"), "{q}: {}", r.body);
        }
        let r = app
            .jwt("GET", &path("page=9223372036854775807"), Some(tok), None)
            .await;
        assert_eq!(
            r.body["error"], "page must be from 1 to 1000000",
            "{}",
            r.body
        );
        // The deepest page is served (empty), as is the first.
        let r = app
            .jwt("GET", &path("page=1000000&perPage=100"), Some(tok), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["page"], 1_000_000);
        let entries = r
            .body
            .get("events")
            .or(r.body.get("entries"))
            .expect("a list");
        assert_eq!(entries, &json!([]), "{}", r.body);
        let r = app.jwt("GET", &path("page=1"), Some(tok), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body["total"].as_i64().unwrap() >= 1, "{}", r.body);
    }
}

// ---------------------------------------------------------------------------
// The random run.

/// xorshift64*: small, seeded, and enough to spread inputs around.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What the generator needs to know to reach past authentication.
#[derive(Clone)]
struct Fixture {
    host: String,
    api_key: String,
    wallet_user: String,
    wallet_id: String,
    wallet_address: String,
    jwt_wallet_id: String,
    app_handle: String,
    app_key: Key,
    sila_user: String,
    sila_user_key: Key,
}

const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "a",
    "alice",
    "user_123",
    "0x",
    "0X",
    "0x0",
    "0xZZ",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaee",
    "€",
    "a€",
    "€€€€",
    "é",
    "x\u{0}y",
    "\u{202e}gnp.exe",
    "\u{feff}bom",
    "😀",
    "sila:alice",
    "SILA:x",
    "../../etc/passwd",
    "%00",
    "%",
    "null",
    "true",
    "-1",
    "0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "1e309",
    "NaN",
    "\t\n\r",
    "\\",
    "\"",
    "'; DROP TABLE events; --",
    "<script>",
    "00000000-0000-0000-0000-000000000000",
    "0b1c3e9a-6f5d-5a41-9c2e-7d8f1a2b3c4d",
    "alice.eth",
    "ab",
    "wallet-1234abcd",
    "ETH",
    "eip1559",
    "legacy",
    "pass",
    "fail",
    "ADMIN",
    "VISITOR",
];

fn odd_string(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => "a".repeat(1 + rng.below(300)),
        1 => "€".repeat(1 + rng.below(100)),
        2 => "x".repeat(60_000 + rng.below(20_000)),
        3 => {
            // Random code points, surrogates and controls excluded by char::from_u32.
            (0..1 + rng.below(40))
                .filter_map(|_| char::from_u32((rng.next() % 0x11_0000) as u32))
                .collect()
        }
        4 => format!(
            "0x{}",
            hex::encode(
                (0..rng.below(40))
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<_>>()
            )
        ),
        _ => rng.pick(ODD_STRINGS).to_string(),
    }
}

fn odd_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 9 } else { 12 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(*rng.pick(&[0i64, 1, -1, i64::MAX, i64::MIN, 21000, 100, 1_000_001])),
        3 => json!(u64::MAX),
        4 => json!(*rng.pick(&[0.5f64, -0.0, 1e308, -1e-308, 3.0])),
        5..=8 => json!(odd_string(rng)),
        9 => Value::Array(
            (0..rng.below(4))
                .map(|_| odd_value(rng, depth + 1))
                .collect(),
        ),
        10 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(4) {
                m.insert(odd_string(rng), odd_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => {
            // Deep nesting, past serde_json's recursion limit at times.
            let mut v = json!(1);
            for _ in 0..(1 + rng.below(200)) {
                v = json!([v]);
            }
            v
        }
    }
}

/// Replaces, removes or adds fields of an object (recursively, sometimes).
fn mutate(rng: &mut Rng, v: &mut Value, depth: usize) {
    let Value::Object(m) = v else { return };
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        match rng.below(10) {
            0 => {
                m.remove(&k);
            }
            1 => {
                m.insert(k, odd_value(rng, depth + 1));
            }
            2 if depth < 3 => {
                if let Some(inner) = m.get_mut(&k) {
                    mutate(rng, inner, depth + 1);
                }
            }
            _ => {}
        }
    }
    if rng.chance(10) {
        m.insert(odd_string(rng), odd_value(rng, depth + 1));
    }
}

fn typed_data() -> Value {
    json!({
        "types": {
            "EIP712Domain": [{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],
            "Mail": [{"name":"contents","type":"string"},{"name":"to","type":"address"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Fuzz", "chainId": 1},
        "message": {"contents": "hi", "to": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"}
    })
}

fn transaction() -> Value {
    json!({
        "type": "eip1559", "chainId": 1, "nonce": 0,
        "to": "0x3535353535353535353535353535353535353535", "value": "1",
        "data": "0x", "gas": 21000, "maxFeePerGas": "30000000000", "maxPriorityFeePerGas": "1"
    })
}

/// Percent-encodes every byte outside the unreserved set, or not at all, or
/// with broken escapes.
fn path_segment(rng: &mut Rng, s: &str) -> String {
    match rng.below(10) {
        0 => s.replace(['/', '?', '#', ' ', '\r', '\n'], "_"),
        1 => format!(
            "{}%{}",
            s.len(),
            rng.pick(&["", "Z", "ZZ", "E2%82", "FF", "00", "2F", "C0%AF"])
        ),
        _ => {
            let mut out = String::new();
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        }
    }
}

fn odd_segment(rng: &mut Rng) -> String {
    let s = odd_string(rng);
    path_segment(rng, &s)
}

fn query(rng: &mut Rng, keys: &[&str]) -> String {
    if rng.chance(30) {
        return String::new();
    }
    let mut parts = Vec::new();
    for _ in 0..rng.below(4) {
        let k = if rng.chance(80) {
            rng.pick(keys).to_string()
        } else {
            odd_segment(rng)
        };
        let v = match rng.below(4) {
            0 => rng
                .pick(&[
                    "1",
                    "0",
                    "-1",
                    "100",
                    "101",
                    "1000000",
                    "1000001",
                    "9223372036854775807",
                    "99999999999999999999",
                    "1.5",
                    "%FF",
                    "%E2%82%AC",
                    "2026-01-01T00:00:00Z",
                    "yesterday",
                ])
                .to_string(),
            _ => odd_segment(rng),
        };
        parts.push(format!("{k}={v}"));
    }
    if rng.chance(5) {
        parts.push(rng.pick(&["&&", "=", "a", "=x", "%"]).to_string());
    }
    format!("?{}", parts.join("&"))
}

const ODD_CONTENT_TYPES: &[&[u8]] = &[
    b"application/json; charset=utf-8",
    b"application/problem+json",
    b"text/plain",
    b"multipart/form-data; boundary=x",
    b"",
    b"application/\xff\xfe",
];

struct Request {
    dialect: &'static str,
    method: &'static str,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

fn body_bytes(template: Value, rng: &mut Rng) -> Vec<u8> {
    let mut v = template;
    if rng.chance(45) {
        mutate(rng, &mut v, 0);
    }
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    match rng.below(30) {
        0 => bytes[..rng.below(bytes.len() + 1)].to_vec(),
        1 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        2 => Vec::new(),
        3 => serde_json::to_vec(&odd_value(rng, 0)).unwrap_or_default(),
        4 => {
            let mut b = bytes;
            b.extend_from_slice(b" trailing");
            b
        }
        5 => {
            // Invalid UTF-8 inside a string.
            let mut b = b"{\"userId\":\"".to_vec();
            b.extend_from_slice(&[0xC3, 0x28, 0xFF, 0xE2, 0x82]);
            b.extend_from_slice(b"\"}");
            b
        }
        _ => bytes,
    }
}

fn generate(rng: &mut Rng, f: &Fixture) -> Request {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let id = |rng: &mut Rng| -> String {
        match rng.below(6) {
            0 => f.wallet_user.clone(),
            1 => f.wallet_id.clone(),
            2 => f.wallet_address.clone(),
            3 => f.jwt_wallet_id.clone(),
            _ => odd_segment(rng),
        }
    };
    let dialect = rng.below(10);
    let (method, target, body): (&'static str, String, Option<Vec<u8>>) = match dialect {
        // Server wallets.
        0..=2 => {
            let auth = match rng.below(5) {
                0 => None,
                1 => Some(format!("Bearer {}", odd_string(rng))),
                2 => Some(format!("bearer {}", f.api_key)),
                _ => Some(format!("Bearer {}", f.api_key)),
            };
            if let Some(a) = auth {
                headers.push(("Authorization".into(), a.into_bytes()));
            }
            match rng.below(5) {
                0 => {
                    let user = if rng.chance(20) {
                        json!(f.wallet_user)
                    } else {
                        odd_value(rng, 0)
                    };
                    let body = body_bytes(json!({ "userId": user }), rng);
                    ("POST", "/api/wallets".into(), Some(body))
                }
                1 => ("GET", format!("/api/wallets/{}", id(rng)), None),
                2 => {
                    let body = body_bytes(json!({ "message": odd_string(rng) }), rng);
                    ("POST", format!("/api/wallets/{}/sign", id(rng)), Some(body))
                }
                3 => {
                    let body = body_bytes(json!({ "typedData": typed_data() }), rng);
                    (
                        "POST",
                        format!("/api/wallets/{}/sign-typed-data", id(rng)),
                        Some(body),
                    )
                }
                _ => {
                    let body = body_bytes(json!({ "transaction": transaction() }), rng);
                    (
                        "POST",
                        format!("/api/wallets/{}/sign-transaction", id(rng)),
                        Some(body),
                    )
                }
            }
        }
        // JWT roles.
        3..=5 => {
            let role = *rng.pick(&[
                "VISITOR",
                "SUBSCRIBER",
                "SUBSCRIBER",
                "MEMBER",
                "CONFIDENTIAL",
                "ADMIN",
                "ADMIN",
                "ADMIN",
                "ROOT",
            ]);
            let sub = if rng.chance(60) {
                "fuzz-jwt".to_string()
            } else {
                odd_string(rng)
            };
            let tok = match rng.below(12) {
                0 => odd_string(rng),
                1 => token_with(json!({ "sub": sub, "role": role, "exp": now() - 3600 })),
                2 => token_with(
                    json!({ "sub": odd_value(rng, 2), "role": odd_value(rng, 2), "exp": odd_value(rng, 2) }),
                ),
                3 => format!("{}x", token(&sub, role)),
                _ => token_with(json!({ "sub": sub, "role": role, "exp": now() + 600 })),
            };
            if rng.chance(90) {
                headers.push(("Authorization".into(), format!("Bearer {tok}").into_bytes()));
            }
            match rng.below(6) {
                0 => {
                    let body = body_bytes(
                        json!({ "label": odd_string(rng), "userId": odd_value(rng, 1) }),
                        rng,
                    );
                    ("POST", "/api/wallet/create".into(), Some(body))
                }
                1 => (
                    "GET",
                    format!("/api/wallet/list{}", query(rng, &["userId"])),
                    None,
                ),
                2 => {
                    let body = body_bytes(json!({ "walletId": id(rng) }), rng);
                    ("POST", "/api/wallet/primary".into(), Some(body))
                }
                3 => (
                    "GET",
                    format!(
                        "/api/wallet/{}/history{}",
                        id(rng),
                        query(rng, &["page", "perPage"])
                    ),
                    None,
                ),
                4 => (
                    "GET",
                    format!(
                        "/api/admin/audit{}",
                        query(
                            rng,
                            &["userId", "walletId", "action", "from", "to", "page", "perPage"]
                        )
                    ),
                    None,
                ),
                _ => {
                    let body = body_bytes(json!({ "decision": odd_string(rng) }), rng);
                    (
                        "POST",
                        format!("/api/admin/kyc/{}", odd_segment(rng)),
                        Some(body),
                    )
                }
            }
        }
        // Sila.
        6..=8 => {
            let endpoint = *rng.pick(&[
                "check_handle",
                "register",
                "register_wallet",
                "get_wallet",
                "get_wallets",
                "update_wallet",
                "delete_wallet",
                "request_kyc",
                "check_kyc",
                "transfer_sila",
            ]);
            let user = if rng.chance(70) {
                f.sila_user.clone()
            } else {
                odd_string(rng)
            };
            let header = json!({
                "created": if rng.chance(85) { json!(now()) } else { odd_value(rng, 1) },
                "app_handle": if rng.chance(85) { json!(f.app_handle) } else { odd_value(rng, 1) },
                "user_handle": user,
                "version": "0.2",
                "crypto": "ETH",
                "reference": uuid::Uuid::new_v4().to_string(),
            });
            let new_key = Key::random();
            let extra = match endpoint {
                "register" => json!({ "crypto_entry": {
                    "crypto_address": new_key.address, "crypto_alias": odd_string(rng)
                }}),
                "register_wallet" => json!({
                    "wallet_verification_signature": new_key.prove(&new_key.address),
                    "wallet": { "blockchain_address": new_key.address,
                                "nickname": odd_string(rng), "default": odd_value(rng, 2) },
                }),
                "get_wallets" => json!({ "search_filters": {
                    "page": odd_value(rng, 2), "per_page": odd_value(rng, 2),
                    "nickname": odd_string(rng), "sort_ascending": odd_value(rng, 2),
                }}),
                "update_wallet" => json!({ "nickname": odd_string(rng), "default": true }),
                "request_kyc" => json!({ "kyc_level": odd_value(rng, 2) }),
                _ => json!({}),
            };
            let mut template = json!({ "header": header });
            if let Value::Object(fields) = extra {
                for (k, v) in fields {
                    template[k] = v;
                }
            }
            let body = body_bytes(template, rng);
            match rng.below(6) {
                0 => {}
                1 => {
                    headers.push(("authsignature".into(), odd_string(rng).into_bytes()));
                    headers.push((
                        "usersignature".into(),
                        f.app_key.sign(b"other").into_bytes(),
                    ));
                }
                2 => {
                    let tok = token_with(json!({
                        "sub": f.sila_user, "app_handle": f.app_handle, "exp": now() + 600,
                        "aud": walletd::auth::jwt::DEFAULT_SILA_AUDIENCE,
                    }));
                    headers.push(("Authorization".into(), format!("Bearer {tok}").into_bytes()));
                }
                _ => {
                    headers.push(("authsignature".into(), f.app_key.sign(&body).into_bytes()));
                    if rng.chance(80) {
                        headers.push((
                            "usersignature".into(),
                            f.sila_user_key.sign(&body).into_bytes(),
                        ));
                    }
                }
            }
            ("POST", format!("/0.2/{endpoint}"), Some(body))
        }
        // Anything else: health, unknown paths, odd methods.
        _ => {
            let path = match rng.below(8) {
                0 => "/healthz".to_string(),
                1 => "/readyz".to_string(),
                2 => format!("/{}", odd_segment(rng)),
                3 => "//api//wallets//".to_string(),
                4 => "/api/wallets/../admin/audit".to_string(),
                5 => format!("/api/wallets/{}/{}", id(rng), odd_segment(rng)),
                6 => format!("/0.2/{}", odd_segment(rng)),
                _ => format!("/api/wallet/{}", "x/".repeat(rng.below(500))),
            };
            (
                "GET",
                format!("{path}{}", query(rng, &["a", "page"])),
                rng.chance(30).then(|| body_bytes(json!({}), rng)),
            )
        }
    };
    let method = if rng.chance(8) {
        *rng.pick(&["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    } else {
        method
    };
    if body.is_some() || rng.chance(5) {
        let ct: &[u8] = if rng.chance(75) {
            b"application/json"
        } else {
            ODD_CONTENT_TYPES[rng.below(ODD_CONTENT_TYPES.len())]
        };
        headers.push(("Content-Type".into(), ct.to_vec()));
    }
    if rng.chance(15) {
        headers.push((
            "Idempotency-Key".into(),
            odd_string(rng).replace(['\r', '\n'], "").into_bytes(),
        ));
    }
    if rng.chance(10) {
        headers.push((
            "X-Request-Id".into(),
            odd_string(rng).replace(['\r', '\n'], "").into_bytes(),
        ));
    }
    if rng.chance(5) {
        let name = *rng.pick(&["Authorization", "X-Forwarded-For", "Accept", "User-Agent"]);
        let mut v = odd_string(rng).replace(['\r', '\n'], "").into_bytes();
        if rng.chance(50) {
            v.extend_from_slice(&[0xC3, 0xA9, 0xFF]);
        }
        headers.push((name.into(), v));
    }
    let dialect = match dialect {
        0..=2 => "server-wallet",
        3..=5 => "jwt",
        6..=8 => "sila",
        _ => "other",
    };
    Request {
        dialect,
        method,
        target,
        headers,
        body,
    }
}

#[derive(Debug)]
enum Outcome {
    Status(u16),
    /// The connection ended without a complete status line.
    Dropped(String),
}

/// One request on its own connection (`Connection: close`), read to the end.
fn send(host: &str, req: &Request) -> Outcome {
    let mut stream = match TcpStream::connect(host) {
        Ok(s) => s,
        Err(e) => return Outcome::Dropped(format!("connect: {e}")),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
        req.method, req.target
    )
    .into_bytes();
    for (k, v) in &req.headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(b) = &req.body {
        head.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    if let Some(b) = &req.body {
        head.extend_from_slice(b);
    }
    // A server may answer (413, 400) before reading everything; a failed write
    // is fine as long as the answer arrives.
    let _ = stream.write_all(&head);
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                if got.is_empty() {
                    return Outcome::Dropped(format!("read: {e}"));
                }
                break;
            }
        }
    }
    let line = got.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    match line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
    {
        Some(code) => Outcome::Status(code),
        None => Outcome::Dropped(format!("no status line ({} bytes)", got.len())),
    }
}

/// What went wrong, with enough of the request to replay it.
fn describe(req: &Request) -> String {
    let mut target = req.target.clone();
    target.truncate(
        target
            .char_indices()
            .nth(200)
            .map_or(target.len(), |(i, _)| i),
    );
    let headers: Vec<String> = req
        .headers
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v);
            let v: String = v.chars().take(80).collect();
            format!("{k}: {v}")
        })
        .collect();
    let body = req
        .body
        .as_ref()
        .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned());
    format!("{} {target} {headers:?} body={body:?}", req.method)
}

const REQUESTS: usize = 6000;
const THREADS: usize = 4;
const TIME_BUDGET: Duration = Duration::from_secs(40);

async fn random_requests_never_fail_the_server(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let seed: u64 = std::env::var("WALLETD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_0914);
    let master = random_master_key();
    let api_key = "fuzz-api-key-0123456789";
    let app_key = Key::random();
    let app_handle = "fuzzapp.eth";
    let (ok, out, err) = run_cli(
        &[
            "app",
            "register",
            "--handle",
            app_handle,
            "--address",
            &app_key.address,
        ],
        &[("DATABASE_URL", &tdb.url)],
    )
    .await;
    assert!(ok, "{out} {err}");
    let log = tdb.dir.path().join("fuzz.log");
    let mut server = BinaryServer::start_with(
        &tdb.url,
        Some(&master),
        api_key,
        &[
            ("WALLETD_JWT_SECRET", JWT_SECRET),
            ("WALLETD_WHITELIST_DELAY", "1"),
            ("RUST_LOG", "info"),
        ],
        &log,
    );
    let host = server.base.trim_start_matches("http://").to_string();

    // State for the requests to reach past authentication.
    let client = awc::Client::default();
    let res = client
        .post(format!("{}/api/wallets", server.base))
        .insert_header(("Authorization", format!("Bearer {api_key}")))
        .send_json(&json!({"userId": "fuzz-user"}))
        .await
        .unwrap();
    let created = crate::helpers::into_resp(res).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let res = client
        .post(format!("{}/api/wallet/create", server.base))
        .insert_header((
            "Authorization",
            format!("Bearer {}", token("fuzz-jwt", "SUBSCRIBER")),
        ))
        .send_json(&json!({}))
        .await
        .unwrap();
    let jwt_wallet = crate::helpers::into_resp(res).await;
    assert_eq!(jwt_wallet.status, 200, "{}", jwt_wallet.body);
    let sila = SilaClient::new(&server.base, app_handle, app_key.clone());
    let sila_user_key = Key::random();
    sila.register_user_with("fuzzuser.eth", &sila_user_key)
        .await;

    let fixture = Fixture {
        host: host.clone(),
        api_key: api_key.into(),
        wallet_user: "fuzz-user".into(),
        wallet_id: created.body["walletId"].as_str().unwrap().into(),
        wallet_address: created.body["address"].as_str().unwrap().into(),
        jwt_wallet_id: jwt_wallet.body["wallet"]["id"].as_str().unwrap().into(),
        app_handle: app_handle.into(),
        app_key,
        sila_user: "fuzzuser.eth".into(),
        sila_user_key,
    };

    // Blocking sockets on threads of their own: full control of the bytes
    // sent, and no runtime in the way.
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let statuses = Arc::new(Mutex::new(
        std::collections::BTreeMap::<(&str, u16), usize>::new(),
    ));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (f, sent, stop, failures, statuses) = (
                fixture.clone(),
                sent.clone(),
                stop.clone(),
                failures.clone(),
                statuses.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = Rng::new(
                    seed.wrapping_add(t as u64)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                while !stop.load(Ordering::Relaxed) {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= REQUESTS || started.elapsed() > TIME_BUDGET {
                        break;
                    }
                    let req = generate(&mut rng, &f);
                    match send(&f.host, &req) {
                        Outcome::Status(code) => {
                            let mut st = statuses.lock().unwrap();
                            let c = st.entry((req.dialect, code)).or_default();
                            *c += 1;
                            if std::env::var("WALLETD_FUZZ_TRACE")
                                .is_ok_and(|v| v == format!("{}{code}", req.dialect))
                                && *c < 8
                            {
                                eprintln!("TRACE {}", describe(&req));
                            }
                            drop(st);
                            if code >= 500 && code != 503 {
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("{code} for {}", describe(&req)));
                            }
                        }
                        Outcome::Dropped(why) => {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("dropped ({why}) for {}", describe(&req)));
                        }
                    }
                    if failures.lock().unwrap().len() >= 20 {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let joined = actix_web::rt::task::spawn_blocking(move || {
        for t in threads {
            t.join().expect("fuzz thread");
        }
    })
    .await;
    joined.expect("join");
    let done = sent.load(Ordering::Relaxed).min(REQUESTS);
    let elapsed = started.elapsed();
    let statuses = statuses.lock().unwrap().clone();
    eprintln!("fuzz {b:?}: seed {seed}, {done} requests in {elapsed:?}, statuses {statuses:?}");

    // The server is still there and healthy.
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "walletd exited during the run; see {}",
        log.display()
    );
    let res = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    server.kill();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let panics: Vec<&str> = text.lines().filter(|l| l.contains("panicked")).collect();
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty() && panics.is_empty(),
        "seed {seed}: {} failures, {} panics\n{}\n{}",
        failures.len(),
        panics.len(),
        failures.join("\n"),
        panics.join("\n")
    );
    assert!(
        done >= 1000,
        "only {done} requests in {elapsed:?}: too few to mean anything"
    );
}
