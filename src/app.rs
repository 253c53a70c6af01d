//! Assembling the service from its settings: the one place that wires store,
//! custody, projections and authentication together. `walletd serve`, the CLI
//! commands and the tests all build it the same way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use walletd_projections::{views, Db, Projector};

use crate::api::rate_limit::SharedLimit;
use crate::audit::RefusalRecorder;
use crate::auth::api_keys::ApiKeys;
use crate::auth::jwt::JwtVerifier;
use crate::config::{Secret, ServerCustody, Settings};
use crate::custody::master_key::MasterKeyError;
use crate::custody::mpc::channel::{ChannelKey, Party1Channel, PublicKey};
use crate::custody::mpc::{
    Cosigner, HttpLink, InProcessLink, MpcCustody, PayloadPolicy, ShareVault,
};
use crate::custody::vault::KeyVault;
use crate::custody::{
    Custody, CustodyError, CustodyKind, LocalCustody, MasterKey, MasterKeys, SweepReport,
};
use crate::domain::account::Account;
use crate::domain::client_app::ClientApp;
use crate::domain::user::SilaUser;
use crate::service::identity_cache::IdentityCache;
use crate::service::wallets::CreateTurns;
use crate::store::{self, AggregateStore, StoreError, WalletStore};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("WALLETD_MASTER_KEY: {0}")]
    MasterKey(MasterKeyError),
    #[error("WALLETD_PREVIOUS_MASTER_KEYS: {0}")]
    PreviousMasterKey(MasterKeyError),
    #[error(transparent)]
    Jwt(#[from] crate::auth::jwt::JwtConfigError),
    #[error("projections: {0}")]
    Projections(#[from] walletd_projections::ProjectionError),
    #[error("MPC cosigner: {0}")]
    Cosigner(String),
    #[error(transparent)]
    LogKey(#[from] crate::transparency::key::LoadError),
    #[error("storing WALLETD_WHITELIST_DELAY: {0}")]
    WhitelistPolicy(sqlx::Error),
}

/// Where the master keys came from.
#[derive(Clone, Debug)]
pub enum KeySource {
    Environment,
    /// Key file beside the SQLite database; `created` on first start.
    File {
        path: PathBuf,
        created: bool,
    },
    /// Nothing configured (PostgreSQL without WALLETD_MASTER_KEY).
    Missing,
}

pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub wallets: WalletStore,
    pub apps: AggregateStore<ClientApp>,
    pub users: AggregateStore<SilaUser>,
    /// The ledger's accounts, one per wallet.
    pub accounts: AggregateStore<Account>,
    /// What this process's ledger process manager resolved, pass by pass,
    /// for the transfers waiting for their second leg.
    pub ledger_resolved:
        tokio::sync::broadcast::Sender<Arc<crate::ledger::process_manager::Resolved>>,
    /// Told when this process appended account events (a debit), so its
    /// process manager looks at once rather than after the projections.
    pub ledger_appended: Arc<tokio::sync::Notify>,
    /// Custody of every wallet but server wallets (single sealed keys).
    pub custody: Arc<dyn Custody>,
    /// Custody of server wallets: `custody`, or 2-of-2 MPC.
    pub server_custody: Arc<dyn Custody>,
    pub vault: Arc<KeyVault>,
    pub api_keys: ApiKeys,
    pub key_source: KeySource,
    pub identities: IdentityCache,
    /// Which custody key signs for a wallet (never changes once it exists).
    pub signing_keys: crate::service::signing_keys::SigningKeys,
    /// `None` when neither WALLETD_JWT_SECRET nor WALLETD_JWT_PUBLIC_KEY is set:
    /// the JWT API then answers 401.
    pub jwt: Option<JwtVerifier>,
    /// JWT wallet creates per user per minute, shared by every process on
    /// the database.
    pub create_limit: SharedLimit,
    /// Every custody backend (single-key, MPC): swept and shut down together.
    pub custody_backends: Vec<Arc<dyn Custody>>,
    /// Racing creates of one server wallet take turns (one key between them).
    pub server_creates: CreateTurns,
    /// Refused requests, counted until the next batch is written.
    pub refusals: RefusalRecorder,
    /// The master keys (current and previous), `None` when none is configured.
    pub master_keys: Option<MasterKeys>,
    /// `/readyz`'s checks that take a round trip, run at most every few seconds.
    pub readiness: crate::service::readiness::DeepChecks,
    /// The transparency log's signing key; `None`: no sealer runs here.
    pub log_signer: Option<crate::transparency::LogSigner>,
}

/// What the process around the [`App`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `walletd serve` (and the tests' servers): key pools, the sweeper, the
    /// whitelist scheduler and housekeeping run beside the API.
    Server,
    /// A command that runs once and exits (`walletd kyc`): a small pool and
    /// only the projector its commands wait on; the background work stays
    /// with the running servers.
    OneShot,
}

