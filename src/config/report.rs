//! The effective configuration as `walletd config check` prints it: every
//! setting with its variable, value and where the value came from. Secrets
//! show only whether they are set; the database URL shows everything but its
//! password.

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

use super::DatabaseUrl;

const REDACTED: &str = "[redacted]";

/// One line per setting of `command` (its environment variable, the value
/// in effect, where it came from), then the logging settings (read from the
/// environment only: logging starts before the command line is parsed).
pub fn effective(command: &Command, matches: &ArgMatches) -> Vec<String> {
    let mut rows: Vec<(String, String, &str)> = Vec::new();
    for arg in command.get_arguments() {
        let Some(var) = arg.get_env() else { continue };
        let id = arg.get_id().as_str();
        let raw: Option<Vec<String>> = matches.get_raw(id).map(|values| {
            values
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        });
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) if super::file::from_file(&var.to_string_lossy()) => {
                "file"
            }
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            _ => "",
        };
        let value = match raw {
            None => "(not set)".to_string(),
            Some(_) if arg.is_hide_env_values_set() && id != "database_url" => REDACTED.into(),
            Some(values) if id == "database_url" => values
                .iter()
                .map(|v| DatabaseUrl::from(v.as_str()).redacted())
                .collect::<Vec<_>>()
                .join(","),
            Some(values) => values.join(","),
        };
        rows.push((var.to_string_lossy().into_owned(), value, source));
    }
    let log = std::env::var("RUST_LOG").ok();
    rows.push((
        "RUST_LOG".into(),
        log.clone()
            .unwrap_or_else(|| crate::telemetry::DEFAULT_FILTER.into()),
        if super::file::from_file("RUST_LOG") {
            "file"
        } else if log.is_some() {
            "environment"
        } else {
            "default"
        },
    ));
    let format = std::env::var(crate::telemetry::FORMAT_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty());
    // `main` refused a value that does not parse before this runs.
    let chosen =
        crate::telemetry::LogFormat::from_env().unwrap_or(crate::telemetry::LogFormat::Auto);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let shown = match chosen {
        crate::telemetry::LogFormat::Auto => format!(
            "auto (now {}: stderr is {}a terminal)",
            chosen.resolve(terminal).as_str(),
            if terminal { "" } else { "not " }
        ),
        other => other.as_str().to_string(),
    };
    rows.push((
        crate::telemetry::FORMAT_VAR.into(),
        shown,
        if format.is_some() {
            "environment"
        } else {
            "default"
        },
    ));
    let otel = std::env::var_os(crate::telemetry::otel::ENDPOINT_VAR).is_some();
    rows.push((
        crate::telemetry::otel::ENDPOINT_VAR.into(),
        crate::telemetry::otel::shown_endpoint(),
        if otel { "environment" } else { "" },
    ));
    let width = rows.iter().map(|(v, ..)| v.len()).max().unwrap_or(0);
    rows.into_iter()
        .map(|(var, value, source)| {
            if source.is_empty() {
                format!("{var:width$}  {value}")
            } else {
                format!("{var:width$}  {value}  ({source})")
            }
        })
        .collect()
}
