//! Sila-style handles (`handle.silamoney.eth`): 3–100 characters of ASCII
//! letters, digits, `.`, `-` and `_`; compared case-insensitively, stored in
//! lower case.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("handle must be 3 to 100 characters")]
    Length,
    #[error("handle may contain only letters, digits, '.', '-' and '_'")]
    Charset,
}

impl Handle {
    pub fn parse(s: &str) -> Result<Self, HandleError> {
        if !(3..=100).contains(&s.len()) {
            return Err(HandleError::Length);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(HandleError::Charset);
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Handle {
    type Error = HandleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Handle> for String {
    fn from(h: Handle) -> String {
        h.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(
            Handle::parse("Handle.SilaMoney.eth").unwrap().as_str(),
            "handle.silamoney.eth"
        );
        assert_eq!(Handle::parse("ab"), Err(HandleError::Length));
        assert_eq!(Handle::parse(&"a".repeat(101)), Err(HandleError::Length));
        assert_eq!(Handle::parse("has space"), Err(HandleError::Charset));
        assert_eq!(Handle::parse("ünï.eth"), Err(HandleError::Charset));
    }
}
