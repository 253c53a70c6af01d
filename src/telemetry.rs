//! Logging. Log lines carry ids, never key material, request bodies or tokens.
//!
//! Lines go to stderr: JSON (one object a line) when stderr is not a terminal
//! (a container, a service manager, a file), the human format on a terminal;
//! `WALLETD_LOG_FORMAT` overrides the choice. With `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set, spans are also exported to an OpenTelemetry collector ([`otel`]).

pub mod otel;

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The filter when `RUST_LOG` is unset or empty.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// The variable that chooses the log format.
pub const FORMAT_VAR: &str = "WALLETD_LOG_FORMAT";

/// A logging setting that does not parse: refused rather than silently
/// replaced by the default, which would hide the logs its author asked for.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("RUST_LOG: {0} (tracing EnvFilter syntax, e.g. info,walletd=debug)")]
    Filter(String),
    #[error("WALLETD_LOG_FORMAT: invalid value {0:?}: expected one of auto, json, text")]
    Format(String),
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: {0}")]
    Otel(String),
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON unless stderr is a terminal.
    Auto,
    /// One JSON object a line, for log collectors.
    Json,
    /// The human format (coloured on a terminal).
    Text,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }

    /// The format `WALLETD_LOG_FORMAT` asks for (`auto` when unset or empty).
    pub fn from_env() -> Result<LogFormat, TelemetryError> {
        match std::env::var(FORMAT_VAR) {
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "auto" => Ok(LogFormat::Auto),
                "json" => Ok(LogFormat::Json),
                "text" => Ok(LogFormat::Text),
                _ => Err(TelemetryError::Format(v)),
            },
            Err(std::env::VarError::NotPresent) => Ok(LogFormat::Auto),
            Err(std::env::VarError::NotUnicode(v)) => {
                Err(TelemetryError::Format(v.to_string_lossy().into_owned()))
            }
        }
    }

    /// `Json` or `Text`: what `Auto` amounts to for a stderr that is (or is
    /// not) a terminal.
    pub fn resolve(self, stderr_is_terminal: bool) -> LogFormat {
        match self {
            LogFormat::Auto if stderr_is_terminal => LogFormat::Text,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

/// The log filter `RUST_LOG` asks for.
pub fn filter() -> Result<EnvFilter, TelemetryError> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder()
            .parse(&v)
            .map_err(|e| TelemetryError::Filter(e.to_string())),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(EnvFilter::new(DEFAULT_FILTER)),
        Err(std::env::VarError::NotUnicode(_)) => Err(TelemetryError::Filter("not UTF-8".into())),
    }
}

pub fn init() -> Result<(), TelemetryError> {
    let filter = filter()?;
    let terminal = std::io::stderr().is_terminal();
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr);
    let lines = match LogFormat::from_env()?.resolve(terminal) {
        // Event fields at the top level beside `message`; the fields of the
        // span the line was logged in (`request_id` while a request is
        // handled) under `span`.
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        _ => lines.with_ansi(terminal).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(otel::layer()?)
        .try_init();
    Ok(())
}

/// Before the process exits: spans still queued for export are sent.
pub fn shutdown() {
    otel::shutdown();
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn auto_is_json_unless_on_a_terminal() {
        assert_eq!(LogFormat::Auto.resolve(true), LogFormat::Text);
        assert_eq!(LogFormat::Auto.resolve(false), LogFormat::Json);
        assert_eq!(LogFormat::Text.resolve(false), LogFormat::Text);
        assert_eq!(LogFormat::Json.resolve(true), LogFormat::Json);
    }
}
