//! Ethereum's ECDSA conventions on secp256k1: a signature of a 32-byte digest
//! is low-s (EIP-2) with v in {27, 28}, and names its signer by recovery.
//!
//! Signing is a pure function of a key and a digest; holding the key is
//! custody's job, which calls it.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

use super::public_key::address_of;
use super::{Address, RecoverableSignature};

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
    use super::super::eip191::eip191_hash;
    use super::*;

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
