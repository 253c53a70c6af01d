//! Party 1 (`walletd serve`): drives key generation and signing; the cosigner
//! is reached through a [`CosignerLink`].

use std::collections::BTreeMap;
use std::sync::Arc;

use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment,
    TransmitInitZeroSharePhase2to4,
};
use dkls23::protocols::signing::SignData;
use dkls23::protocols::{Parameters, PartyIndex};
use dkls23::secp256k1::{compute_eth_address, Party};
use dkls23::utilities::hashes::HashOutput;
use dkls23::DkgSession;
use zeroize::Zeroizing;

use super::cpu::{self, Lane};
use super::wire::{decode, encode, Curve, Request, Response};
use super::MpcError;
use crate::domain::eth;
use crate::domain::{Address, RecoverableSignature};

/// One request/response exchange with the cosigner.
#[async_trait::async_trait]
pub trait CosignerLink: Send + Sync {
    async fn exchange(&self, request: Vec<u8>) -> Result<Vec<u8>, MpcError>;
}

pub(crate) fn party(n: u8) -> PartyIndex {
    PartyIndex::new(n).expect("party indices 1 and 2 are valid")
}

pub(crate) fn parameters() -> Parameters {
    Parameters::new(2, 2).expect("2-of-2 is a valid threshold")
}

pub(crate) fn random_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    getrandom::getrandom(&mut id).expect("operating system random number generator");
    id
}

/// One party's share of a 2-of-2 key. Its serialized form is secret.
/// Cloning is cheap (the share itself is shared), so a protocol step can
/// take it to a protocol thread.
#[derive(Clone)]
pub struct KeyShare {
    party: Arc<Party>,
    address: Address,
}

impl KeyShare {
    pub(crate) fn new(party: Party) -> Result<Self, MpcError> {
        let address = Address::parse(&compute_eth_address(&party.pk))
            .map_err(|e| MpcError::Aborted(format!("joint key: {e}")))?;
        Ok(Self {
            party: Arc::new(party),
            address,
        })
    }

    pub(crate) fn party(&self) -> &Party {
        &self.party
    }

    /// The joint key's address (both shares agree on it).
    pub fn address(&self) -> Address {
        self.address
    }

    /// Which party holds this share (1 or 2).
    pub fn index(&self) -> u8 {
        self.party.party_index.as_u8()
    }

    /// The joint public key, uncompressed SEC1 (0x04 ‖ x ‖ y).
    pub fn public_key(&self) -> Result<[u8; 65], MpcError> {
        use k256_14::elliptic_curve::sec1::ToSec1Point;
        let point = self.party.pk.to_sec1_point(false);
        point
            .as_bytes()
            .try_into()
            .map_err(|_| MpcError::Aborted("joint key is not a curve point".into()))
    }

