//! Authentication for the API dialects.

pub mod api_keys;

/// An authenticated caller, as recorded in event metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// e.g. `apikey:3f2a…`
    pub actor: String,
    pub auth_method: &'static str,
}
