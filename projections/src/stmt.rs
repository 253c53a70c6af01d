//! Plain values, and the few statements a pass sends besides its rows (the
//! checkpoints, the notification), written once for both backends.

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

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub sql: &'static str,
    pub args: Vec<Val>,
}

impl Stmt {
    pub fn new(sql: &'static str, args: Vec<Val>) -> Self {
        Self { sql, args }
    }
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
    for stmt in stmts {
        if script.len() > SCRIPT_BYTES {
            scripts.push(std::mem::replace(&mut script, String::from(PREFIX)));
        }
        render(stmt.sql, &stmt.args, &mut script)?;
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
        for stmt in $stmts {
            let mut q = sqlx::query(stmt.sql);
            for arg in stmt.args {
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
            Stmt::new(
                "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO NOTHING",
                vec![1.into(), "it's".into(), 12.into(), None::<String>.into()],
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
}
