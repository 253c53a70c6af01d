use clap::Subcommand;

use super::CliResult;
use crate::auth::api_keys::ApiKeys;
use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once and only its hash is stored.
    Create {
        /// Who the key is for (1 to 100 characters), shown by `list`.
        #[arg(long)]
        name: String,
    },
    /// List stored keys (ids and names; keys themselves are not stored).
    List,
    /// Revoke a stored key by id.
    Revoke {
        /// The key's id, as `create` and `list` print it.
        #[arg(long)]
        id: String,
    },
}

pub async fn run(settings: Settings, command: ApiKeyCommand) -> CliResult {
    let db = crate::store::connect(&settings.database_url, super::ONE_SHOT_POOL).await?;
    crate::store::migrate::run(&db).await?;
    match command {
        ApiKeyCommand::Create { name } => {
            if name.is_empty() || name.len() > 100 {
                return Err("--name must be 1 to 100 characters".into());
            }
            let created = ApiKeys::new(db.clone(), &[]).create(&name).await?;
            eprintln!(
                "API key {} created for {name:?}. It is shown only this once:",
                created.id
            );
            println!("{}", created.token);
        }
        ApiKeyCommand::List => {
            let keys = ApiKeys::new(db.clone(), &[]).list().await?;
            if keys.is_empty() {
                println!(
                    "no API keys stored (create one with: walletd api-key create --name <name>)"
                );
            }
            for (id, name, created, revoked) in keys {
                let state = revoked
                    .map(|r| format!("revoked {r}"))
                    .unwrap_or_else(|| "active".into());
                println!("{id}  {name:?}  created {created}  {state}");
            }
        }
        ApiKeyCommand::Revoke { id } => {
            if !ApiKeys::new(db.clone(), &[]).revoke(&id).await? {
                return Err(format!("no active API key with id {id}").into());
            }
            println!("API key {id} revoked (running servers stop accepting it within 30 s)");
        }
    }
    db.close().await;
    Ok(())
}
