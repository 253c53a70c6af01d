//! Sila-style request signatures (legacy ECDSA mode): secp256k1 over
//! keccak256 of the exact bytes received, with no Ethereum message prefix,
//! sent as 130 hex digits r‖s‖v (a `0x` prefix and v = 0/1 are accepted too).
//! Verification always hashes the raw bytes, never a re-serialisation.

use crate::domain::eth;
use crate::domain::{Address, RecoverableSignature};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestSignatureError {
    #[error("signature must be 130 hex digits (r, s, v)")]
    Format,
    #[error("signature does not verify")]
    Invalid,
}

/// The address whose key signed `signed_bytes` (keccak256, no prefix).
pub fn signer_of(
    signed_bytes: &[u8],
    signature_hex: &str,
) -> Result<Address, RequestSignatureError> {
    let sig = RecoverableSignature::parse_hex(signature_hex.trim())
        .map_err(|_| RequestSignatureError::Format)?;
    eth::recover_address(&eth::keccak256(signed_bytes), &sig).ok_or(RequestSignatureError::Invalid)
}
