//! Configuration values that must never be printed.
//!
//! `Settings` derives `Debug`, and a derived `Debug` of a struct holding a
//! master key as a `String` prints the key. These wrappers print
//! `[redacted]` instead (the database URL: everything but its password), so a
//! stray `{:?}` in a log line or a panic message leaks nothing. The value is
//! reached only through [`Secret::expose`], which makes each use visible in
//! review.

use std::fmt;
use std::ops::Deref;

use zeroize::Zeroizing;

const REDACTED: &str = "[redacted]";

/// A secret setting: master keys, channel keys, the JWT secret, API keys.
/// No `Display`; `Debug` prints `[redacted]`; the memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself, for the code that has to use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// What clap parses a flag or an environment variable into.
impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// `DATABASE_URL`: used as a `&str` everywhere, but its `Debug` hides the
/// password a `postgres://user:password@host/db` URL carries.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        let url = self.0.as_str();
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return url.to_string();
        };
        let rest = &url[scheme_end..];
        // The authority ends at the first '/', '?' or '#'; a password lives in
        // its userinfo, before the last '@'.
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let Some(at) = authority.rfind('@') else {
            return url.to_string();
        };
        let userinfo = &authority[..at];
        let Some(colon) = userinfo.find(':') else {
            return url.to_string();
        };
        format!(
            "{}{}:{REDACTED}{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        )
    }
}

impl Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl PartialEq<str> for DatabaseUrl {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for DatabaseUrl {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<String> for DatabaseUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::from("hunter2-master-key");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2-master-key");
    }

    #[test]
    fn database_url_hides_only_the_password() {
        let cases = [
            (
                "postgres://walletd:s3cret@db.example:5432/walletd?sslmode=require",
                "postgres://walletd:[redacted]@db.example:5432/walletd?sslmode=require",
            ),
            (
                "postgresql://u:p%40ss@h/db",
                "postgresql://u:[redacted]@h/db",
            ),
            // '@' inside the password (not percent-encoded): the last '@' ends it.
            ("postgres://u:a@b@h/db", "postgres://u:[redacted]@h/db"),
            (
                "postgres://postgres@127.0.0.1:5432/x",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            ("sqlite://walletd.db", "sqlite://walletd.db"),
            ("sqlite:walletd.db", "sqlite:walletd.db"),
            // An '@' in the path is not userinfo.
            ("sqlite:///tmp/a:b@c.db", "sqlite:///tmp/a:b@c.db"),
            ("postgres://h€:p€@x/é", "postgres://h€:[redacted]@x/é"),
        ];
        for (url, shown) in cases {
            let u = DatabaseUrl::from(url);
            assert_eq!(u.redacted(), shown, "{url}");
            assert_eq!(&*u, url);
        }
    }
}