impl App {
    /// Connects, migrates, starts the projector and wires everything.
    pub async fn build(settings: Settings) -> Result<Arc<App>, StartupError> {
        Self::build_as(settings, Role::Server).await
    }

    /// [`App::build`] for a one-shot command; end it with [`App::finish`].
    pub async fn build_one_shot(mut settings: Settings) -> Result<Arc<App>, StartupError> {
        settings.key_pool = 0;
        settings.mpc_key_pool = 0;
        // The projector, its listener and the command each hold one.
        settings.db_pool = settings.db_pool.min(4);
        // The whitelist delay is the servers' (stored in the database),
        // whatever this shell's environment says.
        settings.whitelist_delay = None;
        Self::build_as(settings, Role::OneShot).await
    }

    /// Ends a one-shot command: lets the projector's current pass finish and
    /// stops it, so that no pass is cut off inside its transaction (sqlx would
    /// then roll the connection back on its own, and PostgreSQL warns "there is
    /// no transaction in progress" when the pass's BEGIN had not got through).
    /// The pool is left open on purpose; the process exits next, which drops
    /// the connections outside any transaction.
    pub async fn finish(app: Arc<App>) {
        app.wallets.projector().stop().await;
        drop(app);
    }

    async fn build_as(settings: Settings, role: Role) -> Result<Arc<App>, StartupError> {
        // Before anything records: once per process, shared by every server
        // in it. One-shot commands export nothing and record nothing.
        if role == Role::Server && settings.metrics.is_on() {
            crate::metrics::install();
        }
        let jwt = JwtVerifier::new(
            settings.jwt_secret.as_ref().map(Secret::expose),
            settings.jwt_public_key.as_deref(),
            settings.jwt_issuer.clone(),
            settings.jwt_audience.clone(),
            settings.sila_token_audience.clone(),
        )?;
        let create_limit =
            SharedLimit::per_minute("wallet.create", settings.create_rate_per_minute);
        let db = store::connect(&settings.database_url, settings.db_pool).await?;
        store::migrate::run(&db).await?;
        if let Some(delay) = settings.whitelist_delay {
            crate::service::whitelist_policy::store(&db, delay)
                .await
                .map_err(StartupError::WhitelistPolicy)?;
        }
        let (keys, key_source) = load_master_keys(&settings)?;
        let log_signer = crate::transparency::key::load(&settings)?;
        let vault = Arc::new(KeyVault::new(db.clone()));
        let local =
            Arc::new(LocalCustody::new(vault.clone(), keys.clone()).with_pool(settings.key_pool));
        if role == Role::Server {
            local.start_pool();
        }
        let custody: Arc<dyn Custody> = local;
        // The pool only fills where MPC wallets are made.
        let mpc_pool = match settings.server_wallet_custody {
            ServerCustody::Mpc => settings.mpc_key_pool,
            ServerCustody::Local => 0,
        };
        let mpc = Arc::new(
            mpc_custody(&settings, &db, keys.clone(), role)?
                .with_pool(mpc_pool)
                .with_key_wait(Duration::from_secs(settings.mpc_key_wait)),
        );
        if role == Role::Server {
            mpc.start_pool();
        }
        let mpc: Arc<dyn Custody> = mpc;
        let server_custody = match settings.server_wallet_custody {
            ServerCustody::Local => custody.clone(),
            ServerCustody::Mpc => mpc.clone(),
        };
        let projector = Projector::new(db.clone(), views::all());
        projector.register().await?;
        projector.catch_up().await?;
        let projector = projector.spawn();
        let custody_backends = vec![custody.clone(), mpc.clone()];
        if role == Role::Server {
            crate::custody::sweeper::spawn(
                custody_backends.iter().map(Arc::downgrade).collect(),
                Duration::from_secs(settings.key_sweep_grace),
            );
        }
        let apps = AggregateStore::new(db.clone(), (), projector.clone());
        let users = AggregateStore::new(db.clone(), (), projector.clone());
        let debits = Arc::new(tokio::sync::Notify::new());
        let accounts =
            AggregateStore::with_commit_signal(db.clone(), (), projector.clone(), debits.clone());
        let wallets = WalletStore::new(db.clone(), (), projector);
        let api_keys = ApiKeys::new(db.clone(), &settings.api_key_list());
        let app = Arc::new(App {
            settings,
            db,
            wallets,
            apps,
            users,
            accounts,
            ledger_appended: debits,
            ledger_resolved: tokio::sync::broadcast::channel(
                crate::ledger::process_manager::RESOLVED_BACKLOG,
            )
            .0,
            custody,
            server_custody,
            vault,
            api_keys,
            key_source,
            identities: IdentityCache::new(200_000),
            signing_keys: crate::service::signing_keys::SigningKeys::new(200_000),
            jwt,
            create_limit,
            custody_backends,
            server_creates: CreateTurns::default(),
            refusals: RefusalRecorder::default(),
            master_keys: keys,
            readiness: Default::default(),
            log_signer,
        });
        if role == Role::Server {
            crate::service::whitelist_scheduler::spawn(Arc::downgrade(&app));
            crate::api::housekeeping::spawn(Arc::downgrade(&app));
            if app.settings.ledger_process_manager {
                crate::ledger::process_manager::spawn(Arc::downgrade(&app));
            }
            match &app.log_signer {
                Some(signer) => {
                    tracing::info!(
                        origin = signer.origin(),
                        verifier_key = signer.verifier_key(),
                        "sealing the event log"
                    );
                    crate::transparency::sealer::spawn(Arc::downgrade(&app));
                }
                None => tracing::warn!(
                    "WALLETD_LOG_KEY is not set: the event log is not sealed into the \
                     transparency log (no signed checkpoints or proofs for auditors)"
                ),
            }
        }
        Ok(app)
    }
}

