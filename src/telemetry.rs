//! Logging. Log lines carry ids, never key material, request bodies or tokens.

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset or empty.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// `RUST_LOG` that does not parse: refused rather than silently replaced by
/// the default, which would hide the logs its author asked for.
#[derive(Debug, thiserror::Error)]
#[error("RUST_LOG: {0} (tracing EnvFilter syntax, e.g. info,walletd=debug)")]
pub struct LogFilterError(String);

/// The log filter `RUST_LOG` asks for.
pub fn filter() -> Result<EnvFilter, LogFilterError> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder()
            .parse(&v)
            .map_err(|e| LogFilterError(e.to_string())),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(EnvFilter::new(DEFAULT_FILTER)),
        Err(std::env::VarError::NotUnicode(_)) => Err(LogFilterError("not UTF-8".into())),
    }
}

pub fn init() -> Result<(), LogFilterError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter()?)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}
