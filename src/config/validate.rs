//! Start-up checks: every setting within a bound that makes sense, and the
//! combinations a server needs. Each failure is one line that names the
//! environment variable to set (flags override the same variables, so the
//! variable is the name an operator looks for in a deployment).
//!
//! Nothing here prints a value that could be secret: keys are reported as
//! "not 32 bytes", never echoed.

use std::fmt::Display;
use std::net::ToSocketAddrs;

use super::{Secret, ServerCustody, Settings};
use crate::auth::jwt::JwtVerifier;
use crate::custody::mpc::channel::{ChannelKey, PublicKey};
use crate::custody::MasterKey;

/// Why the configuration cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable to set or correct.
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// Bounds of the numeric settings: (variable, lowest, highest, unit).
/// Below or above them a setting is a typo or a misunderstanding, never a
/// tuning choice (e.g. `WALLETD_MAX_BODY=0` refuses every POST).
pub mod bounds {
    pub const CREATE_RATE_PER_MINUTE: (u64, u64) = (1, 100_000);
    pub const REFUSAL_RETENTION_DAYS: (u64, u64) = (0, 36_500);
    pub const KEY_POOL: (u64, u64) = (0, 100_000);
    /// Below five minutes the sweeper could remove a key between its
    /// generation and the commit of the wallet that names it.
    pub const KEY_SWEEP_GRACE: (u64, u64) = (300, 365 * 86_400);
    pub const WHITELIST_DELAY: (u64, u64) = (0, 30 * 86_400);
    pub const MPC_KEY_POOL: (u64, u64) = (0, 10_000);
    pub const MPC_KEY_WAIT: (u64, u64) = (1, 600);
    pub const SIGNATURE_WINDOW: (u64, u64) = (10, 3_600);
    /// sqlx needs two (one reads the log while another writes); a default
    /// PostgreSQL allows 100 connections in all.
    pub const DB_POOL: (u64, u64) = (2, 1_000);
    /// The largest request walletd takes (a Sila envelope or an EIP-712
    /// document) is a few kilobytes.
    pub const MAX_BODY: (u64, u64) = (1_024, 16 * 1024 * 1024);
    pub const WORKERS: (u64, u64) = (1, 1_024);
    /// Lag counting stops at a million events.
    pub const READY_MAX_LAG_EVENTS: (u64, u64) = (1, 1_000_000);
    pub const READY_MAX_LAG_SECONDS: (u64, u64) = (1, 86_400);
}

fn within(
    var: &'static str,
    value: impl TryInto<u64> + Display + Copy,
    (low, high): (u64, u64),
    unit: &str,
) -> Result<(), ConfigError> {
    let as_u64: Result<u64, _> = value.try_into();
    let ok = as_u64.is_ok_and(|v| (low..=high).contains(&v));
    if ok {
        Ok(())
    } else {
        Err(bad(
            var,
            format!("must be between {low} and {high}{unit}, not {value}"),
        ))
    }
}