impl App {
    /// The backend that holds keys of `kind` (a wallet's custody is recorded
    /// in its `WalletCreated` event).
    pub fn custody_of(&self, kind: CustodyKind) -> Option<&Arc<dyn Custody>> {
        self.custody_backends.iter().find(|c| c.kind() == kind)
    }

    /// Sweeps every custody backend now (the sweeper also runs on its own
    /// schedule): keys no event names, older than `WALLETD_KEY_SWEEP_GRACE`.
    pub async fn sweep_keys(&self) -> Result<SweepReport, CustodyError> {
        let grace = Duration::from_secs(self.settings.key_sweep_grace);
        let mut total = SweepReport::default();
        for backend in &self.custody_backends {
            let r = backend.sweep(grace).await?;
            total.removed += r.removed;
            total.found_in_use += r.found_in_use;
        }
        Ok(total)
    }

    /// Releases the keys the pools hold ready (the next start takes them)
    /// and closes the database.
    pub async fn shutdown(&self) {
        for backend in &self.custody_backends {
            backend.shutdown().await;
        }
        self.db.close().await;
    }
}

/// 2-of-2 MPC custody, this process being party 1. With WALLETD_COSIGNER_URL
/// the cosigner is a separate `walletd cosigner` reached over the Noise
/// channel with pinned keys. Without it, the cosigner runs in this process:
/// its shares sealed under its own master key (WALLETD_COSIGNER_MASTER_KEY,
/// or with SQLite a key file of its own). Both shares then live on one host:
/// for development.
fn mpc_custody(
    settings: &Settings,
    db: &Db,
    keys: Option<MasterKeys>,
    role: Role,
) -> Result<MpcCustody, StartupError> {
    if let Some(url) = &settings.cosigner_url {
        fn setting<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, StartupError> {
            value.ok_or_else(|| StartupError::Cosigner(format!("{name} is not set")))
        }
        let own = ChannelKey::parse(setting(
            settings.mpc_channel_key.as_ref().map(Secret::expose),
            "WALLETD_MPC_CHANNEL_KEY",
        )?)
        .map_err(|e| StartupError::Cosigner(format!("WALLETD_MPC_CHANNEL_KEY: {e}")))?;
        let pinned = PublicKey::parse(setting(
            settings.cosigner_public_key.as_deref(),
            "WALLETD_COSIGNER_PUBLIC_KEY",
        )?)
        .map_err(|e| StartupError::Cosigner(format!("WALLETD_COSIGNER_PUBLIC_KEY: {e}")))?;
        tracing::info!(
            cosigner = %url,
            channel_key = %own.public_hex(),
            "MPC cosigner: separate process over the Noise channel"
        );
        let link =
            HttpLink::new(url, Party1Channel::new(own, pinned)).map_err(StartupError::Cosigner)?;
        let unconfigured = keys.is_none();
        let custody = MpcCustody::new(Arc::new(link), ShareVault::new(db.clone(), keys, 1));
        return Ok(if unconfigured {
            custody.unconfigured("no WALLETD_MASTER_KEY to seal this party's key shares")
        } else {
            custody
        });
    }
    let cosigner_keys = in_process_cosigner_keys(settings)?.map(|(keys, _)| keys);
    // One key for both parties would put both shares in reach of one secret.
    if let (Some(own), Some(theirs)) = (&keys, &cosigner_keys) {
        if own.current.id() == theirs.current.id() {
            return Err(StartupError::Cosigner(
                "WALLETD_COSIGNER_MASTER_KEY must differ from WALLETD_MASTER_KEY".into(),
            ));
        }
    }
    if settings.server_wallet_custody == ServerCustody::Mpc && role == Role::Server {
        tracing::warn!(
            "MPC cosigner runs in this process: both key shares live on this host \
             (fine for development, not for production)"
        );
    }
    let why = match (&keys, &cosigner_keys) {
        (None, _) => Some("no WALLETD_MASTER_KEY to seal this party's key shares"),
        (_, None) => Some(
            "no WALLETD_COSIGNER_URL, and no WALLETD_COSIGNER_MASTER_KEY for the in-process cosigner",
        ),
        _ => None,
    };
    let cosigner = Cosigner::new(
        Arc::new(ShareVault::new(db.clone(), cosigner_keys, 2)),
        Arc::new(PayloadPolicy),
    );
    let custody = MpcCustody::new(
        Arc::new(InProcessLink(Arc::new(cosigner))),
        ShareVault::new(db.clone(), keys, 1),
    );
    Ok(match why {
        Some(why) => custody.unconfigured(why),
        None => custody,
    })
}

