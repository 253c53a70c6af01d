//! Once-only keys ("nonces"): a key recorded here is refused again until it
//! expires. The Sila replay guard records each request's key; for a request
//! that writes, the key goes into the same transaction as its events, so a
//! request is accepted exactly when its changes are stored.

use std::sync::atomic::{AtomicU32, Ordering};

use walletd_projections::{with_db, Db};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nonce {
    /// Whose key space (a Sila app handle).
    pub scope: String,
    pub key: String,
    /// Epoch seconds.
    pub now: i64,
    pub expires_at: i64,
}

/// Inserts the nonce, or takes over an expired entry; affects no row if the
/// nonce is live. An expired entry may be reused: its request could no longer
/// pass the `created` check anyway.
pub(crate) const ADMIT: &str = "
INSERT INTO request_nonces (app_handle, nonce, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (app_handle, nonce) DO UPDATE SET expires_at = excluded.expires_at
WHERE request_nonces.expires_at < $4";

static ADMITTED: AtomicU32 = AtomicU32::new(0);

/// Records all of `nonces` in one transaction, or none of them: `false` if
/// any is already recorded (a replay).
pub async fn admit(db: &Db, nonces: &[Nonce]) -> Result<bool, sqlx::Error> {
    let Some(first) = nonces.first() else {
        return Ok(true);
    };
    let admitted = with_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut all = true;
        for nonce in nonces {
            all &= sqlx::query(ADMIT)
                .bind(&nonce.scope)
                .bind(&nonce.key)
                .bind(nonce.expires_at)
                .bind(nonce.now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !all {
                break;
            }
        }
        if all {
            tx.commit().await?;
        }
        all
    });
    prune_now_and_then(db, first.now).await?;
    Ok(admitted)
}

/// Whether any of `nonces` is recorded and live: its request was accepted
/// before, or (for a body's nonce) that exact body was answered.
pub async fn any_live(db: &Db, nonces: &[Nonce]) -> Result<bool, sqlx::Error> {
    let Some(first) = nonces.first() else {
        return Ok(false);
    };
    let pairs = (0..nonces.len())
        .map(|i| format!("(app_handle = ${} AND nonce = ${})", 2 * i + 2, 2 * i + 3))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!("SELECT COUNT(*) FROM request_nonces WHERE expires_at >= $1 AND ({pairs})");
    let live: i64 = with_db!(db, pool => {
        let mut query = sqlx::query_scalar(&sql).bind(first.now);
        for nonce in nonces {
            query = query.bind(&nonce.scope).bind(&nonce.key);
        }
        query.fetch_one(pool).await?
    });
    Ok(live > 0)
}

/// Records `nonce` whether or not it was recorded before: used up.
pub async fn burn(db: &Db, nonce: &Nonce) -> Result<(), sqlx::Error> {
    with_db!(db, pool => {
        sqlx::query(ADMIT)
            .bind(&nonce.scope)
            .bind(&nonce.key)
            .bind(nonce.expires_at)
            .bind(nonce.now)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Deletes expired entries on every 1024th admission in this process.
pub(crate) async fn prune_now_and_then(db: &Db, now: i64) -> Result<(), sqlx::Error> {
    if !ADMITTED
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(1024)
    {
        return Ok(());
    }
    with_db!(db, pool => {
        sqlx::query("DELETE FROM request_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}
