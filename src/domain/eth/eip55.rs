//! EIP-55: an address's mixed-case checksum spelling.
//!
//! Written here rather than taken from alloy so that the tests can check our
//! addresses and signatures against alloy as an independent implementation.

use super::keccak::keccak256;

/// `0x` and the 40 hex digits of `address`, each letter upper-case where the
/// matching nibble of keccak256(lowercase hex) is 8 or more.
pub fn checksum(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = keccak256(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `digits` (the 40 hex digits of `address`, without `0x`) may stand
/// for it: one letter case throughout carries no checksum and is accepted;
/// mixed case must be the checksum spelling, so a mistyped digit is caught.
pub fn accepts(digits: &str, address: &[u8; 20]) -> bool {
    let mixed = digits.bytes().any(|b| b.is_ascii_uppercase())
        && digits.bytes().any(|b| b.is_ascii_lowercase());
    !mixed || checksum(address)[2..] == *digits
}
