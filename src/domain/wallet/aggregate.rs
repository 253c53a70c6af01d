use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::custody::{eth, Custody, CustodyError, CustodyKind, KeyRef};
use crate::domain::{Address, Timestamp, UserId, WalletId};

use super::{WalletCommand, WalletEvent, WalletKind};

/// What the aggregate needs from outside: the custody backends that sign.
#[derive(Clone, Default)]
pub struct WalletServices {
    custody: HashMap<CustodyKind, Arc<dyn Custody>>,
}

impl WalletServices {
    pub fn new(backends: Vec<Arc<dyn Custody>>) -> Self {
        Self {
            custody: backends.into_iter().map(|c| (c.kind(), c)).collect(),
        }
    }

    pub fn custody(&self, kind: CustodyKind) -> Option<&Arc<dyn Custody>> {
        self.custody.get(&kind)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustodyFailure {
    NotConfigured,
    Unavailable,
    /// The MPC cosigner cannot be reached (retry later).
    CosignerUnavailable,
    Integrity,
}

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
    #[error("custody failed: {detail}")]
    Custody {
        failure: CustodyFailure,
        detail: String,
    },
}

impl From<CustodyError> for WalletError {
    fn from(e: CustodyError) -> Self {
        let failure = match &e {
            CustodyError::NotConfigured => CustodyFailure::NotConfigured,
            CustodyError::Storage(_) => CustodyFailure::Unavailable,
            CustodyError::CosignerUnavailable(_) => CustodyFailure::CosignerUnavailable,
            CustodyError::UnknownKey(_) | CustodyError::Integrity(_) | CustodyError::Mpc(_) => {
                CustodyFailure::Integrity
            }
        };
        WalletError::Custody {
            failure,
            detail: e.to_string(),
        }
    }
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
}

/// A wallet. `None` until created or registered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    state: Option<State>,
}

impl Wallet {
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
    type Services = WalletServices;

    async fn handle(
        &mut self,
        command: WalletCommand,
        services: &WalletServices,
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
            WalletCommand::Sign {
                payload,
                requested_by,
                at,
                reply,
            } => {
                let s = self.existing()?;
                let key = s.key.clone().ok_or(WalletError::NotCustodial(s.id))?;
                let custody = services.custody(key.custody).ok_or(WalletError::Custody {
                    failure: CustodyFailure::NotConfigured,
                    detail: format!("no {} custody backend", key.custody.as_str()),
                })?;
                let signature = custody.sign(&key, s.id, &payload, &requested_by).await?;
                let digest = payload.digest();
                // Whatever the backend (one key, or a protocol between two
                // parties), nothing leaves walletd that is not a low-s
                // signature of this digest by this wallet's key.
                if eth::recover_address(&digest, &signature) != Some(s.address) {
                    return Err(WalletError::Custody {
                        failure: CustodyFailure::Integrity,
                        detail: format!(
                            "{} custody returned a signature that does not verify for wallet {}",
                            key.custody.as_str(),
                            s.id
                        ),
                    });
                }
                let summary = payload.summary();
                let tx_hash = payload
                    .signed_transaction(&signature)
                    .map(|t| format!("0x{}", hex::encode(t.hash)));
                let event = WalletEvent::MessageSigned {
                    wallet_id: s.id,
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
                reply.put(signature);
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
        }
    }
}