/// Everything `walletd serve` needs before it touches the database.
pub fn validate(s: &Settings) -> Result<(), ConfigError> {
    use bounds::*;
    database_url(s)?;
    if s.bind.trim().is_empty() || s.bind.to_socket_addrs().is_err() {
        return Err(bad(
            "WALLETD_BIND",
            format!(
                "{:?} is not an address to listen on (host:port, e.g. 127.0.0.1:8080)",
                s.bind
            ),
        ));
    }
    master_keys(s)?;
    if let Some(k) = &s.log_key {
        crate::transparency::LogSigner::parse(k)
            .map_err(|e| bad("WALLETD_LOG_KEY", e.to_string()))?;
    }
    if s.jwt_secret.as_ref().is_some_and(|k| k.expose().len() < 32) {
        return Err(bad(
            "WALLETD_JWT_SECRET",
            "an HS256 secret must be at least 32 bytes (e.g. openssl rand -hex 32)",
        ));
    }
    for (var, value) in [
        ("WALLETD_JWT_ISSUER", &s.jwt_issuer),
        ("WALLETD_JWT_AUDIENCE", &s.jwt_audience),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(bad(
                var,
                "is set but empty (unset it to not check the claim)",
            ));
        }
    }
    JwtVerifier::new(
        s.jwt_secret.as_ref().map(Secret::expose),
        s.jwt_public_key.as_deref(),
        s.jwt_issuer.clone(),
        s.jwt_audience.clone(),
        s.sila_token_audience.clone(),
    )
    .map_err(|e| {
        // Its messages begin with the variable they are about.
        let text = e.to_string();
        let var = [
            "WALLETD_JWT_PUBLIC_KEY",
            "WALLETD_JWT_SECRET",
            "WALLETD_SILA_TOKEN_AUDIENCE",
        ]
        .into_iter()
        .find(|v| text.starts_with(v))
        .unwrap_or("WALLETD_JWT_SECRET");
        let problem = text.strip_prefix(var).unwrap_or(&text).trim_start();
        bad(
            var,
            problem.trim_start_matches(':').trim_start().to_string(),
        )
    })?;
    within(
        "WALLETD_CREATE_RATE_PER_MINUTE",
        s.create_rate_per_minute,
        CREATE_RATE_PER_MINUTE,
        " creates per user per minute",
    )?;
    within(
        "WALLETD_REFUSAL_RETENTION_DAYS",
        s.refusal_retention_days,
        REFUSAL_RETENTION_DAYS,
        " days (0 keeps them)",
    )?;
    within("WALLETD_KEY_POOL", s.key_pool, KEY_POOL, " keys")?;
    within(
        "WALLETD_KEY_SWEEP_GRACE",
        s.key_sweep_grace,
        KEY_SWEEP_GRACE,
        " seconds",
    )?;
    if let Some(delay) = s.whitelist_delay {
        within(
            "WALLETD_WHITELIST_DELAY",
            delay,
            WHITELIST_DELAY,
            " seconds",
        )?;
    }
    within(
        "WALLETD_MPC_KEY_POOL",
        s.mpc_key_pool,
        MPC_KEY_POOL,
        " keys",
    )?;
    within(
        "WALLETD_MPC_KEY_WAIT",
        s.mpc_key_wait,
        MPC_KEY_WAIT,
        " seconds",
    )?;
    within(
        "WALLETD_SIGNATURE_WINDOW",
        s.signature_window,
        SIGNATURE_WINDOW,
        " seconds",
    )?;
    within("WALLETD_DB_POOL", s.db_pool, DB_POOL, " connections")?;
    within("WALLETD_MAX_BODY", s.max_body, MAX_BODY, " bytes")?;
    if let Some(workers) = s.workers {
        within("WALLETD_WORKERS", workers, WORKERS, " threads")?;
    }
    within(
        "WALLETD_READY_MAX_LAG_EVENTS",
        s.ready_max_lag_events,
        READY_MAX_LAG_EVENTS,
        " events",
    )?;
    within(
        "WALLETD_READY_MAX_LAG_SECONDS",
        s.ready_max_lag_seconds,
        READY_MAX_LAG_SECONDS,
        " seconds",
    )?;
    cosigner(s)
}

/// What `walletd cosigner` reads beyond its channel keys (which it checks
/// itself, naming them).
pub fn validate_cosigner(s: &Settings) -> Result<(), ConfigError> {
    use bounds::*;
    database_url(s)?;
    if let Some(k) = &s.master_key {
        MasterKey::parse(k.expose()).map_err(|e| bad("WALLETD_MASTER_KEY", e.to_string()))?;
    }
    within("WALLETD_DB_POOL", s.db_pool, DB_POOL, " connections")?;
    if let Some(workers) = s.workers {
        within("WALLETD_WORKERS", workers, WORKERS, " threads")?;
    }
    Ok(())
}

