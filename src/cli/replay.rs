use indicatif::{ProgressBar, ProgressStyle};
use walletd_projections::{replay, views, Projector};

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
    // indicatif draws only when stderr is a terminal.
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding projections [{bar:40}] {pos}/{len} events ({per_sec})",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let projector = Projector::new(db.clone(), views::all());
    let applied = replay::rebuild(&projector, |n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    println!(
        "rebuilt {} projections from {applied} events",
        projector.projections().len()
    );
    db.close().await;
    Ok(())
}
