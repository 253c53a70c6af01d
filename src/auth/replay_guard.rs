//! Replay protection for signed Sila requests. A request is accepted only if
//! its `created` lies inside the window, and each (app, reference) — or, with
//! no reference, each exact body — is accepted once while it could still pass
//! that check. The nonce table lives in the shared database, so every walletd
//! process sharing it refuses the replay, and the primary key settles races.

use std::sync::atomic::{AtomicU32, Ordering};

use walletd_projections::{with_db, Db};

static ADMITTED: AtomicU32 = AtomicU32::new(0);

/// Records nonce `nonce` of app `app` until `expires_at` (epoch seconds).
/// `false` if it is already recorded and not yet expired: a replay.
pub async fn admit(
    db: &Db,
    app: &str,
    nonce: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    // An expired entry may be reused: its request could no longer pass the
    // `created` check anyway.
    let sql = "INSERT INTO request_nonces (app_handle, nonce, expires_at) VALUES ($1, $2, $3)
               ON CONFLICT (app_handle, nonce) DO UPDATE SET expires_at = excluded.expires_at
               WHERE request_nonces.expires_at < $4";
    let admitted = with_db!(db, pool => {
        sqlx::query(sql)
            .bind(app)
            .bind(nonce)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
            == 1
    });
    if ADMITTED.fetch_add(1, Ordering::Relaxed) % 1024 == 0 {
        prune(db, now).await?;
    }
    Ok(admitted)
}

async fn prune(db: &Db, now: i64) -> Result<(), sqlx::Error> {
    with_db!(db, pool => {
        sqlx::query("DELETE FROM request_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}
