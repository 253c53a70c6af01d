//! JWT roles, ordered from least to most privileged.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Visitor,
    Subscriber,
    Member,
    Confidential,
    Admin,
}

impl Role {
    /// Exactly the upper-case names the API documents; anything else is unknown.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "VISITOR" => Role::Visitor,
            "SUBSCRIBER" => Role::Subscriber,
            "MEMBER" => Role::Member,
            "CONFIDENTIAL" => Role::Confidential,
            "ADMIN" => Role::Admin,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Visitor => "VISITOR",
            Role::Subscriber => "SUBSCRIBER",
            Role::Member => "MEMBER",
            Role::Confidential => "CONFIDENTIAL",
            Role::Admin => "ADMIN",
        }
    }

    pub fn at_least(&self, min: Role) -> bool {
        *self >= min
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_and_strict() {
        assert!(Role::Admin > Role::Confidential);
        assert!(Role::Confidential > Role::Member);
        assert!(Role::Member > Role::Subscriber);
        assert!(Role::Subscriber > Role::Visitor);
        assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::parse("ROOT"), None);
        for r in [
            Role::Visitor,
            Role::Subscriber,
            Role::Member,
            Role::Confidential,
            Role::Admin,
        ] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
