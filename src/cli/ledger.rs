//! `walletd ledger check`: proves the ledger's invariants over the whole
//! log (see `ledger::check`) and compares the read models with the books.
//! Exits non-zero when anything is wrong.

use clap::{Args, Subcommand, ValueEnum};

use super::{CliResult, ONE_SHOT_POOL};
use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum LedgerCli {
    /// Fold every account event of the log into double-entry books and
    /// check every invariant at every position; compare the balances and
    /// supply views with the books.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// `text`: a summary and every finding; `json`: the whole report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub async fn run(settings: Settings, cli: LedgerCli) -> CliResult {
    let LedgerCli::Check(args) = cli;
    let db = crate::store::connect(&settings.database_url, ONE_SHOT_POOL).await?;
    crate::store::migrate::run(&db).await?;
    let report = crate::ledger::check::run(&db).await?;
    db.close().await;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => {
            println!(
                "{} events read, {} of them account events; {} transfers: {} credited, {} returned, {} awaiting their second leg",
                report.events,
                report.account_events,
                report.transfers,
                report.credited,
                report.returned,
                report.awaiting_second_leg
            );
            for a in &report.assets {
                println!(
                    "{} ({} decimals, minor units): issued {} - redeemed {} = supply {}; held by {} wallets {} + in transit {}",
                    a.asset, a.decimals, a.issued, a.redeemed, a.supply, a.wallets, a.held_by_wallets, a.in_transit
                );
            }
            match (&report.read_models.skipped, report.read_models.compared) {
                (Some(why), _) => println!("read models not compared: {why}"),
                (None, true) => println!(
                    "read models: {} differences from the books",
                    report.read_models.differences.len()
                ),
                (None, false) => {}
            }
            for d in &report.read_models.differences {
                println!("DIFFERS: {d}");
            }
            for v in &report.violations {
                println!("VIOLATION: {v}");
            }
        }
    }
    if report.ok() {
        if matches!(args.format, Format::Text) {
            println!("ledger OK");
        }
        Ok(())
    } else {
        Err(format!(
            "ledger check failed: {} violations, {} read-model differences",
            report.violations.len(),
            report.read_models.differences.len()
        )
        .into())
    }
}
