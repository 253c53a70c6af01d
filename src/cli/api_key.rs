use clap::Subcommand;

use super::CliResult;
use crate::auth::api_keys::ApiKeys;
use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
    },
}

pub async fn run(settings: Settings, command: ApiKeyCommand) -> CliResult {
    let db = crate::store::connect(&settings.database_url, 2).await?;
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
    }
    db.close().await;
    Ok(())
}
