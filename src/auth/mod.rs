//! Authentication for the API dialects.

pub mod api_keys;
pub mod jwt;
pub mod ownership;
pub mod replay_guard;
pub mod request_signature;
pub mod roles;

/// An authenticated caller, as recorded in event metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// e.g. `apikey:3f2a…`
    pub actor: String,
    pub auth_method: &'static str,
    /// The JWT role, for callers authenticated by JWT.
    pub role: Option<roles::Role>,
}
