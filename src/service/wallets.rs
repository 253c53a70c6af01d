use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use walletd_projections::queries::{self, WalletLookup, WalletRow};
use walletd_projections::with_db;

use super::identity_cache::WalletIdentity;
use crate::app::App;
use crate::custody::{CustodyError, KeyError, KeyFreezeReason, KeyOutcome};
use crate::domain::eth::{SignPayload, SignedTransaction};
use crate::domain::wallet::{Identity, WalletCommand, WalletError, WalletKind};
use crate::domain::{Address, RecoverableSignature, UserId, WalletId};
use crate::store::{CommandError, CommandMeta};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("a server wallet already exists for this user")]
    ServerWalletExists { wallet_id: WalletId },
    #[error("wallet not found")]
    NotFound,
    #[error("{0}")]
    Rejected(WalletError),
    #[error("too many concurrent changes to this wallet; retry")]
    Contended,
    /// The operator has not configured what this needs (e.g. a master key).
    #[error("server configuration error: {0}")]
    NotConfigured(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("the signing cosigner is unavailable: {0}")]
    CosignerUnavailable(String),
    /// No key became free for this create in time (MPC keys are made ahead
    /// and handed out in turn); nothing was written.
    #[error("no wallet key is ready yet; retry in {} s", retry_after.as_secs())]
    NoKeyReady { retry_after: Duration },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CommandError> for ServiceError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(WalletError::NotFound) => ServiceError::NotFound,
            CommandError::Domain(e @ WalletError::SignatureMismatch(_)) => {
                ServiceError::Internal(e.to_string())
            }
            CommandError::Domain(e) => ServiceError::Rejected(e),
            CommandError::Conflict => ServiceError::Contended,
            CommandError::Unavailable(e) => ServiceError::Unavailable(e),
            // Neither applies to a wallet's own commands: no once-only keys,
            // and a freshly generated key's address is nobody else's.
            e @ (CommandError::Replayed | CommandError::AddressClaimed) => {
                ServiceError::Internal(e.to_string())
            }
            CommandError::Store(e) => ServiceError::Internal(e),
        }
    }
}

impl From<CustodyError> for ServiceError {
    fn from(e: CustodyError) -> Self {
        match e {
            CustodyError::NotConfigured => ServiceError::NotConfigured(e.to_string()),
            CustodyError::Storage(_) => ServiceError::Unavailable(e.to_string()),
            CustodyError::CosignerUnavailable(_) => {
                ServiceError::CosignerUnavailable(e.to_string())
            }
            _ => ServiceError::Internal(e.to_string()),
        }
    }
}

impl From<KeyError> for ServiceError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Custody(e) => e.into(),
            KeyError::NotReady { retry_after, .. } => ServiceError::NoKeyReady { retry_after },
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Unavailable(e.to_string())
    }
}

pub struct WalletService<'a> {
    app: &'a App,
}

/// A wallet as its creation recorded it.
pub struct CreatedWallet {
    pub wallet_id: WalletId,
    pub user_id: UserId,
    pub address: Address,
    pub public_key: String,
    pub label: Option<String>,
    pub created_at: crate::domain::Timestamp,
}

/// A signature and the digest it signs; for a transaction, also the signed
/// transaction.
pub struct Signed {
    pub signature: RecoverableSignature,
    pub digest: [u8; 32],
    pub transaction: Option<SignedTransaction>,
}

impl<'a> WalletService<'a> {
    pub fn new(app: &'a App) -> Self {
        Self { app }
    }

