//! Loading and writing a pass's rows in bulk, per backend.
//!
//! PostgreSQL: one statement per table and direction, whatever the number of
//! rows: each column travels as one array parameter (`unnest`), so the
//! server neither parses thousands of literals nor plans a VALUES list per
//! row. SQLite runs in-process, where a statement costs no round trip, so it
//! takes rows one by one (inserts a few hundred to a statement).

use sqlx::postgres::PgArguments;
use sqlx::{PgConnection, Row as _, SqliteConnection};

use crate::stmt::Val;
use crate::table::{ColType, Table};
use crate::write_set::{Need, Row, Writes};
use crate::ProjectionError;

/// Loading and writing on a connection of either backend.
pub(crate) trait BulkConn {
    async fn load(&mut self, table: &Table, need: &Need) -> Result<Vec<Row>, ProjectionError>;
    async fn write(&mut self, table: &Table, writes: &Writes) -> Result<(), ProjectionError>;
}

impl BulkConn for PgConnection {
    async fn load(&mut self, table: &Table, need: &Need) -> Result<Vec<Row>, ProjectionError> {
        load_pg(self, table, need).await
    }
    async fn write(&mut self, table: &Table, writes: &Writes) -> Result<(), ProjectionError> {
        write_pg(self, table, writes).await
    }
}

impl BulkConn for SqliteConnection {
    async fn load(&mut self, table: &Table, need: &Need) -> Result<Vec<Row>, ProjectionError> {
        load_sqlite(self, table, need).await
    }
    async fn write(&mut self, table: &Table, writes: &Writes) -> Result<(), ProjectionError> {
        write_sqlite(self, table, writes).await
    }
}

fn bad(table: &Table, what: &str) -> ProjectionError {
    ProjectionError::BadStatement(format!("{}: {what}", table.name))
}

/// Binds one column of values as a PostgreSQL array of the column's type.
fn bind_array<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, PgArguments>,
    table: &Table,
    ty: ColType,
    vals: impl Iterator<Item = &'q Val>,
) -> Result<sqlx::query::Query<'q, sqlx::Postgres, PgArguments>, ProjectionError> {
    Ok(match ty {
        ColType::Int => q.bind(
            vals.map(|v| match v {
                Val::Int(n) => Ok(*n),
                _ => Err(bad(table, "a number column holds another type")),
            })
            .collect::<Result<Vec<i64>, _>>()?,
        ),
        ColType::Bool => q.bind(
            vals.map(|v| match v {
                Val::Bool(b) => Ok(*b),
                _ => Err(bad(table, "a boolean column holds another type")),
            })
            .collect::<Result<Vec<bool>, _>>()?,
        ),
        ColType::Text | ColType::OptText | ColType::Amount => q.bind(
            vals.map(|v| match v {
                Val::Text(t) | Val::OptText(Some(t)) => Ok(Some(t.as_str())),
                Val::OptText(None) if ty == ColType::OptText => Ok(None),
                _ => Err(bad(table, "a text column holds another type")),
            })
            .collect::<Result<Vec<Option<&str>>, _>>()?,
        ),
    })
}

/// `unnest($first::T[], ...)` over the given columns.
fn unnest(table: &Table, cols: &[usize], first: usize) -> String {
    let args: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(n, &c)| format!("${}::{}", first + n, table.columns[c].ty.pg_array()))
        .collect();
    format!("unnest({})", args.join(", "))
}

macro_rules! decode_row {
    ($table:expr, $row:expr) => {{
        let mut out: Row = Vec::with_capacity($table.columns.len());
        for (i, c) in $table.columns.iter().enumerate() {
            out.push(match c.ty {
                ColType::Int => Val::Int($row.try_get(i)?),
                ColType::Text | ColType::Amount => Val::Text($row.try_get(i)?),
                ColType::OptText => Val::OptText($row.try_get(i)?),
                ColType::Bool => Val::Bool($row.try_get(i)?),
            });
        }
        out
    }};
}

