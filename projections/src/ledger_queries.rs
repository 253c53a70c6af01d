//! Read queries of the ledger: a wallet's balances, its movement history
//! (paged newest first), and supply per asset. Amounts come back as `u128`
//! minor units; they are stored as `NUMERIC(39,0)` (PostgreSQL) or decimal
//! text (SQLite) and read as text on both.

use sqlx::Row;

use crate::db::Db;
use crate::views::ledger::parse_amount;
use crate::with_db;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceRow {
    pub asset: String,
    pub decimals: u8,
    pub balance: u128,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovementRow {
    pub wallet_id: String,
    pub movement_id: String,
    /// `issue`, `transfer_out`, `transfer_in`, `return` or `redeem`.
    pub kind: String,
    pub asset: String,
    pub decimals: u8,
    pub amount: u128,
    /// The other wallet of a transfer or return; the external reference of
    /// an issue or a redemption.
    pub counterparty: String,
    /// `pending`, `settled` or `returned`.
    pub status: String,
    pub memo: Option<String>,
    pub requested_by: Option<String>,
    pub reason: Option<String>,
    pub at: String,
    pub updated_at: String,
    /// Rank in the global log order: newer movements have larger ones.
    pub seq: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupplyRow {
    pub asset: String,
    pub decimals: u8,
    pub issued: u128,
    pub redeemed: u128,
    pub in_transit: u128,
    pub updated_at: String,
}

/// Which of a wallet's movements, newest first.
#[derive(Clone, Debug)]
pub struct MovementPage<'a> {
    pub kind: Option<&'a str>,
    /// Only movements older than this `seq` (a cursor: the last row's seq).
    pub before_seq: Option<i64>,
    /// Rows to skip (page-number paging).
    pub offset: i64,
    pub limit: i64,
    /// Only movements recorded at or after this time (inclusive), in the
    /// stored `at` form (RFC 3339, UTC, microseconds), compared as text.
    pub from_at: Option<&'a str>,
    /// Only movements recorded before this time (exclusive), same form.
    pub to_at: Option<&'a str>,
}

impl Default for MovementPage<'_> {
    fn default() -> Self {
        Self {
            kind: None,
            before_seq: None,
            offset: 0,
            limit: 50,
            from_at: None,
            to_at: None,
        }
    }
}

fn amount(text: String) -> Result<u128, sqlx::Error> {
    parse_amount(&text)
        .ok_or_else(|| sqlx::Error::Decode(format!("a stored amount {text:?} is malformed").into()))
}

