//! EIP-712 typed data and transactions (`sign-typed-data`, `sign-transaction`)
//! over real HTTP, checked independently of walletd's code: signers recovered
//! with libsecp256k1 (`secp256k1`) and addressed by alloy, digests against the
//! published EIP-712 and EIP-155 examples and alloy's compile-time (`sol!`)
//! EIP-712 encoding, signed transactions decoded by alloy-consensus.

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{keccak256, TxKind, B256, U256};
use alloy_sol_types::{eip712_domain, sol, SolStruct};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId, Signature};
use secp256k1::{Message, Secp256k1};
use serde_json::{json, Value};
use walletd::domain::wallet::WalletCommand;
use walletd::domain::{Address, UserId, WalletId};
use walletd::projections::log::{read_after, LogPosition};
use walletd::store::CommandMeta;

use crate::backend_tests;
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::server_wallets::event_count;

backend_tests!(
    typed_data_signatures_recover_to_the_wallet,
    typed_data_errors_record_nothing,
    transactions_decode_and_recover_to_the_wallet,
    legacy_transaction_matches_the_eip155_example,
    transaction_errors_record_nothing,
    unknown_and_external_wallets,
    idempotency_auth_and_methods,
);

// ---------------------------------------------------------------------------
// Independent checks

/// The signer of `digest` by a 65-byte r‖s‖v signature, recovered with
/// libsecp256k1 and addressed by alloy (EIP-55). Also checks low-s and v.
pub(crate) fn recover(digest: [u8; 32], sig_hex: &str) -> String {
    let bytes = hex::decode(sig_hex.strip_prefix("0x").expect("0x")).unwrap();
    assert_eq!(bytes.len(), 65, "{sig_hex}");
    assert!(
        bytes[64] == 27 || bytes[64] == 28,
        "v is 27 or 28: {sig_hex}"
    );
    assert_low_s(&bytes[..64]);
    let recid = RecoveryId::try_from(i32::from(bytes[64]) - 27).unwrap();
    let sig = RecoverableSignature::from_compact(&bytes[..64], recid).unwrap();
    let public = Secp256k1::verification_only()
        .recover_ecdsa(Message::from_digest(digest), &sig)
        .unwrap();
    alloy_primitives::Address::from_raw_public_key(&public.serialize_uncompressed()[1..])
        .to_checksum(None)
}

fn assert_low_s(rs: &[u8]) {
    let sig = Signature::from_compact(rs).unwrap();
    let mut normalized = sig;
    normalized.normalize_s();
    assert_eq!(normalized, sig, "s is in the lower half of the curve order");
}

pub(crate) fn digest_of(hex_text: &str) -> [u8; 32] {
    let mut d = [0u8; 32];
    hex::decode_to_slice(hex_text.strip_prefix("0x").unwrap(), &mut d).unwrap();
    d
}

/// The MessageSigned events in the log, in order.
async fn signed_events(app: &TestApp) -> Vec<Value> {
    read_after(&app.app.db, LogPosition::START, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "MessageSigned")
        .map(|e| e.body().clone())
        .collect()
}

/// A minimal RLP reader, enough to take a legacy transaction apart: the
/// items of a list, each as its payload bytes.
fn rlp_list_items(data: &[u8]) -> Vec<Vec<u8>> {
    fn item(data: &[u8]) -> (usize, usize, bool) {
        // (header length, payload length, is list)
        let b = data[0];
        let be = |bytes: &[u8]| bytes.iter().fold(0usize, |n, b| n << 8 | *b as usize);
        match b {
            0x00..=0x7f => (0, 1, false),
            0x80..=0xb7 => (1, (b - 0x80) as usize, false),
            0xb8..=0xbf => {
                let l = (b - 0xb7) as usize;
                (1 + l, be(&data[1..1 + l]), false)
            }
            0xc0..=0xf7 => (1, (b - 0xc0) as usize, true),
            _ => {
                let l = (b - 0xf7) as usize;
                (1 + l, be(&data[1..1 + l]), true)
            }
        }
    }
    let (h, len, is_list) = item(data);
    assert!(is_list && h + len == data.len(), "one RLP list");
    let mut rest = &data[h..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (h, len, _) = item(rest);
        out.push(rest[h..h + len].to_vec());
        rest = &rest[h + len..];
    }
    out
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b))
}

