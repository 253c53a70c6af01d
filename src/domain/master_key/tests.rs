use cqrs_es::test::TestFramework;

use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_datetime(chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap())
}

fn id(s: &str) -> MasterKeyId {
    MasterKeyId::parse(s).unwrap()
}

fn rotate(scope: MasterKeyScope, from: &str, to: &str) -> MasterKeyCommand {
    MasterKeyCommand::RecordRotation {
        scope,
        from_key_id: id(from),
        to_key_id: id(to),
        rewrapped: 3,
        at: t(1),
    }
}

fn rotated(from: &str, to: &str) -> MasterKeyEvent {
    MasterKeyEvent::MasterKeyRotated {
        scope: MasterKeyScope::Walletd,
        from_key_id: id(from),
        to_key_id: id(to),
        rewrapped: 3,
        at: t(1),
    }
}

const A: &str = "0123456789abcdef";
const B: &str = "fedcba9876543210";

#[test]
fn a_rotation_is_recorded() {
    TestFramework::<MasterKeyHistory>::with(())
        .given_no_previous_events()
        .when(rotate(MasterKeyScope::Walletd, A, B))
        .then_expect_events(vec![rotated(A, B)]);
    // And the next one, from wherever the key is now.
    TestFramework::<MasterKeyHistory>::with(())
        .given(vec![rotated(A, B)])
        .when(rotate(MasterKeyScope::Walletd, B, A))
        .then_expect_events(vec![rotated(B, A)]);
}

#[test]
fn a_rotation_to_the_same_key_or_of_another_scope_is_refused() {
    TestFramework::<MasterKeyHistory>::with(())
        .given_no_previous_events()
        .when(rotate(MasterKeyScope::Walletd, A, A))
        .then_expect_error(MasterKeyError::SameKey(id(A)));
    TestFramework::<MasterKeyHistory>::with(())
        .given(vec![rotated(A, B)])
        .when(rotate(MasterKeyScope::Cosigner, B, A))
        .then_expect_error(MasterKeyError::ScopeMismatch {
            stream: MasterKeyScope::Walletd,
            given: MasterKeyScope::Cosigner,
        });
}

#[test]
fn the_history_follows_the_rotations() {
    let mut h = MasterKeyHistory::default();
    h.apply(rotated(A, B));
    h.apply(rotated(B, A));
    assert_eq!((h.current(), h.rotations()), (Some(&id(A)), 2));
}

#[test]
fn a_key_id_is_never_key_material() {
    // A key itself, in either spelling `WALLETD_MASTER_KEY` accepts, is not
    // an id (`rotate-master-key`'s tests record real ids).
    assert!(MasterKeyId::parse(&"ab".repeat(32)).is_err());
    assert!(MasterKeyId::parse("q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80=").is_err());
    assert!(MasterKeyId::parse("0123456789ABCDEF").is_err());
    assert!(MasterKeyId::parse("").is_err());
    // Nor does one deserialize from a stored event.
    let forged = serde_json::json!({"MasterKeyRotated": {
        "scope": "walletd", "from_key_id": "ab".repeat(32), "to_key_id": B,
        "rewrapped": 1, "at": "2027-01-15T08:00:00.000000Z"
    }});
    assert!(serde_json::from_value::<MasterKeyEvent>(forged).is_err());
}
