//! What a wallet signs, in full: a `personal_sign` message, EIP-712 typed data
//! or a transaction.
//!
//! A payload is validated when it is built and again whenever it is
//! deserialized, and its digest is a pure function of its JSON form
//! ([`SignPayload`]'s `Serialize` output). That is what lets a second party —
//! the MPC cosigner — receive the payload, not a hash, and recompute the digest
//! itself before it takes part in a signature.
//!
//! The encodings themselves live beside this: [`eip191`](super::eip191),
//! [`eip712`](super::eip712), [`transaction`](super::transaction).

use serde::{Deserialize, Serialize};

use super::eip191::eip191_hash;
use super::eip712::TypedDataPayload;
use super::parse::parse_hex_bytes;
use super::transaction::{Fees, SignedTransaction, TransactionPayload};
use super::{Address, RecoverableSignature};

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

pub(super) fn shape(m: impl Into<String>) -> PayloadError {
    PayloadError::Shape(m.into())
}

pub(super) fn invalid(m: impl Into<String>) -> PayloadError {
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

impl SignPayload {
    /// The 32-byte hash that is signed.
    pub fn digest(&self) -> [u8; 32] {
        match self {
            SignPayload::PersonalMessage(m) => eip191_hash(m),
            SignPayload::TypedData(t) => t.digest(),
            SignPayload::Transaction(t) => t.signature_hash(),
        }
    }

    /// Length of what was signed, before hashing: the message bytes; the typed
    /// data's JSON; the transaction's signing preimage (RLP).
    pub fn message_len(&self) -> u64 {
        match self {
            SignPayload::PersonalMessage(m) => m.len() as u64,
            SignPayload::TypedData(t) => t.json().to_string().len() as u64,
            SignPayload::Transaction(t) => t.signing_preimage().len() as u64,
        }
    }

    /// `eip191`, `eip712`, `eip1559` or `eip155` (legacy transaction).
    pub fn scheme(&self) -> &'static str {
        match self {
            SignPayload::PersonalMessage(_) => "eip191",
            SignPayload::TypedData(_) => "eip712",
            SignPayload::Transaction(t) => match t.fees() {
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
                chain_id: Some(t.chain_id()),
                tx_nonce: Some(t.nonce()),
                tx_to: t.to(),
                tx_value: Some(t.value().to_string()),
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

#[cfg(test)]
mod tests;
