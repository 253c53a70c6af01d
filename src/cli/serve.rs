use std::net::TcpListener;

use super::CliResult;
use crate::app::{App, KeySource};
use crate::config::Settings;

pub async fn run(settings: Settings) -> CliResult {
    // Before anything is opened: a configuration that cannot work is one
    // line naming the variable, not a server that answers 500 to every create.
    crate::config::validate(&settings)?;
    let workers = settings.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let listener = TcpListener::bind(&settings.bind)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
    let addr = listener.local_addr()?;
    let app = App::build(settings).await?;
    match &app.key_source {
        KeySource::File {
            path,
            created: true,
        } => tracing::warn!(
            path = %path.display(),
            "NO WALLETD_MASTER_KEY SET: created a master key file beside the database. \
             Anyone who can read this file and the database can decrypt every wallet key. \
             Fine for development; in production set WALLETD_MASTER_KEY from a secret store."
        ),
        KeySource::File {
            path,
            created: false,
        } => tracing::warn!(
            path = %path.display(),
            "using the master key file beside the database (no WALLETD_MASTER_KEY set)"
        ),
        KeySource::Missing => tracing::error!(
            "WALLETD_MASTER_KEY is not set: wallets cannot be created or used until it is"
        ),
        KeySource::Environment => {}
    }
    if !app.api_keys.any_configured() {
        println!(
            "no WALLETD_API_KEYS set: the server-wallet API accepts keys created with\n  \
             walletd api-key create --name my-client"
        );
    }
    let server = crate::api::server(app.clone(), listener, workers)?;
    println!("walletd listening on http://{addr}");
    server.await?;
    app.shutdown().await;
    Ok(())
}
