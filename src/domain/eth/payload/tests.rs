//! Payload validation, digests against published vectors, and the stable JSON form.

use k256::ecdsa::SigningKey;
use serde_json::{json, Value};

use super::*;
use crate::domain::eth;

/// The example of EIP-712 itself ("Ether Mail").
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

const MAIL_DIGEST: &str = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2";

/// The example of EIP-155.
fn eip155_example() -> Value {
    json!({
        "type": "legacy",
        "chainId": 1,
        "nonce": 9,
        "gasPrice": "20000000000",
        "gas": 21000,
        "to": "0x3535353535353535353535353535353535353535",
        "value": "1000000000000000000"
    })
}

fn typed(v: Value) -> Result<SignPayload, PayloadError> {
    TypedDataPayload::from_json(v).map(SignPayload::TypedData)
}

fn tx(v: Value) -> Result<SignPayload, PayloadError> {
    TransactionPayload::from_json(v).map(SignPayload::Transaction)
}

/// `v` with the member at `pointer` set (added if its parent lacks it).
fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = v.pointer_mut(parent).unwrap();
    match target {
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = new,
        Value::Object(o) => {
            o.insert(key.to_string(), new);
        }
        _ => panic!("{pointer}"),
    }
    v
}

fn without(mut v: Value, parent: &str, key: &str) -> Value {
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    v
}

#[test]
fn mail_example_has_the_published_signing_hash() {
    let p = typed(mail()).unwrap();
    assert_eq!(hex::encode(p.digest()), MAIL_DIGEST);
    assert_eq!(p.scheme(), "eip712");
    let s = p.summary();
    assert_eq!(s.chain_id, Some(1));
    assert_eq!(s.primary_type.as_deref(), Some("Mail"));
    assert_eq!(s.domain_name.as_deref(), Some("Ether Mail"));
    assert_eq!(
        s.verifying_contract.map(|a| a.to_lower_hex()),
        Some(format!("0x{}", "cc".repeat(20)))
    );
    // chainId spelled as a string is the same domain.
    for id in [json!("1"), json!("0x1")] {
        let p = typed(with(mail(), "/domain/chainId", id)).unwrap();
        assert_eq!(hex::encode(p.digest()), MAIL_DIGEST);
    }
}

#[test]
fn typed_data_shape_errors() {
    let cases = [
        json!("a string"),
        json!([1]),
        with(mail(), "/extra", json!(1)),
        with(mail(), "/domain", json!("Ether Mail")),
        with(mail(), "/domain/foo", json!("x")),
        with(mail(), "/domain/name", json!(7)),
        with(mail(), "/domain/verifyingContract", json!(7)),
        with(mail(), "/types", json!([])),
        with(mail(), "/primaryType", json!(1)),
        with(mail(), "/message", json!("hi")),
        without(mail(), "", "types"),
        without(mail(), "", "primaryType"),
        without(mail(), "", "message"),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        let shown = c.to_string();
        assert!(
            matches!(typed(c), Err(PayloadError::Shape(_))),
            "case {i}: {shown}"
        );
    }
}

