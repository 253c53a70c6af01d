//! `walletd config check`: the configuration `walletd serve` would run with,
//! secrets redacted, and whether it can work.

use clap::{ArgMatches, CommandFactory, Subcommand};

use super::{Cli, CliResult};
use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum ConfigCli {
    /// Print every setting (secrets redacted) and where it came from; exit
    /// non-zero with the one-line error `walletd serve` would give when the
    /// configuration cannot work. Touches no database.
    Check,
}

pub fn run(settings: Settings, matches: &ArgMatches, command: ConfigCli) -> CliResult {
    match command {
        ConfigCli::Check => {
            for line in crate::config::effective(&Cli::command(), matches) {
                println!("{line}");
            }
            crate::config::validate(&settings)?;
            println!("configuration ok");
            Ok(())
        }
    }
}
