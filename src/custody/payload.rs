//! What a wallet signs, in full: a `personal_sign` message, EIP-712 typed data
//! or a transaction.
//!
//! A payload is validated when it is built and again whenever it is
//! deserialized, and its digest is a pure function of its JSON form
//! ([`SignPayload`]'s `Serialize` output). That is what lets a second party —
//! the MPC cosigner — receive the payload, not a hash, and recompute the digest
//! itself before it takes part in a signature.
//!
//! The encodings are alloy's: `alloy-dyn-abi` for the EIP-712 signing hash,
//! `alloy-consensus` for transaction signing hashes and signed envelopes.

use std::fmt;

use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxLegacy};
use alloy_primitives::{Bytes, TxKind, U256};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::eth;
use crate::domain::{Address, RecoverableSignature};

/// What is being signed, in full.
///
/// JSON form (stable; the cosigner recomputes the digest from it):
/// `{"kind": "personal_message", "message": "0x…"}`,
/// `{"kind": "typed_data", "typed_data": {…eth_signTypedData_v4 JSON…}}`,
/// `{"kind": "transaction", "transaction": {"type": "eip1559" | "legacy", …}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PayloadWire", into = "PayloadWire")]
pub enum SignPayload {
    /// EIP-191 `personal_sign` of arbitrary bytes.
    PersonalMessage(Vec<u8>),
    /// EIP-712 typed structured data (`eth_signTypedData_v4`).
    TypedData(TypedDataPayload),
    /// An EIP-1559 or legacy (EIP-155) transaction.
    Transaction(TransactionPayload),
}

/// Why a payload was refused. The HTTP layer answers `Shape` with 422 (the
/// JSON has the wrong shape: unknown field, wrong JSON type, missing member)
/// and `Invalid` with 400 (well-formed JSON that is not acceptable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("{0}")]
    Shape(String),
    #[error("{0}")]
    Invalid(String),
}

fn shape(m: impl Into<String>) -> PayloadError {
    PayloadError::Shape(m.into())
}

fn invalid(m: impl Into<String>) -> PayloadError {
    PayloadError::Invalid(m.into())
}

/// What an auditor needs to know about a signing besides the digest: the
/// optional fields of `MessageSigned`. Nothing here is secret; none of it is
/// the message itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayloadSummary {
    pub chain_id: Option<u64>,
    pub primary_type: Option<String>,
    pub domain_name: Option<String>,
    pub verifying_contract: Option<Address>,
    pub tx_nonce: Option<u64>,
    pub tx_to: Option<Address>,
    pub tx_value: Option<String>,
}

/// A signed transaction, ready for `eth_sendRawTransaction`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// EIP-2718 envelope (type byte ‖ RLP) for EIP-1559; plain RLP for legacy.
    pub raw: Vec<u8>,
    /// keccak256 of `raw`: the transaction hash.
    pub hash: [u8; 32],
}

impl SignPayload {
    /// The 32-byte hash that is signed.
    pub fn digest(&self) -> [u8; 32] {
        match self {
            SignPayload::PersonalMessage(m) => eth::eip191_hash(m),
            SignPayload::TypedData(t) => t.digest,
            SignPayload::Transaction(t) => t.signature_hash(),
        }
    }

    /// Length of what was signed, before hashing: the message bytes; the typed
    /// data's JSON; the transaction's signing preimage (RLP).
    pub fn message_len(&self) -> u64 {
        match self {
            SignPayload::PersonalMessage(m) => m.len() as u64,
            SignPayload::TypedData(t) => t.json.to_string().len() as u64,
            SignPayload::Transaction(t) => t.signing_preimage().len() as u64,
        }
    }