// ---------------------------------------------------------------------------
// EIP-712

/// The example of EIP-712 ("Ether Mail") and its published signing hash.
pub(crate) fn mail() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [
                {"name": "name", "type": "string"},
                {"name": "wallet", "type": "address"}
            ],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

pub(crate) const MAIL_SIGNING_HASH: &str =
    "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2";

sol! {
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }

    struct Order {
        bytes32 id;
        uint256[] amounts;
        bool settled;
        bytes note;
    }
}

/// An ERC-2612 permit as `eth_signTypedData_v4` JSON, and the same permit as a
/// compile-time `sol!` struct with alloy's static signing hash.
fn permit() -> (Value, B256) {
    let owner = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    let spender = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
    let json = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {
            "name": "USD Coin",
            "version": "2",
            "chainId": "0x2105",
            "verifyingContract": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        },
        "message": {
            "owner": owner,
            "spender": spender,
            "value": "115792089237316195423570985008687907853269984665640564039457584007913129639935",
            "nonce": 3,
            "deadline": "0x6a0f1c00"
        }
    });
    let static_permit = Permit {
        owner: owner.parse().unwrap(),
        spender: spender.parse().unwrap(),
        value: U256::MAX,
        nonce: U256::from(3),
        deadline: U256::from(0x6a0f1c00u64),
    };
    let domain = eip712_domain! {
        name: "USD Coin",
        version: "2",
        chain_id: 8453,
        verifying_contract: alloy_primitives::address!("833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
    };
    (json, static_permit.eip712_signing_hash(&domain))
}

/// Dynamic types (bytes, arrays, bool) and a salt, against `sol!`.
fn order() -> (Value, B256) {
    let salt = B256::repeat_byte(0x5a);
    let json = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "salt", "type": "bytes32"}
            ],
            "Order": [
                {"name": "id", "type": "bytes32"},
                {"name": "amounts", "type": "uint256[]"},
                {"name": "settled", "type": "bool"},
                {"name": "note", "type": "bytes"}
            ]
        },
        "primaryType": "Order",
        "domain": {"name": "Exchange", "salt": format!("{salt}")},
        "message": {
            "id": format!("0x{}", "01".repeat(32)),
            "amounts": [1, "2", "0x03"],
            "settled": true,
            "note": "0xc0ffee"
        }
    });
    let static_order = Order {
        id: B256::repeat_byte(1),
        amounts: vec![U256::from(1), U256::from(2), U256::from(3)],
        settled: true,
        note: vec![0xc0, 0xff, 0xee].into(),
    };
    let domain = eip712_domain! { name: "Exchange", salt: salt };
    (json, static_order.eip712_signing_hash(&domain))
}

