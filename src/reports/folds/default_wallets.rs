//! Default-wallet changes: which wallet a user's default moved from and to,
//! in log order. Covers the JWT dialect (`DefaultWalletSet` on the wallet)
//! and Sila's (a user's wallet attached or updated as default; the default
//! wallet detached or deleted leaves none).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::Fold;
use crate::reports::record::Record;
use crate::reports::table::Table;

pub struct DefaultWalletChanges {
    /// user → its default wallet.
    current: HashMap<String, String>,
    table: Table,
}

impl Default for DefaultWalletChanges {
    fn default() -> Self {
        DefaultWalletChanges {
            current: HashMap::new(),
            table: Table::new(&["at", "user", "from_wallet", "to_wallet", "actor", "api"]),
        }
    }
}

impl DefaultWalletChanges {
    fn change(&mut self, r: &Record, user: String, to: Option<String>) {
        let from = match &to {
            Some(w) => self.current.insert(user.clone(), w.clone()),
            None => self.current.remove(&user),
        };
        if from == to {
            return;
        }
        self.table.push(vec![
            json!(r.text("at")),
            json!(user),
            json!(from.unwrap_or_default()),
            json!(to.unwrap_or_default()),
            json!(r.actor.clone().unwrap_or_default()),
            json!(r.api()),
        ]);
    }
}

impl Fold for DefaultWalletChanges {
    fn apply(&mut self, r: &Record) {
        let wallet = r.text("wallet_id");
        match (r.aggregate_type.as_str(), r.event_type.as_str()) {
            ("wallet", "DefaultWalletSet") => self.change(r, r.text("user_id"), Some(wallet)),
            ("wallet", "WalletDeleted") => {
                let user = r.text("user_id");
                if self.current.get(&user) == Some(&wallet) {
                    self.change(r, user, None);
                }
            }
            ("user", "WalletAttached") | ("user", "WalletUpdated")
                if r.body.get("default") == Some(&Value::Bool(true)) =>
            {
                self.change(r, format!("sila:{}", r.aggregate_id), Some(wallet))
            }
            ("user", "WalletUpdated") if r.body.get("default") == Some(&Value::Bool(false)) => {
                let user = format!("sila:{}", r.aggregate_id);
                if self.current.get(&user) == Some(&wallet) {
                    self.change(r, user, None);
                }
            }
            ("user", "WalletDetached") => {
                let user = format!("sila:{}", r.aggregate_id);
                if self.current.get(&user) == Some(&wallet) {
                    self.change(r, user, None);
                }
            }
            _ => {}
        }
    }

    fn finish(self: Box<Self>) -> Table {
        self.table
    }
}
