//! `walletd log-key`: the transparency log's verifier key, which auditors
//! pin; `walletd log-key generate --name <origin>`: a new key pair.

use clap::{Args, Subcommand};

use super::CliResult;
use crate::config::Settings;
use crate::transparency::{key, LogSigner};

#[derive(Args, Debug)]
pub struct LogKeyArgs {
    #[command(subcommand)]
    pub action: Option<LogKeyAction>,
}

#[derive(Subcommand, Debug)]
pub enum LogKeyAction {
    /// Print the verifier key of the configured log key (the default).
    Show,
    /// Print a new key pair: the private key (set it as WALLETD_LOG_KEY; shown
    /// once) and its verifier key (give it to auditors).
    Generate {
        /// The key's name, which every checkpoint names as its origin; make it
        /// unique to this log, e.g. wallets.example.com/log.
        #[arg(long)]
        name: String,
    },
}

pub fn run(settings: Settings, args: LogKeyArgs) -> CliResult {
    match args.action.unwrap_or(LogKeyAction::Show) {
        LogKeyAction::Show => {
            let signer = key::load(&settings)?.ok_or(
                "no log key: set WALLETD_LOG_KEY (`walletd log-key generate --name <origin>` makes one)",
            )?;
            println!("{}", signer.verifier_key());
        }
        LogKeyAction::Generate { name } => {
            let (private, verifier) = LogSigner::generate(&name)?;
            println!("private {}", private.expose());
            println!("verifier {verifier}");
        }
    }
    Ok(())
}
