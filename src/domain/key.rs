//! A wallet's key as the write side knows it: which custody holds it, the name
//! it has there, and its public half. Never key material.

use serde::{Deserialize, Serialize};

use super::Address;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustodyKind {
    /// A single secp256k1 key, envelope-encrypted in the key vault.
    Local,
    /// A 2-of-2 threshold key: one share here, one with the cosigner.
    Mpc,
}

impl CustodyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CustodyKind::Local => "local",
            CustodyKind::Mpc => "mpc",
        }
    }
}

/// Names a key held by a custody backend. Carries no key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    pub key_id: String,
    pub custody: CustodyKind,
}

/// A key custody has just made for a wallet: its name and its public half.
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    pub key: KeyRef,
    pub address: Address,
    /// Uncompressed SEC1 public key (0x04 ‖ x ‖ y).
    pub public_key: [u8; 65],
}

impl GeneratedKey {
    /// The public key as 0x-hex, the form events and responses carry.
    pub fn public_key_hex(&self) -> String {
        format!("0x{}", hex::encode(self.public_key))
    }
}
