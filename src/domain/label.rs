//! Wallet labels (JWT API): at most 50 characters, ASCII letters, digits,
//! spaces, hyphens and underscores.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label must be at most 50 characters")]
    TooLong,
    #[error("label may contain only letters, digits, spaces, hyphens and underscores")]
    Charset,
}

impl Label {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(s: &str) -> Result<Self, LabelError> {
        if s.chars().count() > Self::MAX_CHARS {
            return Err(LabelError::TooLong);
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-' || c == '_')
        {
            return Err(LabelError::Charset);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(Label::parse("My Primary Wallet").is_ok());
        assert!(Label::parse("a-b_c 9").is_ok());
        assert!(Label::parse(&"x".repeat(50)).is_ok());
        assert_eq!(Label::parse(&"x".repeat(51)), Err(LabelError::TooLong));
        for bad in [
            "semi;colon",
            "dot.",
            "tab\t",
            "emoji 🙂",
            "café",
            "<script>",
            "new\nline",
        ] {
            assert_eq!(Label::parse(bad), Err(LabelError::Charset), "{bad}");
        }
    }
}
