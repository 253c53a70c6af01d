//! A pass's changes to the read models, folded in memory so that each row is
//! written once per pass however many events touch it.
//!
//! Projections describe an event's effect as [`Op`]s on declared
//! [`Table`]s. The projector gathers a whole pass's ops, asks which existing
//! rows they touch ([`WriteSet::needs`]), loads just those, applies every op
//! in log order to the rows in memory ([`WriteSet::fold`]), and writes back
//! the final rows: the pre-existing ones it changed are deleted and
//! re-inserted, new ones inserted, all as a few bulk statements per table.
//! That is what makes a rebuild fast: a wallet created, queued and
//! whitelisted within one batch is one inserted row, not an insert and two
//! updates, and no statement is ever sent per event.
//!
//! Inserts follow `ON CONFLICT DO NOTHING`: an insert under a key that
//! already has a row changes nothing. A key the pass has not loaded is taken
//! to be new (the write side gives every wallet, user and app its key once),
//! and the final write still skips a row whose key turns out to exist.

use std::collections::{HashMap, HashSet};

use crate::stmt::Val;
use crate::table::Table;
use crate::ProjectionError;

pub type Row = Vec<Val>;
type Key = Vec<Val>;
type Change = Box<dyn FnMut(&mut Row) + Send>;
/// A change that may find the row's values impossible (an overflowing or
/// negative amount): the pass fails instead of writing a wrong row.
type TryChange = Box<dyn FnMut(&mut Row) -> Result<(), String> + Send>;

/// One change to one table.
pub struct Op {
    table: &'static Table,
    kind: OpKind,
}

enum OpKind {
    Insert(Row),
    Update(Filter, Change),
    /// Changes the row under the key of the given row, starting from that
    /// row when there is none.
    Upsert(Row, TryChange),
    Delete(Filter),
}

enum Filter {
    Key(Key),
    Column(usize, Val),
}

impl Op {
    /// Adds `row` (every column, in the table's order) unless its key has one.
    pub fn insert(table: &'static Table, row: Row) -> Self {
        Self {
            table,
            kind: OpKind::Insert(row),
        }
    }

    /// Changes the row under `key`, if there is one.
    pub fn update(
        table: &'static Table,
        key: Key,
        change: impl FnMut(&mut Row) + Send + 'static,
    ) -> Self {
        Self {
            table,
            kind: OpKind::Update(Filter::Key(norm_all(key)), Box::new(change)),
        }
    }

    /// Changes every row whose `column` (one of the table's lookups) holds `value`.
    pub fn update_where(
        table: &'static Table,
        column: usize,
        value: Val,
        change: impl FnMut(&mut Row) + Send + 'static,
    ) -> Self {
        Self {
            table,
            kind: OpKind::Update(Filter::Column(column, norm(value)), Box::new(change)),
        }
    }

    /// Changes the row under `row`'s key, inserting `row` first when the
    /// key has none: for running totals, whose first event creates the row.
    /// An `Err` from `change` fails the pass.
    pub fn upsert(
        table: &'static Table,
        row: Row,
        change: impl FnMut(&mut Row) -> Result<(), String> + Send + 'static,
    ) -> Self {
        Self {
            table,
            kind: OpKind::Upsert(row, Box::new(change)),
        }
    }

    /// Removes the row under `key`, if there is one.
    pub fn delete(table: &'static Table, key: Key) -> Self {
        Self {
            table,
            kind: OpKind::Delete(Filter::Key(norm_all(key))),
        }
    }
}

/// Text that may be NULL and plain text compare alike once present.
fn norm(v: Val) -> Val {
    match v {
        Val::OptText(Some(t)) => Val::Text(t),
        other => other,
    }
}

fn norm_all(key: Key) -> Key {
    key.into_iter().map(norm).collect()
}

fn key_of(table: &Table, row: &Row) -> Key {
    table.key.iter().map(|&i| norm(row[i].clone())).collect()
}

/// The existing rows a table's ops touch: by key, and by lookup column.
#[derive(Debug, Default, PartialEq)]
pub struct Need {
    pub keys: Vec<Key>,
    pub by: Vec<(usize, Vec<Val>)>,
}

impl Need {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.by.is_empty()
    }
}

/// What a pass writes to one table: keys of existing rows to delete first,
/// then rows to insert.
#[derive(Debug, Default, PartialEq)]
pub struct Writes {
    pub delete: Vec<Key>,
    pub insert: Vec<Row>,
}