    /// `eip191`, `eip712`, `eip1559` or `eip155` (legacy transaction).
    pub fn scheme(&self) -> &'static str {
        match self {
            SignPayload::PersonalMessage(_) => "eip191",
            SignPayload::TypedData(_) => "eip712",
            SignPayload::Transaction(t) => match t.fees {
                Fees::Eip1559 { .. } => "eip1559",
                Fees::Legacy { .. } => "eip155",
            },
        }
    }

    pub fn summary(&self) -> PayloadSummary {
        match self {
            SignPayload::PersonalMessage(_) => PayloadSummary::default(),
            SignPayload::TypedData(t) => PayloadSummary {
                chain_id: t.chain_id(),
                primary_type: Some(t.primary_type().to_string()),
                domain_name: t.domain_name().map(str::to_owned),
                verifying_contract: t.verifying_contract(),
                ..Default::default()
            },
            SignPayload::Transaction(t) => PayloadSummary {
                chain_id: Some(t.chain_id),
                tx_nonce: Some(t.nonce),
                tx_to: t.to,
                tx_value: Some(t.value.to_string()),
                ..Default::default()
            },
        }
    }

    /// For a transaction, the signed transaction made with `signature` (which
    /// must be a signature of [`digest`](Self::digest)); `None` otherwise.
    pub fn signed_transaction(
        &self,
        signature: &RecoverableSignature,
    ) -> Option<SignedTransaction> {
        match self {
            SignPayload::Transaction(t) => Some(t.signed(signature)),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Stable JSON form

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum PayloadWire {
    PersonalMessage { message: String },
    TypedData { typed_data: TypedDataPayload },
    Transaction { transaction: TransactionPayload },
}

impl From<SignPayload> for PayloadWire {
    fn from(p: SignPayload) -> Self {
        match p {
            SignPayload::PersonalMessage(m) => PayloadWire::PersonalMessage {
                message: format!("0x{}", hex::encode(m)),
            },
            SignPayload::TypedData(t) => PayloadWire::TypedData { typed_data: t },
            SignPayload::Transaction(t) => PayloadWire::Transaction { transaction: t },
        }
    }
}

impl TryFrom<PayloadWire> for SignPayload {
    type Error = String;

    fn try_from(w: PayloadWire) -> Result<Self, String> {
        Ok(match w {
            PayloadWire::PersonalMessage { message } => SignPayload::PersonalMessage(
                parse_hex_bytes("message", &message).map_err(|e| e.to_string())?,
            ),
            PayloadWire::TypedData { typed_data } => SignPayload::TypedData(typed_data),
            PayloadWire::Transaction { transaction } => SignPayload::Transaction(transaction),
        })
    }
}

// ---------------------------------------------------------------------------
// EIP-712

/// The domain fields EIP-712 defines, in the order its `EIP712Domain` type
/// lists them, with their types.
const DOMAIN_FIELDS: [(&str, &str); 5] = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
];

const TYPED_DATA_FIELDS: [&str; 4] = ["types", "primaryType", "domain", "message"];

/// Validated EIP-712 typed data: the JSON (with `domain.chainId` normalised
/// to a JSON number), alloy's parsed form, and the signing hash computed from
/// them when the payload was built.
#[derive(Clone)]
pub struct TypedDataPayload {
    json: Value,
    parsed: alloy_dyn_abi::TypedData,
    digest: [u8; 32],
}

impl TypedDataPayload {
    /// Validates `eth_signTypedData_v4` JSON. The domain is required, must
    /// name at least one field, and `types.EIP712Domain` must list exactly the
    /// fields the domain has, in EIP-712's order (so that every implementation
    /// — those that read `types.EIP712Domain` and those that derive it from the
    /// domain — computes the same hash).
    pub fn from_json(value: Value) -> Result<Self, PayloadError> {
        let Value::Object(mut obj) = value else {
            return Err(shape("typedData must be a JSON object"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !TYPED_DATA_FIELDS.contains(&k.as_str()))
        {
            return Err(shape(format!(
                "typedData: unknown field `{k}`, expected one of `types`, `primaryType`, `domain`, `message`"
            )));
        }

        let domain_fields = check_domain(obj.get_mut("domain"))?;

        let types = match obj.get("types") {
            None => return Err(shape("typedData: missing field `types`")),
            Some(Value::Object(t)) => t,
            Some(_) => return Err(shape("typedData.types must be a JSON object")),
        };
        let expected_domain_type: Vec<Value> = DOMAIN_FIELDS
            .iter()
            .filter(|(name, _)| domain_fields.contains(name))
            .map(|(name, ty)| json!({"name": name, "type": ty}))
            .collect();
        if types.get("EIP712Domain") != Some(&Value::Array(expected_domain_type)) {
            return Err(invalid(
                "typedData.types.EIP712Domain must list exactly the fields present in the domain, \
                 in the order name, version, chainId, verifyingContract, salt, with types \
                 string, string, uint256, address, bytes32",
            ));
        }

        let primary_type = match obj.get("primaryType") {
            None => return Err(shape("typedData: missing field `primaryType`")),
            Some(Value::String(p)) => p,
            Some(_) => return Err(shape("typedData.primaryType must be a string")),
        };
        if primary_type == "EIP712Domain" {
            return Err(invalid(
                "typedData.primaryType must not be EIP712Domain: sign a message, not the bare domain",
            ));
        }
        if !types.contains_key(primary_type) {
            return Err(invalid(format!(
                "typedData.primaryType `{primary_type}` is not defined in typedData.types"
            )));
        }

        match obj.get("message") {
            None => return Err(shape("typedData: missing field `message`")),
            Some(Value::Object(_)) => {}
            Some(_) => return Err(shape("typedData.message must be a JSON object")),
        }

        let json = Value::Object(obj);
        let parsed: alloy_dyn_abi::TypedData = serde_json::from_value(json.clone())
            .map_err(|e| invalid(format!("invalid typed data: {e}")))?;
        let digest = parsed
            .eip712_signing_hash()
            .map_err(|e| invalid(format!("invalid typed data: {e}")))?;
        Ok(Self {
            json,
            parsed,
            digest: digest.0,
        })
    }

    /// The validated JSON, the form that is serialized.
    pub fn json(&self) -> &Value {
        &self.json
    }

    pub fn primary_type(&self) -> &str {
        &self.parsed.primary_type
    }

    pub fn domain_name(&self) -> Option<&str> {
        self.parsed.domain.name.as_deref()
    }

    pub fn chain_id(&self) -> Option<u64> {
        self.parsed.domain.chain_id.map(|c| c.to::<u64>())
    }

    pub fn verifying_contract(&self) -> Option<Address> {
        self.parsed
            .domain
            .verifying_contract
            .map(|a| Address::from_bytes(a.0 .0))
    }
}

/// Checks the domain object in place (normalising `chainId` to a JSON number)
/// and returns the names of the fields it has.
fn check_domain(domain: Option<&mut Value>) -> Result<Vec<&'static str>, PayloadError> {
    let domain = match domain {
        None | Some(Value::Null) => {
            return Err(invalid(
                "typedData.domain is required: a signature without a domain could be replayed in any application",
            ))
        }
        Some(Value::Object(d)) => d,
        Some(_) => return Err(shape("typedData.domain must be a JSON object")),
    };
    if domain.is_empty() {
        return Err(invalid(
            "typedData.domain must not be empty: give at least one of name, version, chainId, verifyingContract, salt",
        ));
    }
    let mut present = Vec::with_capacity(domain.len());
    for (key, v) in domain.iter_mut() {
        let Some(&(name, _)) = DOMAIN_FIELDS.iter().find(|(n, _)| n == key) else {
            return Err(shape(format!(
                "typedData.domain: unknown field `{key}`, expected one of `name`, `version`, `chainId`, `verifyingContract`, `salt`"
            )));
        };
        present.push(name);
        match name {
            "name" | "version" => {
                if !v.is_string() {
                    return Err(shape(format!("typedData.domain.{name} must be a string")));
                }
            }
            "chainId" => {
                let id = chain_id_of(v).ok_or_else(|| {
                    invalid(
                        "typedData.domain.chainId must be a positive integer that fits in 64 bits",
                    )
                })?;
                *v = Value::from(id);
            }
            "verifyingContract" => {
                let Value::String(s) = v else {
                    return Err(shape("typedData.domain.verifyingContract must be a string"));
                };
                parse_address("typedData.domain.verifyingContract", s)?;
            }
            _ => {
                let Value::String(s) = v else {
                    return Err(shape("typedData.domain.salt must be a string"));
                };
                let ok = s.len() == 66
                    && s.starts_with("0x")
                    && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Err(invalid(
                        "typedData.domain.salt must be 0x followed by 64 hex digits",
                    ));
                }
            }
        }
    }
    Ok(present)
}

/// A positive u64 given as a JSON integer or a decimal or 0x-hex string.
fn chain_id_of(v: &Value) -> Option<u64> {
    let id = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => parse_u256(s).ok()?.try_into().ok()?,
        _ => return None,
    };
    (id > 0).then_some(id)
}

