//! Projections describe their effect as SQL statements with plain values, so the
//! same projection code serves PostgreSQL and SQLite and is testable without a
//! database.

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::OptText(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Bool(v)
    }
}

/// How a statement is written.
#[derive(Clone, Debug, PartialEq)]
pub enum Sql {
    /// A complete statement.
    Plain(&'static str),
    /// One row of `{head} (...) {tail}`: an INSERT whose consecutive rows into
    /// the same table may be sent as one multi-row statement. `tail` must not
    /// be `ON CONFLICT ... DO UPDATE` (a row may not be updated twice by one
    /// statement).
    Row {
        head: &'static str,
        tail: &'static str,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub sql: Sql,
    pub args: Vec<Val>,
}

impl Stmt {
    pub fn new(sql: &'static str, args: Vec<Val>) -> Self {
        Self {
            sql: Sql::Plain(sql),
            args,
        }
    }

    /// `head` is `INSERT INTO t (a, b, c) VALUES`; `tail` e.g. `ON CONFLICT (a) DO NOTHING`.
    pub fn row(head: &'static str, tail: &'static str, args: Vec<Val>) -> Self {
        Self {
            sql: Sql::Row { head, tail },
            args,
        }
    }
}

/// Bound parameters per statement we stay under (SQLite allows 32766,
/// PostgreSQL 65535).
const MAX_PARAMS: usize = 30_000;

/// Joins runs of row inserts into the same table into multi-row statements,
/// keeping statement order. Returns (sql, args) pairs ready to execute.
pub fn merge(stmts: Vec<Stmt>) -> Vec<(String, Vec<Val>)> {
    let mut out: Vec<(String, Vec<Val>)> = Vec::new();
    // (head, tail, width, rows) of the run being built.
    let mut run: Option<(&'static str, &'static str, usize, Vec<Vec<Val>>)> = None;
    let flush = |run: &mut Option<(&'static str, &'static str, usize, Vec<Vec<Val>>)>,
                 out: &mut Vec<(String, Vec<Val>)>| {
        if let Some((head, tail, width, rows)) = run.take() {
            let mut sql = String::with_capacity(head.len() + tail.len() + rows.len() * width * 5);
            sql.push_str(head);
            let mut args = Vec::with_capacity(rows.len() * width);
            for (r, row) in rows.into_iter().enumerate() {
                sql.push_str(if r == 0 { " (" } else { ", (" });
                for c in 0..width {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('$');
                    sql.push_str(&(r * width + c + 1).to_string());
                }
                sql.push(')');
                args.extend(row);
            }
            sql.push(' ');
            sql.push_str(tail);
            out.push((sql, args));
        }
    };
    for stmt in stmts {
        match stmt.sql {
            Sql::Plain(sql) => {
                flush(&mut run, &mut out);
                out.push((sql.to_string(), stmt.args));
            }
            Sql::Row { head, tail } => {
                let width = stmt.args.len();
                let joins = matches!(&run, Some((h, t, w, rows))
                    if *h == head && *t == tail && *w == width && (rows.len() + 1) * width <= MAX_PARAMS);
                if !joins {
                    flush(&mut run, &mut out);
                    run = Some((head, tail, width, Vec::new()));
                }
                if let Some((_, _, _, rows)) = &mut run {
                    rows.push(stmt.args);
                }
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Executes statements on a transaction or connection of either backend.
#[macro_export]
macro_rules! exec_stmts {
    ($conn:expr, $stmts:expr) => {{
        let mut result: Result<(), sqlx::Error> = Ok(());
        for (sql, args) in $crate::stmt::merge($stmts) {
            let mut q = sqlx::query(&sql);
            for arg in args {
                q = match arg {
                    $crate::stmt::Val::Int(v) => q.bind(v),
                    $crate::stmt::Val::Text(v) => q.bind(v),
                    $crate::stmt::Val::OptText(v) => q.bind(v),
                    $crate::stmt::Val::Bool(v) => q.bind(v),
                };
            }
            if let Err(e) = q.execute(&mut *$conn).await {
                result = Err(e);
                break;
            }
        }
        result
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_consecutive_rows_of_one_table_only() {
        let h = "INSERT INTO t (a, b) VALUES";
        let tail = "ON CONFLICT (a) DO NOTHING";
        let stmts = vec![
            Stmt::row(h, tail, vec![1.into(), "x".into()]),
            Stmt::row(h, tail, vec![2.into(), "y".into()]),
            Stmt::new("UPDATE t SET b = $1", vec!["z".into()]),
            Stmt::row(h, tail, vec![3.into(), "w".into()]),
        ];
        let merged = merge(stmts);
        assert_eq!(merged.len(), 3);
        assert_eq!(
            merged[0].0,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(
            merged[0].1,
            vec![1.into(), "x".into(), 2.into(), "y".into()]
        );
        assert_eq!(merged[1].0, "UPDATE t SET b = $1");
        assert_eq!(
            merged[2].0,
            "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO NOTHING"
        );
    }
}
