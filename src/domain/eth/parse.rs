//! The scalar values payloads carry in their request form: quantities, byte
//! strings and addresses, each refused with a message naming its field.

use alloy_primitives::U256;

use super::eip55;
use super::payload::{invalid, PayloadError};
use super::Address;

/// Decimal digits, or `0x` followed by 1–64 hex digits.
pub(super) fn parse_u256(s: &str) -> Result<U256, ()> {
    let (digits, radix) = match s.strip_prefix("0x") {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| match radix {
            16 => b.is_ascii_hexdigit(),
            _ => b.is_ascii_digit(),
        });
    if !ok {
        return Err(());
    }
    U256::from_str_radix(digits, radix).map_err(|_| ())
}

/// `0x` followed by an even number of hex digits (possibly none).
pub(super) fn parse_hex_bytes(field: &str, s: &str) -> Result<Vec<u8>, PayloadError> {
    s.strip_prefix("0x")
        .filter(|h| h.len() % 2 == 0)
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| {
            invalid(format!(
                "{field} must be 0x followed by an even number of hex digits"
            ))
        })
}

/// 0x + 40 hex digits; a mixed-case spelling must carry a valid EIP-55 checksum.
pub(super) fn parse_address(field: &str, s: &str) -> Result<Address, PayloadError> {
    let address = Address::parse(s).map_err(|_| {
        invalid(format!(
            "{field} must be an address: 0x followed by 40 hex digits"
        ))
    })?;
    if !eip55::accepts(&s[2..], address.as_bytes()) {
        return Err(invalid(format!(
            "{field} has an invalid EIP-55 checksum (write it in one letter case, or with the right checksum)"
        )));
    }
    Ok(address)
}