async fn typed_data_signatures_recover_to_the_wallet(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("typist").await;
    let address = created["address"].as_str().unwrap();
    let wallet_id = created["walletId"].as_str().unwrap();
    let (permit, permit_hash) = permit();
    let (order, order_hash) = order();
    let cases = [
        (mail(), digest_of(MAIL_SIGNING_HASH), "typist".to_string()),
        (permit, permit_hash.0, wallet_id.to_string()),
        (order, order_hash.0, address.to_lowercase()),
    ];
    for (typed, expected, id) in cases {
        let r = app
            .post_json(
                &format!("/api/wallets/{id}/sign-typed-data"),
                &json!({ "typedData": typed }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["success"], true);
        assert_eq!(r.body["address"], address);
        assert_eq!(r.body["walletId"], wallet_id);
        assert_eq!(
            r.body["digest"],
            format!("0x{}", hex::encode(expected)),
            "{typed}"
        );
        let sig = r.body["signature"].as_str().unwrap();
        assert_eq!(recover(expected, sig), address);
    }

    // The audit record: digest, scheme and the domain, never the message.
    let events = signed_events(&app).await;
    assert_eq!(events.len(), 3);
    let mail_event = &events[0];
    assert_eq!(mail_event["scheme"], "eip712");
    assert_eq!(mail_event["digest"], MAIL_SIGNING_HASH);
    assert_eq!(mail_event["primary_type"], "Mail");
    assert_eq!(mail_event["domain_name"], "Ether Mail");
    assert_eq!(mail_event["chain_id"], 1);
    assert_eq!(
        mail_event["verifying_contract"],
        "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
    );
    assert!(mail_event.get("tx_hash").is_none());
    assert_eq!(events[1]["chain_id"], 8453);
    assert_eq!(events[1]["primary_type"], "Permit");
    assert!(events[2].get("chain_id").is_none());
    let stored = serde_json::to_string(&events).unwrap();
    assert!(!stored.contains("Hello, Bob!"), "{stored}");
}

async fn typed_data_errors_record_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("picky").await;
    let path = "/api/wallets/picky/sign-typed-data";
    let with = |pointer: &str, v: Value| {
        let mut m = mail();
        *m.pointer_mut(pointer).unwrap() = v;
        m
    };
    let without = |parent: &str, key: &str| {
        let mut m = mail();
        m.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        m
    };
    let empty_domain = {
        let mut m = with("/domain", json!({}));
        m["types"]["EIP712Domain"] = json!([]);
        m
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        // The domain is required and checked.
        (
            json!({"typedData": without("", "domain")}),
            400,
            "typedData.domain is required",
        ),
        (
            json!({"typedData": empty_domain}),
            400,
            "typedData.domain must not be empty",
        ),
        (
            json!({"typedData": with("/domain/chainId", json!(0))}),
            400,
            "typedData.domain.chainId must be a positive integer that fits in 64 bits",
        ),
        (
            json!({"typedData": with("/domain/chainId", json!("18446744073709551616"))}),
            400,
            "typedData.domain.chainId must be a positive integer",
        ),
        (
            json!({"typedData": with("/domain/chainId", json!(-5))}),
            400,
            "typedData.domain.chainId must be a positive integer",
        ),
        (
            json!({"typedData": with("/domain/verifyingContract", json!("0xCcCC"))}),
            400,
            "typedData.domain.verifyingContract must be an address",
        ),
        (
            json!({"typedData": with(
                "/domain/verifyingContract",
                json!("0xCCCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")
            )}),
            400,
            "invalid EIP-55 checksum",
        ),
        (
            json!({"typedData": without("/types", "EIP712Domain")}),
            400,
            "typedData.types.EIP712Domain must list exactly the fields present in the domain",
        ),
        // primaryType.
        (
            json!({"typedData": with("/primaryType", json!("Letter"))}),
            400,
            "typedData.primaryType `Letter` is not defined in typedData.types",
        ),
        (
            json!({"typedData": with("/primaryType", json!("EIP712Domain"))}),
            400,
            "typedData.primaryType must not be EIP712Domain",
        ),
        // Message fields, named by their path.
        (
            json!({"typedData": with("/message/to/wallet", json!("Bob's wallet"))}),
            400,
            "typedData.message.to.wallet is not a valid `address`",
        ),
        (
            json!({"typedData": without("/message", "contents")}),
            400,
            "typedData.message.contents is missing: Mail declares `contents` of type `string`",
        ),
        // alloy's own validation.
        (
            json!({"typedData": with("/types/Mail/0/type", json!("Sender"))}),
            400,
            "invalid typed data:",
        ),
        // Shape: 400.
        (json!({}), 400, "missing field `typedData`"),
        (
            json!({"typedData": mail(), "extra": 1}),
            400,
            "unknown field `extra`",
        ),
        (
            json!({"typedData": "{\"types\": {}}"}),
            400,
            "typedData must be a JSON object",
        ),
        (
            json!({"typedData": with("/domain/name", json!(5))}),
            400,
            "typedData.domain.name must be a string",
        ),
        (
            json!({"typedData": without("", "message")}),
            400,
            "typedData: missing field `message`",
        ),
        (
            json!({"typedData": with("/primaryType", json!(["Mail"]))}),
            400,
            "typedData.primaryType must be a string",
        ),
    ];
    let mut with_extra = mail();
    with_extra["domain"]["chain"] = json!(1);
    let mut top_extra = mail();
    top_extra["signer"] = json!("me");
    let mut cases = cases;
    cases.push((
        json!({ "typedData": with_extra }),
        400,
        "typedData.domain: unknown field `chain`",
    ));
    cases.push((
        json!({ "typedData": top_extra }),
        400,
        "typedData: unknown field `signer`",
    ));
    for (body, status, message) in cases {
        let r = app.post_json(path, &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.body["success"], false);
        let error = r.body["error"].as_str().unwrap();
        assert!(error.contains(message), "{error:?} lacks {message:?}");
    }
    for (ct, body, status) in [
        ("application/json", b"{".to_vec(), 400),
        ("text/plain", b"{}".to_vec(), 415),
    ] {
        let r = app.post_raw(path, ct, body, &[]).await;
        assert_eq!(r.status, status, "{}", r.body);
        assert_eq!(r.body["success"], false);
    }
    assert_eq!(event_count(&app).await, 1, "only WalletCreated");
}

