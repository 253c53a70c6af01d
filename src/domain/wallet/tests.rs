//! Given / when / then for every command and every rejection.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use k256::ecdsa::SigningKey;

use super::*;
use crate::domain::eth::{self, SignPayload, TransactionPayload, TypedDataPayload};
use crate::domain::key::{CustodyKind, GeneratedKey, KeyFreezeReason, KeyRef};
use crate::domain::{Address, RecoverableSignature, Timestamp, UserId, WalletId};

fn signing_key(seed: u8) -> SigningKey {
    let mut b = [seed; 32];
    b[0] = 1;
    SigningKey::from_slice(&b).unwrap()
}

/// The aggregate is pure: no services.
fn framework() -> TestFramework<Wallet> {
    TestFramework::with(())
}

/// What custody would return for the wallet of `created()` (key seed 9), or
/// for another key.
fn signature_by(seed: u8, payload: &SignPayload) -> RecoverableSignature {
    eth::sign_digest(&signing_key(seed), &payload.digest()).unwrap()
}

fn record(payload: SignPayload, signature: RecoverableSignature) -> WalletCommand {
    WalletCommand::RecordSignature {
        payload: Box::new(payload),
        signature,
        requested_by: "apikey:test".into(),
        at: t(3),
    }
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_datetime(chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap())
}

fn user() -> UserId {
    UserId::parse("user_123").unwrap()
}

fn wallet_id() -> WalletId {
    WalletId::for_server_wallet(&user())
}

fn generated() -> GeneratedKey {
    let k = signing_key(9);
    GeneratedKey {
        key: KeyRef {
            key_id: "key-1".into(),
            custody: CustodyKind::Local,
        },
        address: eth::address_of(k.verifying_key()),
        public_key: eth::uncompressed_public_key(k.verifying_key()),
    }
}

fn created() -> WalletEvent {
    let g = generated();
    WalletEvent::WalletCreated {
        wallet_id: wallet_id(),
        user_id: user(),
        kind: WalletKind::Server,
        custody: CustodyKind::Local,
        key_id: "key-1".into(),
        address: g.address,
        public_key: format!("0x{}", hex::encode(g.public_key)),
        label: None,
        created_at: t(0),
    }
}

fn create_cmd() -> WalletCommand {
    WalletCommand::Create {
        wallet_id: wallet_id(),
        user_id: user(),
        kind: WalletKind::Server,
        key: generated(),
        label: None,
        at: t(0),
    }
}

/// An external key, its address, and a valid ownership proof.
fn external() -> (Address, String, RecoverableSignature) {
    let k = signing_key(5);
    let addr = eth::address_of(k.verifying_key());
    let msg = addr.to_checksum();
    let proof = eth::sign_digest(&k, &eth::keccak256(msg.as_bytes())).unwrap();
    (addr, msg, proof)
}

fn register_cmd(
    proof_message: String,
    proof: RecoverableSignature,
    address: Address,
) -> WalletCommand {
    WalletCommand::Register {
        wallet_id: WalletId::for_address(&address),
        user_id: user(),
        address,
        nickname: Some("savings".into()),
        proof: Some(OwnershipProof {
            message: proof_message,
            signature: proof,
        }),
        at: t(1),
    }
}

#[test]
fn create_emits_wallet_created() {
    framework()
        .given_no_previous_events()
        .when(create_cmd())
        .then_expect_events(vec![created()]);
}

#[test]
fn create_twice_is_rejected() {
    framework()
        .given(vec![created()])
        .when(create_cmd())
        .then_expect_error(WalletError::AlreadyExists {
            wallet_id: wallet_id(),
        });
}

#[test]
fn register_with_valid_proof() {
    let (address, msg, proof) = external();
    framework()
        .given_no_previous_events()
        .when(register_cmd(msg, proof, address))
        .then_expect_events(vec![WalletEvent::WalletRegistered {
            wallet_id: WalletId::for_address(&address),
            user_id: user(),
            address,
            nickname: Some("savings".into()),
            ownership_proof: Some(proof),
            registered_at: t(1),
        }]);
}

#[test]
fn register_accepts_lowercase_spelling_of_the_address() {
    let k = signing_key(5);
    let address = eth::address_of(k.verifying_key());
    let msg = address.to_lower_hex();
    let proof = eth::sign_digest(&k, &eth::keccak256(msg.as_bytes())).unwrap();
    let events = framework()
        .given_no_previous_events()
        .when(register_cmd(msg, proof, address))
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1);
}

