//! `walletd move-cosigner-shares`: from the in-process cosigner (development
//! set-up) to a separate `walletd cosigner`, keeping every existing MPC
//! wallet usable.

use clap::Args;

use super::{CliResult, ONE_SHOT_POOL};
use crate::app::in_process_cosigner_keys;
use crate::config::{DatabaseUrl, Secret, Settings};
use crate::custody::mpc::move_cosigner_shares;
use crate::custody::MasterKey;

#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The separate cosigner's database (its DATABASE_URL); migrated if new.
    #[arg(long, env = "WALLETD_MOVE_TO_DATABASE_URL", hide_env_values = true)]
    pub to_database_url: DatabaseUrl,
    /// The separate cosigner's master key (its WALLETD_MASTER_KEY): the moved
    /// shares are sealed under it.
    #[arg(long, env = "WALLETD_MOVE_TO_MASTER_KEY", hide_env_values = true)]
    pub to_master_key: Secret,
}

/// Run with walletd's own settings (`DATABASE_URL`, and
/// `WALLETD_COSIGNER_MASTER_KEY` or the key file `<db>.key.cosigner`), with
/// no `walletd serve` running on that database.
pub async fn run(settings: Settings, args: MoveArgs) -> CliResult {
    let (keys, _) = in_process_cosigner_keys(&settings)?.ok_or(
        "no in-process cosigner key: set WALLETD_COSIGNER_MASTER_KEY (with SQLite, the key \
         file <db>.key.cosigner is used when it is unset)",
    )?;
    let target_key = MasterKey::parse(args.to_master_key.expose())
        .map_err(|e| format!("WALLETD_MOVE_TO_MASTER_KEY: {e}"))?;
    if keys.current.id() == target_key.id() {
        // Allowed (the shares simply keep their key), but worth saying.
        println!("note: the target master key is the in-process cosigner's current key");
    }
    if args.to_database_url.as_str() == settings.database_url.as_str() {
        return Err(
            "WALLETD_MOVE_TO_DATABASE_URL: is walletd's own database; the cosigner \
                    needs a database of its own"
                .into(),
        );
    }
    let source = crate::store::connect(&settings.database_url, ONE_SHOT_POOL).await?;
    crate::store::migrate::run(&source).await?;
    let target = crate::store::connect(&args.to_database_url, ONE_SHOT_POOL).await?;
    crate::store::migrate::run(&target).await?;
    let moved = move_cosigner_shares(&source, &keys, &target, &target_key).await?;
    println!(
        "moved {} key shares and copied {} signing-log entries to the cosigner's database \
         (sealed under master key {})",
        moved.shares,
        moved.log_entries,
        target_key.id()
    );
    println!(
        "Now start `walletd cosigner` on that database and restart walletd serve with \
         WALLETD_COSIGNER_URL, WALLETD_COSIGNER_PUBLIC_KEY and WALLETD_MPC_CHANNEL_KEY."
    );
    source.close().await;
    target.close().await;
    Ok(())
}