fn decimals(n: i64) -> Result<u8, sqlx::Error> {
    u8::try_from(n).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The wallet's balance of every asset it has held, by asset code.
pub async fn wallet_balances(db: &Db, wallet_id: &str) -> Result<Vec<BalanceRow>, sqlx::Error> {
    const SQL: &str = "SELECT asset, decimals, CAST(balance AS TEXT) AS balance, updated_at
                         FROM ledger_balances WHERE wallet_id = $1 ORDER BY asset";
    Ok(with_db!(db, pool => {
        let mut out = Vec::new();
        for row in sqlx::query(SQL).bind(wallet_id).fetch_all(pool).await? {
            out.push(BalanceRow {
                asset: row.try_get("asset")?,
                decimals: decimals(row.try_get("decimals")?)?,
                balance: amount(row.try_get("balance")?)?,
                updated_at: row.try_get("updated_at")?,
            });
        }
        out
    }))
}

const MOVEMENT_COLUMNS: &str = "wallet_id, movement_id, kind, asset, decimals,
    CAST(amount AS TEXT) AS amount, counterparty, status, memo, requested_by, reason, at,
    updated_at, seq";

/// `WHERE` over a wallet's movements; the placeholders are numbered in the
/// order they appear (SQLite numbers `$n` by first appearance).
fn movement_filter(page: &MovementPage<'_>) -> (String, usize) {
    let mut sql = String::from(" WHERE wallet_id = $1");
    let mut n = 1;
    if page.kind.is_some() {
        n += 1;
        sql.push_str(&format!(" AND kind = ${n}"));
    }
    if page.before_seq.is_some() {
        n += 1;
        sql.push_str(&format!(" AND seq < ${n}"));
    }
    if page.from_at.is_some() {
        n += 1;
        sql.push_str(&format!(" AND at >= ${n}"));
    }
    if page.to_at.is_some() {
        n += 1;
        sql.push_str(&format!(" AND at < ${n}"));
    }
    (sql, n)
}

/// Binds [`movement_filter`]'s parameters after the wallet id, in its order.
macro_rules! bind_filter {
    ($q:expr, $page:expr) => {{
        let mut q = $q;
        if let Some(kind) = $page.kind {
            q = q.bind(kind);
        }
        if let Some(seq) = $page.before_seq {
            q = q.bind(seq);
        }
        if let Some(from) = $page.from_at {
            q = q.bind(from);
        }
        if let Some(to) = $page.to_at {
            q = q.bind(to);
        }
        q
    }};
}

/// A page of the wallet's movements, newest first.
pub async fn wallet_movements(
    db: &Db,
    wallet_id: &str,
    page: &MovementPage<'_>,
) -> Result<Vec<MovementRow>, sqlx::Error> {
    let (filter, n) = movement_filter(page);
    let sql = format!(
        "SELECT {MOVEMENT_COLUMNS} FROM ledger_movements{filter}
          ORDER BY seq DESC, kind LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    Ok(with_db!(db, pool => {
        let q = bind_filter!(sqlx::query(&sql).bind(wallet_id), page);
        let rows = q.bind(page.limit.max(0)).bind(page.offset.max(0)).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(movement_row(&row)?);
        }
        out
    }))
}

/// Every wallet's balance of every asset: (wallet id, balance).
pub async fn all_balances(db: &Db) -> Result<Vec<(String, BalanceRow)>, sqlx::Error> {
    const SQL: &str =
        "SELECT wallet_id, asset, decimals, CAST(balance AS TEXT) AS balance, updated_at
                         FROM ledger_balances ORDER BY wallet_id, asset";
    Ok(with_db!(db, pool => {
        let mut out = Vec::new();
        for row in sqlx::query(SQL).fetch_all(pool).await? {
            out.push((row.try_get("wallet_id")?, BalanceRow {
                asset: row.try_get("asset")?,
                decimals: decimals(row.try_get("decimals")?)?,
                balance: amount(row.try_get("balance")?)?,
                updated_at: row.try_get("updated_at")?,
            }));
        }
        out
    }))
}

/// Every row of one movement: a transfer has one on each wallet, and a
/// `return` row on the source when it came back.
pub async fn movement_rows(db: &Db, movement_id: &str) -> Result<Vec<MovementRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {MOVEMENT_COLUMNS} FROM ledger_movements WHERE movement_id = $1 ORDER BY seq, kind"
    );
    Ok(with_db!(db, pool => {
        let rows = sqlx::query(&sql).bind(movement_id).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(movement_row(&row)?);
        }
        out
    }))
}

/// How many movements [`wallet_movements`] pages through (the cursor and
/// offset aside): the total a paged answer reports.
pub async fn count_movements(
    db: &Db,
    wallet_id: &str,
    kind: Option<&str>,
) -> Result<i64, sqlx::Error> {
    let page = MovementPage {
        kind,
        ..MovementPage::default()
    };
    let (filter, _) = movement_filter(&page);
    let sql = format!("SELECT COUNT(*) AS n FROM ledger_movements{filter}");
    Ok(with_db!(db, pool => {
        let mut q = sqlx::query(&sql).bind(wallet_id);
        if let Some(kind) = kind {
            q = q.bind(kind);
        }
        q.fetch_one(pool).await?.try_get("n")?
    }))
}

/// Movements of several wallets at once (a Sila user's wallets), with the
/// filters Sila's `get_transactions` offers. Empty lists filter nothing.
#[derive(Clone, Debug, Default)]
pub struct MovementSearch<'a> {
    pub wallet_ids: &'a [String],
    pub kinds: &'a [&'a str],
    pub statuses: &'a [&'a str],
    pub movement_id: Option<&'a str>,
    /// As in [`MovementPage`]: `since` ≤ `at` < `until`, stored RFC 3339.
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
}

/// `WHERE` and its text binds, numbered from `$1` in order of appearance.
fn search_filter(s: &MovementSearch<'_>) -> (String, Vec<String>) {
    let mut binds: Vec<String> = Vec::new();
    let any_of = |column: &str, values: &[String], binds: &mut Vec<String>| {
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                binds.push(v.clone());
                format!("${}", binds.len())
            })
            .collect();
        format!(" AND {column} IN ({})", marks.join(", "))
    };
    let mut sql = String::from(" WHERE 1 = 1");
    // No wallet: nothing matches (not every wallet).
    if s.wallet_ids.is_empty() {
        sql.push_str(" AND 1 = 0");
    } else {
        sql.push_str(&any_of("wallet_id", s.wallet_ids, &mut binds));
    }
    let owned = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    if !s.kinds.is_empty() {
        sql.push_str(&any_of("kind", &owned(s.kinds), &mut binds));
    }
    if !s.statuses.is_empty() {
        sql.push_str(&any_of("status", &owned(s.statuses), &mut binds));
    }
    for (column, op, value) in [
        ("movement_id", "=", s.movement_id),
        ("at", ">=", s.since),
        ("at", "<", s.until),
    ] {
        if let Some(v) = value {
            binds.push(v.to_string());
            sql.push_str(&format!(" AND {column} {op} ${}", binds.len()));
        }
    }
    (sql, binds)
}

