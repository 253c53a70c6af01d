//! From a secp256k1 public key to its Ethereum address.

use k256::ecdsa::VerifyingKey;

use super::Address;

pub fn uncompressed_public_key(key: &VerifyingKey) -> [u8; 65] {
    let point = key.to_encoded_point(false);
    let mut out = [0u8; 65];
    out.copy_from_slice(point.as_bytes());
    out
}

pub fn address_of(key: &VerifyingKey) -> Address {
    Address::from_uncompressed_pubkey(&uncompressed_public_key(key))
}

#[cfg(test)]
mod tests {
    use k256::ecdsa::SigningKey;

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
}
