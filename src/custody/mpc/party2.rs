//! Party 2 (the cosigner): answers party 1's requests. It keeps per-session
//! protocol state in memory for a short while, persists its share through a
//! [`ShareStore`], recomputes every digest itself through a [`DigestPolicy`],
//! and appends each signature it completes to its own log.
//!
//! DKLs23's ban rule holds here as on party 1's side: when a signing round
//! reports `AbortKind::BanCounterparty` (party 1 sent data only a cheating
//! or compromised peer sends, e.g. corrupted OT values), continuing with that
//! peer on that key would leak the key. The cosigner then freezes its share
//! durably (`mpc_shares.frozen`) and refuses every later request for the key,
//! from any process on its database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dkls23::protocols::dkg::{BroadcastDerivationPhase2to4, ProofCommitment};
use dkls23::protocols::signing::{KeepPhase2to3, SignData, UniqueKeep2to3};
use dkls23::secp256k1::compute_eth_address;
use dkls23::DkgSession;

use super::cpu::{self, Lane};
use super::party1::{parameters, party, KeyShare};
use super::wire::{decode, encode, is_keygen_request, Curve, Request, Response};
use super::MpcError;
use crate::domain::Timestamp;

/// A half-finished run is dropped after this long.
const SESSION_TTL: Duration = Duration::from_secs(30);

/// Where the cosigner keeps its shares (sealed under its own master key) and
/// its append-only log of what it cosigned.
#[async_trait::async_trait]
pub trait ShareStore: Send + Sync {
    async fn put(&self, key_id: &str, share: &KeyShare) -> Result<(), MpcError>;
    async fn get(&self, key_id: &str) -> Result<Option<KeyShare>, MpcError>;
    /// Whether `sign_id` is already in the log.
    async fn seen(&self, sign_id: &str) -> Result<bool, MpcError>;
    /// Appends to the log; refuses a `sign_id` that is already there.
    async fn record(&self, entry: &CosignRecord) -> Result<(), MpcError>;
    /// Marks the share of `key_id` as never to be used again, durably.
    async fn freeze(&self, key_id: &str, reason: &str) -> Result<(), MpcError>;
    /// Deletes the share of `key_id` if it was never used to sign and is not
    /// frozen (`Refused` otherwise); a share that does not exist is fine.
    async fn release(&self, key_id: &str) -> Result<(), MpcError>;
}

/// The cosigner's own way of turning a payload into the digest to sign; it
/// may refuse a payload altogether.
pub trait DigestPolicy: Send + Sync {
    fn digest(&self, wallet_id: &str, payload: &[u8]) -> Result<[u8; 32], String>;
}

/// One entry of the cosigner's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignRecord {
    pub sign_id: String,
    pub key_id: String,
    pub wallet_id: String,
    pub requested_by: String,
    pub digest: String,
    /// r‖s‖v, 0x-hex: the cosigner completes the signature too.
    pub signature: String,
    pub at: Timestamp,
}

struct DkgState {
    key_id: String,
    session: DkgSession<Curve>,
    own: ProofCommitment<Curve>,
    own_bip2: BroadcastDerivationPhase2to4,
}

struct SignState {
    key_id: String,
    wallet_id: String,
    requested_by: String,
    data: SignData,
    unique: UniqueKeep2to3<Curve>,
    kept: BTreeMap<dkls23::protocols::PartyIndex, KeepPhase2to3<Curve>>,
}

struct Sessions<T>(Mutex<HashMap<[u8; 32], (Instant, T)>>);

impl<T> Sessions<T> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn insert(&self, id: [u8; 32], state: T) -> Result<(), MpcError> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| MpcError::Storage("session table poisoned".into()))?;
        map.retain(|_, (at, _)| at.elapsed() < SESSION_TTL);
        if map.contains_key(&id) {
            return Err(MpcError::BadMessage("session id already in use".into()));
        }
        map.insert(id, (Instant::now(), state));
        Ok(())
    }

    /// Takes the session out: whatever happens next, it is used at most once.
    fn take(&self, id: &[u8; 32]) -> Result<T, MpcError> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| MpcError::Storage("session table poisoned".into()))?;
        match map.remove(id) {
            Some((at, state)) if at.elapsed() < SESSION_TTL => Ok(state),
            // Expired, used, or lost with a restart of this process: a fresh
            // run may succeed, so party 1 reports "unavailable, retry".
            _ => Err(MpcError::Aborted("unknown or expired session".into())),
        }
    }
}