#[derive(Default)]
pub struct WriteSet {
    tables: Vec<(&'static Table, Vec<OpKind>)>,
    /// The first malformed op, reported by [`fold`](Self::fold).
    bad: Option<String>,
}

impl WriteSet {
    pub fn push(&mut self, op: Op) {
        if let OpKind::Insert(row) | OpKind::Upsert(row, _) = &op.kind {
            if row.len() != op.table.columns.len() {
                self.bad.get_or_insert_with(|| {
                    format!(
                        "{}: a row of {} values, not {}",
                        op.table.name,
                        row.len(),
                        op.table.columns.len()
                    )
                });
                return;
            }
        }
        match self
            .tables
            .iter_mut()
            .find(|(t, _)| std::ptr::eq(*t, op.table))
        {
            Some((_, ops)) => ops.push(op.kind),
            None => self.tables.push((op.table, vec![op.kind])),
        }
    }

    pub fn extend(&mut self, ops: impl IntoIterator<Item = Op>) {
        for op in ops {
            self.push(op);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn tables(&self) -> impl Iterator<Item = &'static Table> + '_ {
        self.tables.iter().map(|(t, _)| *t)
    }

    /// Which existing rows of `table` the ops need in memory before folding:
    /// the keys they change that no earlier op of the pass inserted, and the
    /// lookup values they select by.
    pub fn needs(&self, table: &'static Table) -> Need {
        let Some((_, ops)) = self.tables.iter().find(|(t, _)| std::ptr::eq(*t, table)) else {
            return Need::default();
        };
        let mut inserted: HashSet<Key> = HashSet::new();
        let mut keys: Vec<Key> = Vec::new();
        let mut seen: HashSet<Key> = HashSet::new();
        let mut by: Vec<(usize, Vec<Val>)> = Vec::new();
        let mut seen_by: HashSet<(usize, Val)> = HashSet::new();
        for op in ops {
            match op {
                OpKind::Insert(row) => {
                    inserted.insert(key_of(table, row));
                }
                OpKind::Update(Filter::Key(k), _) | OpKind::Delete(Filter::Key(k)) => {
                    if !inserted.contains(k) && seen.insert(k.clone()) {
                        keys.push(k.clone());
                    }
                }
                OpKind::Upsert(row, _) => {
                    let k = key_of(table, row);
                    if !inserted.contains(&k) && seen.insert(k.clone()) {
                        keys.push(k);
                    }
                }
                OpKind::Update(Filter::Column(c, v), _) | OpKind::Delete(Filter::Column(c, v)) => {
                    if seen_by.insert((*c, v.clone())) {
                        match by.iter_mut().find(|(col, _)| col == c) {
                            Some((_, vals)) => vals.push(v.clone()),
                            None => by.push((*c, vec![v.clone()])),
                        }
                    }
                }
            }
        }
        Need { keys, by }
    }

    /// Applies every op in order to `loaded` (the rows [`needs`](Self::needs)
    /// asked for, per table) and returns what to write, per table.
    pub fn fold(
        self,
        mut loaded: HashMap<&'static str, Vec<Row>>,
    ) -> Result<Vec<(&'static Table, Writes)>, ProjectionError> {
        if let Some(bad) = self.bad {
            return Err(ProjectionError::BadStatement(bad));
        }
        let mut out = Vec::with_capacity(self.tables.len());
        for (table, ops) in self.tables {
            let rows = loaded.remove(table.name).unwrap_or_default();
            let writes = if table.append_only {
                append_only(table, ops, rows)?
            } else {
                fold_table(table, ops, rows)?
            };
            out.push((table, writes));
        }
        Ok(out)
    }
}

fn append_only(
    table: &'static Table,
    ops: Vec<OpKind>,
    loaded: Vec<Row>,
) -> Result<Writes, ProjectionError> {
    if !loaded.is_empty() {
        return Err(ProjectionError::BadStatement(format!(
            "{} is append-only: nothing is loaded for it",
            table.name
        )));
    }
    let mut insert = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            OpKind::Insert(row) => insert.push(row),
            _ => {
                return Err(ProjectionError::BadStatement(format!(
                    "{} is append-only: its rows are never changed",
                    table.name
                )))
            }
        }
    }
    Ok(Writes {
        delete: Vec::new(),
        insert,
    })
}

struct Entry {
    /// The row was in the database when the pass began.
    stored: bool,
    row: Option<Row>,
    dirty: bool,
}

/// The table's touched rows, in the order they were first seen, with an index
/// per lookup column.
struct Rows {
    table: &'static Table,
    order: Vec<Key>,
    entries: HashMap<Key, Entry>,
    by: HashMap<(usize, Val), Vec<Key>>,
}

impl Rows {
    fn index(&mut self, key: &Key, row: &Row) {
        for &c in self.table.lookups {
            self.by
                .entry((c, norm(row[c].clone())))
                .or_default()
                .push(key.clone());
        }
    }

