//! The messages between the parties, postcard-encoded (as dkls23 encodes its
//! own). Each request names the key and carries the session id party 1 chose.

use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, TransmitInitMulPhase3to4,
    TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::protocols::signing::{Broadcast3to4, TransmitPhase1to2, TransmitPhase2to3};
use dkls23::utilities::hashes::HashOutput;
use dkls23::utilities::proofs::DLogProof;
use serde::{Deserialize, Serialize};

use super::MpcError;

pub(crate) type Curve = k256_14::Secp256k1;
pub(crate) type Scalar = k256_14::Scalar;

/// Bumped on any change that an older peer would misread. New requests and
/// responses are only ever appended to the enums (postcard numbers variants
/// by position), so an older peer refuses them as undecodable instead.
pub(crate) const VERSION: u8 = 1;

// Built, encoded and dropped once per exchange: boxing the big variants
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    /// DKG round 1. `fragment` is party 1's secret polynomial share for party 2.
    DkgStart {
        key_id: String,
        session_id: [u8; 32],
        fragment: Scalar,
    },
    /// DKG rounds 2 and 3 of party 1: the commitment, then its opening.
    DkgFinish {
        key_id: String,
        session_id: [u8; 32],
        commitment: HashOutput,
        zero2: Vec<TransmitInitZeroSharePhase2to4>,
        bip2: BroadcastDerivationPhase2to4,
        proof: DLogProof<Curve>,
        zero3: Vec<TransmitInitZeroSharePhase3to4>,
        mul3: Vec<TransmitInitMulPhase3to4<Curve>>,
        bip3: BroadcastDerivationPhase3to4,
    },
    /// Signing round 1. `payload` is what is being signed, in the form the
    /// cosigner's policy reads; `digest` is party 1's hash of it, which the
    /// cosigner recomputes and compares.
    SignStart {
        key_id: String,
        sign_id: [u8; 32],
        wallet_id: String,
        requested_by: String,
        payload: Vec<u8>,
        digest: [u8; 32],
        m1: Vec<TransmitPhase1to2>,
    },
    /// Signing rounds 2 and 3 of party 1.
    SignFinish {
        key_id: String,
        sign_id: [u8; 32],
        m2: Vec<TransmitPhase2to3<Curve>>,
        b3: Broadcast3to4<Curve>,
    },
    /// Party 1's sweeper found no wallet using `key_id` (or its key
    /// generation failed): the cosigner may delete its share, unless it ever
    /// signed with it or froze it.
    Release { key_id: String },
}

// Built, encoded and dropped once per exchange: boxing the big variants
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
pub(crate) enum Response {
    DkgStart {
        fragment: Scalar,
        commitment: HashOutput,
        zero2: Vec<TransmitInitZeroSharePhase2to4>,
        bip2: BroadcastDerivationPhase2to4,
    },
    DkgFinish {
        proof: DLogProof<Curve>,
        zero3: Vec<TransmitInitZeroSharePhase3to4>,
        mul3: Vec<TransmitInitMulPhase3to4<Curve>>,
        bip3: BroadcastDerivationPhase3to4,
        /// Key confirmation: the address party 2 derived.
        address: String,
    },
    SignStart {
        m1: Vec<TransmitPhase1to2>,
        m2: Vec<TransmitPhase2to3<Curve>>,
    },
    SignFinish {
        b3: Broadcast3to4<Curve>,
    },
    /// The share is gone (or never existed).
    Released,
}

pub(crate) fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, MpcError> {
    let mut out = vec![VERSION];
    out.extend(postcard::to_allocvec(message).map_err(|e| MpcError::BadMessage(e.to_string()))?);
    Ok(out)
}

/// Whether an encoded request belongs to key generation (its decoding, with
/// hundreds of curve points to check, is key generation's work). Postcard
/// writes the variant's position first, and the enums only ever grow at the
/// end, so the position is read without decoding the rest.
pub(crate) fn is_keygen_request(bytes: &[u8]) -> bool {
    matches!(bytes, [VERSION, 0 | 1, ..])
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, MpcError> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|e| MpcError::BadMessage(e.to_string()))
        }
        Some((v, _)) => Err(MpcError::BadMessage(format!("unknown message version {v}"))),
        None => Err(MpcError::BadMessage("empty message".into())),
    }
}
