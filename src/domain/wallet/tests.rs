//! Given / when / then for every command and every rejection.

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::test::TestFramework;
use k256::ecdsa::SigningKey;

use super::*;
use crate::custody::{eth, Custody, CustodyError, CustodyKind, GeneratedKey, KeyRef, SignPayload};
use crate::domain::{Address, RecoverableSignature, Timestamp, UserId, WalletId};

/// A custody backend holding one real key in memory, for aggregate tests only.
struct OneKeyCustody {
    key: SigningKey,
    configured: bool,
}

#[async_trait]
impl Custody for OneKeyCustody {
    fn kind(&self) -> CustodyKind {
        CustodyKind::Local
    }
    async fn generate(&self, _w: WalletId) -> Result<GeneratedKey, CustodyError> {
        unreachable!("aggregate tests pass keys in commands")
    }
    async fn sign(
        &self,
        _key: &KeyRef,
        _w: WalletId,
        payload: &SignPayload,
    ) -> Result<RecoverableSignature, CustodyError> {
        if !self.configured {
            return Err(CustodyError::NotConfigured);
        }
        Ok(eth::sign_digest(&self.key, &payload.digest()).unwrap())
    }
    async fn discard(&self, _key: &KeyRef) -> Result<(), CustodyError> {
        Ok(())
    }
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}

fn signing_key(seed: u8) -> SigningKey {
    let mut b = [seed; 32];
    b[0] = 1;
    SigningKey::from_slice(&b).unwrap()
}

fn services(configured: bool) -> WalletServices {
    WalletServices::new(vec![Arc::new(OneKeyCustody {
        key: signing_key(9),
        configured,
    })])
}

fn framework() -> TestFramework<Wallet> {
    TestFramework::with(services(true))
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
fn sign_records_digest_not_message_and_fills_slot() {
    let slot = SignatureSlot::default();
    let msg = b"hello walletd".to_vec();
    let events = framework()
        .given(vec![created()])
        .when(WalletCommand::Sign {
            payload: SignPayload::PersonalMessage(msg.clone()),
            requested_by: "apikey:test".into(),
            at: t(3),
            reply: slot.clone(),
        })
        .inspect_result()
        .unwrap();
    let sig = slot.take().expect("signature handed back");
    let digest = eth::eip191_hash(&msg);
    assert_eq!(
        events,
        vec![WalletEvent::MessageSigned {
            wallet_id: wallet_id(),
            scheme: "eip191".into(),
            digest: format!("0x{}", hex::encode(digest)),
            message_len: msg.len() as u64,
            signature: sig,
            requested_by: "apikey:test".into(),
            at: t(3),
        }]
    );
    assert_eq!(
        eth::recover_address(&digest, &sig),
        Some(generated().address)
    );
    let stored = serde_json::to_string(&events).unwrap();
    assert!(!stored.contains("hello walletd"));
}

#[test]
fn sign_on_missing_wallet() {
    framework()
        .given_no_previous_events()
        .when(WalletCommand::Sign {
            payload: SignPayload::PersonalMessage(b"x".to_vec()),
            requested_by: "t".into(),
            at: t(3),
            reply: SignatureSlot::default(),
        })
        .then_expect_error(WalletError::NotFound);
}

#[test]
fn sign_on_external_wallet_is_rejected() {
    let (address, _, proof) = external();
    let id = WalletId::for_address(&address);
    framework()
        .given(vec![WalletEvent::WalletRegistered {
            wallet_id: id,
            user_id: user(),
            address,
            nickname: None,
            ownership_proof: Some(proof),
            registered_at: t(0),
        }])
        .when(WalletCommand::Sign {
            payload: SignPayload::PersonalMessage(b"x".to_vec()),
            requested_by: "t".into(),
            at: t(3),
            reply: SignatureSlot::default(),
        })
        .then_expect_error(WalletError::NotCustodial(id));
}

#[test]
fn sign_without_master_key_reports_misconfiguration() {
    let result = TestFramework::<Wallet>::with(services(false))
        .given(vec![created()])
        .when(WalletCommand::Sign {
            payload: SignPayload::PersonalMessage(b"x".to_vec()),
            requested_by: "t".into(),
            at: t(3),
            reply: SignatureSlot::default(),
        })
        .inspect_result();
    assert!(matches!(
        result,
        Err(WalletError::Custody {
            failure: CustodyFailure::NotConfigured,
            ..
        })
    ));
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
