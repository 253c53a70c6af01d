//! The delayed whitelist: never early, never twice, across restarts and with
//! two processes on one PostgreSQL.

use std::time::{Duration, Instant};

use walletd::domain::wallet::WalletCommand;
use walletd::domain::{Timestamp, WalletId};
use walletd::store::CommandMeta;

use crate::backend_tests;
use crate::helpers::{random_master_key, settings, spawn_app_custom, Backend, TestApp, TestDb};

backend_tests!(
    whitelisted_after_the_delay_never_before,
    whitelisting_survives_a_restart
);

async fn queue(app: &walletd::app::App, id: WalletId, delay_secs: u64) {
    let meta = CommandMeta::system("test");
    app.wallets
        .execute(
            id,
            WalletCommand::QueueWhitelist {
                at: Timestamp::now(),
                delay_secs,
            },
            &meta,
        )
        .await
        .unwrap();
}

async fn status(app: &walletd::app::App, id: WalletId) -> String {
    walletd::projections::queries::find_wallet(
        &app.db,
        walletd::projections::queries::WalletLookup::WalletId(&id.to_string()),
    )
    .await
    .unwrap()
    .unwrap()
    .whitelist_status
}

async fn whitelist_events(app: &walletd::app::App) -> usize {
    walletd::projections::queries::dump_tables(&app.db, &["audit_log"])
        .await
        .unwrap()
        .iter()
        .filter(|l| l.contains("|WalletWhitelisted|"))
        .count()
}

async fn new_wallet(app: &TestApp, user: &str) -> WalletId {
    let w = app.create_wallet(user).await;
    WalletId::parse(w["walletId"].as_str().unwrap()).unwrap()
}

async fn wait_until_whitelisted(
    app: &walletd::app::App,
    id: WalletId,
    within: Duration,
) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if status(app, id).await == "whitelisted" {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "not whitelisted in time");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn whitelisted_after_the_delay_never_before(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let app = spawn_app_custom(db, Some(random_master_key()), |_| {}).await;
    let id = new_wallet(&app, "wl-1").await;
    let queued = Instant::now();
    queue(&app.app, id, 2).await;
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(status(&app.app, id).await, "queued", "not before the delay");
    let done = wait_until_whitelisted(&app.app, id, Duration::from_secs(10)).await;
    assert!(done.duration_since(queued) >= Duration::from_secs(2));
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(whitelist_events(&app.app).await, 1, "exactly once");
    // The recorded times agree: whitelisted at or after eligibility.
    let rows = walletd::projections::queries::dump_tables(&app.app.db, &["whitelist_queue"])
        .await
        .unwrap();
    let cells: Vec<&str> = rows[0].split('|').collect();
    let (eligible_at, whitelisted_at) = (cells[2], cells[4]);
    assert!(whitelisted_at >= eligible_at, "{rows:?}");
}

async fn whitelisting_survives_a_restart(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let key = random_master_key();
    let app = spawn_app_custom(db, Some(key.clone()), |_| {}).await;
    let id = new_wallet(&app, "wl-restart").await;
    queue(&app.app, id, 1).await;
    let db = app.shutdown().await;
    // Down while the wallet becomes due.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let app = spawn_app_custom(db, Some(key), |_| {}).await;
    wait_until_whitelisted(&app.app, id, Duration::from_secs(10)).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(whitelist_events(&app.app).await, 1);
}

#[actix_web::test]
async fn two_processes_on_one_postgres_whitelist_each_wallet_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let key = random_master_key();
    let url = db.url.clone();
    let first = spawn_app_custom(db, Some(key.clone()), |_| {}).await;
    // A second walletd on the same database, with its own projector and scheduler.
    let second = walletd::app::App::build(settings(&first.db, Some(key), "second"))
        .await
        .unwrap();
    assert_eq!(second.settings.database_url, url);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(new_wallet(&first, &format!("wl-two-{i}")).await);
    }
    for (i, id) in ids.iter().enumerate() {
        // Queue through both processes.
        let app = if i % 2 == 0 { &first.app } else { &second };
        queue(app, *id, 1).await;
    }
    for id in &ids {
        wait_until_whitelisted(&first.app, *id, Duration::from_secs(15)).await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        whitelist_events(&first.app).await,
        20,
        "each wallet whitelisted exactly once"
    );
    for id in &ids {
        assert_eq!(
            status(&second, *id).await,
            "whitelisted",
            "the second process sees it too"
        );
    }
}
