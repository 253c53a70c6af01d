//! Wallets created per day, per API dialect and per custody kind.

use std::collections::BTreeMap;

use serde_json::json;

use super::{day, Fold};
use crate::reports::record::Record;
use crate::reports::table::Table;

#[derive(Default)]
pub struct WalletsCreated {
    /// (day, api, kind, custody) → wallets.
    counts: BTreeMap<(String, String, String, String), u64>,
}

impl Fold for WalletsCreated {
    fn apply(&mut self, r: &Record) {
        let key = if r.is("wallet", "WalletCreated") {
            (
                day(&r.text("created_at")),
                r.api(),
                r.text("kind"),
                r.text("custody"),
            )
        } else if r.is("wallet", "WalletRegistered") {
            // An address whose owner proved the key: walletd holds nothing.
            (
                day(&r.text("registered_at")),
                r.api(),
                "external".into(),
                "none".into(),
            )
        } else {
            return;
        };
        *self.counts.entry(key).or_default() += 1;
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new(&["day", "api", "kind", "custody", "wallets"]);
        for ((day, api, kind, custody), n) in self.counts {
            t.push(vec![
                json!(day),
                json!(api),
                json!(kind),
                json!(custody),
                json!(n),
            ]);
        }
        t
    }
}
