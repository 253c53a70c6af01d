//! The `walletd` command line.

mod api_key;
mod app;
pub mod args;
mod bench;
mod check_proof;
mod config;
mod cosigner;
mod events;
mod kyc;
mod ledger;
mod log_key;
mod move_shares;
mod progress;
mod replay;
mod report;
mod rotate;
mod serve;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Parser, Debug)]
#[command(
    name = "walletd",
    version,
    about = "Event-sourced wallet ledger",
    after_help = "Logging, read from the environment only (logging starts before the command line \
                  is parsed): RUST_LOG (filter, default info,sqlx=warn), WALLETD_LOG_FORMAT \
                  (auto, json or text; auto: JSON unless stderr is a terminal), \
                  OTEL_EXPORTER_OTLP_ENDPOINT (http://collector:4318: export spans over OTLP)."
)]
pub struct Cli {
    /// A file of settings, one `NAME=value` per line with the environment
    /// variables' names; the environment and flags override it.
    #[arg(long, env = "WALLETD_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default). Refuses to start when the
    /// configuration cannot work.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Drop and rebuild every projection from position 0 of the event log.
    Replay,
    /// Manage API keys for the server-wallet API.
    #[command(subcommand)]
    ApiKey(api_key::ApiKeyCommand),
    /// Manage client apps that sign requests (Sila's app_handle).
    #[command(subcommand)]
    App(app::AppCli),
    /// Record a KYC decision for a Sila user (manual KYC mode).
    #[command(subcommand)]
    Kyc(kyc::KycCli),
    /// Re-wrap every key in the vault under a new master key.
    RotateMasterKey(rotate::RotateArgs),
    /// Check the configuration `walletd serve` would run with.
    #[command(subcommand)]
    Config(config::ConfigCli),
    /// Run the MPC cosigner (party 2 of MPC server wallets) as its own process.
    Cosigner,
    /// Print a new static key pair for the channel between walletd serve and the cosigner.
    MpcKeygen,
    /// The transparency log's key: print the verifier key auditors pin, or
    /// generate a new key pair.
    LogKey(log_key::LogKeyArgs),
    /// The event log, for auditors.
    #[command(subcommand)]
    Events(events::EventsCli),
    /// Recompute the transparency log from the events and check it against
    /// the signed checkpoints (online), or check an export against a saved
    /// checkpoint (offline: --checkpoint, --events, --key).
    Verify(verify::VerifyArgs),
    /// A compliance report, live or as of a past log position or time; or
    /// recomputed offline from an export (--events).
    Report(report::ReportArgs),
    /// Check an inclusion or consistency proof offline, against saved
    /// checkpoints and the pinned verifier key.
    #[command(subcommand)]
    CheckProof(check_proof::CheckProofCli),
    /// Move the in-process cosigner's key shares to a separate cosigner's
    /// database, so that existing MPC wallets keep signing after the switch.
    MoveCosignerShares(move_shares::MoveArgs),
    /// The ledger: `check` proves its invariants over the whole log.
    #[command(subcommand)]
    Ledger(ledger::LedgerCli),
    /// Measure a running walletd over HTTP and, optionally, its store's commit limit.
    Bench(bench::BenchArgs),
}

pub async fn run() -> ExitCode {
    let (cli, matches) = args::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(cli.settings).await,
        Command::Migrate => migrate(cli.settings).await,
        Command::Replay => replay::run(cli.settings).await,
        Command::ApiKey(c) => api_key::run(cli.settings, c).await,
        Command::App(c) => app::run(cli.settings, c).await,
        Command::Kyc(c) => kyc::run(cli.settings, c).await,
        Command::RotateMasterKey(a) => rotate::run(cli.settings, a).await,
        Command::Config(c) => config::run(cli.settings, &matches, c),
        Command::Bench(a) => bench::run(a).await,
        Command::Ledger(c) => ledger::run(cli.settings, c).await,
        Command::Cosigner => cosigner::run(cli.settings).await,
        Command::MpcKeygen => cosigner::keygen(),
        Command::LogKey(a) => log_key::run(cli.settings, a),
        Command::Events(c) => events::run(cli.settings, c).await,
        Command::Verify(a) => verify::run(cli.settings, a).await,
        Command::Report(a) => report::run(cli.settings, a).await,
        Command::CheckProof(c) => check_proof::run(c),
        Command::MoveCosignerShares(a) => move_shares::run(cli.settings, a).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("walletd: {e}");
            ExitCode::FAILURE
        }
    }
}

pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Variables walletd reads outside its command-line settings.
const OTHER_VARIABLES: &[&str] = &[
    "RUST_LOG",
    "WALLETD_LOG_FORMAT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Every environment variable walletd reads: each setting's, every
/// subcommand's, and the logging ones.
pub fn variables() -> std::collections::BTreeSet<String> {
    use clap::CommandFactory;
    fn walk(command: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = OTHER_VARIABLES.iter().map(|s| s.to_string()).collect();
    walk(&Cli::command(), &mut out);
    out
}

/// Connections a one-shot command opens at most: it runs one command at a
/// time, beside servers that need the database's connections.
pub const ONE_SHOT_POOL: u32 = 2;

async fn migrate(settings: Settings) -> CliResult {
    let db = crate::store::connect(&settings.database_url, ONE_SHOT_POOL).await?;
    crate::store::migrate::run(&db).await?;
    println!("migrations applied");
    db.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `--help` of every command describes every flag and argument.
    #[test]
    fn every_argument_is_described() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "walletd", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:?}");
        Cli::command().debug_assert();
    }
}
