//! `walletd app register|list`: client apps that sign requests (Sila's
//! `app_handle`). Apps are event-sourced like wallets.

use clap::Subcommand;
use walletd_projections::{queries, views, Projector};

use super::CliResult;
use crate::config::Settings;
use crate::domain::client_app::{AppCommand, ClientApp};
use crate::domain::{Address, Handle, Timestamp};
use crate::store::{AggregateStore, CommandMeta};

#[derive(Subcommand, Debug)]
pub enum AppCli {
    /// Register an app, or add a signing address to an existing one.
    Register {
        /// The app's handle (Sila `app_handle`).
        #[arg(long)]
        handle: String,
        /// An Ethereum address (0x…) whose key signs the app's requests.
        #[arg(long)]
        address: String,
    },
    /// Remove one of an app's signing addresses (it must keep one).
    RemoveAddress {
        /// The app's handle (Sila `app_handle`).
        #[arg(long)]
        handle: String,
        /// The signing address (0x…) to remove.
        #[arg(long)]
        address: String,
    },
    /// List apps and their signing addresses.
    List,
}

/// Registers app `handle` with `address` in the store at `database_url`
/// (also used by `walletd bench --sila`).
pub async fn register_on(database_url: &str, handle: &str, address: &str) -> CliResult {
    execute(
        database_url,
        AppCli::Register {
            handle: handle.to_string(),
            address: address.to_string(),
        },
    )
    .await
}

pub async fn run(settings: Settings, command: AppCli) -> CliResult {
    execute(&settings.database_url, command).await
}

async fn execute(database_url: &str, command: AppCli) -> CliResult {
    // The projector, its listener and the command each hold one.
    let db = crate::store::connect(database_url, 4).await?;
    crate::store::migrate::run(&db).await?;
    let projector = Projector::new(db.clone(), views::all());
    projector.register().await?;
    projector.catch_up().await?;
    let store = AggregateStore::<ClientApp>::new(db.clone(), (), projector.spawn());
    let meta = CommandMeta::system("cli");
    match command {
        AppCli::Register { handle, address } => {
            let handle = Handle::parse(&handle)?;
            let address = Address::parse(&address)?;
            store
                .execute(
                    &handle,
                    AppCommand::AddAddress {
                        handle: handle.clone(),
                        address,
                        at: Timestamp::now(),
                    },
                    &meta,
                )
                .await?;
            println!("app {handle}: address {address} registered");
        }
        AppCli::RemoveAddress { handle, address } => {
            let handle = Handle::parse(&handle)?;
            let address = Address::parse(&address)?;
            store
                .execute(
                    &handle,
                    AppCommand::RemoveAddress {
                        address,
                        at: Timestamp::now(),
                    },
                    &meta,
                )
                .await?;
            println!("app {handle}: address {address} removed");
        }
        AppCli::List => {
            let apps = queries::apps(&db).await?;
            if apps.is_empty() {
                println!("no apps registered (register one with: walletd app register --handle <h> --address 0x…)");
            }
            for (handle, addresses) in apps {
                println!("{handle}  {}", addresses.join(" "));
            }
        }
    }
    // Stops the projector between passes. The pool stays open until the
    // process exits (see `App::finish`).
    store.projector().stop().await;
    drop(store);
    drop(db);
    Ok(())
}