#[test]
fn register_rejects_proof_by_another_key() {
    let (address, msg, _) = external();
    let other = signing_key(6);
    let bad = eth::sign_digest(&other, &eth::keccak256(msg.as_bytes())).unwrap();
    framework()
        .given_no_previous_events()
        .when(register_cmd(msg, bad, address))
        .then_expect_error(WalletError::InvalidOwnershipProof);
}

#[test]
fn register_rejects_proof_over_another_message() {
    let (address, _, _) = external();
    let k = signing_key(5);
    let msg = "not the address".to_string();
    let proof = eth::sign_digest(&k, &eth::keccak256(msg.as_bytes())).unwrap();
    framework()
        .given_no_previous_events()
        .when(register_cmd(msg, proof, address))
        .then_expect_error(WalletError::InvalidOwnershipProof);
}

#[test]
fn register_rejects_mismatched_wallet_id() {
    let (address, msg, proof) = external();
    framework()
        .given_no_previous_events()
        .when(WalletCommand::Register {
            wallet_id: WalletId::random(),
            user_id: user(),
            address,
            nickname: None,
            proof: Some(OwnershipProof {
                message: msg,
                signature: proof,
            }),
            at: t(1),
        })
        .then_expect_error(WalletError::WalletIdMismatch);
}

#[test]
fn register_existing_address_is_rejected() {
    let (address, msg, proof) = external();
    let registered = WalletEvent::WalletRegistered {
        wallet_id: WalletId::for_address(&address),
        user_id: UserId::parse("someone_else").unwrap(),
        address,
        nickname: None,
        ownership_proof: Some(proof),
        registered_at: t(0),
    };
    framework()
        .given(vec![registered])
        .when(register_cmd(msg, proof, address))
        .then_expect_error(WalletError::AlreadyExists {
            wallet_id: WalletId::for_address(&address),
        });
}

#[test]
fn set_default() {
    framework()
        .given(vec![created()])
        .when(WalletCommand::SetDefault { at: t(2) })
        .then_expect_events(vec![WalletEvent::DefaultWalletSet {
            wallet_id: wallet_id(),
            user_id: user(),
            at: t(2),
        }]);
}

#[test]
fn set_default_on_missing_wallet() {
    framework()
        .given_no_previous_events()
        .when(WalletCommand::SetDefault { at: t(2) })
        .then_expect_error(WalletError::NotFound);
}

#[test]
fn record_signature_records_digest_not_message() {
    let msg = b"hello walletd".to_vec();
    let payload = SignPayload::PersonalMessage(msg.clone());
    let sig = signature_by(9, &payload);
    let events = framework()
        .given(vec![created()])
        .when(record(payload, sig))
        .inspect_result()
        .unwrap();
    let digest = eth::eip191_hash(&msg);
    assert_eq!(
        events,
        vec![WalletEvent::MessageSigned {
            wallet_id: wallet_id(),
            kind: SignatureKind::Message,
            scheme: "eip191".into(),
            digest: format!("0x{}", hex::encode(digest)),
            message_len: msg.len() as u64,
            signature: sig,
            requested_by: "apikey:test".into(),
            at: t(3),
            chain_id: None,
            primary_type: None,
            domain_name: None,
            verifying_contract: None,
            tx_nonce: None,
            tx_to: None,
            tx_value: None,
            tx_hash: None,
        }]
    );
    assert_eq!(
        eth::recover_address(&digest, &sig),
        Some(generated().address)
    );
    let stored = serde_json::to_string(&events).unwrap();
    assert!(!stored.contains("hello walletd"));
}

fn sign(payload: SignPayload) -> (Vec<WalletEvent>, RecoverableSignature) {
    let sig = signature_by(9, &payload);
    let events = framework()
        .given(vec![created()])
        .when(record(payload, sig))
        .inspect_result()
        .unwrap();
    (events, sig)
}

fn permit() -> serde_json::Value {
    serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "value", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {
            "name": "Token",
            "chainId": "0x89",
            "verifyingContract": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        },
        "message": {
            "owner": "0x3535353535353535353535353535353535353535",
            "value": "1000"
        }
    })
}

