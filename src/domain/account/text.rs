//! The free text a movement carries: external references and memos.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A reference outside walletd: the funding behind an issue (a bank
/// transfer id, an ACH trace, a payment id) or where a redemption goes (a
/// bank account token, a payout id). 1–128 printable ASCII characters, no
/// leading or trailing space. Not a place for account numbers in the clear:
/// the service passes tokens or ids, and events are public to auditors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reference(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("a reference is 1 to 128 characters")]
    Length,
    #[error("a reference is printable ASCII without leading or trailing spaces")]
    Charset,
}

impl Reference {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ReferenceError::Length);
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) || s.starts_with(' ') || s.ends_with(' ')
        {
            return Err(ReferenceError::Charset);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reference {
    type Error = ReferenceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Reference> for String {
    fn from(r: Reference) -> String {
        r.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the sender moved the money, as they wrote it: 1–280 characters of
/// any script, no control characters (a memo is shown in histories and
/// exports, where a newline or an escape sequence would forge lines).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Memo(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoError {
    #[error("a memo is 1 to 280 characters")]
    Length,
    #[error("a memo has no control characters")]
    Control,
}

impl Memo {
    pub const MAX_CHARS: usize = 280;

    pub fn parse(s: &str) -> Result<Self, MemoError> {
        let chars = s.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(MemoError::Length);
        }
        if s.chars().any(char::is_control) {
            return Err(MemoError::Control);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Memo {
    type Error = MemoError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Memo> for String {
    fn from(m: Memo) -> String {
        m.0
    }
}

impl fmt::Display for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert!(Reference::parse("ach-2026-12-01-0042").is_ok());
        assert!(Reference::parse("wire 1234").is_ok());
        assert!(Reference::parse(&"r".repeat(128)).is_ok());
        assert_eq!(Reference::parse(""), Err(ReferenceError::Length));
        assert_eq!(
            Reference::parse(&"r".repeat(129)),
            Err(ReferenceError::Length)
        );
        for bad in [" x", "x ", "a\nb", "tab\t", "é"] {
            assert_eq!(
                Reference::parse(bad),
                Err(ReferenceError::Charset),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<Reference>("\"\"").is_err());
    }

    #[test]
    fn memos() {
        assert!(Memo::parse("rent, December").is_ok());
        assert!(Memo::parse("Miete für Dezember ☕").is_ok());
        assert!(Memo::parse(&"é".repeat(280)).is_ok());
        assert_eq!(Memo::parse(""), Err(MemoError::Length));
        assert_eq!(Memo::parse(&"é".repeat(281)), Err(MemoError::Length));
        assert_eq!(Memo::parse("line\nforged"), Err(MemoError::Control));
        assert_eq!(Memo::parse("\u{1b}[31mred"), Err(MemoError::Control));
        assert!(serde_json::from_str::<Memo>("\"a\\u0000b\"").is_err());
    }
}
