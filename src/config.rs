//! Configuration: an optional file, environment variables over it, and
//! command-line flags over both.
//!
//! [`Settings`] is the one typed view of every setting. clap parses each
//! value's type; [`validate`] then checks the bounds and the combinations a
//! running server needs, so that `walletd serve` refuses a configuration that
//! cannot work with one line naming the variable to set.

use clap::{Args, ValueEnum};

pub mod file;
mod report;
mod secret;
pub mod validate;

pub use report::effective;
pub use secret::{DatabaseUrl, Secret};
pub use validate::{validate, validate_cosigner, ConfigError};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCustody {
    Local,
    Mpc,
}

/// Whether `GET /metrics` serves Prometheus metrics.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsMode {
    On,
    Off,
}

impl MetricsMode {
    pub fn is_on(self) -> bool {
        self == MetricsMode::On
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KycMode {
    Sandbox,
    Manual,
}

/// Every secret is a [`Secret`] (and the database URL a [`DatabaseUrl`]), so
/// this `Debug` shows none of them; their arguments hide their environment
/// values, so `--help` shows none of them either.
#[derive(Args, Clone, Debug)]
#[command(
    next_help_heading = "Settings (environment variable or flag, before or after the command)"
)]
pub struct Settings {
    /// Event store and read models: postgres://… or sqlite://…
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://walletd.db",
        hide_env_values = true,
        global = true
    )]
    pub database_url: DatabaseUrl,

    /// The transparency log's Ed25519 signing key, in the signed-note
    /// encoding (`PRIVATE+KEY+<name>+<id>+<key>`, from `walletd log-key
    /// generate`); its name is the checkpoints' origin. Unset: a key file
    /// beside a SQLite database; no sealer on PostgreSQL.
    #[arg(long, env = "WALLETD_LOG_KEY", hide_env_values = true, global = true)]
    pub log_key: Option<Secret>,

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
    pub master_key: Option<Secret>,

    /// Earlier master keys, comma-separated, still accepted for unsealing while
    /// a rotation is completed.
    #[arg(
        long,
        env = "WALLETD_PREVIOUS_MASTER_KEYS",
        hide_env_values = true,
        global = true
    )]
    pub previous_master_keys: Option<Secret>,

    /// Comma-separated bearer tokens for the server-wallet API.
    #[arg(long, env = "WALLETD_API_KEYS", hide_env_values = true, global = true)]
    pub api_keys: Option<Secret>,

    /// HS256 secret for the JWT-authenticated API.
    #[arg(
        long,
        env = "WALLETD_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<Secret>,

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

    /// Days refusals without an authenticated principal (`refusal_counts`) are
    /// kept (0: forever). Refusals of a known principal stay in the
    /// append-only security log regardless.
    #[arg(
        long,
        env = "WALLETD_REFUSAL_RETENTION_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub refusal_retention_days: u32,

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

    /// The assets the ledger keeps, as CODE:DECIMALS, comma-separated. SILA
    /// (Sila's token, 0 decimals) and ETH (the JWT wallets' currency) must
    /// be listed. Every process on one database needs the same list.
    #[arg(
        long,
        env = "WALLETD_ASSETS",
        default_value = crate::ledger::Assets::DEFAULT,
        global = true
    )]
    pub assets: crate::ledger::Assets,

    /// Run the ledger's process manager (the second leg of every transfer)
    /// in this process. Any number of instances may run it; at least one
    /// must, or transfers stay in transit.
    #[arg(
        long,
        env = "WALLETD_LEDGER_PROCESS_MANAGER",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub ledger_process_manager: bool,

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

    /// Seconds a create of an MPC server wallet waits for a key when the
    /// pool has none ready (it waits its turn; past this it gets 503 with
    /// Retry-After and nothing is written).
    #[arg(
        long,
        env = "WALLETD_MPC_KEY_WAIT",
        default_value_t = 10,
        global = true
    )]
    pub mpc_key_wait: u64,

    /// The in-process cosigner's own master key (development mode). With
    /// SQLite and none set, a separate key file beside the database.
    #[arg(
        long,
        env = "WALLETD_COSIGNER_MASTER_KEY",
        hide_env_values = true,
        global = true
    )]
    pub cosigner_master_key: Option<Secret>,

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
    pub mpc_channel_key: Option<Secret>,

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
    pub cosigner_channel_key: Option<Secret>,

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

    /// Most database connections this process opens (PostgreSQL: opened
    /// on demand and closed after 15 s unused; SQLite: 2 to 8).
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

    /// `/readyz` answers 503 when more committed events than this wait to be
    /// projected.
    #[arg(
        long,
        env = "WALLETD_READY_MAX_LAG_EVENTS",
        default_value_t = 100_000,
        global = true
    )]
    pub ready_max_lag_events: u64,

    /// `/readyz` answers 503 when the oldest event not yet projected is older
    /// than this many seconds.
    #[arg(
        long,
        env = "WALLETD_READY_MAX_LAG_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub ready_max_lag_seconds: u64,

    /// `GET /metrics`: Prometheus metrics of this process, without
    /// authentication (keep the port off public networks), or `off` (404).
    #[arg(
        long,
        env = "WALLETD_METRICS",
        value_enum,
        default_value_t = MetricsMode::On,
        global = true
    )]
    pub metrics: MetricsMode,
}

