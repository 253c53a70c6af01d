use clap::Args;

use super::progress::Progress;
use super::CliResult;
use crate::app::{key_file_companions, load_master_keys, KeySource};
use crate::config::{Secret, Settings};
use crate::custody::mpc::ShareVault;
use crate::custody::vault::KeyVault;
use crate::custody::MasterKey;

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The new master key (hex or base64). Without it a new key is generated.
    #[arg(long, env = "WALLETD_NEW_MASTER_KEY", hide_env_values = true)]
    pub new_key: Option<Secret>,
}

/// Re-wraps every data key under the new master key. With a key file the new
/// key is written beside it first (`.next`), so an interrupted rotation loses
/// nothing: every key file present is accepted for unsealing at start-up.
pub async fn run(settings: Settings, args: RotateArgs) -> CliResult {
    let (keys, source) = load_master_keys(&settings)?;
    let keys = keys.ok_or("no master key is configured (set WALLETD_MASTER_KEY)")?;
    let generated = args.new_key.is_none();
    let new = match &args.new_key {
        Some(k) => MasterKey::parse(k.expose())?,
        None => MasterKey::generate(),
    };
    if new.id() == keys.current.id() {
        return Err("the new master key is the current one".into());
    }
    let db = crate::store::connect(&settings.database_url, 2).await?;
    crate::store::migrate::run(&db).await?;
    let vault = KeyVault::new(db.clone());
    // MPC shares sealed under these keys: party 1's on a server's database,
    // party 2's on a cosigner's (`walletd rotate-master-key` run with the
    // cosigner's DATABASE_URL and WALLETD_MASTER_KEY).
    let (party1, party2) = (
        ShareVault::new(db.clone(), None, 1),
        ShareVault::new(db.clone(), None, 2),
    );
    let mut all = keys.clone();
    all.previous.push(new.clone());
    let pending = vault.pending_rotation(&new).await?
        + party1.pending_rotation(&all, &new).await?
        + party2.pending_rotation(&all, &new).await?;
    let progress = Progress::new("rotate-master-key", "keys", Some(pending));
    let rewrap = || async {
        let step = |n| progress.inc(n);
        let n = vault.rotate(&all, &new, &step).await?
            + party1.rotate(&all, &new, &step).await?
            + party2.rotate(&all, &new, &step).await?;
        progress.finish();
        Ok::<u64, Box<dyn std::error::Error>>(n)
    };
    if let KeySource::File { path, .. } = &source {
        let [next, previous] = key_file_companions(path);
        new.write_file(&next)?;
        let n = rewrap().await?;
        keys.current.write_file(&previous)?;
        std::fs::rename(&next, path)?;
        std::fs::remove_file(&previous)?;
        println!(
            "re-wrapped {n} keys; master key file {} now holds key {}",
            path.display(),
            new.id()
        );
    } else {
        let n = rewrap().await?;
        println!("re-wrapped {n} keys under master key {}", new.id());
        if generated {
            println!("Set WALLETD_MASTER_KEY to this new key (shown once) and restart:");
            println!("{}", new.to_hex().as_str());
        } else {
            println!("Set WALLETD_MASTER_KEY to the new key and restart.");
        }
    }
    db.close().await;
    Ok(())
}