#[test]
fn sign_typed_data_records_domain_and_primary_type() {
    let payload = SignPayload::TypedData(TypedDataPayload::from_json(permit()).unwrap());
    let digest = payload.digest();
    let (events, sig) = sign(payload.clone());
    assert_eq!(
        events,
        vec![WalletEvent::MessageSigned {
            wallet_id: wallet_id(),
            kind: SignatureKind::TypedData,
            scheme: "eip712".into(),
            digest: format!("0x{}", hex::encode(digest)),
            message_len: payload.message_len(),
            signature: sig,
            requested_by: "apikey:test".into(),
            at: t(3),
            chain_id: Some(137),
            primary_type: Some("Permit".into()),
            domain_name: Some("Token".into()),
            verifying_contract: Some(
                Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap()
            ),
            tx_nonce: None,
            tx_to: None,
            tx_value: None,
            tx_hash: None,
        }]
    );
    assert_eq!(
        eth::recover_address(&digest, &sig),
        Some(generated().address)
    );
    // The message itself is not in the event.
    let stored = serde_json::to_string(&events).unwrap();
    assert!(!stored.contains("3535353535"), "{stored}");
}

#[test]
fn sign_transaction_records_chain_nonce_recipient_value_and_hash() {
    let payload = SignPayload::Transaction(
        TransactionPayload::from_json(serde_json::json!({
            "type": "eip1559", "chainId": 1, "nonce": 7,
            "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000", "gas": 21000,
            "maxFeePerGas": "2000000000", "maxPriorityFeePerGas": "1000000000"
        }))
        .unwrap(),
    );
    let digest = payload.digest();
    let (events, sig) = sign(payload.clone());
    let raw = payload.signed_transaction(&sig).unwrap();
    assert_eq!(
        events,
        vec![WalletEvent::MessageSigned {
            wallet_id: wallet_id(),
            kind: SignatureKind::Transaction,
            scheme: "eip1559".into(),
            digest: format!("0x{}", hex::encode(digest)),
            message_len: payload.message_len(),
            signature: sig,
            requested_by: "apikey:test".into(),
            at: t(3),
            chain_id: Some(1),
            primary_type: None,
            domain_name: None,
            verifying_contract: None,
            tx_nonce: Some(7),
            tx_to: Some(Address::parse(&format!("0x{}", "35".repeat(20))).unwrap()),
            tx_value: Some("1000000000000000000".into()),
            tx_hash: Some(format!("0x{}", hex::encode(eth::keccak256(&raw.raw)))),
        }]
    );
    assert_eq!(
        eth::recover_address(&digest, &sig),
        Some(generated().address)
    );

    // Legacy: the scheme says EIP-155; a contract creation has no recipient.
    let payload = SignPayload::Transaction(
        TransactionPayload::from_json(serde_json::json!({
            "type": "legacy", "chainId": 5, "nonce": 0, "value": "0", "data": "0x6000",
            "gas": 100000, "gasPrice": "1"
        }))
        .unwrap(),
    );
    let (events, _) = sign(payload);
    let WalletEvent::MessageSigned {
        kind,
        scheme,
        chain_id,
        tx_to,
        tx_hash,
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*kind, SignatureKind::Transaction);
    assert_eq!(scheme, "eip155");
    assert_eq!(*chain_id, Some(5));
    assert_eq!(*tx_to, None);
    assert!(tx_hash.is_some());
}

#[test]
fn old_message_signed_events_still_decode() {
    // Version 1 as stored before the optional fields existed.
    let stored = serde_json::json!({"MessageSigned": {
        "wallet_id": wallet_id().to_string(),
        "scheme": "eip191",
        "digest": format!("0x{}", "11".repeat(32)),
        "message_len": 5,
        "signature": format!("0x{}1b", "22".repeat(64)),
        "requested_by": "apikey:x",
        "at": "2027-01-15T08:00:00.000000Z"
    }});
    let event: WalletEvent =
        serde_json::from_value(upcast::message_signed_v1_to_v2(stored.clone())).unwrap();
    // Version 2 is version 1 plus `kind`.
    let mut expected = stored;
    expected["MessageSigned"]["kind"] = serde_json::json!("message");
    assert_eq!(serde_json::to_value(&event).unwrap(), expected);
    assert_eq!(cqrs_es::DomainEvent::event_version(&event), "2");
}

fn frozen(reason: KeyFreezeReason) -> WalletEvent {
    WalletEvent::WalletKeyFrozen {
        wallet_id: wallet_id(),
        key_id: "key-1".into(),
        reason,
        at: t(4),
    }
}

fn freeze_cmd(key_id: &str) -> WalletCommand {
    WalletCommand::RecordKeyFrozen {
        key_id: key_id.into(),
        reason: KeyFreezeReason::PeerBanned,
        at: t(4),
    }
}

