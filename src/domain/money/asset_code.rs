//! An asset's code: `USD`, `SILA`, `USDC`. Valid by construction.

use std::fmt;

use serde::{Deserialize, Serialize};

/// 2 to 12 characters, each `A`–`Z` or `0`–`9`. Lower case is refused
/// rather than folded: the code is a key in events and read models, and one
/// asset must have one spelling there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AssetCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetCodeError {
    #[error("an asset code is 2 to 12 characters")]
    Length,
    #[error("an asset code is made of A-Z and 0-9 only")]
    Charset,
}

impl AssetCode {
    pub const MIN_LEN: usize = 2;
    pub const MAX_LEN: usize = 12;

    pub fn parse(s: &str) -> Result<Self, AssetCodeError> {
        // Charset before length: "usd" is better told it is lower case.
        if !s
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(AssetCodeError::Charset);
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len()) {
            return Err(AssetCodeError::Length);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AssetCode {
    type Error = AssetCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AssetCode> for String {
    fn from(c: AssetCode) -> String {
        c.0
    }
}

impl fmt::Display for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for ok in ["US", "USD", "SILA", "USDC", "EURC2", "ABCDEFGHIJKL", "00"] {
            assert_eq!(AssetCode::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(AssetCode::parse(""), Err(AssetCodeError::Length));
        assert_eq!(AssetCode::parse("U"), Err(AssetCodeError::Length));
        assert_eq!(
            AssetCode::parse("ABCDEFGHIJKLM"),
            Err(AssetCodeError::Length)
        );
        for bad in ["usd", "Usd", "US D", "US-D", "US_D", "ÜSD", "USD\n", " USD"] {
            assert_eq!(
                AssetCode::parse(bad),
                Err(AssetCodeError::Charset),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_validates() {
        let c: AssetCode = serde_json::from_str("\"SILA\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"SILA\"");
        assert!(serde_json::from_str::<AssetCode>("\"sila\"").is_err());
        assert!(serde_json::from_str::<AssetCode>("\"X\"").is_err());
    }
}