    /// Creates a custodial wallet with a freshly generated key. For
    /// `WalletKind::Server` the wallet id derives from the user id, so the
    /// event store admits one server wallet per user even under races.
    /// The answer is built from the command itself, not read back, so it does
    /// not depend on how far the read side has got.
    pub async fn create_custodial(
        &self,
        user_id: UserId,
        kind: WalletKind,
        label: Option<String>,
        meta: &CommandMeta,
    ) -> Result<CreatedWallet, ServiceError> {
        let wallet_id = match (kind, &meta.idempotency_key) {
            (WalletKind::Server, _) => WalletId::for_server_wallet(&user_id),
            (_, Some(key)) => WalletId::for_request(&meta.actor, key),
            (_, None) => WalletId::random(),
        };
        // Racing creates of one server wallet in this process queue here, so
        // they take one key between them instead of one each; a create that
        // had to wait looks at the event store first. Across processes the
        // event store's key settles the race, and the loser's key goes back
        // to its pool (below).
        let _turn = match kind {
            WalletKind::Server => {
                let (turn, waited) = self.app.server_creates.enter(wallet_id).await;
                if waited && self.app.wallets.load(&wallet_id.to_string()).await?.1 > 0 {
                    return Err(ServiceError::ServerWalletExists { wallet_id });
                }
                Some(turn)
            }
            _ => None,
        };
        let started = std::time::Instant::now();
        let custody = match kind {
            WalletKind::Server => &self.app.server_custody,
            _ => &self.app.custody,
        };
        let key = custody.key_for(wallet_id).await;
        let custody_label = custody.kind().as_str();
        let key = match key {
            Ok(key) => key,
            Err(e) => {
                let reason = match e {
                    KeyError::NotReady { .. } => "not_ready",
                    KeyError::Custody(_) => "error",
                };
                metrics::counter!(crate::metrics::CREATE_KEY_FAILURES, "custody" => custody_label, "reason" => reason)
                    .increment(1);
                return Err(e.into());
            }
        };
        metrics::histogram!(crate::metrics::CREATE_KEY_DURATION, "custody" => custody_label)
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            keygen_us = started.elapsed().as_micros() as u64,
            "key generated"
        );
        let created = CreatedWallet {
            wallet_id,
            user_id: user_id.clone(),
            address: key.address,
            public_key: key.public_key_hex(),
            label: label.clone(),
            created_at: meta.at,
        };
        let result = self
            .app
            .wallets
            .execute_new(
                wallet_id,
                WalletCommand::Create {
                    wallet_id,
                    user_id,
                    kind,
                    key: key.clone(),
                    label,
                    at: meta.at,
                },
                meta,
            )
            .await;
        custody.settle(&key, create_outcome(&result)).await;
        match result {
            Ok(()) => Ok(created),
            Err(
                CommandError::Domain(WalletError::AlreadyExists { .. }) | CommandError::Conflict,
            ) => Err(ServiceError::ServerWalletExists { wallet_id }),
            Err(other) => Err(other.into()),
        }
    }

    /// Whether wallet `id` was created by an earlier attempt of this same
    /// request (same caller, same Idempotency-Key): a retry after a crash.
    pub async fn created_by(&self, id: WalletId, meta: &CommandMeta) -> Result<bool, ServiceError> {
        let Some(key) = &meta.idempotency_key else {
            return Ok(false);
        };
        let Some(m) = self.app.wallets.first_event_metadata(id).await? else {
            return Ok(false);
        };
        let field = |k: &str| m.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(field("idempotency_key").as_deref() == Some(key.as_str())
            && field("actor").as_deref() == Some(meta.actor.as_str()))
    }

    /// Signs `message` (EIP-191) with the wallet's key and records the signing.
    pub async fn sign_message(
        &self,
        wallet_id: WalletId,
        message: Vec<u8>,
        meta: &CommandMeta,
    ) -> Result<Signed, ServiceError> {
        self.sign_payload(wallet_id, SignPayload::PersonalMessage(message), meta)
            .await
    }

    /// Signs `payload` with the wallet's key and records the signing. Custody
    /// signs once, outside any retry: a lost race retries only the record
    /// (`RecordSignature`, which checks the signature against the wallet). The
    /// signature is handed out only after its `MessageSigned` event is stored;
    /// if it cannot be recorded (the wallet was deleted meanwhile, the store
    /// failed) it is dropped, never released.
    pub async fn sign_payload(
        &self,
        wallet_id: WalletId,
        payload: SignPayload,
        meta: &CommandMeta,
    ) -> Result<Signed, ServiceError> {
        let key = match self.app.signing_keys.get(&wallet_id) {
            Some(key) => key,
            None => {
                let (wallet, _) = self.app.wallets.load(&wallet_id.to_string()).await?;
                let key = wallet.signing_key().map_err(|e| match e {
                    WalletError::NotFound => ServiceError::NotFound,
                    e => ServiceError::Rejected(e),
                })?;
                self.app.signing_keys.insert(key.clone());
                key
            }
        };
        let custody = self.app.custody_of(key.key.custody).ok_or_else(|| {
            ServiceError::NotConfigured(format!("no {} custody backend", key.key.custody.as_str()))
        })?;
        let digest = payload.digest();
        let started = std::time::Instant::now();
        let signed = custody
            .sign(&key.key, key.wallet_id, &payload, &meta.actor)
            .await;
        let custody_label = key.key.custody.as_str();
        metrics::histogram!(crate::metrics::SIGNING_DURATION, "custody" => custody_label)
            .record(started.elapsed().as_secs_f64());
        let outcome = if signed.is_ok() { "ok" } else { "error" };
        metrics::counter!(crate::metrics::SIGNATURES, "custody" => custody_label, "outcome" => outcome)
            .increment(1);
        let signature = match signed {
            Ok(signature) => signature,
            Err(CustodyError::KeyFrozen { key_id, reason }) => {
                return Err(self.record_freeze(wallet_id, key_id, reason, meta).await)
            }
            Err(e) => return Err(e.into()),
        };
        // `RecordSignature` checks that the signature recovers to the wallet
        // (a mismatch is an internal error, and nothing is released); a
        // second recovery here would double the secp256k1 work of a sign.
        // A race lost to another process is decided again inside the store,
        // on fresh state: the record is retried, never the signing.
        self.app
            .wallets
            .execute(
                wallet_id,
                WalletCommand::RecordSignature {
                    payload: Box::new(payload.clone()),
                    signature,
                    requested_by: meta.actor.clone(),
                    at: meta.at,
                },
                meta,
            )
            .await?;
        let transaction = payload.signed_transaction(&signature);
        Ok(Signed {
            signature,
            digest,
            transaction,
        })
    }

    /// Custody has frozen the wallet's key (before this, outside any retry):
    /// records `WalletKeyFrozen`, after which the aggregate refuses every
    /// sign, and answers the refusal. If the record fails the key stays
    /// frozen in custody, and the next sign finds the frozen share and
    /// records it then (reason `share_frozen`).
    async fn record_freeze(
        &self,
        wallet_id: WalletId,
        key_id: String,
        reason: KeyFreezeReason,
        meta: &CommandMeta,
    ) -> ServiceError {
        self.app.signing_keys.forget(&wallet_id);
        let recorded = self
            .app
            .wallets
            .execute(
                wallet_id,
                WalletCommand::RecordKeyFrozen {
                    key_id: key_id.clone(),
                    reason,
                    at: meta.at,
                },
                meta,
            )
            .await;
        match recorded {
            Ok(()) => tracing::warn!(%wallet_id, %key_id, %reason, "recorded a frozen wallet key"),
            Err(e) => {
                tracing::error!(%wallet_id, %key_id, %reason, error = %e, "could not record a frozen wallet key")
            }
        }
        ServiceError::Rejected(WalletError::KeyFrozen { wallet_id })
    }

    /// Makes `wallet_id` its owner's default (primary) wallet.
    pub async fn set_default(
        &self,
        wallet_id: WalletId,
        meta: &CommandMeta,
    ) -> Result<(), ServiceError> {
        Ok(self
            .app
            .wallets
            .execute(wallet_id, WalletCommand::SetDefault { at: meta.at }, meta)
            .await?)
    }

    /// Wallet `id` as the event store has it: unlike the read side, it never
    /// trails a commit.
    pub async fn committed(&self, id: WalletId) -> Result<Option<Identity>, ServiceError> {
        let (wallet, _) = self.app.wallets.load(&id.to_string()).await?;
        Ok(wallet.identity())
    }

    /// The wallet that holds `address`, from the claims the event store
    /// writes with each wallet's first event (migration 0010).
    pub async fn address_holder(
        &self,
        address: &Address,
    ) -> Result<Option<WalletId>, ServiceError> {
        let holder: Option<String> = with_db!(&self.app.db, pool => {
            sqlx::query_scalar("SELECT wallet_id FROM address_claims WHERE address = $1")
                .bind(address.to_lower_hex())
                .fetch_optional(pool)
                .await?
        });
        Ok(holder.as_deref().and_then(WalletId::parse))
    }

    pub async fn find(&self, lookup: WalletLookup<'_>) -> Result<Option<WalletRow>, ServiceError> {
        Ok(queries::find_wallet(&self.app.db, lookup).await?)
    }

    /// A wallet's immutable identity, from the cache or the directory.
    pub async fn identity(
        &self,
        lookup: WalletLookup<'_>,
    ) -> Result<Option<Arc<WalletIdentity>>, ServiceError> {
        if let Some(hit) = self.app.identities.get(lookup) {
            return Ok(Some(hit));
        }
        // Only server wallets are cached: they are never deleted. A Sila wallet
        // can be deleted and its address registered again by someone else.
        Ok(self.find(lookup).await?.map(|row| {
            let identity = WalletIdentity::from(&row);
            if row.kind == "server" {
                self.app.identities.insert(identity)
            } else {
                Arc::new(identity)
            }
        }))
    }

    pub async fn find_by_address(
        &self,
        address: &Address,
    ) -> Result<Option<WalletRow>, ServiceError> {
        self.find(WalletLookup::Address(&address.to_lower_hex()))
            .await
    }
}