fn database_url(s: &Settings) -> Result<(), ConfigError> {
    let url = s.database_url.as_str();
    let known = ["postgres://", "postgresql://", "sqlite:"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    if known {
        Ok(())
    } else {
        // The URL itself may hold a password: not repeated.
        Err(bad(
            "DATABASE_URL",
            "must start with postgres://, postgresql:// or sqlite://",
        ))
    }
}

fn master_keys(s: &Settings) -> Result<(), ConfigError> {
    let current = match &s.master_key {
        Some(k) => Some(
            MasterKey::parse(k.expose()).map_err(|e| bad("WALLETD_MASTER_KEY", e.to_string()))?,
        ),
        None if s.is_sqlite() => None,
        None => {
            return Err(bad(
                "WALLETD_MASTER_KEY",
                "is not set; with PostgreSQL there is no key file, and without a master key \
                 no wallet key can be sealed or opened (make one with openssl rand -hex 32)",
            ))
        }
    };
    for k in s.previous_master_key_list() {
        MasterKey::parse(k.expose())
            .map_err(|e| bad("WALLETD_PREVIOUS_MASTER_KEYS", format!("one of them: {e}")))?;
    }
    if let Some(k) = &s.cosigner_master_key {
        let theirs = MasterKey::parse(k.expose())
            .map_err(|e| bad("WALLETD_COSIGNER_MASTER_KEY", e.to_string()))?;
        if current.is_some_and(|own| own.id() == theirs.id()) {
            return Err(bad(
                "WALLETD_COSIGNER_MASTER_KEY",
                "must differ from WALLETD_MASTER_KEY (one secret would open both key shares)",
            ));
        }
    }
    Ok(())
}

/// MPC server wallets need a cosigner: a separate one reached over the
/// pinned-key channel, or (development) one in this process with a master
/// key of its own, which only SQLite provides without being told.
fn cosigner(s: &Settings) -> Result<(), ConfigError> {
    let Some(url) = &s.cosigner_url else {
        let in_process_key = s.cosigner_master_key.is_some() || s.is_sqlite();
        if s.server_wallet_custody == ServerCustody::Mpc && !in_process_key {
            return Err(bad(
                "WALLETD_COSIGNER_URL",
                "MPC server wallets need a cosigner: set WALLETD_COSIGNER_URL (with \
                 WALLETD_COSIGNER_PUBLIC_KEY and WALLETD_MPC_CHANNEL_KEY) to a walletd cosigner, \
                 or WALLETD_COSIGNER_MASTER_KEY for an in-process one (development only), \
                 or WALLETD_SERVER_WALLET_CUSTODY=local",
            ));
        }
        return Ok(());
    };
    cosigner_url(url)?;
    let own = s.mpc_channel_key.as_ref().ok_or_else(|| {
        bad(
            "WALLETD_MPC_CHANNEL_KEY",
            "is not set; it is required with WALLETD_COSIGNER_URL (make a pair with walletd mpc-keygen)",
        )
    })?;
    ChannelKey::parse(own.expose()).map_err(|e| bad("WALLETD_MPC_CHANNEL_KEY", e.to_string()))?;
    let pinned = s.cosigner_public_key.as_deref().ok_or_else(|| {
        bad(
            "WALLETD_COSIGNER_PUBLIC_KEY",
            "is not set; it is required with WALLETD_COSIGNER_URL (the cosigner's public channel key)",
        )
    })?;
    PublicKey::parse(pinned).map_err(|e| bad("WALLETD_COSIGNER_PUBLIC_KEY", e.to_string()))?;
    Ok(())
}

/// `http://host:port[/]`: the channel does the encryption, and the client
/// has no TLS.
fn cosigner_url(url: &str) -> Result<(), ConfigError> {
    let problem = || {
        bad(
            "WALLETD_COSIGNER_URL",
            format!("{url:?} is not an http:// URL with a host (e.g. http://cosigner:8090)"),
        )
    };
    let uri: actix_web::http::Uri = url.parse().map_err(|_| problem())?;
    let host_ok = uri.host().is_some_and(|h| !h.is_empty());
    let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none();
    if uri.scheme_str() != Some("http") || !host_ok || !path_ok {
        return Err(problem());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosigner_urls() {
        for ok in ["http://cosigner:8090", "http://127.0.0.1:8090/", "http://h"] {
            assert!(cosigner_url(ok).is_ok(), "{ok}");
        }
        for no in [
            "notaurl",
            "cosigner:8090",
            "https://cosigner:8090",
            "http://",
            "http://h/mpc/v1",
            "",
        ] {
            let e = cosigner_url(no).expect_err(no);
            assert_eq!(e.var, "WALLETD_COSIGNER_URL");
        }
    }

    #[test]
    fn bounds_name_the_variable() {
        let e = within("WALLETD_MAX_BODY", 0usize, bounds::MAX_BODY, " bytes").unwrap_err();
        assert_eq!(
            e.to_string(),
            "WALLETD_MAX_BODY: must be between 1024 and 16777216 bytes, not 0"
        );
        assert!(within("WALLETD_WORKERS", 4usize, bounds::WORKERS, "").is_ok());
    }
}
