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
