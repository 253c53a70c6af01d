//! A movement's id: the idempotency anchor of issue, transfer and redeem.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

const REQUEST_NS: Uuid = Uuid::from_u128(0x1d7a_4c2e_9b30_4f85_a6c1_2e8d_5b7f_0c04);

/// Chosen by the service before the first attempt, so every retry of one
/// request names the same movement. A transfer keeps its id on both legs
/// (the debit on the source, the credit or the return).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MovementId(Uuid);

impl MovementId {
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The movement of a request with an idempotency key (an
    /// `Idempotency-Key`, a Sila `reference`): the same caller and key give
    /// the same movement, so two attempts cannot both move money.
    pub fn for_request(actor: &str, key: &str) -> Self {
        let mut name = Vec::with_capacity(actor.len() + 1 + key.len());
        name.extend_from_slice(actor.as_bytes());
        name.push(0);
        name.extend_from_slice(key.as_bytes());
        Self(Uuid::new_v5(&REQUEST_NS, &name))
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::try_parse(s).ok().map(Self)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for MovementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_stable_and_separated_by_caller() {
        let a = MovementId::for_request("sila:acme.app", "ref-1");
        assert_eq!(a, MovementId::for_request("sila:acme.app", "ref-1"));
        assert_ne!(a, MovementId::for_request("sila:acme.app", "ref-2"));
        assert_ne!(a, MovementId::for_request("sila:other.app", "ref-1"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            MovementId::for_request("ab", "c"),
            MovementId::for_request("a", "bc")
        );
    }
}
