//! Read queries the API serves from the projections.

use sqlx::Row;

use crate::db::Db;
use crate::with_db;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletRow {
    pub wallet_id: String,
    /// EIP-55 form.
    pub address: String,
    pub user_id: String,
    pub kind: String,
    pub custody: String,
    pub public_key: Option<String>,
    pub status: String,
    pub whitelist_status: String,
    pub label: Option<String>,
    pub nickname: Option<String>,
    pub is_default: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Copy, Debug)]
pub enum WalletLookup<'a> {
    WalletId(&'a str),
    /// `0x` + 40 lowercase hex digits.
    Address(&'a str),
    /// The server wallet (kind `server`) of a user.
    ServerWalletOf(&'a str),
}

const SELECT: &str = "
SELECT d.wallet_id, d.address_checksum, d.user_id, d.kind, d.custody, d.public_key, d.status,
       d.whitelist_status, d.created_at, d.updated_at,
       u.label, u.nickname, COALESCE(u.is_default, FALSE) AS is_default
  FROM wallet_directory d
  LEFT JOIN user_wallets u ON u.wallet_id = d.wallet_id";

macro_rules! wallet_row_impl {
    ($row:expr) => {{
        let row = $row;
        Ok(WalletRow {
            wallet_id: row.try_get("wallet_id")?,
            address: row.try_get("address_checksum")?,
            user_id: row.try_get("user_id")?,
            kind: row.try_get("kind")?,
            custody: row.try_get("custody")?,
            public_key: row.try_get("public_key")?,
            status: row.try_get("status")?,
            whitelist_status: row.try_get("whitelist_status")?,
            label: row.try_get("label")?,
            nickname: row.try_get("nickname")?,
            is_default: row.try_get("is_default")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }};
}

trait ToWalletRow {
    fn to_wallet_row(&self) -> Result<WalletRow, sqlx::Error>;
}

impl ToWalletRow for sqlx::postgres::PgRow {
    fn to_wallet_row(&self) -> Result<WalletRow, sqlx::Error> {
        wallet_row_impl!(self)
    }
}

impl ToWalletRow for sqlx::sqlite::SqliteRow {
    fn to_wallet_row(&self) -> Result<WalletRow, sqlx::Error> {
        wallet_row_impl!(self)
    }
}

fn wallet_row<R: ToWalletRow>(row: &R) -> Result<WalletRow, sqlx::Error> {
    row.to_wallet_row()
}

pub async fn find_wallet(
    db: &Db,
    lookup: WalletLookup<'_>,
) -> Result<Option<WalletRow>, sqlx::Error> {
    let (sql, key) = match lookup {
        WalletLookup::WalletId(k) => (format!("{SELECT} WHERE d.wallet_id = $1"), k),
        WalletLookup::Address(k) => (
            // One wallet per address (the store's address claims); the order
            // only makes a directory written before that rule deterministic.
            format!("{SELECT} WHERE d.address = $1 ORDER BY d.created_at, d.wallet_id LIMIT 1"),
            k,
        ),
        WalletLookup::ServerWalletOf(k) => (
            format!("{SELECT} WHERE d.user_id = $1 AND d.kind = 'server' LIMIT 1"),
            k,
        ),
    };
    Ok(with_db!(db, pool => {
        match sqlx::query(&sql).bind(key).fetch_optional(pool).await? {
            Some(row) => Some(wallet_row(&row)?),
            None => None,
        }
    }))
}

/// Renders one cell of any column type walletd uses as text.
macro_rules! render_cell_impl {
    ($row:expr, $i:expr) => {{
        let row = $row;
        let i = $i;
        let null = || "NULL".to_string();
        if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v.unwrap_or_else(null)
        } else if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map(|n| n.to_string()).unwrap_or_else(null)
        } else if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
            v.map(|n| n.to_string()).unwrap_or_else(null)
        } else if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
            v.map(|b| b.to_string()).unwrap_or_else(null)
        } else if let Ok(v) = row.try_get::<Option<serde_json::Value>, _>(i) {
            v.map(|j| j.to_string()).unwrap_or_else(null)
        } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
            v.map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
                .unwrap_or_else(null)
        } else {
            "?".to_string()
        }
    }};
}

