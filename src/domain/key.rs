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

/// Why custody froze a key, as events record it: a fixed vocabulary, so no
/// text from the other party (nor anything secret) ever reaches the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFreezeReason {
    /// A signing run ended with DKLs23's ban (one party sent what only a
    /// cheating party sends, or the cosigner reported that it banned the
    /// key); walletd froze its share.
    PeerBanned,
    /// walletd found its share already frozen (by another process, or by an
    /// earlier run whose freeze was not recorded as an event).
    ShareFrozen,
}

impl KeyFreezeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFreezeReason::PeerBanned => "peer_banned",
            KeyFreezeReason::ShareFrozen => "share_frozen",
        }
    }
}

impl std::fmt::Display for KeyFreezeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