async fn load_pg(
    conn: &mut PgConnection,
    table: &Table,
    need: &Need,
) -> Result<Vec<Row>, ProjectionError> {
    let mut rows = Vec::new();
    if !need.keys.is_empty() {
        let sql = format!(
            "SELECT {} FROM {} WHERE ({}) IN (SELECT * FROM {})",
            table.select_list(),
            table.name,
            table.key_list(),
            unnest(table, table.key, 1)
        );
        let mut q = sqlx::query(&sql);
        for (n, &c) in table.key.iter().enumerate() {
            q = bind_array(
                q,
                table,
                table.columns[c].ty,
                need.keys.iter().map(move |k| &k[n]),
            )?;
        }
        for row in q.fetch_all(&mut *conn).await? {
            rows.push(decode_row!(table, row));
        }
    }
    for (c, vals) in &need.by {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ANY($1::{})",
            table.select_list(),
            table.name,
            table.columns[*c].name,
            table.columns[*c].ty.pg_array()
        );
        let q = bind_array(sqlx::query(&sql), table, table.columns[*c].ty, vals.iter())?;
        for row in q.fetch_all(&mut *conn).await? {
            rows.push(decode_row!(table, row));
        }
    }
    Ok(rows)
}

async fn write_pg(
    conn: &mut PgConnection,
    table: &Table,
    writes: &Writes,
) -> Result<(), ProjectionError> {
    if !writes.delete.is_empty() {
        let sql = format!(
            "DELETE FROM {} WHERE ({}) IN (SELECT * FROM {})",
            table.name,
            table.key_list(),
            unnest(table, table.key, 1)
        );
        let mut q = sqlx::query(&sql);
        for (n, &c) in table.key.iter().enumerate() {
            q = bind_array(
                q,
                table,
                table.columns[c].ty,
                writes.delete.iter().map(move |k| &k[n]),
            )?;
        }
        q.execute(&mut *conn).await?;
    }
    if !writes.insert.is_empty() {
        let all: Vec<usize> = (0..table.columns.len()).collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM {} ON CONFLICT DO NOTHING",
            table.name,
            table.column_list(),
            unnest(table, &all, 1)
        );
        let mut q = sqlx::query(&sql);
        for (c, column) in table.columns.iter().enumerate() {
            q = bind_array(
                q,
                table,
                column.ty,
                writes.insert.iter().map(move |r| &r[c]),
            )?;
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

fn bind_sqlite<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    v: &'q Val,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    match v {
        Val::Int(n) => q.bind(*n),
        Val::Text(t) => q.bind(t.as_str()),
        Val::OptText(t) => q.bind(t.as_deref()),
        Val::Bool(b) => q.bind(*b),
    }
}

fn key_match(table: &Table) -> String {
    table
        .key
        .iter()
        .map(|&i| format!("{} = ?", table.columns[i].name))
        .collect::<Vec<_>>()
        .join(" AND ")
}

async fn load_sqlite(
    conn: &mut SqliteConnection,
    table: &Table,
    need: &Need,
) -> Result<Vec<Row>, ProjectionError> {
    let mut rows = Vec::new();
    let by_key = format!(
        "SELECT {} FROM {} WHERE {}",
        table.select_list(),
        table.name,
        key_match(table)
    );
    for key in &need.keys {
        let mut q = sqlx::query(&by_key);
        for v in key {
            q = bind_sqlite(q, v);
        }
        if let Some(row) = q.fetch_optional(&mut *conn).await? {
            rows.push(decode_row!(table, row));
        }
    }
    for (c, vals) in &need.by {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?",
            table.select_list(),
            table.name,
            table.columns[*c].name
        );
        for v in vals {
            for row in bind_sqlite(sqlx::query(&sql), v)
                .fetch_all(&mut *conn)
                .await?
            {
                rows.push(decode_row!(table, row));
            }
        }
    }
    Ok(rows)
}

/// Bound parameters per SQLite statement we stay under (it allows 32766).
const SQLITE_PARAMS: usize = 30_000;

async fn write_sqlite(
    conn: &mut SqliteConnection,
    table: &Table,
    writes: &Writes,
) -> Result<(), ProjectionError> {
    let delete = format!("DELETE FROM {} WHERE {}", table.name, key_match(table));
    for key in &writes.delete {
        let mut q = sqlx::query(&delete);
        for v in key {
            q = bind_sqlite(q, v);
        }
        q.execute(&mut *conn).await?;
    }
    let width = table.columns.len();
    let placeholders = format!("({})", vec!["?"; width].join(", "));
    for chunk in writes.insert.chunks((SQLITE_PARAMS / width).max(1)) {
        let sql = format!(
            "INSERT OR IGNORE INTO {} ({}) VALUES {}",
            table.name,
            table.column_list(),
            vec![placeholders.as_str(); chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for row in chunk {
            if row.len() != width {
                return Err(bad(table, "a row has the wrong number of values"));
            }
            for v in row {
                q = bind_sqlite(q, v);
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
