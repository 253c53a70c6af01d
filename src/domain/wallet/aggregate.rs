use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::domain::account::WalletGate;
use crate::domain::eth;
use crate::domain::key::KeyRef;
use crate::domain::{Address, Timestamp, UserId, WalletId};

use super::{SignatureKind, WalletCommand, WalletEvent, WalletKind};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WalletError {
    #[error("wallet {wallet_id} already exists")]
    AlreadyExists { wallet_id: WalletId },
    #[error("wallet not found")]
    NotFound,
    #[error("wallet id does not match the address")]
    WalletIdMismatch,
    #[error("the ownership proof is not a signature of the address by its own key")]
    InvalidOwnershipProof,
    #[error("wallet {0} holds no key in walletd custody, so walletd cannot sign for it")]
    NotCustodial(WalletId),
    #[error("wallet is already queued for the whitelist")]
    AlreadyQueued,
    #[error("wallet is already whitelisted")]
    AlreadyWhitelisted,
    #[error("wallet is not queued for the whitelist")]
    NotQueued,
    #[error("wallet is not eligible for the whitelist before {0}")]
    WhitelistNotDue(Timestamp),
    /// The signature does not recover to this wallet's address (with low s):
    /// custody returned something walletd must never release.
    #[error("the signature does not verify for wallet {0}")]
    SignatureMismatch(WalletId),
    /// Custody froze the wallet's key (`WalletKeyFrozen`): never signed with again.
    #[error("wallet {wallet_id}'s key is frozen (the MPC protocol reported a misbehaving party), so walletd will not sign with it again")]
    KeyFrozen { wallet_id: WalletId },
    #[error("key {key_id} is not wallet {wallet_id}'s key")]
    KeyMismatch { wallet_id: WalletId, key_id: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Whitelist {
    NotQueued,
    Queued { eligible_at: Timestamp },
    Whitelisted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    id: WalletId,
    user_id: UserId,
    kind: WalletKind,
    address: Address,
    key: Option<KeyRef>,
    whitelist: Whitelist,
    signatures: u64,
    #[serde(default)]
    deleted: bool,
    /// Custody froze the key (`WalletKeyFrozen`). Defaulted: snapshots
    /// written before the event existed lack it.
    #[serde(default)]
    frozen: bool,
}

/// A wallet. `None` until created or registered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    state: Option<State>,
}

/// What signing needs to know of a wallet before custody is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    pub wallet_id: WalletId,
    pub address: Address,
    pub key: KeyRef,
}

/// What never changes about a wallet once it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub wallet_id: WalletId,
    pub user_id: UserId,
    pub kind: WalletKind,
    pub address: Address,
}

impl Wallet {
    /// The live wallet's identity; `None` for a missing or deleted wallet.
    pub fn identity(&self) -> Option<Identity> {
        let s = self.existing().ok()?;
        Some(Identity {
            wallet_id: s.id,
            user_id: s.user_id.clone(),
            kind: s.kind,
            address: s.address,
        })
    }

    /// The key custody signs with for this wallet: refused for a missing or
    /// deleted wallet, and for one whose key walletd does not hold.
    pub fn signing_key(&self) -> Result<SigningKey, WalletError> {
        let s = self.existing()?;
        let key = s.key.clone().ok_or(WalletError::NotCustodial(s.id))?;
        if s.frozen {
            return Err(WalletError::KeyFrozen { wallet_id: s.id });
        }
        Ok(SigningKey {
            wallet_id: s.id,
            address: s.address,
            key,
        })
    }

    /// What the ledger needs to know before money moves to or from this
    /// wallet (`account::WalletGate`): the wallet's own facts, `None` if it
    /// never existed. A deleted wallet reports `deleted` whatever else its
    /// state says. Whether a kind of wallet that is never queued for the
    /// whitelist (server, JWT) may move money anyway is the service's
    /// policy, not a fact of the wallet.
    pub fn gate(&self) -> Option<WalletGate> {
        self.state.as_ref().map(|s| WalletGate {
            whitelisted: s.whitelist == Whitelist::Whitelisted,
            frozen: s.frozen,
            deleted: s.deleted,
        })
    }

