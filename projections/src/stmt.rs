//! Projections describe their effect as SQL statements with plain values, so the
//! same projection code serves PostgreSQL and SQLite and is testable without a
//! database.

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// A script stays under this size; larger batches are sent as several.
const SCRIPT_BYTES: usize = 4 << 20;

/// PostgreSQL: the statements as scripts of the simple-query protocol, values
/// written inline as literals, so that a pass sends its thousands of small
/// statements in a few round trips instead of one each, in the same order.
/// Literals are made safe by construction: each script first pins
/// `standard_conforming_strings` (backslashes are then ordinary characters,
/// so doubling quotes is the whole escaping), numbers and booleans are
/// formatted, and a NUL (which PostgreSQL text cannot hold, and which would
/// end the protocol's query string) is refused.
pub fn pg_scripts(stmts: Vec<Stmt>) -> Result<Vec<String>, crate::ProjectionError> {
    const PREFIX: &str = "SET LOCAL standard_conforming_strings = on;\n";
    let mut scripts = Vec::new();
    let mut script = String::from(PREFIX);
    for (sql, args) in merge(stmts) {
        if script.len() > SCRIPT_BYTES {
            scripts.push(std::mem::replace(&mut script, String::from(PREFIX)));
        }
        render(&sql, &args, &mut script)?;
        script.push_str(";\n");
    }
    if script.len() > PREFIX.len() {
        scripts.push(script);
    }
    Ok(scripts)
}

/// Appends `sql` to `out` with each `$n` replaced by the literal of `args[n-1]`.
fn render(sql: &str, args: &[Val], out: &mut String) -> Result<(), crate::ProjectionError> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let start = i + 1;
            let mut end = start;
            while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            let n: usize = sql[start..end].parse().unwrap_or(0);
            let Some(arg) = n.checked_sub(1).and_then(|k| args.get(k)) else {
                return Err(crate::ProjectionError::BadStatement(format!(
                    "placeholder ${n} has no value"
                )));
            };
            out.push_str(&sql[copied..i]);
            literal(arg, out)?;
            i = end;
            copied = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    Ok(())
}

fn literal(v: &Val, out: &mut String) -> Result<(), crate::ProjectionError> {
    use std::fmt::Write as _;
    match v {
        Val::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Val::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Val::OptText(None) => out.push_str("NULL"),
        Val::Text(t) | Val::OptText(Some(t)) => {
            if t.contains('\0') {
                return Err(crate::ProjectionError::BadStatement(
                    "a text value contains a NUL character".into(),
                ));
            }
            out.reserve(t.len() + 2);
            out.push('\'');
            for c in t.chars() {
                if c == '\'' {
                    out.push('\'');
                }
                out.push(c);
            }
            out.push('\'');
        }
    }
    Ok(())
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
    fn scripts_inline_values_as_safe_literals_in_order() {
        let stmts = vec![
            Stmt::row(
                "INSERT INTO t (a, b) VALUES",
                "ON CONFLICT (a) DO NOTHING",
                vec![1.into(), "it's".into()],
            ),
            Stmt::row(
                "INSERT INTO t (a, b) VALUES",
                "ON CONFLICT (a) DO NOTHING",
                vec![12.into(), None::<String>.into()],
            ),
            Stmt::new(
                "UPDATE t SET b = $2, c = $3 WHERE a = $1 AND d = $10",
                vec![
                    (-3).into(),
                    "back\\slash'; DROP TABLE t; --".into(),
                    true.into(),
                    0.into(),
                    0.into(),
                    0.into(),
                    0.into(),
                    0.into(),
                    0.into(),
                    "ten".into(),
                ],
            ),
        ];
        let scripts = pg_scripts(stmts).unwrap();
        assert_eq!(
            scripts,
            vec![
                "SET LOCAL standard_conforming_strings = on;\n\
                 INSERT INTO t (a, b) VALUES (1, 'it''s'), (12, NULL) ON CONFLICT (a) DO NOTHING;\n\
                 UPDATE t SET b = 'back\\slash''; DROP TABLE t; --', c = TRUE WHERE a = -3 AND d = 'ten';\n"
                    .to_string()
            ]
        );
    }

    #[test]
    fn nul_and_missing_values_are_refused() {
        assert!(pg_scripts(vec![Stmt::new("SELECT $1", vec!["a\0b".into()])]).is_err());
        assert!(pg_scripts(vec![Stmt::new("SELECT $2", vec!["a".into()])]).is_err());
        assert!(pg_scripts(Vec::new()).unwrap().is_empty());
    }

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
