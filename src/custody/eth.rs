//! Ethereum's secp256k1 conventions, on k256 and sha3.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::domain::{Address, RecoverableSignature};

pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// EIP-191 version 0x45: keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message).
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n");
    h.update(message.len().to_string().as_bytes());
    h.update(message);
    h.finalize().into()
}

pub fn uncompressed_public_key(key: &VerifyingKey) -> [u8; 65] {
    let point = key.to_encoded_point(false);
    let mut out = [0u8; 65];
    out.copy_from_slice(point.as_bytes());
    out
}

pub fn address_of(key: &VerifyingKey) -> Address {
    Address::from_uncompressed_pubkey(&uncompressed_public_key(key))
}

/// Signs a 32-byte digest. RFC 6979 deterministic nonce; s is normalised to the
/// lower half of the curve order (EIP-2) and v adjusted to match.
pub fn sign_digest(
    key: &SigningKey,
    digest: &[u8; 32],
) -> Result<RecoverableSignature, k256::ecdsa::Error> {
    let (mut sig, mut recid): (Signature, RecoveryId) = key.sign_prehash_recoverable(digest)?;
    if let Some(low) = sig.normalize_s() {
        sig = low;
        recid = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
    }
    let bytes = sig.to_bytes();
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&bytes[..32]);
    s.copy_from_slice(&bytes[32..]);
    Ok(RecoverableSignature::new(r, s, recid.to_byte()))
}

/// The address whose key made `sig` over `digest`, if any.
pub fn recover_address(digest: &[u8; 32], sig: &RecoverableSignature) -> Option<Address> {
    let signature = Signature::from_slice(&sig.as_bytes()[..64]).ok()?;
    // High-s signatures are malleable copies of valid ones; refuse them.
    if signature.normalize_s().is_some() {
        return None;
    }
    let recid = RecoveryId::from_byte(sig.v().checked_sub(27)?)?;
    let key = VerifyingKey::recover_from_prehash(digest, &signature, recid).ok()?;
    Some(address_of(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_key_address() {
        // Private key 1 has a well-known address.
        let mut sk = [0u8; 32];
        sk[31] = 1;
        let key = SigningKey::from_slice(&sk).unwrap();
        assert_eq!(
            address_of(key.verifying_key()).to_checksum(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
    }

    #[test]
    fn sign_then_recover_low_s() {
        let mut sk = [7u8; 32];
        sk[0] = 1;
        let key = SigningKey::from_slice(&sk).unwrap();
        for msg in [&b"hello"[..], b"", b"\x00\xff"] {
            let digest = eip191_hash(msg);
            let sig = sign_digest(&key, &digest).unwrap();
            assert!(sig.v() == 27 || sig.v() == 28);
            let s = Signature::from_slice(&sig.as_bytes()[..64]).unwrap();
            assert!(s.normalize_s().is_none(), "s must be low");
            assert_eq!(
                recover_address(&digest, &sig),
                Some(address_of(key.verifying_key()))
            );
        }
    }
}
