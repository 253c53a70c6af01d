//! 65-byte recoverable ECDSA signatures in Ethereum's r‖s‖v layout.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecoverableSignature([u8; 65]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be 65 bytes (130 hex digits, optional 0x prefix)")]
    Format,
    #[error("signature recovery id must be 0, 1, 27 or 28")]
    RecoveryId,
}

impl RecoverableSignature {
    /// `v` is normalised to 27/28.
    pub fn new(r: [u8; 32], s: [u8; 32], recovery_id: u8) -> Self {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&r);
        out[32..64].copy_from_slice(&s);
        out[64] = 27 + (recovery_id & 1);
        Self(out)
    }

    /// Accepts 130 hex digits with or without `0x`, and v in {0, 1, 27, 28}.
    pub fn parse_hex(s: &str) -> Result<Self, SignatureError> {
        let h = s.strip_prefix("0x").unwrap_or(s);
        if h.len() != 130 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SignatureError::Format);
        }
        let mut out = [0u8; 65];
        hex::decode_to_slice(h, &mut out).map_err(|_| SignatureError::Format)?;
        out[64] = match out[64] {
            0 | 27 => 27,
            1 | 28 => 28,
            _ => return Err(SignatureError::RecoveryId),
        };
        Ok(Self(out))
    }

    pub fn as_bytes(&self) -> &[u8; 65] {
        &self.0
    }

    pub fn r(&self) -> &[u8] {
        &self.0[..32]
    }

    pub fn s(&self) -> &[u8] {
        &self.0[32..64]
    }

    /// 27 or 28.
    pub fn v(&self) -> u8 {
        self.0[64]
    }

    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for RecoverableSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoverableSignature({})", self.to_hex())
    }
}

impl Serialize for RecoverableSignature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RecoverableSignature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_hex(&s).map_err(serde::de::Error::custom)
    }
}
