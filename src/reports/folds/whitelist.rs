//! Whitelist latency: from a wallet's queueing to its whitelisting, over
//! every wallet whitelisted so far (p50, p95 and max, nearest rank).

use std::collections::HashMap;

use serde_json::json;

use super::Fold;
use crate::domain::Timestamp;
use crate::reports::record::Record;
use crate::reports::table::Table;

#[derive(Default)]
pub struct WhitelistLatency {
    queued: HashMap<String, Timestamp>,
    latencies_ms: Vec<i64>,
}

/// The nearest-rank percentile `p` (0–100) of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

impl Fold for WhitelistLatency {
    fn apply(&mut self, r: &Record) {
        if r.is("wallet", "WhitelistQueued") {
            if let Some(t) = r.str("queued_at").and_then(Timestamp::parse) {
                self.queued.insert(r.aggregate_id.clone(), t);
            }
        } else if r.is("wallet", "WalletWhitelisted") {
            let done = r.str("at").and_then(Timestamp::parse);
            if let (Some(queued), Some(done)) = (self.queued.remove(&r.aggregate_id), done) {
                let ms = (done.datetime() - queued.datetime()).num_milliseconds();
                self.latencies_ms.push(ms.max(0));
            }
        } else if r.is("wallet", "WalletDeleted") {
            self.queued.remove(&r.aggregate_id);
        }
    }

    fn finish(mut self: Box<Self>) -> Table {
        self.latencies_ms.sort_unstable();
        let l = &self.latencies_ms;
        let mut t = Table::new(&["whitelisted", "pending", "p50_ms", "p95_ms", "max_ms"]);
        t.push(vec![
            json!(l.len()),
            json!(self.queued.len()),
            json!(percentile(l, 50)),
            json!(percentile(l, 95)),
            json!(l.last()),
        ]);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), Some(10));
        assert_eq!(percentile(&v, 95), Some(19));
        assert_eq!(percentile(&v, 100), Some(20));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
