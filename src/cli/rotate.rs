use clap::Args;

use super::progress::Progress;
use super::CliResult;
use crate::app::{in_process_cosigner_keys, key_file_companions, load_master_keys, KeySource};
use crate::config::{Secret, Settings};
use crate::custody::mpc::ShareVault;
use crate::custody::vault::KeyVault;
use crate::custody::{MasterKey, MasterKeys};
use crate::domain::master_key::{MasterKeyCommand, MasterKeyHistory, MasterKeyId, MasterKeyScope};
use crate::domain::Timestamp;
use crate::store::{AggregateStore, CommandMeta};
use walletd_projections::{views, Db, Projector};

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The new master key (hex or base64). Without it a new key is generated.
    #[arg(long, env = "WALLETD_NEW_MASTER_KEY", hide_env_values = true)]
    pub new_key: Option<Secret>,
    /// Rotate the in-process cosigner's key (`WALLETD_COSIGNER_MASTER_KEY`,
    /// or the key file `<db>.key.cosigner`) instead of walletd's own: only
    /// the cosigner's key shares on this database are re-wrapped.
    #[arg(long)]
    pub cosigner: bool,
}

/// Re-wraps every data key under the new master key. With a key file the new
/// key is written beside it first (`.next`), so an interrupted rotation loses
/// nothing: every key file present is accepted for unsealing at start-up.
pub async fn run(settings: Settings, args: RotateArgs) -> CliResult {
    let (keys, source, variable) = if args.cosigner {
        let (keys, source) = in_process_cosigner_keys(&settings)?.ok_or(
            "no in-process cosigner key: set WALLETD_COSIGNER_MASTER_KEY (with SQLite, the key \
             file <db>.key.cosigner is used when it is unset)",
        )?;
        (keys, source, "WALLETD_COSIGNER_MASTER_KEY")
    } else {
        let (keys, source) = load_master_keys(&settings)?;
        let keys = keys.ok_or("no master key is configured (set WALLETD_MASTER_KEY)")?;
        (keys, source, "WALLETD_MASTER_KEY")
    };
    let generated = args.new_key.is_none();
    let new = match &args.new_key {
        Some(k) => MasterKey::parse(k.expose())?,
        None => MasterKey::generate(),
    };
    if new.id() == keys.current.id() {
        return Err("the new master key is the current one".into());
    }
    // The rotation's own connections plus the projector's (and its
    // listener's) for recording it.
    let db = crate::store::connect(&settings.database_url, 4).await?;
    crate::store::migrate::run(&db).await?;
    let mut all = keys.clone();
    all.previous.push(new.clone());
    let rewrapped = if let KeySource::File { path, .. } = &source {
        let [next, previous] = key_file_companions(path);
        new.write_file(&next)?;
        let n = rewrap(&db, args.cosigner, &all, &new).await?;
        keys.current.write_file(&previous)?;
        std::fs::rename(&next, path)?;
        std::fs::remove_file(&previous)?;
        println!(
            "re-wrapped {n} keys; master key file {} now holds key {}",
            path.display(),
            new.id()
        );
        n
    } else {
        let n = rewrap(&db, args.cosigner, &all, &new).await?;
        println!("re-wrapped {n} keys under master key {}", new.id());
        if generated {
            println!("Set {variable} to this new key (shown once) and restart:");
            println!("{}", new.to_hex().as_str());
        } else {
            println!("Set {variable} to the new key and restart.");
        }
        n
    };
    // Recorded once the rotation is complete (and a generated key has been
    // shown): a failure here loses no key, and says the rotation stands.
    let scope = if args.cosigner {
        MasterKeyScope::Cosigner
    } else {
        MasterKeyScope::Walletd
    };
    let recorded = record_rotation(&db, scope, keys.current.id(), new.id(), rewrapped).await;
    db.close().await;
    match recorded {
        Ok(()) => {
            // On stderr: a generated key stays stdout's last line, for
            // scripts that take it from there.
            eprintln!(
                "recorded MasterKeyRotated ({scope}: {} -> {})",
                keys.current.id(),
                new.id()
            );
            Ok(())
        }
        Err(e) => Err(format!(
            "the rotation completed, but its MasterKeyRotated event could not be recorded: {e}"
        )
        .into()),
    }
}

/// Appends `MasterKeyRotated` to the `master_key` stream of `scope` through
/// the one write path (as `walletd app` records apps).
async fn record_rotation(
    db: &Db,
    scope: MasterKeyScope,
    from: &str,
    to: &str,
    rewrapped: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let command = MasterKeyCommand::RecordRotation {
        scope,
        from_key_id: MasterKeyId::parse(from)?,
        to_key_id: MasterKeyId::parse(to)?,
        rewrapped,
        at: Timestamp::now(),
    };
    let projector = Projector::new(db.clone(), views::all());
    projector.register().await?;
    projector.catch_up().await?;
    let store = AggregateStore::<MasterKeyHistory>::new(db.clone(), (), projector.spawn());
    store
        .execute(scope, command, &CommandMeta::system("cli"))
        .await?;
    store.projector().stop().await;
    Ok(())
}

/// Rows sealed under a key `keys` does not hold are left alone: on a
/// database that also holds the in-process cosigner's shares, walletd's
/// rotation skips them and `--cosigner` touches nothing else.
async fn rewrap(
    db: &Db,
    cosigner: bool,
    keys: &MasterKeys,
    new: &MasterKey,
) -> Result<u64, Box<dyn std::error::Error>> {
    let party2 = ShareVault::new(db.clone(), None, 2);
    if cosigner {
        let progress = Progress::new(
            "rotate-master-key",
            "keys",
            Some(party2.pending_rotation(keys, new).await?),
        );
        let n = party2.rotate(keys, new, &|n| progress.inc(n)).await?;
        progress.finish();
        return Ok(n);
    }
    // Party 2's shares here too: `walletd rotate-master-key` run with a
    // separate cosigner's DATABASE_URL and WALLETD_MASTER_KEY rotates its key.
    let vault = KeyVault::new(db.clone());
    let party1 = ShareVault::new(db.clone(), None, 1);
    let pending = vault.pending_rotation(new).await?
        + party1.pending_rotation(keys, new).await?
        + party2.pending_rotation(keys, new).await?;
    let progress = Progress::new("rotate-master-key", "keys", Some(pending));
    let step = |n| progress.inc(n);
    let n = vault.rotate(keys, new, &step).await?
        + party1.rotate(keys, new, &step).await?
        + party2.rotate(keys, new, &step).await?;
    progress.finish();
    Ok(n)
}