impl PartialEq for TypedDataPayload {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for TypedDataPayload {}

impl fmt::Debug for TypedDataPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedDataPayload")
            .field("primary_type", &self.primary_type())
            .field("digest", &format_args!("0x{}", hex::encode(self.digest)))
            .finish()
    }
}

impl Serialize for TypedDataPayload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TypedDataPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(v).map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Transactions

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

/// Decimal digits, or `0x` followed by 1–64 hex digits.
fn parse_u256(s: &str) -> Result<U256, ()> {
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
fn parse_hex_bytes(field: &str, s: &str) -> Result<Vec<u8>, PayloadError> {
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
fn parse_address(field: &str, s: &str) -> Result<Address, PayloadError> {
    let address = Address::parse(s).map_err(|_| {
        invalid(format!(
            "{field} must be an address: 0x followed by 40 hex digits"
        ))
    })?;
    let digits = &s[2..];
    let mixed = digits.bytes().any(|b| b.is_ascii_uppercase())
        && digits.bytes().any(|b| b.is_ascii_lowercase());
    if mixed && address.to_checksum()[2..] != *digits {
        return Err(invalid(format!(
            "{field} has an invalid EIP-55 checksum (write it in one letter case, or with the right checksum)"
        )));
    }
    Ok(address)
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
    fn signing_preimage(&self) -> Vec<u8> {
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
        let hash = eth::keccak256(&raw);
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

#[cfg(test)]
mod tests;