#[test]
fn typed_data_invalid() {
    let empty_domain = {
        let mut m = with(mail(), "/domain", json!({}));
        m["types"]["EIP712Domain"] = json!([]);
        m
    };
    let cases: Vec<(Value, &str)> = vec![
        (without(mail(), "", "domain"), "domain is required"),
        (with(mail(), "/domain", Value::Null), "domain is required"),
        (empty_domain, "must not be empty"),
        (with(mail(), "/domain/chainId", json!(0)), "chainId"),
        (with(mail(), "/domain/chainId", json!(-1)), "chainId"),
        (with(mail(), "/domain/chainId", json!(1.5)), "chainId"),
        (
            with(mail(), "/domain/chainId", json!("0x10000000000000000")),
            "chainId",
        ),
        (with(mail(), "/domain/chainId", json!("one")), "chainId"),
        (with(mail(), "/domain/chainId", json!(true)), "chainId"),
        (
            with(mail(), "/domain/verifyingContract", json!("0x1234")),
            "verifyingContract must be an address",
        ),
        (
            with(
                mail(),
                "/domain/verifyingContract",
                json!("0xCCCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"),
            ),
            "checksum",
        ),
        (with(mail(), "/primaryType", json!("Letter")), "not defined"),
        (
            with(mail(), "/primaryType", json!("EIP712Domain")),
            "EIP712Domain",
        ),
        (
            without(mail(), "/types", "EIP712Domain"),
            "EIP712Domain must list",
        ),
        (
            with(
                mail(),
                "/types/EIP712Domain",
                json!([
                    {"name": "version", "type": "string"},
                    {"name": "name", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ]),
            ),
            "EIP712Domain must list",
        ),
        (
            without(mail(), "/domain", "version"),
            "EIP712Domain must list",
        ),
        (
            with(
                mail(),
                "/domain/salt",
                json!(format!("0x{}", "ab".repeat(32))),
            ),
            "EIP712Domain must list",
        ),
        // Fields of the message are named by their path.
        (
            with(mail(), "/message/from/wallet", json!("not an address")),
            "typedData.message.from.wallet is not a valid `address`",
        ),
        (
            without(mail(), "/message", "contents"),
            "typedData.message.contents is missing: Mail declares `contents` of type `string`",
        ),
        (
            without(mail(), "/message/to", "wallet"),
            "typedData.message.to.wallet is missing: Person declares `wallet` of type `address`",
        ),
        (
            with(mail(), "/message/to", json!("Bob")),
            "typedData.message.to must be an object (struct Person)",
        ),
        (
            with(
                with(mail(), "/types/Mail/1/type", json!("Person[]")),
                "/message/to",
                json!([{"name": "A", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"}, {"name": "B"}]),
            ),
            "typedData.message.to[1].wallet is missing",
        ),
        (
            with(
                with(mail(), "/types/Mail/1/type", json!("Person[]")),
                "/message/to",
                json!({"name": "A"}),
            ),
            "typedData.message.to must be an array (Person[])",
        ),
        // alloy's own checks.
        (
            with(mail(), "/types/Mail/0/type", json!("Animal")),
            "invalid typed data",
        ),
        (
            with(mail(), "/types/Person", json!("x")),
            "invalid typed data",
        ),
    ];
    for (v, needle) in cases {
        let shown = v.to_string();
        match typed(v) {
            Err(PayloadError::Invalid(m)) => assert!(m.contains(needle), "{m} / {shown}"),
            other => panic!("{shown}: {other:?}"),
        }
    }
}

#[test]
fn salt_is_checked() {
    let mut m = mail();
    m["domain"]["salt"] = json!("0x12");
    m["types"]["EIP712Domain"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "salt", "type": "bytes32"}));
    assert!(matches!(typed(m.clone()), Err(PayloadError::Invalid(e)) if e.contains("salt")));
    m["domain"]["salt"] = json!(format!("0x{}", "ab".repeat(32)));
    let p = typed(m).unwrap();
    assert_ne!(hex::encode(p.digest()), MAIL_DIGEST);
}

#[test]
fn eip155_example_has_the_published_signing_hash_and_raw_transaction() {
    let p = tx(eip155_example()).unwrap();
    assert_eq!(
        hex::encode(p.digest()),
        "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
    );
    assert_eq!(p.scheme(), "eip155");
    let key = SigningKey::from_slice(&[0x46; 32]).unwrap();
    let sig = eth::sign_digest(&key, &p.digest()).unwrap();
    let signed = p.signed_transaction(&sig).unwrap();
    // The EIP's signed transaction (RFC 6979 nonces, as there).
    assert_eq!(
        hex::encode(&signed.raw),
        "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    );
    assert_eq!(signed.hash, eth::keccak256(&signed.raw));
    let s = p.summary();
    assert_eq!(s.chain_id, Some(1));
    assert_eq!(s.tx_nonce, Some(9));
    assert_eq!(s.tx_value.as_deref(), Some("1000000000000000000"));
}

fn eip1559() -> Value {
    json!({
        "type": "eip1559",
        "chainId": 11155111,
        "nonce": 0,
        "to": "0x3535353535353535353535353535353535353535",
        "value": "0x0de0b6b3a7640000",
        "data": "0xdeadbeef",
        "gasLimit": 50000,
        "maxFeePerGas": "30000000000",
        "maxPriorityFeePerGas": 1000000000
    })
}

#[test]
fn eip1559_is_an_eip2718_envelope() {
    let p = tx(eip1559()).unwrap();
    assert_eq!(p.scheme(), "eip1559");
    let key = SigningKey::from_slice(&[0x46; 32]).unwrap();
    let sig = eth::sign_digest(&key, &p.digest()).unwrap();
    let signed = p.signed_transaction(&sig).unwrap();
    assert_eq!(signed.raw[0], 0x02, "type byte");
    assert_eq!(signed.hash, eth::keccak256(&signed.raw));
    // The preimage is 0x02 ‖ rlp(fields), its hash the digest.
    let SignPayload::Transaction(t) = &p else {
        unreachable!()
    };
    let pre = t.signing_preimage();
    assert_eq!(pre[0], 0x02);
    assert_eq!(eth::keccak256(&pre), p.digest());
    assert_eq!(p.message_len(), pre.len() as u64);
    // Spellings of the same numbers are the same transaction.
    let same = tx(with(
        with(eip1559(), "/value", json!("1000000000000000000")),
        "/maxPriorityFeePerGas",
        json!("0x3b9aca00"),
    ))
    .unwrap();
    assert_eq!(same, p);
    // Contract creation: to absent or null.
    let create = tx(without(eip1559(), "", "to")).unwrap();
    assert_eq!(tx(with(eip1559(), "/to", Value::Null)).unwrap(), create);
    assert_ne!(create.digest(), p.digest());
}

#[test]
fn transaction_shape_errors() {
    let cases = [
        json!("x"),
        without(eip1559(), "", "type"),
        with(eip1559(), "/type", json!("eip2930")),
        without(eip1559(), "", "chainId"),
        without(eip1559(), "", "nonce"),
        without(eip1559(), "", "value"),
        without(eip1559(), "", "gasLimit"),
        without(eip1559(), "", "maxFeePerGas"),
        without(eip155_example(), "", "gasPrice"),
        with(eip1559(), "/nonce", json!(true)),
        with(eip1559(), "/nonce", json!(-1)),
        with(eip1559(), "/nonce", json!(1.5)),
        with(eip1559(), "/to", json!(5)),
        with(eip1559(), "/data", json!([1])),
        with(eip1559(), "/value", json!({})),
        with(eip1559(), "/gasPrice", json!(1)),
        with(eip155_example(), "/maxFeePerGas", json!(1)),
        with(eip1559(), "/accessList", json!([])),
        with(eip1559(), "/gas", json!(21000)),
    ];
    for (i, c) in cases.into_iter().enumerate() {
        let shown = c.to_string();
        assert!(
            matches!(tx(c), Err(PayloadError::Shape(_))),
            "case {i}: {shown}"
        );
    }
}

#[test]
fn transaction_invalid() {
    let cases: Vec<(Value, &str)> = vec![
        (
            with(eip1559(), "/maxPriorityFeePerGas", json!("30000000001")),
            "must not exceed",
        ),
        (
            with(eip1559(), "/chainId", json!(0)),
            "chainId must be positive",
        ),
        (
            with(eip1559(), "/chainId", json!("0x10000000000000000")),
            "chainId must fit in 64 bits",
        ),
        (with(eip1559(), "/nonce", json!("ten")), "nonce must be"),
        (with(eip1559(), "/value", json!("")), "value must be"),
        (with(eip1559(), "/value", json!("0x")), "value must be"),
        (with(eip1559(), "/value", json!("-1")), "value must be"),
        (with(eip1559(), "/value", json!("0b101")), "value must be"),
        (with(eip1559(), "/value", json!(" 1")), "value must be"),
        (
            with(eip1559(), "/value", json!(format!("0x1{}", "0".repeat(64)))),
            "value must be",
        ),
        (
            with(
                eip1559(),
                "/maxFeePerGas",
                json!(format!("0x1{}", "0".repeat(32))),
            ),
            "maxFeePerGas must fit in 128 bits",
        ),
        (
            with(eip1559(), "/to", json!("0x1234")),
            "to must be an address",
        ),
        (
            with(
                eip1559(),
                "/to",
                json!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            ),
            "checksum",
        ),
        (with(eip1559(), "/data", json!("deadbeef")), "data must be"),
        (with(eip1559(), "/data", json!("0xabc")), "data must be"),
        (
            with(eip1559(), "/gasLimit", json!(20999)),
            "gas must be at least",
        ),
    ];
    for (v, needle) in cases {
        let shown = v.to_string();
        match tx(v) {
            Err(PayloadError::Invalid(m)) => assert!(m.contains(needle), "{m} / {shown}"),
            other => panic!("{shown}: {other:?}"),
        }
    }
    // A correct checksum and all-lowercase / all-uppercase spellings are accepted.
    for to in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED",
    ] {
        tx(with(eip1559(), "/to", json!(to))).unwrap();
    }
}

#[test]
fn json_form_round_trips_and_is_revalidated() {
    let payloads = [
        SignPayload::PersonalMessage(b"hello".to_vec()),
        SignPayload::PersonalMessage(Vec::new()),
        typed(mail()).unwrap(),
        typed(with(mail(), "/domain/chainId", json!("0x1"))).unwrap(),
        tx(eip1559()).unwrap(),
        tx(without(eip1559(), "", "to")).unwrap(),
        tx(eip155_example()).unwrap(),
    ];
    for p in payloads {
        let text = serde_json::to_string(&p).unwrap();
        let back: SignPayload = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p, "{text}");
        assert_eq!(back.digest(), p.digest(), "{text}");
        // The form is canonical: serializing again gives the same text.
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
    let v = serde_json::to_value(SignPayload::PersonalMessage(b"hi".to_vec())).unwrap();
    assert_eq!(v, json!({"kind": "personal_message", "message": "0x6869"}));
    let v = serde_json::to_value(tx(eip155_example()).unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"kind": "transaction", "transaction": {
            "type": "legacy", "chainId": 1, "nonce": 9,
            "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000", "data": "0x", "gas": 21000,
            "gasPrice": "20000000000"
        }})
    );
    assert_eq!(v["kind"], "transaction");

    // What arrives is validated again: a payload that could not have been built is refused.
    let refused = [
        json!({"kind": "typed_data", "typed_data": without(mail(), "", "domain")}),
        json!({"kind": "typed_data", "typed_data": with(mail(), "/primaryType", json!("EIP712Domain"))}),
        json!({"kind": "transaction", "transaction": with(eip1559(), "/maxPriorityFeePerGas", json!("30000000001"))}),
        json!({"kind": "personal_message", "message": "0xabc"}),
        json!({"kind": "personal_message", "message": "0x00", "digest": "0x00"}),
        json!({"kind": "raw_hash", "digest": format!("0x{}", "00".repeat(32))}),
    ];
    for r in refused {
        assert!(
            serde_json::from_value::<SignPayload>(r.clone()).is_err(),
            "{r}"
        );
    }
}

#[test]
fn personal_message_is_unchanged() {
    let p = SignPayload::PersonalMessage(b"hello".to_vec());
    assert_eq!(p.digest(), eth::eip191_hash(b"hello"));
    assert_eq!(p.message_len(), 5);
    assert_eq!(p.scheme(), "eip191");
    assert_eq!(p.summary(), PayloadSummary::default());
    let key = SigningKey::from_slice(&[0x46; 32]).unwrap();
    let sig = eth::sign_digest(&key, &p.digest()).unwrap();
    assert!(p.signed_transaction(&sig).is_none());
}