// ---------------------------------------------------------------------------
// Transactions

/// Decodes a signed raw transaction with alloy-consensus, checks its hash,
/// its signer (alloy, and libsecp256k1 from its signature hash) and returns it.
pub(crate) fn decode_and_check(r: &crate::helpers::Resp, address: &str) -> TxEnvelope {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["address"], address);
    let raw = hex::decode(
        r.body["signedTransaction"]
            .as_str()
            .unwrap()
            .strip_prefix("0x")
            .unwrap(),
    )
    .unwrap();
    let hash = format!("{}", keccak256(&raw));
    assert_eq!(r.body["transactionHash"], hash, "keccak256(raw)");
    let envelope = TxEnvelope::decode_2718(&mut raw.as_slice()).expect("decodes");
    assert_eq!(format!("{}", envelope.tx_hash()), hash);
    let (signature_hash, recovered) = match &envelope {
        TxEnvelope::Eip1559(s) => (s.signature_hash(), s.recover_signer().unwrap()),
        TxEnvelope::Legacy(s) => (s.signature_hash(), s.recover_signer().unwrap()),
        other => panic!("unexpected type {other:?}"),
    };
    assert_eq!(
        recovered.to_checksum(None),
        address,
        "alloy recovers the wallet"
    );
    let sig = r.body["signature"].as_str().unwrap();
    assert_eq!(recover(signature_hash.0, sig), address, "secp256k1 too");
    // The response's signature is the one inside the transaction.
    let inner = envelope.signature();
    let sig_bytes = hex::decode(&sig[2..]).unwrap();
    assert_eq!(U256::from_be_slice(&sig_bytes[..32]), inner.r());
    assert_eq!(U256::from_be_slice(&sig_bytes[32..64]), inner.s());
    assert_eq!(sig_bytes[64] == 28, inner.v());
    envelope
}

pub(crate) fn eip1559(to: Option<&str>) -> Value {
    let mut tx = json!({
        "type": "eip1559",
        "chainId": 11155111,
        "nonce": 42,
        "value": "0x2386f26fc10000",
        "data": "0xa9059cbb000000000000000000000000fb6916095ca1df60bb79ce92ce3ea74c37c5d3590000000000000000000000000000000000000000000000000000000000000001",
        "gasLimit": 65000,
        "maxFeePerGas": "30000000000",
        "maxPriorityFeePerGas": 1500000000u64
    });
    if let Some(to) = to {
        tx["to"] = json!(to);
    }
    tx
}