trait RenderCell {
    fn render(&self, i: usize) -> String;
}

impl RenderCell for sqlx::postgres::PgRow {
    fn render(&self, i: usize) -> String {
        render_cell_impl!(self, i)
    }
}

impl RenderCell for sqlx::sqlite::SqliteRow {
    fn render(&self, i: usize) -> String {
        render_cell_impl!(self, i)
    }
}

fn render_cell<R: RenderCell>(row: &R, i: usize) -> String {
    row.render(i)
}

/// Rows of the given tables, each rendered as text in key order: what the
/// replay check compares between live and rebuilt projections.
pub async fn dump_tables(db: &Db, tables: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    let mut out = Vec::new();
    for table in tables {
        let sql = format!(
            "SELECT {} FROM {table} ORDER BY 1",
            dump_columns(db, table).await?
        );
        with_db!(db, pool => {
            let rows = sqlx::query(&sql).fetch_all(pool).await?;
            // Rows sharing a first column (a composite key's) come in no
            // set order: sorted among themselves, two dumps of the same
            // rows are equal.
            let mut run: Vec<String> = Vec::new();
            let mut run_key: Option<String> = None;
            for row in rows {
                let mut line = format!("{table}:");
                let mut first = None;
                for i in 0..sqlx::Row::len(&row) {
                    let cell = render_cell(&row, i);
                    line.push_str(&cell);
                    line.push('|');
                    first.get_or_insert(cell);
                }
                if first != run_key {
                    run.sort();
                    out.append(&mut run);
                    run_key = first;
                }
                run.push(line);
            }
            run.sort();
            out.append(&mut run);
        });
    }
    Ok(out)
}

/// Every column, with PostgreSQL's `numeric` ones (ledger amounts) cast to
/// text, which the cell renderer reads.
async fn dump_columns(db: &Db, table: &str) -> Result<String, sqlx::Error> {
    let Db::Postgres(pool) = db else {
        return Ok("*".into());
    };
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1
          ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    if columns.is_empty() {
        return Ok("*".into());
    }
    Ok(columns
        .iter()
        .map(|(name, ty)| match ty.as_str() {
            "numeric" => format!("{name}::text AS {name}"),
            _ => name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// Position of the newest event below the log's read horizon (what a caught-up
/// projector has reached), or `None` for an empty log.
pub async fn log_head(db: &Db) -> Result<Option<crate::LogPosition>, sqlx::Error> {
    let sql = match db {
        Db::Postgres(_) => {
            "SELECT tx_id, position FROM events
              WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
              ORDER BY tx_id DESC, position DESC LIMIT 1"
        }
        Db::Sqlite(_) => "SELECT 0 AS tx_id, position FROM events ORDER BY position DESC LIMIT 1",
    };
    Ok(with_db!(db, pool => {
        match sqlx::query(sql).fetch_optional(pool).await? {
            Some(row) => Some(crate::LogPosition {
                tx_id: row.try_get("tx_id")?,
                position: row.try_get("position")?,
            }),
            None => None,
        }
    }))
}

/// A user's wallets, oldest first.
pub async fn user_wallets(db: &Db, user_id: &str) -> Result<Vec<WalletRow>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE d.user_id = $1 ORDER BY d.created_at, d.wallet_id");
    Ok(with_db!(db, pool => {
        let rows = sqlx::query(&sql).bind(user_id).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(wallet_row(&row)?);
        }
        out
    }))
}

/// One event in a wallet's history.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub seq: i64,
    pub event_type: String,
    pub occurred_at: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub auth_method: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub payload: String,
}

/// How many signatures walletd has made with a wallet (from the audit log).
pub async fn signature_count(db: &Db, wallet_id: &str) -> Result<i64, sqlx::Error> {
    Ok(with_db!(db, pool => {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM audit_log WHERE wallet_id = $1 AND event_type = 'MessageSigned'",
        )
        .bind(wallet_id)
        .fetch_one(pool)
        .await?
        .try_get("n")?
    }))
}

