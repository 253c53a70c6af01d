use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::domain::{Address, Handle, Nickname, UserId, WalletId};

use super::{NewUserWallet, UserCommand, UserEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kyc {
    Unverified,
    Pending,
    Passed,
    Failed,
}

impl Kyc {
    pub fn as_str(self) -> &'static str {
        match self {
            Kyc::Unverified => "unverified",
            Kyc::Pending => "pending",
            Kyc::Passed => "passed",
            Kyc::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserWallet {
    pub wallet_id: WalletId,
    pub address: Address,
    pub nickname: Nickname,
    pub default: bool,
    pub statements_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("user handle is already taken")]
    AlreadyExists,
    #[error("user is not registered")]
    NotFound,
    #[error("the request was not signed by a wallet of this user")]
    SignerNotAWallet,
    #[error("blockchain address {0} is already registered to this user")]
    AddressAlreadyAttached(Address),
    #[error("nickname {0} is already used by another wallet of this user")]
    NicknameTaken(String),
    #[error("the last wallet of a user cannot be deleted")]
    LastWallet,
    #[error("KYC has already passed for this user")]
    KycAlreadyPassed,
    #[error("KYC has already failed for this user")]
    KycAlreadyFailed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    handle: Handle,
    app: Handle,
    kyc: Kyc,
    wallets: Vec<UserWallet>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SilaUser {
    state: Option<State>,
}

impl SilaUser {
    pub fn exists(&self) -> bool {
        self.state.is_some()
    }

    pub fn app(&self) -> Option<&Handle> {
        self.state.as_ref().map(|s| &s.app)
    }

    pub fn kyc(&self) -> Kyc {
        self.state.as_ref().map_or(Kyc::Unverified, |s| s.kyc)
    }

    pub fn wallets(&self) -> &[UserWallet] {
        self.state.as_ref().map_or(&[], |s| &s.wallets)
    }

    pub fn wallet_by_address(&self, address: &Address) -> Option<&UserWallet> {
        self.wallets().iter().find(|w| w.address == *address)
    }

    fn existing(&self) -> Result<&State, UserError> {
        self.state.as_ref().ok_or(UserError::NotFound)
    }
}

impl State {
    fn signer(&self, address: &Address) -> Result<&UserWallet, UserError> {
        self.wallets
            .iter()
            .find(|w| w.address == *address)
            .ok_or(UserError::SignerNotAWallet)
    }

    /// Refuses a nickname another wallet (not `except`) already uses.
    fn check_nickname(
        &self,
        nickname: &Nickname,
        except: Option<WalletId>,
    ) -> Result<(), UserError> {
        let key = nickname.key();
        if self
            .wallets
            .iter()
            .any(|w| Some(w.wallet_id) != except && w.nickname.key() == key)
        {
            return Err(UserError::NicknameTaken(nickname.to_string()));
        }
        Ok(())
    }

    fn attach(
        &self,
        wallet: NewUserWallet,
        default: bool,
        at: crate::domain::Timestamp,
    ) -> Result<UserEvent, UserError> {
        if self.wallets.iter().any(|w| w.address == wallet.address) {
            return Err(UserError::AddressAlreadyAttached(wallet.address));
        }
        let nickname = wallet
            .nickname
            .unwrap_or_else(|| Nickname::generated(wallet.wallet_id));
        self.check_nickname(&nickname, None)?;
        Ok(UserEvent::WalletAttached {
            handle: self.handle.clone(),
            wallet_id: wallet.wallet_id,
            address: wallet.address,
            nickname,
            default,
            statements_enabled: wallet.statements_enabled,
            at,
        })
    }
}

impl Aggregate for SilaUser {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: UserCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), UserError> {
        match command {
            UserCommand::Register {
                handle,
                app,
                wallet,
                at,
            } => {
                if self.state.is_some() {
                    return Err(UserError::AlreadyExists);
                }
                let registered = UserEvent::UserRegistered {
                    user_id: UserId::for_handle(&handle),
                    handle: handle.clone(),
                    app: app.clone(),
                    registered_at: at,
                };
                sink.write(registered, self).await;
                let attached = self.existing()?.attach(wallet, true, at)?;
                sink.write(attached, self).await;
            }
            UserCommand::AttachWallet { signer, wallet, at } => {
                let s = self.existing()?;
                if let Some(signer) = &signer {
                    s.signer(signer)?;
                }
                let default = wallet.default;
                let event = s.attach(wallet, default, at)?;
                sink.write(event, self).await;
            }
            UserCommand::UpdateWallet {
                signer,
                nickname,
                default,
                statements_enabled,
                at,
            } => {
                let s = self.existing()?;
                let w = s.signer(&signer)?;
                if let Some(n) = &nickname {
                    s.check_nickname(n, Some(w.wallet_id))?;
                }
                let nickname = nickname.filter(|n| *n != w.nickname);
                let default = default.filter(|d| *d != w.default);
                let statements_enabled = statements_enabled.filter(|e| *e != w.statements_enabled);
                // Nothing to change is not an error, and not an event.
                if nickname.is_some() || default.is_some() || statements_enabled.is_some() {
                    let event = UserEvent::WalletUpdated {
                        handle: s.handle.clone(),
                        wallet_id: w.wallet_id,
                        nickname,
                        default,
                        statements_enabled,
                        at,
                    };
                    sink.write(event, self).await;
                }
            }
            UserCommand::DetachWallet { signer, at } => {
                let s = self.existing()?;
                let w = s.signer(&signer)?;
                if s.wallets.len() == 1 {
                    return Err(UserError::LastWallet);
                }
                let event = UserEvent::WalletDetached {
                    handle: s.handle.clone(),
                    wallet_id: w.wallet_id,
                    address: w.address,
                    at,
                };
                sink.write(event, self).await;
            }
            UserCommand::RequestKyc {
                verification_id,
                at,
            } => {
                let s = self.existing()?;
                match s.kyc {
                    Kyc::Passed => return Err(UserError::KycAlreadyPassed),
                    // Already under review: nothing changes.
                    Kyc::Pending => {}
                    Kyc::Unverified | Kyc::Failed => {
                        let event = UserEvent::KycRequested {
                            handle: s.handle.clone(),
                            verification_id,
                            at,
                        };
                        sink.write(event, self).await;
                    }
                }
            }
            UserCommand::DecideKyc { passed, at } => {
                let s = self.existing()?;
                let handle = s.handle.clone();
                let event = match (s.kyc, passed) {
                    // Passing is final: wallets have been queued for the whitelist.
                    (Kyc::Passed, _) => return Err(UserError::KycAlreadyPassed),
                    (Kyc::Failed, false) => return Err(UserError::KycAlreadyFailed),
                    (_, true) => UserEvent::KycPassed { handle, at },
                    (_, false) => UserEvent::KycFailed { handle, at },
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: UserEvent) {
        if let UserEvent::UserRegistered { handle, app, .. } = &event {
            self.state = Some(State {
                handle: handle.clone(),
                app: app.clone(),
                kyc: Kyc::Unverified,
                wallets: Vec::new(),
            });
            return;
        }
        let Some(s) = &mut self.state else {
            return;
        };
        match event {
            UserEvent::UserRegistered { .. } => {}
            UserEvent::WalletAttached {
                wallet_id,
                address,
                nickname,
                default,
                statements_enabled,
                ..
            } => {
                if default {
                    s.wallets.iter_mut().for_each(|w| w.default = false);
                }
                s.wallets.push(UserWallet {
                    wallet_id,
                    address,
                    nickname,
                    default,
                    statements_enabled,
                });
            }
            UserEvent::WalletUpdated {
                wallet_id,
                nickname,
                default,
                statements_enabled,
                ..
            } => {
                if default == Some(true) {
                    s.wallets.iter_mut().for_each(|w| w.default = false);
                }
                if let Some(w) = s.wallets.iter_mut().find(|w| w.wallet_id == wallet_id) {
                    if let Some(n) = nickname {
                        w.nickname = n;
                    }
                    if let Some(d) = default {
                        w.default = d;
                    }
                    if let Some(e) = statements_enabled {
                        w.statements_enabled = e;
                    }
                }
            }
            UserEvent::WalletDetached { wallet_id, .. } => {
                s.wallets.retain(|w| w.wallet_id != wallet_id)
            }
            UserEvent::KycRequested { .. } => s.kyc = Kyc::Pending,
            UserEvent::KycPassed { .. } => s.kyc = Kyc::Passed,
            UserEvent::KycFailed { .. } => s.kyc = Kyc::Failed,
        }
    }
}