async fn transactions_decode_and_recover_to_the_wallet(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("sender").await;
    let address = created["address"].as_str().unwrap();
    let to = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";

    // EIP-1559 call.
    let r = app
        .post_json(
            "/api/wallets/sender/sign-transaction",
            &json!({ "transaction": eip1559(Some(to)) }),
        )
        .await;
    let envelope = decode_and_check(&r, address);
    let TxEnvelope::Eip1559(signed) = &envelope else {
        panic!("EIP-1559 envelope expected: {envelope:?}")
    };
    assert!(r.body["signedTransaction"]
        .as_str()
        .unwrap()
        .starts_with("0x02"));
    let tx = signed.tx();
    assert_eq!(tx.chain_id, 11155111);
    assert_eq!(tx.nonce, 42);
    assert_eq!(tx.gas_limit, 65000);
    assert_eq!(tx.max_fee_per_gas, 30_000_000_000);
    assert_eq!(tx.max_priority_fee_per_gas, 1_500_000_000);
    assert_eq!(tx.to, TxKind::Call(to.parse().unwrap()));
    assert_eq!(tx.value, U256::from(10_000_000_000_000_000u64));
    assert_eq!(tx.input.len(), 68);
    assert!(tx.access_list.is_empty());
    let first_hash = r.body["transactionHash"].clone();
    let first_digest = format!("{}", signed.signature_hash());

    // EIP-1559 contract creation (no `to`), by wallet id and by address.
    let wallet_id = created["walletId"].as_str().unwrap();
    for id in [wallet_id.to_string(), address.to_string()] {
        let r = app
            .post_json(
                &format!("/api/wallets/{id}/sign-transaction"),
                &json!({ "transaction": eip1559(None) }),
            )
            .await;
        let envelope = decode_and_check(&r, address);
        assert_eq!(envelope.kind(), TxKind::Create);
        assert_eq!(r.body["walletId"], wallet_id);
    }

    // Legacy (EIP-155) on another chain, with `to` null and numbers as strings.
    let r = app
        .post_json(
            "/api/wallets/sender/sign-transaction",
            &json!({"transaction": {
                "type": "legacy", "chainId": "137", "nonce": "0x0", "to": null,
                "value": "0", "data": "0x6080", "gas": "0x186a0", "gasPrice": "0x6fc23ac00"
            }}),
        )
        .await;
    let envelope = decode_and_check(&r, address);
    let TxEnvelope::Legacy(signed) = &envelope else {
        panic!("legacy expected: {envelope:?}")
    };
    assert_eq!(signed.tx().chain_id, Some(137), "EIP-155 v");
    assert_eq!(signed.tx().gas_limit, 100_000);
    assert_eq!(signed.tx().gas_price, 30_000_000_000);
    assert_eq!(signed.tx().to, TxKind::Create);
    let raw = hex::decode(&r.body["signedTransaction"].as_str().unwrap()[2..]).unwrap();
    let items = rlp_list_items(&raw);
    assert_eq!(items.len(), 9);
    let sig = hex::decode(&r.body["signature"].as_str().unwrap()[2..]).unwrap();
    assert_eq!(
        be_u64(&items[6]),
        137 * 2 + 35 + u64::from(sig[64] - 27),
        "v = chainId * 2 + 35 + recovery id"
    );

    // The audit record.
    let events = signed_events(&app).await;
    assert_eq!(events.len(), 4);
    let e = &events[0];
    assert_eq!(e["scheme"], "eip1559");
    assert_eq!(e["digest"], first_digest);
    assert_eq!(e["tx_hash"], first_hash);
    assert_eq!(e["chain_id"], 11155111);
    assert_eq!(e["tx_nonce"], 42);
    assert_eq!(e["tx_to"], to);
    assert_eq!(e["tx_value"], "10000000000000000");
    assert!(events[1].get("tx_to").is_none(), "contract creation");
    assert_eq!(events[3]["scheme"], "eip155");
    assert_eq!(events[3]["chain_id"], 137);
    assert_eq!(events[3]["tx_hash"], r.body["transactionHash"]);
}