pub struct Cosigner {
    store: Arc<dyn ShareStore>,
    policy: Arc<dyn DigestPolicy>,
    dkg: Sessions<DkgState>,
    sign: Sessions<SignState>,
    /// Keys banned by this process: refused even if recording the freeze
    /// failed (the store is the durable record, for every process).
    banned: Mutex<HashSet<String>>,
}

impl Cosigner {
    pub fn new(store: Arc<dyn ShareStore>, policy: Arc<dyn DigestPolicy>) -> Self {
        Self {
            store,
            policy,
            dkg: Sessions::new(),
            sign: Sessions::new(),
            banned: Mutex::new(HashSet::new()),
        }
    }

    fn is_banned(&self, key_id: &str) -> bool {
        self.banned
            .lock()
            .map(|b| b.contains(key_id))
            .unwrap_or(true)
    }

    /// Passes `result` through; if it is DKLs23's ban, freezes the key's
    /// share first.
    async fn ban_on<T>(&self, key_id: &str, result: Result<T, MpcError>) -> Result<T, MpcError> {
        if let Err(MpcError::PeerBanned(reason)) = &result {
            if let Ok(mut banned) = self.banned.lock() {
                banned.insert(key_id.to_string());
            }
            tracing::error!(%key_id, %reason, "party 1 misbehaved (DKLs23 ban); freezing this key's share for good");
            if let Err(e) = self.store.freeze(key_id, reason).await {
                tracing::error!(%key_id, error = %e, "could not record the freeze; this process refuses the key regardless");
            }
        }
        result
    }

