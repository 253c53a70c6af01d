//! Configuration: environment variables, overridden by command-line flags.

use clap::{Args, ValueEnum};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCustody {
    Local,
    Mpc,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KycMode {
    Sandbox,
    Manual,
}

#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// Event store and read models: postgres://… or sqlite://…
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://walletd.db",
        global = true
    )]
    pub database_url: String,

    /// Listen address.
    #[arg(
        long,
        env = "WALLETD_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,

    /// 32-byte key (hex or base64) that encrypts key material at rest.
    #[arg(
        long,
        env = "WALLETD_MASTER_KEY",
        hide_env_values = true,
        global = true
    )]
    pub master_key: Option<String>,

    /// Earlier master keys, comma-separated, still accepted for unsealing while
    /// a rotation is completed.
    #[arg(
        long,
        env = "WALLETD_PREVIOUS_MASTER_KEYS",
        hide_env_values = true,
        global = true
    )]
    pub previous_master_keys: Option<String>,

    /// Comma-separated bearer tokens for the server-wallet API.
    #[arg(long, env = "WALLETD_API_KEYS", hide_env_values = true, global = true)]
    pub api_keys: Option<String>,

    /// HS256 secret for the JWT-authenticated API.
    #[arg(
        long,
        env = "WALLETD_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,

    /// PEM public key (or a path to one) for RS256 / ES256 JWTs.
    #[arg(long, env = "WALLETD_JWT_PUBLIC_KEY", global = true)]
    pub jwt_public_key: Option<String>,

    /// Required `iss` claim of JWTs, when set.
    #[arg(long, env = "WALLETD_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim of JWTs, when set.
    #[arg(long, env = "WALLETD_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// The `aud` claim Sila token-mode tokens must carry; the JWT API refuses
    /// tokens that carry it.
    #[arg(
        long,
        env = "WALLETD_SILA_TOKEN_AUDIENCE",
        default_value = crate::auth::jwt::DEFAULT_SILA_AUDIENCE,
        global = true
    )]
    pub sila_token_audience: String,

    /// Wallet creations allowed per user per minute through the JWT API.
    #[arg(
        long,
        env = "WALLETD_CREATE_RATE_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub create_rate_per_minute: u32,

    /// Keys kept generated ahead of demand, so creates skip key generation (0: off).
    #[arg(long, env = "WALLETD_KEY_POOL", default_value_t = 256, global = true)]
    pub key_pool: usize,

    /// Seconds before the key sweeper removes a key (or MPC share pair) that
    /// no wallet uses and no running process holds.
    #[arg(
        long,
        env = "WALLETD_KEY_SWEEP_GRACE",
        default_value_t = 86_400,
        global = true
    )]
    pub key_sweep_grace: u64,

    /// Seconds between queueing a wallet for the whitelist and whitelisting
    /// it. Stored in the database when given, so every process sharing it
    /// schedules alike; when not given, the stored value (initially 300) holds.
    #[arg(long, env = "WALLETD_WHITELIST_DELAY", global = true)]
    pub whitelist_delay: Option<u64>,

    /// KYC decisions: `sandbox` passes every request at once; `manual` waits for
    /// `walletd kyc pass|fail` or the admin endpoint.
    #[arg(
        long,
        env = "WALLETD_KYC_MODE",
        value_enum,
        default_value_t = KycMode::Sandbox,
        global = true
    )]
    pub kyc_mode: KycMode,

    /// Custody of server wallets (server-wallet API): `local` (one sealed key)
    /// or `mpc` (2-of-2 with the cosigner).
    #[arg(
        long,
        env = "WALLETD_SERVER_WALLET_CUSTODY",
        value_enum,
        default_value_t = ServerCustody::Mpc,
        global = true
    )]
    pub server_wallet_custody: ServerCustody,

    /// 2-of-2 keys generated ahead of demand for MPC server wallets (0: each
    /// create runs key generation, about a second, inline).
    #[arg(
        long,
        env = "WALLETD_MPC_KEY_POOL",
        default_value_t = 16,
        global = true
    )]
    pub mpc_key_pool: usize,

    /// The in-process cosigner's own master key (development mode). With
    /// SQLite and none set, a separate key file beside the database.
    #[arg(
        long,
        env = "WALLETD_COSIGNER_MASTER_KEY",
        hide_env_values = true,
        global = true
    )]
    pub cosigner_master_key: Option<String>,

    /// Base URL of the separate cosigner (`walletd cosigner`), http://host:port.
    /// Unset: MPC server wallets use an in-process cosigner (development only).
    #[arg(long, env = "WALLETD_COSIGNER_URL", global = true)]
    pub cosigner_url: Option<String>,

    /// The cosigner's pinned static channel public key (64 hex digits).
    #[arg(long, env = "WALLETD_COSIGNER_PUBLIC_KEY", global = true)]
    pub cosigner_public_key: Option<String>,

    /// This server's (party 1's) static channel private key (64 hex digits).
    #[arg(
        long,
        env = "WALLETD_MPC_CHANNEL_KEY",
        hide_env_values = true,
        global = true
    )]
    pub mpc_channel_key: Option<String>,

    /// `walletd cosigner`: listen address.
    #[arg(
        long,
        env = "WALLETD_COSIGNER_BIND",
        default_value = "127.0.0.1:8090",
        global = true
    )]
    pub cosigner_bind: String,

    /// `walletd cosigner`: its static channel private key (64 hex digits).
    #[arg(
        long,
        env = "WALLETD_COSIGNER_CHANNEL_KEY",
        hide_env_values = true,
        global = true
    )]
    pub cosigner_channel_key: Option<String>,

    /// `walletd cosigner`: the pinned static channel public key of party 1
    /// (`walletd serve`), 64 hex digits.
    #[arg(long, env = "WALLETD_COSIGNER_PEER_KEY", global = true)]
    pub cosigner_peer_key: Option<String>,

    /// Seconds a signed Sila request's `created` may differ from the server
    /// clock; also how long a request reference is remembered.
    #[arg(
        long,
        env = "WALLETD_SIGNATURE_WINDOW",
        default_value_t = 300,
        global = true
    )]
    pub signature_window: u64,

    /// Database connection pool size.
    #[arg(long, env = "WALLETD_DB_POOL", default_value_t = 24, global = true)]
    pub db_pool: u32,

    /// Largest accepted request body, in bytes.
    #[arg(
        long,
        env = "WALLETD_MAX_BODY",
        default_value_t = 65_536,
        global = true
    )]
    pub max_body: usize,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "WALLETD_WORKERS", global = true)]
    pub workers: Option<usize>,
}

impl Settings {
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    pub fn api_key_list(&self) -> Vec<String> {
        split_list(self.api_keys.as_deref())
    }

    pub fn previous_master_key_list(&self) -> Vec<String> {
        split_list(self.previous_master_keys.as_deref())
    }
}

fn split_list(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
