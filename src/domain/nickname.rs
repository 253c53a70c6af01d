//! Sila wallet nicknames: 1–40 characters, no control characters, unique per
//! user regardless of case.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::WalletId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nickname(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NicknameError {
    #[error("nickname must be 1 to 40 characters")]
    Length,
    #[error("nickname must not contain control characters")]
    Control,
}

impl Nickname {
    pub const MAX_CHARS: usize = 40;

    pub fn parse(s: &str) -> Result<Self, NicknameError> {
        let n = s.chars().count();
        if n == 0 || n > Self::MAX_CHARS || s.trim().is_empty() {
            return Err(NicknameError::Length);
        }
        if s.chars().any(char::is_control) {
            return Err(NicknameError::Control);
        }
        Ok(Self(s.to_string()))
    }

    /// `wallet-<first 8 hex digits of the wallet id>`, for a wallet registered
    /// without a nickname.
    pub fn generated(wallet_id: WalletId) -> Self {
        let hex = wallet_id.as_uuid().simple().to_string();
        Self(format!("wallet-{}", &hex[..8]))
    }

    /// The form nicknames are compared in.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Nickname {
    type Error = NicknameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Nickname> for String {
    fn from(n: Nickname) -> String {
        n.0
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(Nickname::parse("a").is_ok());
        assert!(Nickname::parse(&"é".repeat(40)).is_ok());
        assert_eq!(Nickname::parse(""), Err(NicknameError::Length));
        assert_eq!(Nickname::parse("   "), Err(NicknameError::Length));
        assert_eq!(Nickname::parse(&"a".repeat(41)), Err(NicknameError::Length));
        assert_eq!(Nickname::parse("tab\there"), Err(NicknameError::Control));
        assert_eq!(
            Nickname::parse("Main").unwrap().key(),
            Nickname::parse("MAIN").unwrap().key()
        );
        let id = WalletId::parse("5eae53c1-09ae-4229-a9fd-2c4427046a63").unwrap();
        assert_eq!(Nickname::generated(id).as_str(), "wallet-5eae53c1");
    }
}
