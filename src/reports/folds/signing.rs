//! Signing activity per wallet and per user: messages, typed data and
//! transactions, by chain id.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::Fold;
use crate::reports::record::Record;
use crate::reports::table::Table;

#[derive(Default)]
struct Activity {
    signatures: u64,
    first_at: String,
    last_at: String,
}

#[derive(Default)]
pub struct SigningActivity {
    owners: HashMap<String, String>,
    /// (level, user, wallet, kind, chain id) → activity; level `user` rows
    /// have an empty wallet and sum the user's wallets.
    activity: BTreeMap<(&'static str, String, String, String, Option<u64>), Activity>,
}

/// What was signed, from the stored scheme (every event version has it).
fn kind(scheme: &str) -> String {
    match scheme {
        "eip191" => "message".into(),
        "eip712" => "typed_data".into(),
        "eip1559" | "eip155" => "transaction".into(),
        other => other.into(),
    }
}

impl Fold for SigningActivity {
    fn apply(&mut self, r: &Record) {
        if r.is("wallet", "WalletCreated") || r.is("wallet", "WalletRegistered") {
            self.owners
                .insert(r.aggregate_id.clone(), r.text("user_id"));
            return;
        }
        if !r.is("wallet", "MessageSigned") {
            return;
        }
        let wallet = r.aggregate_id.clone();
        let user = self.owners.get(&wallet).cloned().unwrap_or_default();
        let kind = kind(&r.text("scheme"));
        let chain = r.body.get("chain_id").and_then(Value::as_u64);
        let at = r.text("at");
        for key in [
            ("wallet", user.clone(), wallet, kind.clone(), chain),
            ("user", user, String::new(), kind, chain),
        ] {
            let a = self.activity.entry(key).or_default();
            if a.signatures == 0 {
                a.first_at = at.clone();
            }
            a.signatures += 1;
            a.last_at = at.clone();
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new(&[
            "level",
            "user_id",
            "wallet_id",
            "kind",
            "chain_id",
            "signatures",
            "first_at",
            "last_at",
        ]);
        for ((level, user, wallet, kind, chain), a) in self.activity {
            t.push(vec![
                json!(level),
                json!(user),
                json!(wallet),
                json!(kind),
                json!(chain),
                json!(a.signatures),
                json!(a.first_at),
                json!(a.last_at),
            ]);
        }
        t
    }
}
