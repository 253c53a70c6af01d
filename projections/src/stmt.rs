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
