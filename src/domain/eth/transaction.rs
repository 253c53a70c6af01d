//! Transactions to sign: EIP-1559 (type 2) and legacy with EIP-155 replay
//! protection. Validation of the request form, the signing hash and the
//! signed envelope (alloy's `alloy-consensus`).

use std::fmt;

use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxLegacy};
use alloy_primitives::{Bytes, TxKind, U256};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::keccak::keccak256;
use super::parse::{parse_address, parse_hex_bytes, parse_u256};
use super::payload::{invalid, shape, PayloadError};
use super::{Address, RecoverableSignature};

/// A signed transaction, ready for `eth_sendRawTransaction`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// EIP-2718 envelope (type byte ‖ RLP) for EIP-1559; plain RLP for legacy.
    pub raw: Vec<u8>,
    /// keccak256 of `raw`: the transaction hash.
    pub hash: [u8; 32],
}

/// The fee fields, which also decide the transaction type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fees {
    /// EIP-1559 (type 2).
    Eip1559 {
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    },
    /// Legacy (type 0), signed with EIP-155 replay protection.
    Legacy { gas_price: u128 },
}

/// A validated transaction to sign. Built only by [`from_json`](Self::from_json)
/// (or deserialization, which goes through it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionPayload {
    chain_id: u64,
    nonce: u64,
    /// `None`: contract creation.
    to: Option<Address>,
    value: U256,
    data: Vec<u8>,
    gas: u64,
    fees: Fees,
}

/// The smallest gas limit any transaction can have (the intrinsic gas of a
/// plain transfer).
const MIN_GAS: u64 = 21_000;

