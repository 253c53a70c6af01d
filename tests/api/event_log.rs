//! The global order of the event log.

use sqlx::Executor;
use walletd::projections::log::{read_after, LogPosition};
use walletd::projections::Db;

use crate::backend_tests;
use crate::helpers::{open_db, Backend, TestDb};

backend_tests!(events_are_append_only);

const INSERT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                      VALUES ('probe', $1, 1, 'Probe', '1', '{}', '{}')";

async fn events_are_append_only(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let db = open_db(&tdb.url).await;
    walletd::store::migrate::run(&db).await.unwrap();
    walletd::projections::with_db!(&db, pool => {
        sqlx::query(INSERT).bind("a").execute(pool).await.unwrap();
        assert!(sqlx::query("UPDATE events SET event_type = 'X'").execute(pool).await.is_err());
        assert!(sqlx::query("DELETE FROM events").execute(pool).await.is_err());
    });
    assert_eq!(walletd::projections::log::count(&db).await.unwrap(), 1);
}

/// A transaction that took an earlier position but commits later must not be
/// skipped by a reader that has already seen a later position.
#[actix_web::test]
async fn late_commit_is_never_skipped_on_postgres() {
    let Some(tdb) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let db = open_db(&tdb.url).await;
    walletd::store::migrate::run(&db).await.unwrap();
    let Db::Postgres(pool) = &db else {
        unreachable!()
    };

    let mut slow = pool.begin().await.unwrap();
    // Force an xid for the slow transaction before the fast one starts.
    slow.execute(sqlx::query(INSERT).bind("slow"))
        .await
        .unwrap();
    sqlx::query(INSERT)
        .bind("fast")
        .execute(pool)
        .await
        .unwrap();

    // "fast" is committed and has the higher position, but "slow" may still commit
    // below it: the reader must not move past it yet.
    let seen = read_after(&db, LogPosition::START, 100).await.unwrap();
    assert!(
        seen.is_empty(),
        "reader ran ahead of an open transaction: {:?}",
        seen.iter().map(|e| &e.aggregate_id).collect::<Vec<_>>()
    );

    slow.commit().await.unwrap();
    // The horizon is cluster-wide: transactions of tests running in other
    // databases can hold it back for a moment, so wait for it to pass.
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = read_after(&db, LogPosition::START, 100).await.unwrap();
        if seen.len() == 2 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ids: Vec<_> = seen.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(
        ids,
        ["slow", "fast"],
        "transaction order, not position order"
    );
    assert!(seen[0].at.position < seen[1].at.position);

    // Continuing from the last event returns nothing new.
    let after = read_after(&db, seen[1].at, 100).await.unwrap();
    assert!(after.is_empty());
}

#[actix_web::test]
async fn sqlite_reads_in_position_order() {
    let Some(tdb) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let db = open_db(&tdb.url).await;
    walletd::store::migrate::run(&db).await.unwrap();
    walletd::projections::with_db!(&db, pool => {
        for id in ["a", "b", "c"] {
            sqlx::query(INSERT).bind(id).execute(pool).await.unwrap();
        }
    });
    let seen = read_after(&db, LogPosition::START, 2).await.unwrap();
    assert_eq!(
        seen.iter()
            .map(|e| e.aggregate_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let rest = read_after(&db, seen[1].at, 10).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|e| e.aggregate_id.as_str())
            .collect::<Vec<_>>(),
        ["c"]
    );
}

/// An idle projector sleeps until woken: a second process on the same
/// PostgreSQL hears of the first one's projected events through
/// LISTEN/NOTIFY, long before its 10 s safety-net pass would have run.
#[actix_web::test]
async fn another_process_hears_of_new_projections_at_once() {
    use std::time::{Duration, Instant};
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let key = crate::helpers::random_master_key();
    let first = crate::helpers::spawn_app_custom(db, Some(key.clone()), |_| {}).await;
    let second = walletd::app::App::build(crate::helpers::settings(&first.db, Some(key), "second"))
        .await
        .unwrap();
    let mut progress = second.wallets.projector().progress();
    // Let both go idle: their start-up passes are done, their listeners up.
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    for round in 0..3 {
        let before = *progress.borrow_and_update();
        let started = Instant::now();
        first.create_wallet(&format!("wake-{round}")).await;
        let target = first.app.wallets.projector().position();
        assert!(target > before);
        actix_web::rt::time::timeout(Duration::from_secs(6), progress.wait_for(|p| *p >= target))
            .await
            .expect("the idle second process saw the new projections well before its fallback pass")
            .unwrap();
        assert!(started.elapsed() < walletd::projections::projector::IDLE_LISTENING);
    }
}
