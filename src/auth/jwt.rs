//! JWT bearer tokens for the JWT-role API: HS256 with a shared secret, and
//! RS256 / ES256 with a PEM public key for identity providers that sign
//! asymmetrically. The token header's `alg` picks the key; any algorithm
//! without a configured key (including `none`) is refused.

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::roles::Role;
use super::Principal;
use crate::domain::UserId;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("WALLETD_JWT_PUBLIC_KEY is neither an RSA nor an EC (P-256) public key in PEM form")]
    PublicKey,
    #[error("WALLETD_JWT_PUBLIC_KEY file {0}: {1}")]
    PublicKeyFile(String, std::io::Error),
    #[error("WALLETD_JWT_SECRET must not be empty")]
    EmptySecret,
    #[error("WALLETD_SILA_TOKEN_AUDIENCE must be set and differ from WALLETD_JWT_AUDIENCE: a token for one API must never be accepted by the other")]
    SameAudience,
}

/// Why a token was refused. Recorded in the security log; never shown to
/// the client beyond "Unauthorized".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    NotConfigured,
    Missing,
    Malformed,
    UnsupportedAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    MissingClaim,
    UnknownRole,
    InvalidSubject,
}

impl Rejection {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rejection::NotConfigured => "jwt_not_configured",
            Rejection::Missing => "missing_token",
            Rejection::Malformed => "malformed_token",
            Rejection::UnsupportedAlgorithm => "unsupported_algorithm",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::MissingClaim => "missing_claim",
            Rejection::UnknownRole => "unknown_role",
            Rejection::InvalidSubject => "invalid_subject",
        }
    }
}

/// The `aud` a Sila token-mode token must carry unless configured otherwise
/// (`WALLETD_SILA_TOKEN_AUDIENCE`). The JWT API refuses any token carrying it,
/// so a token made for one API is never accepted by the other.
pub const DEFAULT_SILA_AUDIENCE: &str = "walletd-sila";

#[derive(Clone, Debug)]
pub struct JwtUser {
    pub user_id: UserId,
    pub role: Role,
    pub principal: Principal,
}

/// A token accepted by the Sila API's token mode: it acts for one user
/// (`sub`, the user handle) of one app (`app_handle`).
#[derive(Clone, Debug)]
pub struct SilaToken {
    pub subject: String,
    pub app_handle: Option<String>,
    /// The `role` claim when present; Sila does not use roles, it is recorded.
    pub role: Option<Role>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    app_handle: Option<String>,
    /// A string or an array of strings (RFC 7519 4.1.3).
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

impl Claims {
    fn has_audience(&self, wanted: &str) -> bool {
        match &self.aud {
            Some(serde_json::Value::String(a)) => a == wanted,
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| a == wanted),
            _ => false,
        }
    }
}

pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    /// (key, RS256 or ES256)
    public: Option<(DecodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: Option<String>,
    sila_audience: String,
}

impl JwtVerifier {
    pub fn new(
        secret: Option<&str>,
        public_key: Option<&str>,
        issuer: Option<String>,
        audience: Option<String>,
        sila_audience: String,
    ) -> Result<Option<Self>, JwtConfigError> {
        if sila_audience.is_empty() || audience.as_deref() == Some(sila_audience.as_str()) {
            return Err(JwtConfigError::SameAudience);
        }
        let hs256 = match secret {
            Some("") => return Err(JwtConfigError::EmptySecret),
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())),
            None => None,
        };
        let public = match public_key {
            None => None,
            Some(p) => {
                let pem = if p.trim_start().starts_with("-----BEGIN") {
                    p.to_string()
                } else {
                    std::fs::read_to_string(p)
                        .map_err(|e| JwtConfigError::PublicKeyFile(p.to_string(), e))?
                };
                if let Ok(k) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    Some((k, Algorithm::RS256))
                } else if let Ok(k) = DecodingKey::from_ec_pem(pem.as_bytes()) {
                    Some((k, Algorithm::ES256))
                } else {
                    return Err(JwtConfigError::PublicKey);
                }
            }
        };
        if hs256.is_none() && public.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            hs256,
            public,
            issuer,
            audience,
            sila_audience,
        }))
    }

    /// A token for the JWT-role API: `sub`, `role` and `exp` required; `aud`
    /// as configured, and never the Sila API's audience.
    pub fn verify(&self, token: &str) -> Result<JwtUser, Rejection> {
        let claims = self.decode(token, self.audience.as_deref())?;
        if claims.has_audience(&self.sila_audience) {
            return Err(Rejection::WrongAudience);
        }
        let role = claims.role.as_deref().ok_or(Rejection::MissingClaim)?;
        let role = Role::parse(role).ok_or(Rejection::UnknownRole)?;
        let user_id = UserId::parse(&claims.sub).map_err(|_| Rejection::InvalidSubject)?;
        Ok(JwtUser {
            principal: Principal {
                actor: format!("jwt:{user_id}"),
                auth_method: "jwt",
                role: Some(role),
            },
            user_id,
            role,
        })
    }

    /// A token for the Sila API's token mode: `sub` (the user handle), `exp`
    /// and the Sila audience required.
    pub fn verify_sila(&self, token: &str) -> Result<SilaToken, Rejection> {
        let claims = self.decode(token, Some(&self.sila_audience))?;
        let role = match claims.role.as_deref() {
            None => None,
            Some(r) => Some(Role::parse(r).ok_or(Rejection::UnknownRole)?),
        };
        Ok(SilaToken {
            subject: claims.sub,
            app_handle: claims.app_handle,
            role,
        })
    }

    fn decode(&self, token: &str, audience: Option<&str>) -> Result<Claims, Rejection> {
        let header = decode_header(token).map_err(|_| Rejection::Malformed)?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            alg => self
                .public
                .as_ref()
                .filter(|(_, a)| *a == alg)
                .map(|(k, _)| k),
        }
        .ok_or(Rejection::UnsupportedAlgorithm)?;
        let mut v = Validation::new(header.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if self.issuer.is_some() {
            required.push("iss");
        }
        if audience.is_some() {
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        match &self.issuer {
            Some(iss) => v.set_issuer(&[iss]),
            None => v.iss = None,
        }
        match audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        let data = decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => Rejection::Expired,
                K::ImmatureSignature => Rejection::NotYetValid,
                K::InvalidIssuer => Rejection::WrongIssuer,
                K::InvalidAudience => Rejection::WrongAudience,
                K::InvalidSignature => Rejection::BadSignature,
                K::MissingRequiredClaim(_) => Rejection::MissingClaim,
                K::InvalidAlgorithm => Rejection::UnsupportedAlgorithm,
                K::Json(_) => Rejection::MissingClaim,
                _ => Rejection::Malformed,
            }
        })?;
        Ok(data.claims)
    }
}
