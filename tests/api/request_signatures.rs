//! Sila request signatures and proofs of key ownership, made by an independent
//! implementation (libsecp256k1 for ECDSA, alloy for keccak and addresses).

use secp256k1::{Message, Secp256k1, SecretKey};
use walletd::auth::request_signature::{signer_of, RequestSignatureError};
use walletd::domain::wallet::{OwnershipProof, Wallet, WalletCommand, WalletEvent};
use walletd::domain::{Address, Timestamp, UserId, WalletId};

/// Signs keccak256(bytes) the way Sila's SDKs do: 65 bytes r‖s‖v, v = 27/28.
fn sila_sign(key: &SecretKey, bytes: &[u8], zero_based_v: bool) -> String {
    let digest = alloy_primitives::keccak256(bytes);
    let msg = Message::from_digest(digest.0);
    let sig = Secp256k1::new().sign_ecdsa_recoverable(msg, key);
    let (recid, rs) = sig.serialize_compact();
    let v = i32::from(recid) as u8 + if zero_based_v { 0 } else { 27 };
    let mut out = rs.to_vec();
    out.push(v);
    hex::encode(out)
}

fn address_of(key: &SecretKey) -> String {
    let public = key.public_key(&Secp256k1::new()).serialize_uncompressed();
    alloy_primitives::Address::from_raw_public_key(&public[1..]).to_checksum(None)
}

fn key(n: u8) -> SecretKey {
    SecretKey::from_byte_array([n; 32]).unwrap()
}

#[test]
fn request_signatures_recover_to_the_signer() {
    let k = key(7);
    let body = br#"{"header": {"created": 1234567890, "app_handle": "handle.silamoney.eth", "user_handle": "user.silamoney.eth", "version": "0.2", "crypto": "ETH", "reference": "ref"}}"#;
    for zero_based in [false, true] {
        let sig = sila_sign(&k, body, zero_based);
        for form in [sig.clone(), format!("0x{sig}"), sig.to_uppercase()] {
            let signer = signer_of(body, &form).unwrap();
            assert_eq!(signer.to_checksum(), address_of(&k));
        }
    }
    // The exact bytes count: a re-serialisation with other whitespace is another message.
    let sig = sila_sign(&k, body, false);
    let reformatted =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(body).unwrap()).unwrap();
    assert_ne!(
        signer_of(&reformatted, &sig).unwrap().to_checksum(),
        address_of(&k)
    );
    // Malformed signatures.
    for bad in [
        "",
        "0x",
        "zz",
        &sig[..128],
        &format!("{sig}00"),
        &format!("{}1d", &sig[..128]),
    ] {
        assert!(signer_of(body, bad).is_err(), "{bad}");
    }
    assert_eq!(
        signer_of(body, &format!("{}1d", &sig[..128])),
        Err(RequestSignatureError::Format)
    );
}

#[test]
fn ownership_proof_by_an_independent_signer_registers_the_address() {
    let k = key(9);
    let address_text = address_of(&k);
    // Sila signs the address string exactly as sent in the request.
    let proof_hex = sila_sign(&k, address_text.as_bytes(), false);
    let address = Address::parse(&address_text).unwrap();
    let proof = walletd::domain::RecoverableSignature::parse_hex(&proof_hex).unwrap();
    let id = WalletId::for_address(&address);
    let at = Timestamp::now();
    let events = cqrs_es::test::TestFramework::<Wallet>::with(())
        .given_no_previous_events()
        .when(WalletCommand::Register {
            wallet_id: id,
            user_id: UserId::parse("user.silamoney.eth").unwrap(),
            address,
            nickname: None,
            proof: Some(OwnershipProof {
                message: address_text.clone(),
                signature: proof,
            }),
            at,
        })
        .inspect_result()
        .unwrap();
    assert!(matches!(
        &events[..],
        [WalletEvent::WalletRegistered { .. }]
    ));

    // Signed by another key: refused.
    let other = sila_sign(&key(10), address_text.as_bytes(), false);
    let result = cqrs_es::test::TestFramework::<Wallet>::with(())
        .given_no_previous_events()
        .when(WalletCommand::Register {
            wallet_id: id,
            user_id: UserId::parse("user.silamoney.eth").unwrap(),
            address,
            nickname: None,
            proof: Some(OwnershipProof {
                message: address_text,
                signature: walletd::domain::RecoverableSignature::parse_hex(&other).unwrap(),
            }),
            at,
        })
        .inspect_result();
    assert!(result.is_err());
}
