//! Audit log: every event with who did it, how, from where and when, numbered
//! densely in global order so auditors can page and detect gaps.

use super::Projection;
use crate::log::StoredEvent;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct AuditLog;

pub static TABLE: Table = Table {
    name: "audit_log",
    columns: &[
        col("seq", Int),
        col("tx_id", Int),
        col("position", Int),
        col("aggregate_type", Text),
        col("aggregate_id", Text),
        col("sequence", Int),
        col("event_type", Text),
        col("event_version", Text),
        col("wallet_id", OptText),
        col("user_id", OptText),
        col("actor", OptText),
        col("auth_method", OptText),
        col("request_id", OptText),
        col("client_addr", OptText),
        col("occurred_at", Text),
        col("payload", Text),
        col("role", OptText),
    ],
    key: &[0],
    lookups: &[],
    // `seq` is the event's rank in the global order, taken from the
    // checkpoint this pass advances in the same transaction.
    append_only: true,
};

impl Projection for AuditLog {
    fn name(&self) -> &'static str {
        "audit_log"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_log"]
    }

    fn apply(&self, event: &StoredEvent, seq: i64) -> Result<Vec<Op>, ProjectionError> {
        let wallet_id = event
            .body()
            .get("wallet_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let user_id = event
            .body()
            .get("user_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            // A Sila user's events name the user by handle.
            .or_else(|| {
                (event.aggregate_type == "user").then(|| format!("sila:{}", event.aggregate_id))
            });
        Ok(vec![Op::insert(
            &TABLE,
            vec![
                seq.into(),
                event.at.tx_id.into(),
                event.at.position.into(),
                event.aggregate_type.clone().into(),
                event.aggregate_id.clone().into(),
                event.sequence.into(),
                event.event_type.clone().into(),
                event.event_version.clone().into(),
                wallet_id.into(),
                user_id.into(),
                event.meta("actor").into(),
                event.meta("auth_method").into(),
                event.meta("request_id").into(),
                event.meta("client_addr").into(),
                event.meta("at").unwrap_or_default().into(),
                event.body().to_string().into(),
                event.meta("role").into(),
            ],
        )])
    }
}
