//! `walletd kyc pass|fail HANDLE`: records a KYC decision made by the provider
//! outside walletd. Passing queues the user's wallets for the whitelist.

use clap::Subcommand;

use super::CliResult;
use crate::app::App;
use crate::config::Settings;
use crate::domain::Handle;
use crate::service::sila_users::SilaUsers;
use crate::store::CommandMeta;

#[derive(Subcommand, Debug)]
pub enum KycCli {
    /// The user passed KYC: their wallets are queued for the whitelist.
    Pass {
        /// The user's Sila handle (as in `register`).
        handle: String,
    },
    /// The user failed KYC.
    Fail {
        /// The user's Sila handle (as in `register`).
        handle: String,
    },
}

pub async fn run(settings: Settings, command: KycCli) -> CliResult {
    let (handle, passed) = match command {
        KycCli::Pass { handle } => (handle, true),
        KycCli::Fail { handle } => (handle, false),
    };
    let handle = Handle::parse(&handle)?;
    let app = App::build_one_shot(settings).await?;
    let decided = SilaUsers::new(&app)
        .decide_kyc(&handle, passed, &CommandMeta::system("cli"))
        .await;
    App::finish(app).await;
    println!("{handle}: KYC {}", decided?.as_str());
    Ok(())
}
