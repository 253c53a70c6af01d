//! How far the projections trail the event log.
//!
//! Lag is measured from the log itself, not from the read horizon: on
//! PostgreSQL a long-running transaction anywhere in the cluster holds the
//! horizon (`pg_snapshot_xmin`) back, and the events committed after it are
//! exactly the ones the projector cannot read yet. Counting every event past
//! the projector's checkpoint shows that; counting below the horizon would
//! report "caught up" through the whole stall.

use sqlx::Row;

use crate::db::Db;
use crate::log::LogPosition;

/// Counting stops here: a lag this large is an incident whatever its exact size,
/// and the count must stay cheap enough for a health check.
pub const COUNT_CAP: i64 = 1_000_000;

/// Events committed but not yet projected, and the age of the oldest of them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lag {
    /// At most [`COUNT_CAP`].
    pub events: i64,
    /// Age of the oldest unprojected event in seconds (0 when there is none).
    pub seconds: f64,
}

impl Lag {
    pub fn is_zero(&self) -> bool {
        self.events == 0
    }
}

const PG_LAG: &str = "
SELECT COUNT(*) AS n,
       EXTRACT(EPOCH FROM clock_timestamp() - MIN(recorded_at))::float8 AS age
  FROM (SELECT recorded_at FROM events
         WHERE (tx_id, position) > ($1, $2)
         ORDER BY tx_id, position
         LIMIT $3) behind";

const SQLITE_LAG: &str = "
SELECT COUNT(*) AS n,
       (julianday('now') - julianday(MIN(recorded_at))) * 86400.0 AS age
  FROM (SELECT recorded_at FROM events
         WHERE position > $2 AND $1 = 0
         ORDER BY position
         LIMIT $3) behind";

/// The projections' lag behind the log, for a projector at `at`.
pub async fn measure(db: &Db, at: LogPosition) -> Result<Lag, sqlx::Error> {
    let sql = match db {
        Db::Postgres(_) => PG_LAG,
        Db::Sqlite(_) => SQLITE_LAG,
    };
    let (events, age): (i64, Option<f64>) = crate::with_db!(db, pool => {
        let row = sqlx::query(sql)
            .bind(at.tx_id)
            .bind(at.position)
            .bind(COUNT_CAP)
            .fetch_one(pool)
            .await?;
        (row.try_get("n")?, row.try_get("age")?)
    });
    Ok(Lag {
        events,
        seconds: age.filter(|a| a.is_finite()).unwrap_or(0.0).max(0.0),
    })
}

/// Each named projection's lag, measured from its own checkpoint (read from
/// the database, so every process on it sees the same). Projections at the
/// same checkpoint (the usual case: one pass advances them together) share
/// one measurement. A name without a checkpoint row is left out.
pub async fn per_projection(
    db: &Db,
    names: &[&'static str],
) -> Result<Vec<(&'static str, Lag)>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = crate::with_db!(db, pool => {
        let rows = sqlx::query("SELECT name, tx_id, position FROM projection_checkpoints")
            .fetch_all(pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((row.try_get("name")?, row.try_get("tx_id")?, row.try_get("position")?));
        }
        out
    });
    let mut measured: Vec<(LogPosition, Lag)> = Vec::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Some((_, tx_id, position)) = rows.iter().find(|(n, ..)| n == name) else {
            continue;
        };
        let at = LogPosition {
            tx_id: *tx_id,
            position: *position,
        };
        let lag = match measured.iter().find(|(p, _)| *p == at) {
            Some((_, lag)) => *lag,
            None => {
                let lag = measure(db, at).await?;
                measured.push((at, lag));
                lag
            }
        };
        out.push((*name, lag));
    }
    Ok(out)
}

/// The oldest transaction in the PostgreSQL cluster that holds a transaction
/// id, and so the read horizon: what an operator has to end when projections
/// stall. `None` on SQLite or when there is none.
#[derive(Clone, Debug)]
pub struct HorizonHolder {
    pub pid: i32,
    pub database: Option<String>,
    pub application: Option<String>,
    pub state: Option<String>,
    pub seconds: f64,
}

pub async fn horizon_holder(db: &Db) -> Result<Option<HorizonHolder>, sqlx::Error> {
    let Db::Postgres(pool) = db else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT pid, datname, application_name, state,
                EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float8 AS age
           FROM pg_stat_activity
          WHERE backend_xid IS NOT NULL AND xact_start IS NOT NULL
          ORDER BY xact_start
          LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(HorizonHolder {
        pid: row.try_get("pid")?,
        database: row.try_get("datname")?,
        application: row.try_get("application_name")?,
        state: row.try_get("state")?,
        seconds: row.try_get::<Option<f64>, _>("age")?.unwrap_or(0.0),
    }))
}

/// The lowest checkpoint of the named projections (`START` when none has a
/// row): where all of them have applied the log to.
pub async fn lowest_checkpoint(db: &Db, names: &[&str]) -> Result<LogPosition, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = crate::with_db!(db, pool => {
        let rows = sqlx::query("SELECT name, tx_id, position FROM projection_checkpoints")
            .fetch_all(pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((row.try_get("name")?, row.try_get("tx_id")?, row.try_get("position")?));
        }
        out
    });
    Ok(rows
        .into_iter()
        .filter(|(n, ..)| names.contains(&n.as_str()))
        .map(|(_, tx_id, position)| LogPosition { tx_id, position })
        .min()
        .unwrap_or(LogPosition::START))
}
