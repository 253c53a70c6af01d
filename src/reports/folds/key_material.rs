//! Key-material events: master-key rotations and keys frozen after an MPC
//! peer misbehaved. Neither carries key material, only key ids.

use serde_json::json;

use super::Fold;
use crate::reports::record::Record;
use crate::reports::table::Table;

pub struct KeyMaterial {
    table: Table,
}

impl Default for KeyMaterial {
    fn default() -> Self {
        KeyMaterial {
            table: Table::new(&["at", "event", "subject", "key_id", "detail", "actor"]),
        }
    }
}

impl Fold for KeyMaterial {
    fn apply(&mut self, r: &Record) {
        let (subject, key_id, detail) = match (r.aggregate_type.as_str(), r.event_type.as_str()) {
            ("master_key", "MasterKeyRotated") => (
                r.text("scope"),
                r.text("to_key_id"),
                format!(
                    "from {} ({} keys re-wrapped)",
                    r.text("from_key_id"),
                    r.body.get("rewrapped").cloned().unwrap_or_default()
                ),
            ),
            ("wallet", "WalletKeyFrozen") => {
                (r.aggregate_id.clone(), r.text("key_id"), r.text("reason"))
            }
            _ => return,
        };
        self.table.push(vec![
            json!(r.text("at")),
            json!(r.event_type),
            json!(subject),
            json!(key_id),
            json!(detail),
            json!(r.actor.clone().unwrap_or_default()),
        ]);
    }

    fn finish(self: Box<Self>) -> Table {
        self.table
    }
}