#[test]
fn a_key_freeze_is_recorded_once() {
    framework()
        .given(vec![created()])
        .when(freeze_cmd("key-1"))
        .then_expect_events(vec![frozen(KeyFreezeReason::PeerBanned)]);
    // Recorded again (another process saw the frozen share): nothing new.
    framework()
        .given(vec![created(), frozen(KeyFreezeReason::ShareFrozen)])
        .when(freeze_cmd("key-1"))
        .then_expect_events(vec![]);
}

#[test]
fn a_key_freeze_names_the_wallets_own_key() {
    framework()
        .given(vec![created()])
        .when(freeze_cmd("key-2"))
        .then_expect_error(WalletError::KeyMismatch {
            wallet_id: wallet_id(),
            key_id: "key-2".into(),
        });
    let (address, _, proof) = external();
    let registered = WalletEvent::WalletRegistered {
        wallet_id: WalletId::for_address(&address),
        user_id: user(),
        address,
        nickname: None,
        ownership_proof: Some(proof),
        registered_at: t(0),
    };
    framework()
        .given(vec![registered])
        .when(freeze_cmd("key-1"))
        .then_expect_error(WalletError::NotCustodial(WalletId::for_address(&address)));
    framework()
        .given_no_previous_events()
        .when(freeze_cmd("key-1"))
        .then_expect_error(WalletError::NotFound);
}

#[test]
fn a_frozen_wallet_signs_no_more() {
    let mut wallet = Wallet::default();
    wallet.apply(created());
    wallet.apply(frozen(KeyFreezeReason::PeerBanned));
    assert_eq!(
        wallet.signing_key(),
        Err(WalletError::KeyFrozen {
            wallet_id: wallet_id()
        })
    );
    // A signature custody made before the freeze is not recorded either.
    let payload = SignPayload::PersonalMessage(b"late".to_vec());
    let sig = signature_by(9, &payload);
    framework()
        .given(vec![created(), frozen(KeyFreezeReason::PeerBanned)])
        .when(record(payload, sig))
        .then_expect_error(WalletError::KeyFrozen {
            wallet_id: wallet_id(),
        });
}

#[test]
fn a_snapshot_from_before_freezes_existed_loads_unfrozen() {
    let mut wallet = Wallet::default();
    wallet.apply(created());
    let mut snapshot = serde_json::to_value(&wallet).unwrap();
    snapshot["state"].as_object_mut().unwrap().remove("frozen");
    let loaded: Wallet = serde_json::from_value(snapshot).unwrap();
    assert_eq!(loaded, wallet);
    assert!(loaded.signing_key().is_ok());
}

#[test]
fn a_signature_that_does_not_verify_is_refused_and_records_nothing() {
    // Custody signed with another key than the wallet's.
    let payload = SignPayload::PersonalMessage(b"x".to_vec());
    framework()
        .given(vec![created()])
        .when(record(payload.clone(), signature_by(8, &payload)))
        .then_expect_error(WalletError::SignatureMismatch(wallet_id()));
    // A signature of another payload by the right key.
    let other = SignPayload::PersonalMessage(b"y".to_vec());
    framework()
        .given(vec![created()])
        .when(record(payload, signature_by(9, &other)))
        .then_expect_error(WalletError::SignatureMismatch(wallet_id()));
}

#[test]
fn record_signature_on_missing_or_deleted_wallet() {
    let payload = SignPayload::PersonalMessage(b"x".to_vec());
    framework()
        .given_no_previous_events()
        .when(record(payload.clone(), signature_by(9, &payload)))
        .then_expect_error(WalletError::NotFound);
    let g = generated();
    framework()
        .given(vec![
            created(),
            WalletEvent::WalletDeleted {
                wallet_id: wallet_id(),
                user_id: user(),
                address: g.address,
                at: t(1),
            },
        ])
        .when(record(payload.clone(), signature_by(9, &payload)))
        .then_expect_error(WalletError::NotFound);
}

#[test]
fn record_signature_on_external_wallet_is_rejected() {
    let (address, _, proof) = external();
    let id = WalletId::for_address(&address);
    let payload = SignPayload::PersonalMessage(b"x".to_vec());
    framework()
        .given(vec![WalletEvent::WalletRegistered {
            wallet_id: id,
            user_id: user(),
            address,
            nickname: None,
            ownership_proof: Some(proof),
            registered_at: t(0),
        }])
        .when(record(payload.clone(), signature_by(5, &payload)))
        .then_expect_error(WalletError::NotCustodial(id));
}

