//! Keccak-256, Ethereum's hash (the pre-standard SHA-3 padding, not FIPS 202).

use sha3::{Digest, Keccak256};

pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}
