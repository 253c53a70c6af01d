//! The `walletd` command line.

mod api_key;
mod app;
mod bench;
mod cosigner;
mod kyc;
mod replay;
mod rotate;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Parser, Debug)]
#[command(name = "walletd", version, about = "Event-sourced wallet ledger")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default).
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
    /// Run the MPC cosigner (party 2 of MPC server wallets) as its own process.
    Cosigner,
    /// Print a new static key pair for the channel between walletd serve and the cosigner.
    MpcKeygen,
    /// Measure a running walletd over HTTP and, optionally, its store's commit limit.
    Bench(bench::BenchArgs),
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(cli.settings).await,
        Command::Migrate => migrate(cli.settings).await,
        Command::Replay => replay::run(cli.settings).await,
        Command::ApiKey(c) => api_key::run(cli.settings, c).await,
        Command::App(c) => app::run(cli.settings, c).await,
        Command::Kyc(c) => kyc::run(cli.settings, c).await,
        Command::RotateMasterKey(a) => rotate::run(cli.settings, a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::Cosigner => cosigner::run(cli.settings).await,
        Command::MpcKeygen => cosigner::keygen(),
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

async fn migrate(settings: Settings) -> CliResult {
    let db = crate::store::connect(&settings.database_url, 2).await?;
    crate::store::migrate::run(&db).await?;
    println!("migrations applied");
    Ok(())
}