#[test]
fn signing_key_names_the_custodial_key_of_a_live_wallet() {
    let mut wallet = Wallet::default();
    assert_eq!(wallet.signing_key(), Err(WalletError::NotFound));
    wallet.apply(created());
    let key = wallet.signing_key().unwrap();
    assert_eq!(key.wallet_id, wallet_id());
    assert_eq!(key.address, generated().address);
    assert_eq!(key.key, generated().key);
    let (address, _, proof) = external();
    let mut external_wallet = Wallet::default();
    external_wallet.apply(WalletEvent::WalletRegistered {
        wallet_id: WalletId::for_address(&address),
        user_id: user(),
        address,
        nickname: None,
        ownership_proof: Some(proof),
        registered_at: t(0),
    });
    assert_eq!(
        external_wallet.signing_key(),
        Err(WalletError::NotCustodial(WalletId::for_address(&address)))
    );
}

#[test]
fn queue_whitelist() {
    framework()
        .given(vec![created()])
        .when(WalletCommand::QueueWhitelist {
            at: t(10),
            delay_secs: 300,
        })
        .then_expect_events(vec![WalletEvent::WhitelistQueued {
            wallet_id: wallet_id(),
            queued_at: t(10),
            eligible_at: t(310),
        }]);
}

fn queued() -> WalletEvent {
    WalletEvent::WhitelistQueued {
        wallet_id: wallet_id(),
        queued_at: t(10),
        eligible_at: t(310),
    }
}

fn whitelisted() -> WalletEvent {
    WalletEvent::WalletWhitelisted {
        wallet_id: wallet_id(),
        at: t(310),
    }
}

#[test]
fn queue_whitelist_rejections() {
    framework()
        .given_no_previous_events()
        .when(WalletCommand::QueueWhitelist {
            at: t(10),
            delay_secs: 1,
        })
        .then_expect_error(WalletError::NotFound);
    framework()
        .given(vec![created(), queued()])
        .when(WalletCommand::QueueWhitelist {
            at: t(11),
            delay_secs: 1,
        })
        .then_expect_error(WalletError::AlreadyQueued);
    framework()
        .given(vec![created(), queued(), whitelisted()])
        .when(WalletCommand::QueueWhitelist {
            at: t(400),
            delay_secs: 1,
        })
        .then_expect_error(WalletError::AlreadyWhitelisted);
}

#[test]
fn complete_whitelist_when_due() {
    framework()
        .given(vec![created(), queued()])
        .when(WalletCommand::CompleteWhitelist { at: t(310) })
        .then_expect_events(vec![whitelisted()]);
}

#[test]
fn complete_whitelist_rejections() {
    framework()
        .given_no_previous_events()
        .when(WalletCommand::CompleteWhitelist { at: t(310) })
        .then_expect_error(WalletError::NotFound);
    framework()
        .given(vec![created()])
        .when(WalletCommand::CompleteWhitelist { at: t(310) })
        .then_expect_error(WalletError::NotQueued);
    framework()
        .given(vec![created(), queued()])
        .when(WalletCommand::CompleteWhitelist { at: t(309) })
        .then_expect_error(WalletError::WhitelistNotDue(t(310)));
    framework()
        .given(vec![created(), queued(), whitelisted()])
        .when(WalletCommand::CompleteWhitelist { at: t(400) })
        .then_expect_error(WalletError::AlreadyWhitelisted);
}

#[test]
fn the_ledger_gate_follows_whitelist_freeze_and_deletion() {
    use crate::domain::account::WalletGate;
    let gate = |events: Vec<WalletEvent>| {
        let mut w = Wallet::default();
        for e in events {
            w.apply(e);
        }
        w.gate()
    };
    assert_eq!(gate(vec![]), None);
    let closed = WalletGate {
        whitelisted: false,
        frozen: false,
        deleted: false,
    };
    assert_eq!(gate(vec![created()]), Some(closed));
    assert_eq!(gate(vec![created(), queued()]), Some(closed));
    assert_eq!(
        gate(vec![created(), queued(), whitelisted()]),
        Some(WalletGate::OPEN)
    );
    assert_eq!(
        gate(vec![
            created(),
            queued(),
            whitelisted(),
            frozen(KeyFreezeReason::PeerBanned)
        ]),
        Some(WalletGate {
            frozen: true,
            ..WalletGate::OPEN
        })
    );
    let deleted = WalletEvent::WalletDeleted {
        wallet_id: wallet_id(),
        user_id: user(),
        address: generated().address,
        at: t(500),
    };
    assert!(gate(vec![created(), queued(), whitelisted(), deleted]).is_some_and(|g| g.deleted));
}
