//! KYC status changes of Sila users, in log order.

use std::collections::HashMap;

use serde_json::json;

use super::Fold;
use crate::reports::record::Record;
use crate::reports::table::Table;

pub struct KycChanges {
    status: HashMap<String, &'static str>,
    table: Table,
}

impl Default for KycChanges {
    fn default() -> Self {
        KycChanges {
            status: HashMap::new(),
            table: Table::new(&["at", "handle", "from", "to", "actor", "api"]),
        }
    }
}

impl Fold for KycChanges {
    fn apply(&mut self, r: &Record) {
        if r.aggregate_type != "user" {
            return;
        }
        let to = match r.event_type.as_str() {
            // A new user starts unverified; that is not a change.
            "UserRegistered" => {
                self.status.insert(r.aggregate_id.clone(), "unverified");
                return;
            }
            "KycRequested" => "pending",
            "KycPassed" => "passed",
            "KycFailed" => "failed",
            _ => return,
        };
        let from = self
            .status
            .insert(r.aggregate_id.clone(), to)
            .unwrap_or("unverified");
        self.table.push(vec![
            json!(r.text("at")),
            json!(r.aggregate_id),
            json!(from),
            json!(to),
            json!(r.actor.clone().unwrap_or_default()),
            json!(r.api()),
        ]);
    }

    fn finish(self: Box<Self>) -> Table {
        self.table
    }
}