async fn legacy_transaction_matches_the_eip155_example(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("eip155").await;
    let address = created["address"].as_str().unwrap();
    // The example transaction of EIP-155 (signed there by key 0x4646…46; here
    // by the wallet's key, so only the signing hash is the EIP's).
    let r = app
        .post_json(
            "/api/wallets/eip155/sign-transaction",
            &json!({"transaction": {
                "type": "legacy", "chainId": 1, "nonce": 9, "gasPrice": "20000000000",
                "gas": 21000, "to": "0x3535353535353535353535353535353535353535",
                "value": "1000000000000000000"
            }}),
        )
        .await;
    let envelope = decode_and_check(&r, address);
    let TxEnvelope::Legacy(signed) = &envelope else {
        panic!("legacy expected")
    };
    let eip155_hash = "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53";
    assert_eq!(format!("{}", signed.signature_hash()), eip155_hash);
    let sig = r.body["signature"].as_str().unwrap();
    assert_eq!(recover(digest_of(eip155_hash), sig), address);
    let raw = hex::decode(&r.body["signedTransaction"].as_str().unwrap()[2..]).unwrap();
    let items = rlp_list_items(&raw);
    let v = be_u64(&items[6]);
    assert!(v == 37 || v == 38, "v = 1 * 2 + 35 + recovery id: {v}");
    assert_eq!(v - 37, u64::from(hex::decode(&sig[2..]).unwrap()[64] - 27));
    // The unsigned fields are the EIP's, in its order.
    let fields: Vec<String> = items[..6].iter().map(hex::encode).collect();
    assert_eq!(
        fields,
        [
            "09",
            "04a817c800",
            "5208",
            "3535353535353535353535353535353535353535",
            "0de0b6b3a7640000",
            ""
        ]
    );
    let events = signed_events(&app).await;
    assert_eq!(events[0]["digest"], eip155_hash);
    assert_eq!(events[0]["scheme"], "eip155");
}

async fn transaction_errors_record_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("careful").await;
    let path = "/api/wallets/careful/sign-transaction";
    let to = Some("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359");
    let set = |key: &str, v: Value| {
        let mut t = eip1559(to);
        t[key] = v;
        json!({ "transaction": t })
    };
    let remove = |key: &str| {
        let mut t = eip1559(to);
        t.as_object_mut().unwrap().remove(key);
        json!({ "transaction": t })
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        // Semantic: 400.
        (
            set("maxPriorityFeePerGas", json!("30000000001")),
            400,
            "transaction.maxPriorityFeePerGas must not exceed transaction.maxFeePerGas",
        ),
        (
            set("chainId", json!(0)),
            400,
            "transaction.chainId must be positive",
        ),
        (
            set("chainId", json!("18446744073709551616")),
            400,
            "transaction.chainId must fit in 64 bits",
        ),
        (
            set("to", json!("0x1234")),
            400,
            "transaction.to must be an address",
        ),
        (
            set("to", json!("0xFB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")),
            400,
            "transaction.to has an invalid EIP-55 checksum",
        ),
        (
            set("value", json!("1.5")),
            400,
            "transaction.value must be a non-negative integer",
        ),
        (
            set("value", json!("-1")),
            400,
            "transaction.value must be a non-negative integer",
        ),
        (
            set("data", json!("0xabc")),
            400,
            "transaction.data must be 0x followed by an even number",
        ),
        (
            set("gasLimit", json!(100)),
            400,
            "transaction.gas must be at least 21000",
        ),
        (
            set("maxFeePerGas", json!(format!("0x1{}", "0".repeat(32)))),
            400,
            "transaction.maxFeePerGas must fit in 128 bits",
        ),
        // Shape: 400.
        (remove("chainId"), 400, "missing field `chainId`"),
        (remove("type"), 400, "missing field `type`"),
        (remove("maxFeePerGas"), 400, "missing field `maxFeePerGas`"),
        (
            set("type", json!("eip4844")),
            400,
            "unknown variant `eip4844`",
        ),
        (
            set("accessList", json!([])),
            400,
            "unknown field `accessList`",
        ),
        (set("gasPrice", json!(1)), 400, "unknown field `gasPrice`"),
        (
            set("nonce", json!(true)),
            400,
            "invalid type: boolean `true`",
        ),
        (set("nonce", json!(-1)), 400, "invalid type: integer `-1`"),
        (set("to", json!(12)), 400, "invalid type: integer `12`"),
        (set("gas", json!(21000)), 400, "duplicate field `gas`"),
        (
            json!({"transaction": eip1559(to), "from": "0x00"}),
            400,
            "unknown field `from`",
        ),
        (
            json!({"transaction": "0x02f8"}),
            400,
            "transaction must be a JSON object",
        ),
        (json!({}), 400, "missing field `transaction`"),
    ];
    let mut legacy_with_1559_fee = json!({"transaction": {
        "type": "legacy", "chainId": 1, "nonce": 0, "value": "0", "gas": 21000,
        "gasPrice": "1", "maxFeePerGas": "1"
    }});
    let mut cases = cases;
    cases.push((
        legacy_with_1559_fee.clone(),
        400,
        "unknown field `maxFeePerGas`",
    ));
    let legacy = legacy_with_1559_fee["transaction"].as_object_mut().unwrap();
    legacy.remove("maxFeePerGas");
    legacy.remove("chainId");
    cases.push((legacy_with_1559_fee, 400, "missing field `chainId`"));
    for (body, status, message) in cases {
        let r = app.post_json(path, &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.body["success"], false);
        let error = r.body["error"].as_str().unwrap();
        assert!(error.contains(message), "{error:?} lacks {message:?}");
    }
    assert_eq!(event_count(&app).await, 1, "only WalletCreated");
}