/// The request form, checked for shape by serde.
#[derive(Deserialize)]
#[serde(tag = "type")]
enum TxRequest {
    #[serde(rename = "eip1559")]
    Eip1559(Eip1559Request),
    #[serde(rename = "legacy")]
    Legacy(LegacyRequest),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Eip1559Request {
    chain_id: Quantity,
    nonce: Quantity,
    #[serde(default)]
    to: Option<String>,
    value: Quantity,
    #[serde(default)]
    data: Option<String>,
    #[serde(alias = "gasLimit")]
    gas: Quantity,
    max_fee_per_gas: Quantity,
    max_priority_fee_per_gas: Quantity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LegacyRequest {
    chain_id: Quantity,
    nonce: Quantity,
    #[serde(default)]
    to: Option<String>,
    value: Quantity,
    #[serde(default)]
    data: Option<String>,
    #[serde(alias = "gasLimit")]
    gas: Quantity,
    gas_price: Quantity,
}

/// A number given as a non-negative JSON integer or as a decimal or 0x-hex
/// string. Any other JSON type is a shape error; a malformed string is
/// reported when it is read, as invalid.
enum Quantity {
    Number(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer, or a decimal or 0x-hex string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Quantity {
    fn u256(&self, field: &str) -> Result<U256, PayloadError> {
        match self {
            Quantity::Number(n) => Ok(U256::from(*n)),
            Quantity::Text(s) => parse_u256(s).map_err(|()| {
                invalid(format!(
                    "transaction.{field} must be a non-negative integer: decimal digits or 0x and hex digits, at most 2^256 - 1"
                ))
            }),
        }
    }

    fn u64(&self, field: &str) -> Result<u64, PayloadError> {
        self.u256(field)?
            .try_into()
            .map_err(|_| invalid(format!("transaction.{field} must fit in 64 bits")))
    }

    fn u128(&self, field: &str) -> Result<u128, PayloadError> {
        self.u256(field)?
            .try_into()
            .map_err(|_| invalid(format!("transaction.{field} must fit in 128 bits")))
    }
}

impl TransactionPayload {
    /// Validates a transaction in the request form (see the README).
    pub fn from_json(value: Value) -> Result<Self, PayloadError> {
        if !value.is_object() {
            return Err(shape("transaction must be a JSON object"));
        }
        let request: TxRequest =
            serde_json::from_value(value).map_err(|e| shape(format!("transaction: {e}")))?;
        let (common, fees) = match request {
            TxRequest::Eip1559(r) => {
                let max_fee_per_gas = r.max_fee_per_gas.u128("maxFeePerGas")?;
                let max_priority_fee_per_gas =
                    r.max_priority_fee_per_gas.u128("maxPriorityFeePerGas")?;
                if max_priority_fee_per_gas > max_fee_per_gas {
                    return Err(invalid(
                        "transaction.maxPriorityFeePerGas must not exceed transaction.maxFeePerGas",
                    ));
                }
                (
                    (r.chain_id, r.nonce, r.to, r.value, r.data, r.gas),
                    Fees::Eip1559 {
                        max_fee_per_gas,
                        max_priority_fee_per_gas,
                    },
                )
            }
            TxRequest::Legacy(r) => {
                let gas_price = r.gas_price.u128("gasPrice")?;
                (
                    (r.chain_id, r.nonce, r.to, r.value, r.data, r.gas),
                    Fees::Legacy { gas_price },
                )
            }
        };
        let (chain_id, nonce, to, value, data, gas) = common;
        let chain_id = chain_id.u64("chainId")?;
        if chain_id == 0 {
            return Err(invalid("transaction.chainId must be positive"));
        }
        let gas = gas.u64("gas")?;
        if gas < MIN_GAS {
            return Err(invalid(format!(
                "transaction.gas must be at least {MIN_GAS}, the intrinsic gas of any transaction"
            )));
        }
        Ok(Self {
            chain_id,
            nonce: nonce.u64("nonce")?,
            to: to
                .map(|t| parse_address("transaction.to", &t))
                .transpose()?,
            value: value.u256("value")?,
            data: data
                .map(|d| parse_hex_bytes("transaction.data", &d))
                .transpose()?
                .unwrap_or_default(),
            gas,
            fees,
        })
    }

    /// The stable JSON form: the request form with numbers in canonical
    /// spelling (u64 fields as JSON numbers, wider ones as decimal strings,
    /// addresses and data lowercase hex, `to` null for contract creation).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let ty = match self.fees {
            Fees::Eip1559 { .. } => "eip1559",
            Fees::Legacy { .. } => "legacy",
        };
        m.insert("type".into(), ty.into());
        m.insert("chainId".into(), self.chain_id.into());
        m.insert("nonce".into(), self.nonce.into());
        m.insert(
            "to".into(),
            self.to.map_or(Value::Null, |a| a.to_lower_hex().into()),
        );
        m.insert("value".into(), self.value.to_string().into());
        m.insert(
            "data".into(),
            format!("0x{}", hex::encode(&self.data)).into(),
        );
        m.insert("gas".into(), self.gas.into());
        match self.fees {
            Fees::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            } => {
                m.insert("maxFeePerGas".into(), max_fee_per_gas.to_string().into());
                m.insert(
                    "maxPriorityFeePerGas".into(),
                    max_priority_fee_per_gas.to_string().into(),
                );
            }
            Fees::Legacy { gas_price } => {
                m.insert("gasPrice".into(), gas_price.to_string().into());
            }
        }
        Value::Object(m)
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    pub fn to(&self) -> Option<Address> {
        self.to
    }

    pub fn value(&self) -> U256 {
        self.value
    }

    pub fn fees(&self) -> Fees {
        self.fees
    }

    fn kind(&self) -> TxKind {
        match self.to {
            Some(a) => TxKind::Call(alloy_primitives::Address::from(*a.as_bytes())),
            None => TxKind::Create,
        }
    }

    fn alloy(&self) -> AlloyTx {
        let input = Bytes::from(self.data.clone());
        match self.fees {
            Fees::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            } => AlloyTx::Eip1559(TxEip1559 {
                chain_id: self.chain_id,
                nonce: self.nonce,
                gas_limit: self.gas,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: self.kind(),
                value: self.value,
                access_list: Default::default(),
                input,
            }),
            Fees::Legacy { gas_price } => AlloyTx::Legacy(TxLegacy {
                chain_id: Some(self.chain_id),
                nonce: self.nonce,
                gas_price,
                gas_limit: self.gas,
                to: self.kind(),
                value: self.value,
                input,
            }),
        }
    }

    /// The RLP preimage of the signing hash (EIP-155 fields for legacy).
    pub(super) fn signing_preimage(&self) -> Vec<u8> {
        match self.alloy() {
            AlloyTx::Eip1559(t) => t.encoded_for_signing(),
            AlloyTx::Legacy(t) => t.encoded_for_signing(),
        }
    }

    pub fn signature_hash(&self) -> [u8; 32] {
        match self.alloy() {
            AlloyTx::Eip1559(t) => t.signature_hash().0,
            AlloyTx::Legacy(t) => t.signature_hash().0,
        }
    }

    /// The signed transaction: EIP-2718 envelope for EIP-1559, RLP with
    /// v = chainId * 2 + 35 + parity for legacy.
    pub fn signed(&self, signature: &RecoverableSignature) -> SignedTransaction {
        let sig = alloy_primitives::Signature::new(
            U256::from_be_slice(signature.r()),
            U256::from_be_slice(signature.s()),
            signature.v() == 28,
        );
        let mut raw = Vec::new();
        match self.alloy() {
            AlloyTx::Eip1559(t) => Signed::new_unhashed(t, sig).eip2718_encode(&mut raw),
            AlloyTx::Legacy(t) => Signed::new_unhashed(t, sig).eip2718_encode(&mut raw),
        }
        let hash = keccak256(&raw);
        SignedTransaction { raw, hash }
    }
}

enum AlloyTx {
    Eip1559(TxEip1559),
    Legacy(TxLegacy),
}

impl Serialize for TransactionPayload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for TransactionPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(v).map_err(de::Error::custom)
    }
}
