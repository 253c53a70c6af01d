//! Identifiers. A value of these types is valid by construction.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Address;

/// Namespaces for ids derived from natural keys (UUIDv5), so that the event
/// store's primary key enforces uniqueness of the natural key.
const SERVER_WALLET_NS: Uuid = Uuid::from_u128(0x8f0c_5a1e_7d2b_4c6a_9e31_0b7f_2d4e_6a01);
const ADDRESS_NS: Uuid = Uuid::from_u128(0x3b9d_1f47_c2e8_4a50_8d16_5e9a_7c3f_0b02);
const REQUEST_NS: Uuid = Uuid::from_u128(0x5e2a_91c4_0f6d_4b38_a7e1_3c9b_d804_2f03);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WalletId(Uuid);

impl WalletId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The one server wallet of a user: a second create for the same user
    /// collides on the event store's primary key.
    pub fn for_server_wallet(user: &UserId) -> Self {
        Self(Uuid::new_v5(&SERVER_WALLET_NS, user.as_str().as_bytes()))
    }

    /// A wallet created under an Idempotency-Key: two attempts of one request
    /// (same caller, same key) collide on the event store's primary key.
    pub fn for_request(actor: &str, idempotency_key: &str) -> Self {
        let mut name = Vec::with_capacity(actor.len() + 1 + idempotency_key.len());
        name.extend_from_slice(actor.as_bytes());
        name.push(0);
        name.extend_from_slice(idempotency_key.as_bytes());
        Self(Uuid::new_v5(&REQUEST_NS, &name))
    }

    /// A registered external address: registering it twice, by anyone,
    /// collides on the event store's primary key.
    pub fn for_address(address: &Address) -> Self {
        Self(Uuid::new_v5(&ADDRESS_NS, address.as_bytes()))
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::try_parse(s).ok().map(Self)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A caller-chosen user identifier: 1–128 printable ASCII characters, not
/// starting with `0x` (that prefix is reserved for addresses in lookups).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    #[error("userId must be 1 to 128 characters")]
    Length,
    #[error("userId must contain printable ASCII characters only")]
    Charset,
    #[error("userId must not start with 0x (addresses) or sila: (Sila handles)")]
    Reserved,
}

/// User ids of Sila users are their handles under this prefix, which callers
/// of the other APIs cannot use, so the two kinds of user never meet.
const HANDLE_PREFIX: &str = "sila:";

impl UserId {
    /// A caller-supplied user id (server-wallet and JWT APIs).
    pub fn parse(s: &str) -> Result<Self, UserIdError> {
        let id = Self::stored(s)?;
        // `get`, not indexing: safe whatever `stored` lets through.
        if s.get(..HANDLE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(HANDLE_PREFIX))
        {
            return Err(UserIdError::Reserved);
        }
        Ok(id)
    }

    /// Whether a stored user id is a Sila user's (see [`UserId::for_handle`]).
    pub fn is_sila(stored: &str) -> bool {
        stored
            .get(..HANDLE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(HANDLE_PREFIX))
    }

    /// The user id of a Sila user.
    pub fn for_handle(handle: &super::Handle) -> Self {
        Self(format!("{HANDLE_PREFIX}{handle}"))
    }

    fn stored(s: &str) -> Result<Self, UserIdError> {
        if s.is_empty() || s.len() > 128 {
            return Err(UserIdError::Length);
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(UserIdError::Charset);
        }
        if s.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x")) {
            return Err(UserIdError::Reserved);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = UserIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::stored(&s)
    }
}

impl From<UserId> for String {
    fn from(u: UserId) -> String {
        u.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_rules() {
        assert!(UserId::parse("user_123").is_ok());
        assert!(UserId::parse(&"a".repeat(128)).is_ok());
        assert_eq!(UserId::parse(""), Err(UserIdError::Length));
        assert_eq!(UserId::parse(&"a".repeat(129)), Err(UserIdError::Length));
        assert_eq!(UserId::parse("tab\there"), Err(UserIdError::Charset));
        assert_eq!(UserId::parse("jürgen"), Err(UserIdError::Charset));
        assert_eq!(UserId::parse("0xabc"), Err(UserIdError::Reserved));
        assert_eq!(UserId::parse("SILA:bob"), Err(UserIdError::Reserved));
        let handle = crate::domain::Handle::parse("bob.eth").unwrap();
        let stored: UserId = serde_json::from_str("\"sila:bob.eth\"").unwrap();
        assert_eq!(stored, UserId::for_handle(&handle));
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = UserId::parse("alice").unwrap();
        let b = UserId::parse("bob").unwrap();
        assert_eq!(
            WalletId::for_server_wallet(&a),
            WalletId::for_server_wallet(&a)
        );
        assert_ne!(
            WalletId::for_server_wallet(&a),
            WalletId::for_server_wallet(&b)
        );
    }
}
