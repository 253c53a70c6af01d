//! The shape of each read-model table, declared once beside the projection
//! that owns it, so that the projector can load, fold and write any table's
//! rows the same way (see [`crate::write_set`]).

/// How a column's values are held and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    Int,
    Text,
    /// Text that may be NULL.
    OptText,
    Bool,
    /// A ledger amount (minor units, up to 2^128 − 1), held as its decimal
    /// text: `NUMERIC(39,0)` on PostgreSQL, `TEXT` on SQLite; read back as
    /// text on both.
    Amount,
}

impl ColType {
    /// PostgreSQL's name for an array of this type.
    pub(crate) fn pg_array(self) -> &'static str {
        match self {
            ColType::Int => "bigint[]",
            ColType::Text | ColType::OptText => "text[]",
            ColType::Bool => "boolean[]",
            ColType::Amount => "numeric[]",
        }
    }
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
}

pub const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty }
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// Every column, in the order a row holds its values.
    pub columns: &'static [Column],
    /// Indexes into `columns` of the primary key.
    pub key: &'static [usize],
    /// Columns besides the key that a projection selects rows by
    /// ([`crate::write_set::Op::update_where`]).
    pub lookups: &'static [usize],
    /// Rows are only ever inserted, each under a key no earlier row can hold
    /// (the audit log's global rank): nothing needs loading before writing.
    pub append_only: bool,
}

impl Table {
    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The columns as selected for loading: amounts cast to text, the form
    /// a row holds them in (`CAST` reads the same on both backends).
    pub(crate) fn select_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| match c.ty {
                ColType::Amount => format!("CAST({0} AS TEXT) AS {0}", c.name),
                _ => c.name.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn key_list(&self) -> String {
        self.key
            .iter()
            .map(|&i| self.columns[i].name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