    fn put(&mut self, key: Key, row: Row, stored: bool) {
        self.index(&key, &row);
        match self.entries.get_mut(&key) {
            Some(e) => {
                e.row = Some(row);
                e.dirty = true;
            }
            None => {
                self.order.push(key.clone());
                self.entries.insert(
                    key,
                    Entry {
                        stored,
                        row: Some(row),
                        dirty: !stored,
                    },
                );
            }
        }
    }

    /// Keys of present rows the filter selects.
    fn select(&self, filter: &Filter) -> Vec<Key> {
        match filter {
            Filter::Key(k) => vec![k.clone()],
            Filter::Column(c, v) => {
                let mut keys: Vec<Key> = Vec::new();
                for k in self.by.get(&(*c, v.clone())).into_iter().flatten() {
                    let matches = self
                        .entries
                        .get(k)
                        .and_then(|e| e.row.as_ref())
                        .is_some_and(|row| norm(row[*c].clone()) == *v);
                    if matches && !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
                keys
            }
        }
    }
}

fn fold_table(
    table: &'static Table,
    ops: Vec<OpKind>,
    loaded: Vec<Row>,
) -> Result<Writes, ProjectionError> {
    let mut rows = Rows {
        table,
        order: Vec::new(),
        entries: HashMap::new(),
        by: HashMap::new(),
    };
    for row in loaded {
        let key = key_of(table, &row);
        // A row may come back both by its key and by a lookup.
        if !rows.entries.contains_key(&key) {
            rows.put(key, row, true);
        }
    }
    for op in ops {
        match op {
            OpKind::Insert(row) => {
                let key = key_of(table, &row);
                let present = rows.entries.get(&key).is_some_and(|e| e.row.is_some());
                if !present {
                    rows.put(key, row, false);
                }
            }
            OpKind::Update(filter, mut change) => {
                for key in rows.select(&filter) {
                    let Some(entry) = rows.entries.get_mut(&key) else {
                        continue;
                    };
                    let Some(row) = entry.row.as_mut() else {
                        continue;
                    };
                    let before = row.clone();
                    change(row);
                    if *row != before {
                        entry.dirty = true;
                        let row = row.clone();
                        rows.index(&key, &row);
                    }
                }
            }
            OpKind::Upsert(row, mut change) => {
                let key = key_of(table, &row);
                let present = rows.entries.get(&key).is_some_and(|e| e.row.is_some());
                if !present {
                    rows.put(key.clone(), row, false);
                }
                if let Some(entry) = rows.entries.get_mut(&key) {
                    if let Some(row) = entry.row.as_mut() {
                        let before = row.clone();
                        change(row).map_err(|reason| ProjectionError::Inconsistent {
                            table: table.name,
                            reason,
                        })?;
                        if *row != before {
                            entry.dirty = true;
                            let row = row.clone();
                            rows.index(&key, &row);
                        }
                    }
                }
            }
            OpKind::Delete(filter) => {
                for key in rows.select(&filter) {
                    if let Some(entry) = rows.entries.get_mut(&key) {
                        if entry.row.take().is_some() {
                            entry.dirty = true;
                        }
                    }
                }
            }
        }
    }
    let mut writes = Writes::default();
    for key in rows.order {
        let Some(entry) = rows.entries.remove(&key) else {
            continue;
        };
        if !entry.dirty {
            continue;
        }
        if entry.stored {
            writes.delete.push(key);
        }
        if let Some(row) = entry.row {
            writes.insert.push(row);
        }
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{col, ColType};

    static T: Table = Table {
        name: "t",
        columns: &[
            col("id", ColType::Text),
            col("owner", ColType::Text),
            col("flag", ColType::Bool),
        ],
        key: &[0],
        lookups: &[1],
        append_only: false,
    };

    fn row(id: &str, owner: &str, flag: bool) -> Row {
        vec![id.into(), owner.into(), flag.into()]
    }

    fn set_flag(to: bool) -> impl FnMut(&mut Row) + Send {
        move |r: &mut Row| r[2] = to.into()
    }

    #[test]
    fn a_row_created_and_changed_in_one_pass_is_written_once_in_its_final_state() {
        let mut ws = WriteSet::default();
        ws.push(Op::insert(&T, row("a", "u", false)));
        ws.push(Op::update(&T, vec!["a".into()], set_flag(true)));
        ws.push(Op::insert(&T, row("b", "u", false)));
        ws.push(Op::insert(&T, row("c", "u", false)));
        ws.push(Op::delete(&T, vec!["c".into()]));
        // Nothing to load: every key it changes was inserted before.
        assert!(ws.needs(&T).is_empty());
        let writes = ws.fold(HashMap::new()).unwrap();
        assert_eq!(
            writes[0].1,
            Writes {
                delete: vec![],
                insert: vec![row("a", "u", true), row("b", "u", false)],
            }
        );
    }

    #[test]
    fn existing_rows_are_loaded_changed_and_replaced_and_duplicates_change_nothing() {
        let mut ws = WriteSet::default();
        ws.push(Op::update(&T, vec!["old".into()], set_flag(true)));
        ws.push(Op::insert(&T, row("new", "u", false)));
        ws.push(Op::update_where(&T, 1, "u".into(), set_flag(false)));
        ws.push(Op::insert(&T, row("old", "x", false)));
        ws.push(Op::delete(&T, vec!["gone".into()]));
        ws.push(Op::update(&T, vec!["missing".into()], set_flag(true)));
        assert_eq!(
            ws.needs(&T),
            Need {
                keys: vec![
                    vec!["old".into()],
                    vec!["gone".into()],
                    vec!["missing".into()]
                ],
                by: vec![(1, vec!["u".into()])],
            }
        );
        let loaded = HashMap::from([(
            "t",
            vec![
                row("old", "u", false),
                row("gone", "v", true),
                row("kept", "u", false),
            ],
        )]);
        let writes = ws.fold(loaded).unwrap();
        assert_eq!(
            writes[0].1,
            Writes {
                // `kept` matched the lookup but did not change: not rewritten.
                delete: vec![vec!["old".into()], vec!["gone".into()]],
                insert: vec![row("old", "u", false), row("new", "u", false)],
            }
        );
    }

    #[test]
    fn upserts_load_their_key_start_absent_rows_from_the_given_one_and_fail_the_fold() {
        let count = |by: i64| {
            move |r: &mut Row| match r[1] {
                Val::Int(n) if n + by >= 0 => {
                    r[1] = Val::Int(n + by);
                    Ok(())
                }
                _ => Err("below zero".to_string()),
            }
        };
        static C: Table = Table {
            name: "c",
            columns: &[col("id", ColType::Text), col("n", ColType::Int)],
            key: &[0],
            lookups: &[],
            append_only: false,
        };
        let start = |id: &str| vec![Val::from(id), Val::Int(0)];
        let mut ws = WriteSet::default();
        ws.push(Op::upsert(&C, start("old"), count(5)));
        ws.push(Op::upsert(&C, start("new"), count(2)));
        ws.push(Op::upsert(&C, start("new"), count(-1)));
        ws.push(Op::upsert(&C, start("old"), count(-3)));
        assert_eq!(
            ws.needs(&C),
            Need {
                keys: vec![vec!["old".into()], vec!["new".into()]],
                by: vec![],
            }
        );
        let loaded = HashMap::from([("c", vec![vec![Val::from("old"), Val::Int(10)]])]);
        assert_eq!(
            ws.fold(loaded).unwrap()[0].1,
            Writes {
                delete: vec![vec!["old".into()]],
                insert: vec![
                    vec![Val::from("old"), Val::Int(12)],
                    vec![Val::from("new"), Val::Int(1)]
                ],
            }
        );
        let mut ws = WriteSet::default();
        ws.push(Op::upsert(&C, start("x"), count(-1)));
        assert!(matches!(
            ws.fold(HashMap::new()),
            Err(ProjectionError::Inconsistent { table: "c", .. })
        ));
    }

    #[test]
    fn append_only_tables_take_inserts_only() {
        static A: Table = Table {
            name: "a",
            columns: &[col("seq", ColType::Int)],
            key: &[0],
            lookups: &[],
            append_only: true,
        };
        let mut ws = WriteSet::default();
        ws.push(Op::insert(&A, vec![1.into()]));
        ws.push(Op::insert(&A, vec![2.into()]));
        assert!(ws.needs(&A).is_empty());
        let writes = ws.fold(HashMap::new()).unwrap();
        assert_eq!(
            writes[0].1.insert,
            vec![vec![Val::Int(1)], vec![Val::Int(2)]]
        );
        let mut ws = WriteSet::default();
        ws.push(Op::delete(&A, vec![1.into()]));
        assert!(ws.fold(HashMap::new()).is_err());
    }
}