impl Settings {
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Plain strings: `ApiKeys` hashes them at start-up and keeps only the hashes.
    pub fn api_key_list(&self) -> Vec<String> {
        split_list(self.api_keys.as_ref())
            .iter()
            .map(|k| k.expose().to_owned())
            .collect()
    }

    pub fn previous_master_key_list(&self) -> Vec<Secret> {
        split_list(self.previous_master_keys.as_ref())
    }
}

fn split_list(v: Option<&Secret>) -> Vec<Secret> {
    v.map(Secret::expose)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Secret;
    use crate::cli::Cli;

    /// Every secret setting, given as flags (which override the environment).
    const SECRETS: &[(&str, &str)] = &[
        ("--master-key", "master-key-5f1e0c9a"),
        (
            "--previous-master-keys",
            "previous-key-aa11,previous-key-bb22",
        ),
        ("--api-keys", "api-key-cc33,api-key-dd44"),
        ("--jwt-secret", "jwt-secret-ee55"),
        ("--cosigner-master-key", "cosigner-master-ff66"),
        ("--mpc-channel-key", "mpc-channel-key-0077"),
        ("--cosigner-channel-key", "cosigner-channel-key-1188"),
        (
            "--database-url",
            "postgres://walletd:db-password-2299@db.internal:5432/walletd",
        ),
    ];

    const SHOULD_NOT_APPEAR: &[&str] = &[
        "master-key-5f1e0c9a",
        "previous-key-aa11",
        "previous-key-bb22",
        "api-key-cc33",
        "api-key-dd44",
        "jwt-secret-ee55",
        "cosigner-master-ff66",
        "mpc-channel-key-0077",
        "cosigner-channel-key-1188",
        "db-password-2299",
        "new-master-key-33aa",
    ];

    fn parse(extra: &[&str]) -> Cli {
        let mut args = vec!["walletd"];
        for (flag, value) in SECRETS {
            args.extend([*flag, *value]);
        }
        args.extend(extra);
        Cli::try_parse_from(args).expect("flags parse")
    }

    #[test]
    fn debug_of_settings_and_cli_shows_no_secret() {
        let cli = parse(&["rotate-master-key", "--new-key", "new-master-key-33aa"]);
        for shown in [
            format!("{:?}", cli.settings),
            format!("{:#?}", cli.settings),
            format!("{cli:?}"),
        ] {
            for secret in SHOULD_NOT_APPEAR {
                assert!(!shown.contains(secret), "{secret} shown in {shown}");
            }
            assert!(shown.contains("[redacted]"), "{shown}");
            // The harmless parts stay readable.
            assert!(shown.contains("db.internal:5432/walletd"), "{shown}");
        }
    }

    /// `--help` shows the current value of an environment variable unless
    /// told not to: never for a secret.
    #[test]
    fn help_hides_every_secret_value() {
        use clap::CommandFactory;
        let command = Cli::command();
        for (flag, _) in SECRETS {
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == flag.strip_prefix("--"))
                .expect(flag);
            assert!(arg.is_hide_env_values_set(), "{flag}");
        }
    }

    #[test]
    fn secrets_still_reach_the_code_that_uses_them() {
        let s = parse(&[]).settings;
        assert_eq!(
            s.master_key.as_ref().map(Secret::expose),
            Some("master-key-5f1e0c9a")
        );
        assert_eq!(s.api_key_list(), ["api-key-cc33", "api-key-dd44"]);
        let previous = s.previous_master_key_list();
        let previous: Vec<&str> = previous.iter().map(Secret::expose).collect();
        assert_eq!(previous, ["previous-key-aa11", "previous-key-bb22"]);
        assert_eq!(
            &*s.database_url,
            "postgres://walletd:db-password-2299@db.internal:5432/walletd"
        );
        assert!(!s.is_sqlite());
    }
}