/// The key file that stands in for WALLETD_MASTER_KEY with SQLite.
pub fn key_file_path(settings: &Settings) -> Option<PathBuf> {
    if !settings.is_sqlite() {
        return None;
    }
    store::connect::sqlite_path(&settings.database_url).map(|p| {
        let mut s = p.into_os_string();
        s.push(".key");
        PathBuf::from(s)
    })
}

/// Files a key rotation in key-file mode leaves beside the key file until it
/// completes; their keys stay valid for unsealing.
pub fn key_file_companions(path: &std::path::Path) -> [PathBuf; 2] {
    let with = |ext: &str| {
        let mut s = path.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    [with(".next"), with(".previous")]
}

/// The master keys of the in-process cosigner's shares (party 2 on this
/// database): `WALLETD_COSIGNER_MASTER_KEY`, or with SQLite the key file
/// `<db>.key.cosigner` (created at the first start) and, like the main key
/// file, the `.next` / `.previous` files an interrupted rotation leaves.
pub fn in_process_cosigner_keys(
    settings: &Settings,
) -> Result<Option<(MasterKeys, KeySource)>, StartupError> {
    if let Some(k) = &settings.cosigner_master_key {
        let key = MasterKey::parse(k.expose()).map_err(StartupError::MasterKey)?;
        return Ok(Some((MasterKeys::single(key), KeySource::Environment)));
    }
    let Some(path) = key_file_path(settings) else {
        return Ok(None);
    };
    let mut s = path.into_os_string();
    s.push(".cosigner");
    let path = PathBuf::from(s);
    let (current, created) =
        MasterKey::load_or_create_file(&path).map_err(StartupError::MasterKey)?;
    let mut previous = Vec::new();
    for companion in key_file_companions(&path) {
        if let Ok(text) = std::fs::read_to_string(&companion) {
            previous.push(MasterKey::parse(&text).map_err(StartupError::MasterKey)?);
        }
    }
    Ok(Some((
        MasterKeys { current, previous },
        KeySource::File { path, created },
    )))
}

pub fn load_master_keys(
    settings: &Settings,
) -> Result<(Option<MasterKeys>, KeySource), StartupError> {
    let mut previous = Vec::new();
    for k in settings.previous_master_key_list() {
        previous.push(MasterKey::parse(k.expose()).map_err(StartupError::PreviousMasterKey)?);
    }
    if let Some(k) = &settings.master_key {
        let current = MasterKey::parse(k.expose()).map_err(StartupError::MasterKey)?;
        return Ok((
            Some(MasterKeys { current, previous }),
            KeySource::Environment,
        ));
    }
    if let Some(path) = key_file_path(settings) {
        let (current, created) =
            MasterKey::load_or_create_file(&path).map_err(StartupError::MasterKey)?;
        for companion in key_file_companions(&path) {
            if let Ok(text) = std::fs::read_to_string(&companion) {
                previous.push(MasterKey::parse(&text).map_err(StartupError::MasterKey)?);
            }
        }
        return Ok((
            Some(MasterKeys { current, previous }),
            KeySource::File { path, created },
        ));
    }
    Ok((None, KeySource::Missing))
}