    /// How many signatures the wallet's events record (every version of
    /// `MessageSigned`).
    pub fn signature_count(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.signatures)
    }

    /// The live wallet; a deleted one is as good as absent.
    fn existing(&self) -> Result<&State, WalletError> {
        self.state
            .as_ref()
            .filter(|s| !s.deleted)
            .ok_or(WalletError::NotFound)
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = ();

    async fn handle(
        &mut self,
        command: WalletCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), WalletError> {
        match command {
            WalletCommand::Create {
                wallet_id,
                user_id,
                kind,
                key,
                label,
                at,
            } => {
                if let Some(s) = &self.state {
                    return Err(WalletError::AlreadyExists { wallet_id: s.id });
                }
                let public_key = key.public_key_hex();
                sink.write(
                    WalletEvent::WalletCreated {
                        wallet_id,
                        user_id,
                        kind,
                        custody: key.key.custody,
                        key_id: key.key.key_id,
                        address: key.address,
                        public_key,
                        label,
                        created_at: at,
                    },
                    self,
                )
                .await;
            }
            WalletCommand::Register {
                wallet_id,
                user_id,
                address,
                nickname,
                proof,
                at,
            } => {
                if let Some(s) = self.state.as_ref().filter(|s| !s.deleted) {
                    return Err(WalletError::AlreadyExists { wallet_id: s.id });
                }
                if wallet_id != WalletId::for_address(&address) {
                    return Err(WalletError::WalletIdMismatch);
                }
                if let Some(proof) = &proof {
                    let digest = eth::keccak256(proof.message.as_bytes());
                    let spelled = Address::parse(&proof.message).ok();
                    let signer = eth::recover_address(&digest, &proof.signature);
                    if spelled != Some(address) || signer != Some(address) {
                        return Err(WalletError::InvalidOwnershipProof);
                    }
                }
                sink.write(
                    WalletEvent::WalletRegistered {
                        wallet_id,
                        user_id,
                        address,
                        nickname,
                        ownership_proof: proof.map(|p| p.signature),
                        registered_at: at,
                    },
                    self,
                )
                .await;
            }
            WalletCommand::SetDefault { at } => {
                // Always recorded: whether this wallet is the user's default depends
                // on the user's other wallets, which this aggregate cannot see.
                let s = self.existing()?;
                let event = WalletEvent::DefaultWalletSet {
                    wallet_id: s.id,
                    user_id: s.user_id.clone(),
                    at,
                };
                sink.write(event, self).await;
            }
            WalletCommand::RecordSignature {
                payload,
                signature,
                requested_by,
                at,
            } => {
                let s = self.existing()?;
                if s.key.is_none() {
                    return Err(WalletError::NotCustodial(s.id));
                }
                // A signature made before the freeze is dropped too: nothing
                // is released for a key custody has given up on.
                if s.frozen {
                    return Err(WalletError::KeyFrozen { wallet_id: s.id });
                }
                let digest = payload.digest();
                // Whatever the backend (one key, or a protocol between two
                // parties), nothing is recorded, and so nothing released, that
                // is not a low-s signature of this digest by this wallet's key.
                if eth::recover_address(&digest, &signature) != Some(s.address) {
                    return Err(WalletError::SignatureMismatch(s.id));
                }
                let summary = payload.summary();
                let tx_hash = payload
                    .signed_transaction(&signature)
                    .map(|t| format!("0x{}", hex::encode(t.hash)));
                let event = WalletEvent::MessageSigned {
                    wallet_id: s.id,
                    kind: SignatureKind::of(&payload),
                    scheme: payload.scheme().to_string(),
                    digest: format!("0x{}", hex::encode(digest)),
                    message_len: payload.message_len(),
                    signature,
                    requested_by,
                    at,
                    chain_id: summary.chain_id,
                    primary_type: summary.primary_type,
                    domain_name: summary.domain_name,
                    verifying_contract: summary.verifying_contract,
                    tx_nonce: summary.tx_nonce,
                    tx_to: summary.tx_to,
                    tx_value: summary.tx_value,
                    tx_hash,
                };
                sink.write(event, self).await;
            }
            WalletCommand::QueueWhitelist { at, delay_secs } => {
                let s = self.existing()?;
                match s.whitelist {
                    Whitelist::Queued { .. } => return Err(WalletError::AlreadyQueued),
                    Whitelist::Whitelisted => return Err(WalletError::AlreadyWhitelisted),
                    Whitelist::NotQueued => {}
                }
                let event = WalletEvent::WhitelistQueued {
                    wallet_id: s.id,
                    queued_at: at,
                    eligible_at: at.plus_seconds(delay_secs),
                };
                sink.write(event, self).await;
            }
            WalletCommand::Delete { at } => {
                let s = self.existing()?;
                let event = WalletEvent::WalletDeleted {
                    wallet_id: s.id,
                    user_id: s.user_id.clone(),
                    address: s.address,
                    at,
                };
                sink.write(event, self).await;
            }
            WalletCommand::CompleteWhitelist { at } => {
                let s = self.existing()?;
                match s.whitelist {
                    Whitelist::NotQueued => return Err(WalletError::NotQueued),
                    Whitelist::Whitelisted => return Err(WalletError::AlreadyWhitelisted),
                    Whitelist::Queued { eligible_at } if at < eligible_at => {
                        return Err(WalletError::WhitelistNotDue(eligible_at))
                    }
                    Whitelist::Queued { .. } => {}
                }
                let event = WalletEvent::WalletWhitelisted {
                    wallet_id: s.id,
                    at,
                };
                sink.write(event, self).await;
            }
            WalletCommand::RecordKeyFrozen { key_id, reason, at } => {
                let s = self.existing()?;
                let Some(key) = &s.key else {
                    return Err(WalletError::NotCustodial(s.id));
                };
                if key.key_id != key_id {
                    return Err(WalletError::KeyMismatch {
                        wallet_id: s.id,
                        key_id,
                    });
                }
                if s.frozen {
                    return Ok(());
                }
                let event = WalletEvent::WalletKeyFrozen {
                    wallet_id: s.id,
                    key_id,
                    reason,
                    at,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: WalletEvent) {
        match event {
            WalletEvent::WalletCreated {
                wallet_id,
                user_id,
                kind,
                custody,
                key_id,
                address,
                ..
            } => {
                self.state = Some(State {
                    id: wallet_id,
                    user_id,
                    kind,
                    address,
                    key: Some(KeyRef { key_id, custody }),
                    whitelist: Whitelist::NotQueued,
                    signatures: 0,
                    deleted: false,
                    frozen: false,
                });
            }
            WalletEvent::WalletRegistered {
                wallet_id,
                user_id,
                address,
                ..
            } => {
                self.state = Some(State {
                    id: wallet_id,
                    user_id,
                    kind: WalletKind::External,
                    address,
                    key: None,
                    whitelist: Whitelist::NotQueued,
                    signatures: 0,
                    deleted: false,
                    frozen: false,
                });
            }
            WalletEvent::DefaultWalletSet { .. } => {}
            WalletEvent::MessageSigned { .. } => {
                if let Some(s) = &mut self.state {
                    s.signatures += 1;
                }
            }
            WalletEvent::WhitelistQueued { eligible_at, .. } => {
                if let Some(s) = &mut self.state {
                    s.whitelist = Whitelist::Queued { eligible_at };
                }
            }
            WalletEvent::WalletWhitelisted { .. } => {
                if let Some(s) = &mut self.state {
                    s.whitelist = Whitelist::Whitelisted;
                }
            }
            WalletEvent::WalletDeleted { .. } => {
                if let Some(s) = &mut self.state {
                    s.deleted = true;
                }
            }
            WalletEvent::WalletKeyFrozen { .. } => {
                if let Some(s) = &mut self.state {
                    s.frozen = true;
                }
            }
        }
    }
}