/// One page of [`MovementSearch`] and how many rows match in all.
pub async fn search_movements(
    db: &Db,
    search: &MovementSearch<'_>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<MovementRow>, i64), sqlx::Error> {
    let (filter, binds) = search_filter(search);
    let order = if search.ascending { "ASC" } else { "DESC" };
    let n = binds.len();
    let sql = format!(
        "SELECT {MOVEMENT_COLUMNS} FROM ledger_movements{filter}
          ORDER BY seq {order}, wallet_id, kind LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let count_sql = format!("SELECT COUNT(*) AS n FROM ledger_movements{filter}");
    Ok(with_db!(db, pool => {
        let mut q = sqlx::query(&sql);
        let mut c = sqlx::query(&count_sql);
        for b in &binds {
            q = q.bind(b);
            c = c.bind(b);
        }
        let rows = q.bind(limit.max(0)).bind(offset.max(0)).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(movement_row(&row)?);
        }
        let total: i64 = c.fetch_one(pool).await?.try_get("n")?;
        (out, total)
    }))
}

/// How many movements match `page`'s filters (kind, cursor, time range;
/// offset and limit aside): the total a filtered, paged answer reports.
pub async fn count_page(
    db: &Db,
    wallet_id: &str,
    page: &MovementPage<'_>,
) -> Result<i64, sqlx::Error> {
    let (filter, _) = movement_filter(page);
    let sql = format!("SELECT COUNT(*) AS n FROM ledger_movements{filter}");
    Ok(with_db!(db, pool => {
        bind_filter!(sqlx::query(&sql).bind(wallet_id), page)
            .fetch_one(pool)
            .await?
            .try_get("n")?
    }))
}

/// The balance of `asset` of each of `wallet_ids` that has held it, by
/// wallet id (absent: never held it), in one query per
/// [`BALANCE_BATCH`] wallets: for answers listing many wallets.
pub async fn balances_of(
    db: &Db,
    wallet_ids: &[String],
    asset: &str,
) -> Result<std::collections::HashMap<String, u128>, sqlx::Error> {
    let mut out = std::collections::HashMap::with_capacity(wallet_ids.len());
    for chunk in wallet_ids.chunks(BALANCE_BATCH) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT wallet_id, CAST(balance AS TEXT) AS balance FROM ledger_balances
              WHERE asset = $1 AND wallet_id IN ({})",
            placeholders.join(", ")
        );
        with_db!(db, pool => {
            let mut q = sqlx::query(&sql).bind(asset);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(pool).await? {
                out.insert(row.try_get("wallet_id")?, amount(row.try_get("balance")?)?);
            }
        });
    }
    Ok(out)
}

/// Wallets per [`balances_of`] query: well below both backends' limits on
/// bound parameters.
pub const BALANCE_BATCH: usize = 500;

/// Issued, redeemed and in transit for every asset, by asset code.
pub async fn supply(db: &Db) -> Result<Vec<SupplyRow>, sqlx::Error> {
    const SQL: &str = "SELECT asset, decimals, CAST(issued AS TEXT) AS issued,
                              CAST(redeemed AS TEXT) AS redeemed,
                              CAST(in_transit AS TEXT) AS in_transit, updated_at
                         FROM ledger_supply ORDER BY asset";
    Ok(with_db!(db, pool => {
        let mut out = Vec::new();
        for row in sqlx::query(SQL).fetch_all(pool).await? {
            out.push(SupplyRow {
                asset: row.try_get("asset")?,
                decimals: decimals(row.try_get("decimals")?)?,
                issued: amount(row.try_get("issued")?)?,
                redeemed: amount(row.try_get("redeemed")?)?,
                in_transit: amount(row.try_get("in_transit")?)?,
                updated_at: row.try_get("updated_at")?,
            });
        }
        out
    }))
}

fn movement_row<R: Row>(row: &R) -> Result<MovementRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(MovementRow {
        wallet_id: row.try_get("wallet_id")?,
        movement_id: row.try_get("movement_id")?,
        kind: row.try_get("kind")?,
        asset: row.try_get("asset")?,
        decimals: decimals(row.try_get("decimals")?)?,
        amount: amount(row.try_get("amount")?)?,
        counterparty: row.try_get("counterparty")?,
        status: row.try_get("status")?,
        memo: row.try_get("memo")?,
        requested_by: row.try_get("requested_by")?,
        reason: row.try_get("reason")?,
        at: row.try_get("at")?,
        updated_at: row.try_get("updated_at")?,
        seq: row.try_get("seq")?,
    })
}
