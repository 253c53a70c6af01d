//! Read queries of the Sila API: users, their wallets, app signing addresses.

use sqlx::Row;

use crate::db::Db;
use crate::with_db;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilaUserRow {
    pub handle: String,
    pub user_id: String,
    pub app_handle: String,
    pub kyc_status: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilaWalletRow {
    pub wallet_id: String,
    pub handle: String,
    /// `0x` + 40 lowercase hex digits.
    pub address: String,
    pub nickname: String,
    pub is_default: bool,
    pub statements_enabled: bool,
    pub is_whitelisted: bool,
}

/// `get_wallets` search filters, already validated.
#[derive(Clone, Debug, Default)]
pub struct WalletSearch {
    pub handle: String,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
    pub ascending: bool,
    /// Lowercase hex.
    pub address: Option<String>,
    /// Case-insensitive substring.
    pub nickname: Option<String>,
    pub wallet_id: Option<String>,
}

const WALLET_COLUMNS: &str = "
SELECT w.wallet_id, w.handle, w.address, w.nickname, w.is_default, w.statements_enabled,
       COALESCE(q.status = 'whitelisted', FALSE) AS is_whitelisted
  FROM sila_wallets w
  LEFT JOIN whitelist_queue q ON q.wallet_id = w.wallet_id";

macro_rules! wallet_row {
    ($row:expr) => {{
        let row = $row;
        SilaWalletRow {
            wallet_id: row.try_get("wallet_id")?,
            handle: row.try_get("handle")?,
            address: row.try_get("address")?,
            nickname: row.try_get("nickname")?,
            is_default: row.try_get("is_default")?,
            statements_enabled: row.try_get("statements_enabled")?,
            is_whitelisted: row.try_get("is_whitelisted")?,
        }
    }};
}

pub async fn sila_user(db: &Db, handle: &str) -> Result<Option<SilaUserRow>, sqlx::Error> {
    Ok(with_db!(db, pool => {
        match sqlx::query(
            "SELECT handle, user_id, app_handle, kyc_status FROM sila_users WHERE handle = $1",
        )
        .bind(handle)
        .fetch_optional(pool)
        .await?
        {
            Some(row) => Some(SilaUserRow {
                handle: row.try_get("handle")?,
                user_id: row.try_get("user_id")?,
                app_handle: row.try_get("app_handle")?,
                kyc_status: row.try_get("kyc_status")?,
            }),
            None => None,
        }
    }))
}

/// The live Sila wallet with this address, whoever owns it.
pub async fn sila_wallet_by_address(
    db: &Db,
    address: &str,
) -> Result<Option<SilaWalletRow>, sqlx::Error> {
    let sql = format!("{WALLET_COLUMNS} WHERE w.address = $1");
    Ok(with_db!(db, pool => {
        match sqlx::query(&sql).bind(address).fetch_optional(pool).await? {
            Some(row) => Some(wallet_row!(row)),
            None => None,
        }
    }))
}

/// The live Sila wallet with this id, whoever owns it.
pub async fn sila_wallet_by_id(
    db: &Db,
    wallet_id: &str,
) -> Result<Option<SilaWalletRow>, sqlx::Error> {
    let sql = format!("{WALLET_COLUMNS} WHERE w.wallet_id = $1");
    Ok(with_db!(db, pool => {
        match sqlx::query(&sql).bind(wallet_id).fetch_optional(pool).await? {
            Some(row) => Some(wallet_row!(row)),
            None => None,
        }
    }))
}

/// One page of a user's wallets and the number of wallets that match.
pub async fn search_sila_wallets(
    db: &Db,
    search: &WalletSearch,
) -> Result<(Vec<SilaWalletRow>, i64), sqlx::Error> {
    // Absent filters are NULL and match everything, so the statement is fixed.
    let filter = "WHERE w.handle = $1
         AND ($2 IS NULL OR w.address = $2)
         AND ($3 IS NULL OR w.nickname_key LIKE $3 ESCAPE '\\')
         AND ($4 IS NULL OR w.wallet_id = $4)";
    let order = if search.ascending { "ASC" } else { "DESC" };
    let page_sql = format!("{WALLET_COLUMNS} {filter} ORDER BY w.seq {order} LIMIT $5 OFFSET $6");
    let count_sql = format!("SELECT COUNT(*) AS n FROM sila_wallets w {filter}");
    let pattern = search.nickname.as_ref().map(|n| {
        let escaped = n
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let offset = (search.page.max(1) - 1).saturating_mul(search.per_page);
    Ok(with_db!(db, pool => {
        let total: i64 = sqlx::query(&count_sql)
            .bind(&search.handle)
            .bind(&search.address)
            .bind(&pattern)
            .bind(&search.wallet_id)
            .fetch_one(pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&page_sql)
            .bind(&search.handle)
            .bind(&search.address)
            .bind(&pattern)
            .bind(&search.wallet_id)
            .bind(search.per_page)
            .bind(offset)
            .fetch_all(pool)
            .await?;
        let mut wallets = Vec::with_capacity(rows.len());
        for row in rows {
            wallets.push(wallet_row!(row));
        }
        (wallets, total)
    }))
}

/// Whether `address` (lowercase hex) is a signing address of app `handle`.
pub async fn app_has_address(db: &Db, handle: &str, address: &str) -> Result<bool, sqlx::Error> {
    Ok(with_db!(db, pool => {
        sqlx::query("SELECT 1 AS one FROM app_addresses WHERE handle = $1 AND address = $2")
            .bind(handle)
            .bind(address)
            .fetch_optional(pool)
            .await?
            .is_some()
    }))
}

/// Whether app `handle` exists.
pub async fn app_exists(db: &Db, handle: &str) -> Result<bool, sqlx::Error> {
    Ok(with_db!(db, pool => {
        sqlx::query("SELECT 1 AS one FROM app_addresses WHERE handle = $1 LIMIT 1")
            .bind(handle)
            .fetch_optional(pool)
            .await?
            .is_some()
    }))
}
