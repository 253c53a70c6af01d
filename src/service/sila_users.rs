//! Sila use cases. Each writes the user and the wallets it touches as one unit
//! of work, so a failed request leaves nothing behind, and each retries the
//! whole unit when a concurrent request on the same user or address won.

use crate::app::App;
use crate::config::KycMode;
use crate::custody::{GeneratedKey, KeyOutcome};
use crate::domain::user::{Kyc, NewUserWallet, SilaUser, UserCommand, UserError, UserWallet};
use crate::domain::wallet::{OwnershipProof, WalletCommand, WalletError, WalletKind};
use crate::domain::{Address, Handle, Nickname, UserId, WalletId};
use crate::service::whitelist_policy;
use crate::store::retry::{self, Attempt as RetryAttempt};
use crate::store::{CommandError, CommandMeta, CommitError, UnitOfWork};

#[derive(Debug, thiserror::Error)]
pub enum SilaError {
    #[error("{0}")]
    User(UserError),
    #[error("blockchain address {0} is already registered")]
    AddressTaken(Address),
    #[error("wallet_verification_signature is not a signature of the address by its own key")]
    InvalidProof,
    #[error("request already processed: header.reference (or this exact request) was used before")]
    Replayed,
    #[error("too many concurrent changes to this user; retry")]
    Contended,
    #[error("server configuration error: {0}")]
    NotConfigured(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A failed attempt: either final, or a lost race worth retrying.
type Attempt = RetryAttempt<SilaError>;

impl From<CommandError<UserError>> for Attempt {
    fn from(e: CommandError<UserError>) -> Self {
        match e {
            CommandError::Domain(e) => Attempt::Fail(SilaError::User(e)),
            other => store_failure(other),
        }
    }
}

impl From<CommitError> for Attempt {
    fn from(e: CommitError) -> Self {
        store_failure(e)
    }
}

fn store_failure<E: std::error::Error>(e: CommandError<E>) -> Attempt {
    match e {
        CommandError::Conflict => Attempt::Retry,
        CommandError::Replayed => Attempt::Fail(SilaError::Replayed),
        CommandError::Unavailable(m) => Attempt::Fail(SilaError::Unavailable(m)),
        CommandError::Store(m) => Attempt::Fail(SilaError::Internal(m)),
        CommandError::AddressClaimed => {
            Attempt::Fail(SilaError::Internal("unexpected address claim".into()))
        }
        CommandError::Domain(e) => Attempt::Fail(SilaError::Internal(e.to_string())),
    }
}

fn wallet_failure(e: CommandError<WalletError>, address: Address) -> Attempt {
    match e {
        CommandError::Domain(WalletError::AlreadyExists { .. }) => {
            Attempt::Fail(SilaError::AddressTaken(address))
        }
        CommandError::Domain(WalletError::InvalidOwnershipProof) => {
            Attempt::Fail(SilaError::InvalidProof)
        }
        other => store_failure(other),
    }
}

/// What a `register_wallet` result says about the key made for it: only a
/// refusal before or by the commit means nothing was written. An unavailable
/// store or an internal error may come after the commit landed (the key is
/// then named by an event and must be kept).
fn key_outcome<T>(result: &Result<T, SilaError>) -> KeyOutcome {
    match result {
        Ok(_) => KeyOutcome::Assigned,
        Err(
            SilaError::User(_)
            | SilaError::AddressTaken(_)
            | SilaError::InvalidProof
            | SilaError::Replayed
            | SilaError::Contended
            | SilaError::NotConfigured(_),
        ) => KeyOutcome::Refused,
        Err(SilaError::Unavailable(_) | SilaError::Internal(_)) => KeyOutcome::Unknown,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or keeps losing races.
async fn retrying<T, F, Fut>(attempt: F) -> Result<T, SilaError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    retry::retrying(attempt, || SilaError::Contended).await
}

/// The new wallet of `register_wallet`.
pub enum NewWallet {
    /// ECDSA mode: an address the caller proved to own.
    External {
        address: Address,
        proof: OwnershipProof,
    },
    /// Token mode: walletd generates and keeps the key.
    Custodial,
}

pub struct WalletRequest {
    pub wallet: NewWallet,
    pub nickname: Option<Nickname>,
    pub default: bool,
    pub statements_enabled: bool,
}

#[derive(Clone, Debug)]
pub struct RegisteredWallet {
    pub wallet_id: WalletId,
    pub address: Address,
    pub nickname: Nickname,
    pub statements_enabled: bool,
    pub queued_for_whitelist: bool,
}

pub struct WalletChanges {
    pub before: UserWallet,
    pub after: UserWallet,
}

pub struct SilaUsers<'a> {
    app: &'a App,
}

impl<'a> SilaUsers<'a> {
    pub fn new(app: &'a App) -> Self {
        Self { app }
    }

    async fn commit(&self, uow: UnitOfWork) -> Result<(), Attempt> {
        uow.commit(&self.app.db, self.app.users.projector())
            .await
            .map_err(Attempt::from)
    }

    /// Commits a unit that gives `address` a wallet: the store refuses it when
    /// the address belongs to a wallet of any other kind (server, JWT).
    async fn commit_claiming(&self, uow: UnitOfWork, address: Address) -> Result<(), Attempt> {
        match uow.commit(&self.app.db, self.app.users.projector()).await {
            Err(CommitError::AddressClaimed) => {
                Err(Attempt::Fail(SilaError::AddressTaken(address)))
            }
            other => other.map_err(Attempt::from),
        }
    }

    /// Queues a wallet with the delay stored for every process (see
    /// `whitelist_policy`), never one of this process's own.
    async fn whitelist_delay(&self) -> Result<u64, Attempt> {
        whitelist_policy::current(&self.app.db)
            .await
            .map_err(|e| Attempt::Fail(SilaError::Unavailable(e.to_string())))
    }

    fn queue_command(meta: &CommandMeta, delay_secs: u64) -> WalletCommand {
        WalletCommand::QueueWhitelist {
            at: meta.at,
            delay_secs,
        }
    }

    /// Creates user `handle` for `app` with `address` as its first, default wallet.
    pub async fn register(
        &self,
        handle: &Handle,
        app: &Handle,
        address: Address,
        nickname: Option<Nickname>,
        meta: &CommandMeta,
    ) -> Result<(), SilaError> {
        let wallet_id = WalletId::for_address(&address);
        retrying(|| async {
            let mut uow = UnitOfWork::for_request(meta);
            let wallet = NewUserWallet {
                wallet_id,
                address,
                nickname: nickname.clone(),
                default: true,
                statements_enabled: false,
            };
            self.app
                .users
                .stage(
                    &mut uow,
                    handle,
                    vec![UserCommand::Register {
                        handle: handle.clone(),
                        app: app.clone(),
                        wallet,
                        at: meta.at,
                    }],
                    meta,
                )
                .await?;
            let register = WalletCommand::Register {
                wallet_id,
                user_id: UserId::for_handle(handle),
                address,
                nickname: None,
                proof: None,
                at: meta.at,
            };
            self.app
                .wallets
                .stage(&mut uow, wallet_id, vec![register], meta)
                .await
                .map_err(|e| wallet_failure(e, address))?;
            self.commit_claiming(uow, address).await
        })
        .await
    }

    /// Adds a wallet to user `handle`. `signer` is the user's wallet that signed
    /// the request (ECDSA mode), `None` in token mode. If the user's KYC has
    /// passed, the wallet is queued for the whitelist in the same transaction.
    pub async fn register_wallet(
        &self,
        handle: &Handle,
        signer: Option<Address>,
        request: WalletRequest,
        meta: &CommandMeta,
    ) -> Result<RegisteredWallet, SilaError> {
        let (wallet_id, key) = match &request.wallet {
            NewWallet::External { address, .. } => (WalletId::for_address(address), None),
            NewWallet::Custodial => {
                let id = WalletId::random();
                let started = std::time::Instant::now();
                let key = self.app.custody.generate(id).await;
                let custody = self.app.custody.kind().as_str();
                match &key {
                    Ok(_) => metrics::histogram!(crate::metrics::CREATE_KEY_DURATION, "custody" => custody)
                        .record(started.elapsed().as_secs_f64()),
                    Err(_) => metrics::counter!(crate::metrics::CREATE_KEY_FAILURES, "custody" => custody, "reason" => "error")
                        .increment(1),
                }
                let key = key.map_err(|e| match e {
                    crate::custody::CustodyError::NotConfigured => {
                        SilaError::NotConfigured(e.to_string())
                    }
                    crate::custody::CustodyError::Storage(_) => {
                        SilaError::Unavailable(e.to_string())
                    }
                    _ => SilaError::Internal(e.to_string()),
                })?;
                (id, Some(key))
            }
        };
        let address = match (&request.wallet, &key) {
            (NewWallet::External { address, .. }, _) => *address,
            (_, Some(k)) => k.address,
            (_, None) => return Err(SilaError::Internal("no key generated".into())),
        };
        let result = retrying(|| {
            self.attach(
                handle,
                signer,
                &request,
                wallet_id,
                address,
                key.clone(),
                meta,
            )
        })
        .await;
        if let Some(key) = &key {
            self.app.custody.settle(key, key_outcome(&result)).await;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn attach(
        &self,
        handle: &Handle,
        signer: Option<Address>,
        request: &WalletRequest,
        wallet_id: WalletId,
        address: Address,
        key: Option<GeneratedKey>,
        meta: &CommandMeta,
    ) -> Result<RegisteredWallet, Attempt> {
        let mut uow = UnitOfWork::for_request(meta);
        let user = self
            .app
            .users
            .stage(
                &mut uow,
                handle,
                vec![UserCommand::AttachWallet {
                    signer,
                    wallet: NewUserWallet {
                        wallet_id,
                        address,
                        nickname: request.nickname.clone(),
                        default: request.default,
                        statements_enabled: request.statements_enabled,
                    },
                    at: meta.at,
                }],
                meta,
            )
            .await?;
        let user_id = UserId::for_handle(handle);
        let mut commands = vec![match (&request.wallet, key) {
            (NewWallet::External { proof, .. }, _) => WalletCommand::Register {
                wallet_id,
                user_id,
                address,
                nickname: None,
                proof: Some(proof.clone()),
                at: meta.at,
            },
            (NewWallet::Custodial, Some(key)) => WalletCommand::Create {
                wallet_id,
                user_id,
                kind: WalletKind::Custodial,
                key,
                label: None,
                at: meta.at,
            },
            (NewWallet::Custodial, None) => {
                return Err(Attempt::Fail(SilaError::Internal(
                    "no key generated".into(),
                )))
            }
        }];
        let queued = user.kyc() == Kyc::Passed;
        if queued {
            commands.push(Self::queue_command(meta, self.whitelist_delay().await?));
        }
        self.app
            .wallets
            .stage(&mut uow, wallet_id, commands, meta)
            .await
            .map_err(|e| wallet_failure(e, address))?;
        self.commit_claiming(uow, address).await?;
        let attached = user
            .wallet_by_address(&address)
            .ok_or_else(|| Attempt::Fail(SilaError::Internal("wallet not attached".into())))?;
        Ok(RegisteredWallet {
            wallet_id,
            address,
            nickname: attached.nickname.clone(),
            statements_enabled: attached.statements_enabled,
            queued_for_whitelist: queued,
        })
    }

    /// Changes the nickname, default flag or statements flag of the signing wallet.
    pub async fn update_wallet(
        &self,
        handle: &Handle,
        signer: Address,
        nickname: Option<Nickname>,
        default: Option<bool>,
        statements_enabled: Option<bool>,
        meta: &CommandMeta,
    ) -> Result<WalletChanges, SilaError> {
        retrying(|| async {
            let mut uow = UnitOfWork::for_request(meta);
            let loaded = self.app.users.load(handle.as_str()).await?;
            let before = loaded
                .0
                .wallet_by_address(&signer)
                .cloned()
                .ok_or(Attempt::Fail(SilaError::User(UserError::SignerNotAWallet)))?;
            let user = self
                .app
                .users
                .stage_loaded(
                    &mut uow,
                    handle.as_str(),
                    loaded,
                    vec![UserCommand::UpdateWallet {
                        signer,
                        nickname: nickname.clone(),
                        default,
                        statements_enabled,
                        at: meta.at,
                    }],
                    meta,
                )
                .await?;
            let after = user
                .wallet_by_address(&signer)
                .cloned()
                .ok_or(Attempt::Fail(SilaError::Internal("wallet vanished".into())))?;
            self.commit(uow).await?;
            Ok(WalletChanges { before, after })
        })
        .await
    }

    /// Removes the signing wallet from the user and retires it.
    pub async fn delete_wallet(
        &self,
        handle: &Handle,
        signer: Address,
        meta: &CommandMeta,
    ) -> Result<(), SilaError> {
        retrying(|| async {
            let mut uow = UnitOfWork::for_request(meta);
            let loaded = self.app.users.load(handle.as_str()).await?;
            let wallet_id = loaded
                .0
                .wallet_by_address(&signer)
                .map(|w| w.wallet_id)
                .ok_or(Attempt::Fail(SilaError::User(UserError::SignerNotAWallet)))?;
            self.app
                .users
                .stage_loaded(
                    &mut uow,
                    handle.as_str(),
                    loaded,
                    vec![UserCommand::DetachWallet {
                        signer,
                        at: meta.at,
                    }],
                    meta,
                )
                .await?;
            self.app
                .wallets
                .stage(
                    &mut uow,
                    wallet_id,
                    vec![WalletCommand::Delete { at: meta.at }],
                    meta,
                )
                .await
                .map_err(store_failure)?;
            self.commit(uow).await
        })
        .await
    }

    /// Submits the user for KYC. In sandbox mode the decision is made at once.
    /// Returns the verification id and the resulting state.
    pub async fn request_kyc(
        &self,
        handle: &Handle,
        meta: &CommandMeta,
    ) -> Result<(uuid::Uuid, Kyc), SilaError> {
        let verification_id = uuid::Uuid::new_v4();
        let sandbox = self.app.settings.kyc_mode == KycMode::Sandbox;
        retrying(|| async {
            let mut commands = vec![UserCommand::RequestKyc {
                verification_id,
                at: meta.at,
            }];
            if sandbox {
                commands.push(UserCommand::DecideKyc {
                    passed: true,
                    at: meta.at,
                });
            }
            let mut uow = UnitOfWork::for_request(meta);
            let user = self
                .app
                .users
                .stage(&mut uow, handle, commands, meta)
                .await?;
            self.queue_all_if_passed(&mut uow, &user, meta).await?;
            self.commit(uow).await?;
            Ok((verification_id, user.kyc()))
        })
        .await
    }

    /// Records a KYC decision from the provider (operator CLI or admin API).
    pub async fn decide_kyc(
        &self,
        handle: &Handle,
        passed: bool,
        meta: &CommandMeta,
    ) -> Result<Kyc, SilaError> {
        retrying(|| async {
            let mut uow = UnitOfWork::for_request(meta);
            let user = self
                .app
                .users
                .stage(
                    &mut uow,
                    handle,
                    vec![UserCommand::DecideKyc {
                        passed,
                        at: meta.at,
                    }],
                    meta,
                )
                .await?;
            self.queue_all_if_passed(&mut uow, &user, meta).await?;
            self.commit(uow).await?;
            Ok(user.kyc())
        })
        .await
    }

    /// Queues every wallet of a user whose KYC has (just) passed.
    async fn queue_all_if_passed(
        &self,
        uow: &mut UnitOfWork,
        user: &SilaUser,
        meta: &CommandMeta,
    ) -> Result<(), Attempt> {
        if user.kyc() != Kyc::Passed {
            return Ok(());
        }
        let delay = self.whitelist_delay().await?;
        for w in user.wallets() {
            match self
                .app
                .wallets
                .stage(
                    uow,
                    w.wallet_id,
                    vec![Self::queue_command(meta, delay)],
                    meta,
                )
                .await
            {
                Ok(_) => {}
                // Queued or whitelisted already: nothing to do for this one.
                Err(CommandError::Domain(
                    WalletError::AlreadyQueued | WalletError::AlreadyWhitelisted,
                )) => {}
                Err(e) => return Err(store_failure(e)),
            }
        }
        Ok(())
    }
}
