use walletd_projections::{replay, views, Projector};

use super::progress::Progress;
use super::CliResult;
use crate::config::Settings;

pub async fn run(settings: Settings) -> CliResult {
    // Maintenance limits: emptying large views may take longer than a
    // service statement may.
    let db = crate::store::connect_with(
        &settings.database_url,
        4,
        crate::store::SessionLimits::MAINTENANCE,
    )
    .await?;
    crate::store::migrate::run(&db).await?;
    let total = replay::log_length(&db).await?;
    let progress = Progress::new("replay", "events", Some(total));
    let projector = Projector::new(db.clone(), views::all());
    let applied = replay::rebuild(&projector, |n| progress.set_position(n)).await?;
    progress.finish();
    println!(
        "rebuilt {} projections from {applied} events",
        projector.projections().len()
    );
    db.close().await;
    Ok(())
}
