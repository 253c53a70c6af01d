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
    Pass { handle: String },
    /// The user failed KYC.
    Fail { handle: String },
}

pub async fn run(mut settings: Settings, command: KycCli) -> CliResult {
    let (handle, passed) = match command {
        KycCli::Pass { handle } => (handle, true),
        KycCli::Fail { handle } => (handle, false),
    };
    let handle = Handle::parse(&handle)?;
    // A one-shot command: no key pool, and the service's own background work
    // stays with the running servers.
    settings.key_pool = 0;
    settings.mpc_key_pool = 0;
    // The whitelist delay is the servers' (stored in the database), whatever
    // this shell's environment says.
    settings.whitelist_delay = None;
    let app = App::build(settings).await?;
    let kyc = SilaUsers::new(&app)
        .decide_kyc(&handle, passed, &CommandMeta::system("cli"))
        .await?;
    println!("{handle}: KYC {}", kyc.as_str());
    // Stop the projector (owned by the app) before closing its pool.
    let db = app.db.clone();
    drop(app);
    db.close().await;
    Ok(())
}
