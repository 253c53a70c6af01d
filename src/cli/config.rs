//! `walletd config check`: the configuration `walletd serve` would run with,
//! secrets redacted, and whether it can work.

use clap::{ArgMatches, CommandFactory, Subcommand};

use super::{Cli, CliResult};
use crate::config::{Secret, ServerCustody, Settings};
use crate::custody::MasterKey;

#[derive(Subcommand, Debug)]
pub enum ConfigCli {
    /// Print every setting (secrets redacted) and where it came from; exit
    /// non-zero with the one-line error `walletd serve` would give when the
    /// configuration cannot work. Touches no database and no key file.
    Check {
        /// Check what `walletd cosigner` would run with instead of `serve`.
        #[arg(long)]
        cosigner: bool,
    },
}

pub fn run(settings: Settings, matches: &ArgMatches, command: ConfigCli) -> CliResult {
    match command {
        ConfigCli::Check { cosigner } => {
            for line in crate::config::effective(&Cli::command(), matches) {
                println!("{line}");
            }
            if cosigner {
                let (own, peer) = super::cosigner::check(&settings)?;
                println!();
                println!(
                    "cosigner: listens on {}; channel public key {}; accepts party 1 {}",
                    settings.cosigner_bind,
                    own.public().to_hex(),
                    peer.to_hex()
                );
                println!("configuration ok");
                return Ok(());
            }
            crate::config::validate(&settings)?;
            println!();
            for line in derived(&settings) {
                println!("{line}");
            }
            println!("configuration ok");
            Ok(())
        }
    }
}

/// What the settings amount to. Master keys are named by their id (a hash,
/// also what each sealed row names), so an operator can compare it with the
/// id `/readyz`'s log line says the vault needs.
fn derived(s: &Settings) -> Vec<String> {
    let id = |k: &Secret| {
        MasterKey::parse(k.expose())
            .map(|k| k.id().to_string())
            .unwrap_or_default()
    };
    let mut lines = Vec::new();
    lines.push(match (&s.master_key, crate::app::key_file_path(s)) {
        (Some(k), _) => format!("master key: WALLETD_MASTER_KEY, id {}", id(k)),
        (None, Some(path)) if path.exists() => {
            format!("master key: the key file {}", path.display())
        }
        (None, Some(path)) => format!(
            "master key: a key file {} will be created at the first start (development only)",
            path.display()
        ),
        (None, None) => "master key: none".into(),
    });
    let previous: Vec<String> = s.previous_master_key_list().iter().map(id).collect();
    if !previous.is_empty() {
        lines.push(format!(
            "previous master keys (unsealing only): ids {}",
            previous.join(", ")
        ));
    }
    lines.push(match (s.server_wallet_custody, &s.cosigner_url) {
        (ServerCustody::Local, _) => "server wallets: local (one sealed key each)".into(),
        (ServerCustody::Mpc, Some(url)) => {
            format!("server wallets: 2-of-2 MPC with the cosigner at {url}")
        }
        (ServerCustody::Mpc, None) => "server wallets: 2-of-2 MPC with an in-process cosigner \
                                       (both shares on this host: development only)"
            .into(),
    });
    let workers = s.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    lines.push(format!("HTTP workers: {workers}"));
    lines.push(match &s.log_key {
        Some(k) => match crate::transparency::LogSigner::parse(k) {
            Ok(signer) => format!(
                "transparency log: sealed; checkpoints of {} signed by {}",
                signer.origin(),
                signer.verifier_key()
            ),
            Err(_) => "transparency log: WALLETD_LOG_KEY does not parse".into(),
        },
        None => match crate::transparency::key::key_file_path(s) {
            Some(path) => format!(
                "transparency log: sealed with the key file {} (development only)",
                path.display()
            ),
            None => "transparency log: not sealed (WALLETD_LOG_KEY is not set)".into(),
        },
    });
    lines.push(if s.metrics.is_on() {
        format!(
            "metrics: GET /metrics on {}, without authentication (keep it off public networks)",
            s.bind
        )
    } else {
        "metrics: off (GET /metrics answers 404)".into()
    });
    lines
}