/// A page of a wallet's events, newest first, and the total count.
pub async fn wallet_history(
    db: &Db,
    wallet_id: &str,
    page: i64,
    per_page: i64,
) -> Result<(Vec<HistoryEntry>, i64), sqlx::Error> {
    // Saturating: callers cap `page`, and no page may wrap into a negative OFFSET.
    let offset = page
        .max(1)
        .saturating_sub(1)
        .saturating_mul(per_page.max(0));
    Ok(with_db!(db, pool => {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE wallet_id = $1")
            .bind(wallet_id)
            .fetch_one(pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(
            "SELECT seq, event_type, occurred_at, actor, role, auth_method, request_id, client_addr, payload
               FROM audit_log WHERE wallet_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3",
        )
        .bind(wallet_id)
        .bind(per_page)
        .bind(offset)
        .fetch_all(pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(HistoryEntry {
                seq: r.try_get("seq")?,
                event_type: r.try_get("event_type")?,
                occurred_at: r.try_get("occurred_at")?,
                actor: r.try_get("actor")?,
                role: r.try_get("role")?,
                auth_method: r.try_get("auth_method")?,
                request_id: r.try_get("request_id")?,
                client_addr: r.try_get("client_addr")?,
                payload: r.try_get("payload")?,
            });
        }
        (out, total)
    }))
}

/// Wallets whose whitelist delay has passed at `now` (RFC 3339, the stored
/// fixed-width form), oldest first.
pub async fn due_for_whitelist(db: &Db, now: &str, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    Ok(with_db!(db, pool => {
        let rows = sqlx::query(
            "SELECT wallet_id FROM whitelist_queue
              WHERE status = 'queued' AND eligible_at <= $1
              ORDER BY eligible_at, wallet_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(r.try_get("wallet_id")?);
        }
        out
    }))
}

/// When the next queued wallet becomes due, if any is queued.
pub async fn next_whitelist_due(db: &Db) -> Result<Option<String>, sqlx::Error> {
    Ok(with_db!(db, pool => {
        sqlx::query("SELECT MIN(eligible_at) AS due FROM whitelist_queue WHERE status = 'queued'")
            .fetch_one(pool)
            .await?
            .try_get::<Option<String>, _>("due")?
    }))
}

/// The whitelist queue at `now`: how many wallets are queued, how many of
/// them are due, and when the longest-due one became due.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhitelistQueueStats {
    pub queued: i64,
    pub due: i64,
    /// `eligible_at` of the oldest due entry, `None` when none is due.
    pub oldest_due: Option<String>,
}

pub async fn whitelist_queue_stats(db: &Db, now: &str) -> Result<WhitelistQueueStats, sqlx::Error> {
    Ok(with_db!(db, pool => {
        let row = sqlx::query(
            "SELECT COUNT(*) AS queued,
                    COUNT(CASE WHEN eligible_at <= $1 THEN 1 END) AS due,
                    MIN(CASE WHEN eligible_at <= $1 THEN eligible_at END) AS oldest_due
               FROM whitelist_queue WHERE status = 'queued'",
        )
        .bind(now)
        .fetch_one(pool)
        .await?;
        WhitelistQueueStats {
            queued: row.try_get("queued")?,
            due: row.try_get("due")?,
            oldest_due: row.try_get("oldest_due")?,
        }
    }))
}

/// Every app with its signing addresses (EIP-55), by handle.
pub async fn apps(db: &Db) -> Result<Vec<(String, Vec<String>)>, sqlx::Error> {
    let rows: Vec<(String, String)> = with_db!(db, pool => {
        let rows = sqlx::query("SELECT handle, address_checksum FROM app_addresses ORDER BY handle, added_at, address")
            .fetch_all(pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.try_get("handle")?, r.try_get("address_checksum")?));
        }
        out
    });
    let mut apps: Vec<(String, Vec<String>)> = Vec::new();
    for (handle, address) in rows {
        match apps.last_mut() {
            Some((h, list)) if *h == handle => list.push(address),
            _ => apps.push((handle, vec![address])),
        }
    }
    Ok(apps)
}
