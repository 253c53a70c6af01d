//! Which API dialect owns which wallet: the one place that decides whether a
//! caller of one dialect may see or touch a wallet.
//!
//! The ownership model (also in the README, "Who may touch which wallet"):
//! - the server-wallet API (API keys) owns the wallets of kind `server`; every
//!   API key acts for the operator's back end, so any key reaches every server
//!   wallet and nothing else;
//! - the JWT API owns the custodial wallets it created: kind `custodial` with a
//!   plain user id (the token's `sub`); a user reaches their own, an ADMIN those
//!   of every JWT user, never a wallet of another dialect;
//! - the Sila API owns its users' wallets: registered addresses (kind
//!   `external`) and token-mode accounts (kind `custodial` with a `sila:` user
//!   id); a Sila user reaches only their own, through request signatures.
//!
//! A wallet of another dialect is answered exactly like one that does not
//! exist, so identifiers cannot be probed across dialects. The read-only admin
//! audit (`GET /api/admin/audit`) is the one view across dialects: it is the
//! auditor's window on the whole log and changes nothing.

use crate::domain::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    ServerWallets,
    JwtWallets,
    Sila,
}

impl Dialect {
    /// The dialect that owns a wallet of `kind` (as the directory stores it:
    /// `server`, `custodial`, `external`) belonging to `user_id`.
    pub fn owning(kind: &str, user_id: &str) -> Option<Dialect> {
        match kind {
            "server" => Some(Dialect::ServerWallets),
            "external" => Some(Dialect::Sila),
            "custodial" if UserId::is_sila(user_id) => Some(Dialect::Sila),
            "custodial" => Some(Dialect::JwtWallets),
            _ => None,
        }
    }

    /// Whether this dialect owns a wallet of `kind` belonging to `user_id`.
    pub fn owns(self, kind: &str, user_id: &str) -> bool {
        Dialect::owning(kind, user_id) == Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect::*;
    use super::*;

    #[test]
    fn each_kind_has_one_owner() {
        assert_eq!(Dialect::owning("server", "alice"), Some(ServerWallets));
        assert_eq!(Dialect::owning("custodial", "alice"), Some(JwtWallets));
        assert_eq!(Dialect::owning("custodial", "sila:alice"), Some(Sila));
        assert_eq!(Dialect::owning("external", "sila:alice"), Some(Sila));
        assert_eq!(Dialect::owning("something-new", "alice"), None);
        assert!(!JwtWallets.owns("server", "alice"));
        assert!(!ServerWallets.owns("custodial", "alice"));
        assert!(!ServerWallets.owns("custodial", "sila:alice"));
        assert!(!JwtWallets.owns("custodial", "sila:alice"));
        assert!(!Sila.owns("server", "sila:alice"));
    }
}