    /// The share's secret serialized form, for sealing at rest.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, MpcError> {
        postcard::to_allocvec(&*self.party)
            .map(Zeroizing::new)
            .map_err(|e| MpcError::Storage(e.to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpcError> {
        let party: Party =
            postcard::from_bytes(bytes).map_err(|e| MpcError::Storage(e.to_string()))?;
        Self::new(party)
    }
}

/// One exchange with the cosigner, counted and timed by protocol step for
/// `/metrics`. `ok` means an answer came back over the channel (a refusal
/// inside it is decoded, and counted, by the caller).
async fn exchange(
    link: &dyn CosignerLink,
    step: &'static str,
    request: Vec<u8>,
) -> Result<Vec<u8>, MpcError> {
    let started = std::time::Instant::now();
    let answer = link.exchange(request).await;
    let outcome = match &answer {
        Ok(_) => "ok",
        Err(MpcError::Unavailable(_)) => "unavailable",
        Err(_) => "error",
    };
    metrics::counter!(crate::metrics::COSIGNER_ROUND_TRIPS, "step" => step, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(crate::metrics::COSIGNER_ROUND_TRIP_DURATION, "step" => step)
        .record(started.elapsed().as_secs_f64());
    answer
}

fn unexpected() -> MpcError {
    MpcError::BadMessage("unexpected response from the cosigner".into())
}

/// Runs distributed key generation with the cosigner for `key_id`. The
/// cosigner stores its share before it answers the last round; the returned
/// share is ours, and both sides have confirmed the same joint address.
///
/// Every protocol step runs on the protocol threads ([`cpu`]); this future
/// only carries messages.
pub async fn generate_key(link: &dyn CosignerLink, key_id: &str) -> Result<KeyShare, MpcError> {
    let session_id = random_id();
    let id = key_id.to_string();
    let (session, fragments, request) = cpu::run(Lane::Keygen, move || {
        let session = DkgSession::<Curve>::new(parameters(), party(1), session_id.to_vec());
        let fragments = session.phase1();
        let request = encode(&Request::DkgStart {
            key_id: id,
            session_id,
            fragment: fragments[1],
        })?;
        Ok::<_, MpcError>((session, fragments, request))
    })
    .await??;
    let answer = exchange(link, "dkg_start", request).await?;
    let id = key_id.to_string();
    let (session, round2, request) = cpu::run(Lane::Keygen, move || {
        let mut session = session;
        let Response::DkgStart {
            fragment,
            commitment: their_commitment,
            zero2: their_zero2,
            bip2: their_bip2,
        } = decode(&answer)?
        else {
            return Err(unexpected());
        };
        let (own, zero2, bip2) = session
            .phase2(&[fragments[0], fragment])
            .map_err(MpcError::from_abort("key generation, round 2"))?;
        let (zero3, mul3, bip3) = session
            .phase3()
            .map_err(MpcError::from_abort("key generation, round 3"))?;
        let request = encode(&Request::DkgFinish {
            key_id: id,
            session_id,
            commitment: own.commitment,
            zero2,
            bip2: bip2.clone(),
            proof: own.proof.clone(),
            zero3,
            mul3,
            bip3: bip3.clone(),
        })?;
        let kept = DkgKept {
            own,
            bip2,
            bip3,
            their_commitment,
            their_zero2,
            their_bip2,
        };
        Ok((session, kept, request))
    })
    .await??;
    let answer = exchange(link, "dkg_finish", request).await?;
    cpu::run(Lane::Keygen, move || {
        let Response::DkgFinish {
            proof,
            zero3: their_zero3,
            mul3: their_mul3,
            bip3: their_bip3,
            address,
        } = decode(&answer)?
        else {
            return Err(unexpected());
        };
        // The opening must match the commitment of round 2, so the pair is
        // rebuilt here rather than taken from one message.
        let proofs = [
            round2.own,
            ProofCommitment {
                index: party(2),
                proof,
                commitment: round2.their_commitment,
            },
        ];
        let (joint, _) = session
            .phase4(
                &proofs,
                &round2.their_zero2,
                &their_zero3,
                &their_mul3,
                &BTreeMap::from([(party(1), round2.bip2), (party(2), round2.their_bip2)]),
                &BTreeMap::from([(party(1), round2.bip3), (party(2), their_bip3)]),
                compute_eth_address,
            )
            .map_err(MpcError::from_abort("key generation, round 4"))?;
        let share = KeyShare::new(joint)?;
        if Address::parse(&address).ok() != Some(share.address()) {
            return Err(MpcError::Aborted(
                "key confirmation failed: the parties derived different keys".into(),
            ));
        }
        Ok(share)
    })
    .await?
}

/// What party 1 keeps of key generation's round 2 for round 4.
struct DkgKept {
    own: ProofCommitment<Curve>,
    bip2: BroadcastDerivationPhase2to4,
    bip3: BroadcastDerivationPhase3to4,
    their_commitment: HashOutput,
    their_zero2: Vec<TransmitInitZeroSharePhase2to4>,
    their_bip2: BroadcastDerivationPhase2to4,
}

/// What party 1 asks the cosigner to sign: the payload in the form the
/// cosigner's policy reads, and party 1's own digest of it.
pub struct SignRequest {
    pub key_id: String,
    pub wallet_id: String,
    pub requested_by: String,
    pub payload: Vec<u8>,
    pub digest: [u8; 32],
}

/// Signs `request.digest` with the cosigner. The result is checked against
/// the joint key before it is returned: low-s, v ∈ {27, 28}. The protocol's
/// steps run on the protocol threads ([`cpu`]), ahead of key generation's.
pub async fn sign(
    link: &dyn CosignerLink,
    share: &KeyShare,
    request: SignRequest,
) -> Result<RecoverableSignature, MpcError> {
    let sign_id = random_id();
    let party1 = share.clone();
    let address = share.address();
    let digest = request.digest;
    let key_id = request.key_id.clone();
    let data = SignData {
        sign_id: sign_id.to_vec(),
        counterparties: vec![party(2)],
        message_hash: digest,
    };
    let p = party1.clone();
    let (data, (unique, kept), start) = cpu::run(Lane::Sign, move || {
        let (unique, kept, m1) = p
            .party()
            .sign_phase1(&data)
            .map_err(MpcError::from_abort("signing, round 1"))?;
        let start = encode(&Request::SignStart {
            key_id: request.key_id,
            sign_id,
            wallet_id: request.wallet_id,
            requested_by: request.requested_by,
            payload: request.payload,
            digest,
            m1,
        })?;
        Ok::<_, MpcError>((data, (unique, kept), start))
    })
    .await??;
    let started = std::time::Instant::now();
    let mut sent = start.len();
    let answer = exchange(link, "sign_start", start).await?;
    let mut received = answer.len();
    let p = party1.clone();
    let (data, x, b3, finish) = cpu::run(Lane::Sign, move || {
        let Response::SignStart {
            m1: their_m1,
            m2: their_m2,
        } = decode(&answer)?
        else {
            return Err(unexpected());
        };
        let (unique, kept, m2) = p
            .party()
            .sign_phase2(&data, unique, kept, &their_m1)
            .map_err(MpcError::from_abort("signing, round 2"))?;
        let (x, b3) = p
            .party()
            .sign_phase3(&data, unique, kept, &their_m2)
            .map_err(MpcError::from_abort("signing, round 3"))?;
        let finish = encode(&Request::SignFinish {
            key_id,
            sign_id,
            m2,
            b3: b3.clone(),
        })?;
        Ok((data, x, b3, finish))
    })
    .await??;
    sent += finish.len();
    let answer = exchange(link, "sign_finish", finish).await?;
    received += answer.len();
    tracing::debug!(
        bytes_sent = sent,
        bytes_received = received,
        micros = started.elapsed().as_micros() as u64,
        "mpc signing exchanges"
    );
    cpu::run(Lane::Sign, move || {
        let Response::SignFinish { b3: their_b3 } = decode(&answer)? else {
            return Err(unexpected());
        };
        let (s, recovery_id) = party1
            .party()
            .sign_phase4(&data, &x, &[b3, their_b3], true)
            .map_err(MpcError::from_abort("signing, round 4"))?;
        finish_signature(&x, &s, recovery_id, &digest, address)
    })
    .await?
}

/// The joint signature from round 4's hex r and s, checked: an Ethereum
/// recovery id, low-s, and it recovers to the wallet's address.
fn finish_signature(
    r_hex: &str,
    s_hex: &str,
    recovery_id: u8,
    digest: &[u8; 32],
    address: Address,
) -> Result<RecoverableSignature, MpcError> {
    let scalar = |hex_text: &str| -> Result<[u8; 32], MpcError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut out)
            .map_err(|e| MpcError::Aborted(format!("signature is not hex: {e}")))?;
        Ok(out)
    };
    if recovery_id > 1 {
        // x ≥ n: not expressible as v = 27/28 (probability ~2^-128).
        return Err(MpcError::Aborted(
            "signature has no Ethereum recovery id".into(),
        ));
    }
    let signature = RecoverableSignature::new(scalar(r_hex)?, scalar(s_hex)?, recovery_id);
    let low_s = k256::ecdsa::Signature::from_slice(&signature.as_bytes()[..64])
        .map(|s| s.normalize_s().is_none())
        .unwrap_or(false);
    if !low_s {
        return Err(MpcError::Aborted("the joint signature is not low-s".into()));
    }
    if eth::recover_address(digest, &signature) != Some(address) {
        return Err(MpcError::Aborted(
            "the joint signature does not verify against the wallet's key".into(),
        ));
    }
    Ok(signature)
}

/// Asks the cosigner to delete its share of `key_id`: no wallet uses the
/// key (party 1 checked its event log), or its key generation failed.
/// Succeeds when the share is gone; the cosigner refuses if it ever signed
/// with that share or froze it.
/// The key id `/readyz` releases to check the channel: no key has it (real
/// ids are UUIDs), so the release changes nothing.
pub const PROBE_KEY_ID: &str = "readiness-probe";

pub async fn release(link: &dyn CosignerLink, key_id: &str) -> Result<(), MpcError> {
    let request = encode(&Request::Release {
        key_id: key_id.to_string(),
    })?;
    // The readiness probe releases a key id no key has: its own step, so
    // that probes do not read as releases.
    let step = if key_id == PROBE_KEY_ID {
        "probe"
    } else {
        "release"
    };
    match decode(&exchange(link, step, request).await?)? {
        Response::Released => Ok(()),
        _ => Err(unexpected()),
    }
}