/// What a create's result says about its key. Only a refusal by the store
/// (the aggregate's own "no", or a lost optimistic-concurrency race) means
/// nothing was written; an I/O error may come after the commit reached the
/// database, so the event naming the key may exist.
pub(crate) fn create_outcome<E: std::error::Error>(
    result: &Result<(), CommandError<E>>,
) -> KeyOutcome {
    match result {
        Ok(()) => KeyOutcome::Assigned,
        Err(
            CommandError::Domain(_)
            | CommandError::Conflict
            | CommandError::Replayed
            | CommandError::AddressClaimed,
        ) => KeyOutcome::Refused,
        Err(CommandError::Unavailable(_) | CommandError::Store(_)) => KeyOutcome::Unknown,
    }
}

/// One turn at a time per server wallet (see `create_custodial`).
#[derive(Default)]
pub struct CreateTurns {
    turns: std::sync::Mutex<HashMap<WalletId, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds a turn; the next waiting create of the same wallet goes on drop.
pub struct Turn<'a> {
    turns: &'a CreateTurns,
    wallet_id: WalletId,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl CreateTurns {
    /// Waits for the turn of `wallet_id`; `true` if another create had it first.
    pub async fn enter(&self, wallet_id: WalletId) -> (Turn<'_>, bool) {
        let lock = self
            .turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(wallet_id)
            .or_default()
            .clone();
        let (guard, waited) = match lock.clone().try_lock_owned() {
            Ok(guard) => (guard, false),
            Err(_) => (lock.lock_owned().await, true),
        };
        let turn = Turn {
            turns: self,
            wallet_id,
            guard: Some(guard),
        };
        (turn, waited)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut turns = self.turns.turns.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds it: nobody is waiting.
        if turns
            .get(&self.wallet_id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            turns.remove(&self.wallet_id);
        }
    }
}