async fn unknown_and_external_wallets(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    // An external wallet: registered by address, its key not held by walletd.
    let address = Address::parse("0x3535353535353535353535353535353535353535").unwrap();
    app.app
        .wallets
        .execute(
            WalletId::for_address(&address),
            WalletCommand::Register {
                wallet_id: WalletId::for_address(&address),
                user_id: UserId::parse("outsider").unwrap(),
                address,
                nickname: None,
                proof: None,
                at: walletd::domain::Timestamp::now(),
            },
            &CommandMeta::system("test"),
        )
        .await
        .unwrap();
    let before = event_count(&app).await;
    let typed = json!({ "typedData": mail() });
    let tx = json!({ "transaction": eip1559(None) });
    let external = address.to_checksum();
    let external_id = WalletId::for_address(&address).to_string();
    let unknown_uuid = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(String, u16, &str)> = vec![
        ("nobody".into(), 404, "wallet not found"),
        (unknown_uuid, 404, "wallet not found"),
        (format!("0x{}", "ab".repeat(20)), 404, "wallet not found"),
        (
            "0x12".into(),
            400,
            "malformed address: expected 0x followed by 40 hex digits",
        ),
        // A wallet of another API (here an external address): as if it did
        // not exist.
        (external, 404, "wallet not found"),
        (external_id, 404, "wallet not found"),
    ];
    for (id, status, message) in cases {
        for (endpoint, body) in [("sign-typed-data", &typed), ("sign-transaction", &tx)] {
            let r = app
                .post_json(&format!("/api/wallets/{id}/{endpoint}"), body)
                .await;
            assert_eq!(r.status, status, "{id} {endpoint}: {}", r.body);
            assert_eq!(r.body["success"], false);
            assert_eq!(r.body["error"], message);
        }
    }
    assert_eq!(event_count(&app).await, before, "nothing signed");
    assert!(signed_events(&app).await.is_empty());
}

async fn idempotency_auth_and_methods(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("repeat").await;
    let body = json!({ "transaction": eip1559(None) })
        .to_string()
        .into_bytes();
    let path = "/api/wallets/repeat/sign-transaction";
    let h = [("Idempotency-Key", "tx-1")];
    let first = app
        .post_raw(path, "application/json", body.clone(), &h)
        .await;
    let second = app
        .post_raw(path, "application/json", body.clone(), &h)
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body, second.body);
    assert_eq!(signed_events(&app).await.len(), 1, "signed once");
    let typed_path = "/api/wallets/repeat/sign-typed-data";
    let other = app
        .post_raw(
            typed_path,
            "application/json",
            json!({ "typedData": mail() }).to_string().into_bytes(),
            &h,
        )
        .await;
    assert_eq!(other.status, 422, "same key, other request: {}", other.body);

    for p in [path, typed_path] {
        let res = app
            .client
            .post(app.url(p))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.clone())
            .await
            .unwrap();
        let r = crate::helpers::into_resp(res).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
        let r = app.get(p).await;
        assert_eq!(r.status, 405, "GET {p}");
        assert_eq!(r.body["success"], false);
    }
    assert_eq!(signed_events(&app).await.len(), 1);
}