    /// Answers one request from party 1. Decoding, the protocol's steps
    /// and encoding run on the protocol threads ([`cpu`]); storage runs here.
    pub async fn handle(&self, body: &[u8]) -> Result<Vec<u8>, MpcError> {
        let lane = if is_keygen_request(body) {
            Lane::Keygen
        } else {
            Lane::Sign
        };
        let body = body.to_vec();
        let request = cpu::run(lane, move || decode::<Request>(&body)).await??;
        match request {
            Request::DkgStart {
                key_id,
                session_id,
                fragment,
            } => {
                if self.store.get(&key_id).await?.is_some() {
                    return Err(MpcError::Refused(format!("key {key_id} already exists")));
                }
                let (session, own, bip2, answer) = cpu::run(Lane::Keygen, move || {
                    let mut session =
                        DkgSession::<Curve>::new(parameters(), party(2), session_id.to_vec());
                    let fragments = session.phase1();
                    let (own, zero2, bip2) = session
                        .phase2(&[fragment, fragments[1]])
                        .map_err(MpcError::from_abort("key generation, round 2"))?;
                    let answer = encode(&Response::DkgStart {
                        fragment: fragments[0],
                        commitment: own.commitment,
                        zero2,
                        bip2: bip2.clone(),
                    })?;
                    Ok::<_, MpcError>((session, own, bip2, answer))
                })
                .await??;
                self.dkg.insert(
                    session_id,
                    DkgState {
                        key_id,
                        session,
                        own,
                        own_bip2: bip2,
                    },
                )?;
                Ok(answer)
            }
            Request::DkgFinish {
                key_id,
                session_id,
                commitment,
                zero2,
                bip2,
                proof,
                zero3,
                mul3,
                bip3,
            } => {
                let DkgState {
                    key_id: started_for,
                    mut session,
                    own,
                    own_bip2,
                } = self.dkg.take(&session_id)?;
                if started_for != key_id {
                    return Err(MpcError::BadMessage(
                        "session belongs to another key".into(),
                    ));
                }
                let (share, answer) = cpu::run(Lane::Keygen, move || {
                    let (own_zero3, own_mul3, own_bip3) = session
                        .phase3()
                        .map_err(MpcError::from_abort("key generation, round 3"))?;
                    let proofs = [
                        ProofCommitment {
                            index: party(1),
                            proof,
                            commitment,
                        },
                        own.clone(),
                    ];
                    let (joint, _) = session
                        .phase4(
                            &proofs,
                            &zero2,
                            &zero3,
                            &mul3,
                            &BTreeMap::from([(party(1), bip2), (party(2), own_bip2)]),
                            &BTreeMap::from([(party(1), bip3), (party(2), own_bip3.clone())]),
                            compute_eth_address,
                        )
                        .map_err(MpcError::from_abort("key generation, round 4"))?;
                    let share = KeyShare::new(joint)?;
                    let answer = encode(&Response::DkgFinish {
                        proof: own.proof,
                        zero3: own_zero3,
                        mul3: own_mul3,
                        bip3: own_bip3,
                        address: share.address().to_checksum(),
                    })?;
                    Ok::<_, MpcError>((share, answer))
                })
                .await??;
                // Stored before answering: party 1 keeps its share only once ours is safe.
                self.store.put(&key_id, &share).await?;
                Ok(answer)
            }
            Request::SignStart {
                key_id,
                sign_id,
                wallet_id,
                requested_by,
                payload,
                digest,
                m1,
            } => {
                let policy = self.policy.clone();
                let wallet = wallet_id.clone();
                let own_digest = cpu::run(Lane::Sign, move || policy.digest(&wallet, &payload))
                    .await?
                    .map_err(MpcError::Refused)?;
                if own_digest != digest {
                    return Err(MpcError::Refused(
                        "the digest does not match the payload".into(),
                    ));
                }
                if self.store.seen(&hex::encode(sign_id)).await? {
                    return Err(MpcError::BadMessage("sign id already used".into()));
                }
                let share = self.share(&key_id).await?;
                // The digest bound into the protocol is the one computed here.
                let data = SignData {
                    sign_id: sign_id.to_vec(),
                    counterparties: vec![party(1)],
                    message_hash: own_digest,
                };
                let rounds = cpu::run(Lane::Sign, move || {
                    let (unique, kept, own_m1) = share
                        .party()
                        .sign_phase1(&data)
                        .map_err(MpcError::from_abort("signing, round 1"))?;
                    let (unique, kept, own_m2) = share
                        .party()
                        .sign_phase2(&data, unique, kept, &m1)
                        .map_err(MpcError::from_abort("signing, round 2"))?;
                    let answer = encode(&Response::SignStart {
                        m1: own_m1,
                        m2: own_m2,
                    })?;
                    Ok((data, unique, kept, answer))
                })
                .await?;
                let (data, unique, kept, answer) = self.ban_on(&key_id, rounds).await?;
                self.sign.insert(
                    sign_id,
                    SignState {
                        key_id,
                        wallet_id,
                        requested_by,
                        data,
                        unique,
                        kept,
                    },
                )?;
                Ok(answer)
            }
            Request::SignFinish {
                key_id,
                sign_id,
                m2,
                b3,
            } => {
                let state = self.sign.take(&sign_id)?;
                if state.key_id != key_id {
                    return Err(MpcError::BadMessage(
                        "session belongs to another key".into(),
                    ));
                }
                let share = self.share(&key_id).await?;
                let SignState {
                    wallet_id,
                    requested_by,
                    data,
                    unique,
                    kept,
                    ..
                } = state;
                let rounds = cpu::run(Lane::Sign, move || {
                    let (x, own_b3) = share
                        .party()
                        .sign_phase3(&data, unique, kept, &m2)
                        .map_err(MpcError::from_abort("signing, round 3"))?;
                    let (s, recovery_id) = share
                        .party()
                        .sign_phase4(&data, &x, &[b3, own_b3.clone()], true)
                        .map_err(MpcError::from_abort("signing, round 4"))?;
                    let answer = encode(&Response::SignFinish { b3: own_b3 })?;
                    let signature = format!("0x{x}{s}{:02x}", 27 + (recovery_id & 1));
                    Ok((data.message_hash, signature, answer))
                })
                .await?;
                let (digest, signature, answer) = self.ban_on(&key_id, rounds).await?;
                // Logged before the last message leaves: party 1 cannot finish
                // the signature without it.
                self.store
                    .record(&CosignRecord {
                        sign_id: hex::encode(sign_id),
                        key_id,
                        wallet_id,
                        requested_by,
                        digest: format!("0x{}", hex::encode(digest)),
                        signature,
                        at: Timestamp::now(),
                    })
                    .await?;
                Ok(answer)
            }
            Request::Release { key_id } => {
                self.store.release(&key_id).await?;
                // Readiness probes come every few seconds and release nothing.
                if key_id != super::party1::PROBE_KEY_ID {
                    tracing::info!(%key_id, "released the share of a key no wallet uses");
                }
                Ok(encode(&Response::Released)?)
            }
        }
    }

    async fn share(&self, key_id: &str) -> Result<KeyShare, MpcError> {
        if self.is_banned(key_id) {
            return Err(MpcError::PeerBanned(format!("key {key_id} is frozen")));
        }
        self.store
            .get(key_id)
            .await?
            .ok_or_else(|| MpcError::Refused(format!("no share for key {key_id}")))
    }
}
