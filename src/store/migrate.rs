//! Schema migrations, embedded in the binary and run with sqlx's migrator (which
//! records versions and checksums and takes a lock on PostgreSQL).

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use walletd_projections::Db;

use super::StoreError;

type Script = (i64, &'static str, &'static str);

const POSTGRES: &[Script] = &[
    (
        1,
        "event_store",
        include_str!("../../migrations/postgres/0001_event_store.sql"),
    ),
    (
        2,
        "key_vault",
        include_str!("../../migrations/postgres/0002_key_vault.sql"),
    ),
    (
        3,
        "projections",
        include_str!("../../migrations/postgres/0003_projections.sql"),
    ),
    (
        4,
        "api",
        include_str!("../../migrations/postgres/0004_api.sql"),
    ),
    (
        5,
        "jwt_api",
        include_str!("../../migrations/postgres/0005_jwt_api.sql"),
    ),
    (
        6,
        "signature_count",
        include_str!("../../migrations/postgres/0006_signature_count.sql"),
    ),
    (
        7,
        "apps",
        include_str!("../../migrations/postgres/0007_apps.sql"),
    ),
    (
        8,
        "sila",
        include_str!("../../migrations/postgres/0008_sila.sql"),
    ),
    (
        9,
        "mpc",
        include_str!("../../migrations/postgres/0009_mpc.sql"),
    ),
    (
        10,
        "address_claims",
        include_str!("../../migrations/postgres/0010_address_claims.sql"),
    ),
    (
        11,
        "key_claims",
        include_str!("../../migrations/postgres/0011_key_claims.sql"),
    ),
    (
        12,
        "bounds",
        include_str!("../../migrations/postgres/0012_bounds.sql"),
    ),
    (
        15,
        "whitelist_policy",
        include_str!("../../migrations/postgres/0015_whitelist_policy.sql"),
    ),
    (
        16,
        "transparency_log",
        include_str!("../../migrations/postgres/0016_transparency_log.sql"),
    ),
    (
        17,
        "ledger_read",
        include_str!("../../migrations/postgres/0017_ledger_read.sql"),
    ),
    (
        18,
        "ledger_process",
        include_str!("../../migrations/postgres/0018_ledger_process.sql"),
    ),
];

const SQLITE: &[Script] = &[
    (
        1,
        "event_store",
        include_str!("../../migrations/sqlite/0001_event_store.sql"),
    ),
    (
        2,
        "key_vault",
        include_str!("../../migrations/sqlite/0002_key_vault.sql"),
    ),
    (
        3,
        "projections",
        include_str!("../../migrations/sqlite/0003_projections.sql"),
    ),
    (
        4,
        "api",
        include_str!("../../migrations/sqlite/0004_api.sql"),
    ),
    (
        5,
        "jwt_api",
        include_str!("../../migrations/sqlite/0005_jwt_api.sql"),
    ),
    (
        6,
        "signature_count",
        include_str!("../../migrations/sqlite/0006_signature_count.sql"),
    ),
    (
        7,
        "apps",
        include_str!("../../migrations/sqlite/0007_apps.sql"),
    ),
    (
        8,
        "sila",
        include_str!("../../migrations/sqlite/0008_sila.sql"),
    ),
    (
        9,
        "mpc",
        include_str!("../../migrations/sqlite/0009_mpc.sql"),
    ),
    (
        10,
        "address_claims",
        include_str!("../../migrations/sqlite/0010_address_claims.sql"),
    ),
    (
        11,
        "key_claims",
        include_str!("../../migrations/sqlite/0011_key_claims.sql"),
    ),
    (
        12,
        "bounds",
        include_str!("../../migrations/sqlite/0012_bounds.sql"),
    ),
    (
        15,
        "whitelist_policy",
        include_str!("../../migrations/sqlite/0015_whitelist_policy.sql"),
    ),
    (
        16,
        "transparency_log",
        include_str!("../../migrations/sqlite/0016_transparency_log.sql"),
    ),
    (
        17,
        "ledger_read",
        include_str!("../../migrations/sqlite/0017_ledger_read.sql"),
    ),
    (
        18,
        "ledger_process",
        include_str!("../../migrations/sqlite/0018_ledger_process.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(&'static [Script]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, name, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*name),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Brings the schema up to date. Safe to run concurrently from several
/// processes on PostgreSQL (the migrator takes an advisory lock).
pub async fn run(db: &Db) -> Result<(), StoreError> {
    match db {
        Db::Postgres(pool) => {
            // A migration may build an index over a big table, and may wait for
            // another process's migration (the migrator's lock): the serving
            // pool's statement and lock timeouts do not apply to this session.
            // It is closed afterwards rather than returned to the pool with
            // the limits lifted.
            let mut conn = pool.acquire().await.map_err(StoreError::Connect)?;
            for sql in ["SET statement_timeout = 0", "SET lock_timeout = 0"] {
                sqlx::query(sql)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::Connect)?;
            }
            let result = Migrator::new(Embedded(POSTGRES))
                .await?
                .run_direct(&mut *conn)
                .await;
            let _ = conn.close().await;
            result?
        }
        Db::Sqlite(pool) => Migrator::new(Embedded(SQLITE)).await?.run(pool).await?,
    }
    Ok(())
}
