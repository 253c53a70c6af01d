//! EIP-191 version 0x45, the digest `personal_sign` signs.

use sha3::{Digest, Keccak256};

/// keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message).
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n");
    h.update(message.len().to_string().as_bytes());
    h.update(message);
    h.finalize().into()
}
