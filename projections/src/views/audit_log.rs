//! Audit log: every event with who did it, how, from where and when, numbered
//! densely in global order so auditors can page and detect gaps.

use super::Projection;
use crate::log::StoredEvent;
use crate::stmt::Stmt;
use crate::ProjectionError;

pub struct AuditLog;

impl Projection for AuditLog {
    fn name(&self) -> &'static str {
        "audit_log"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_log"]
    }

    fn apply(&self, event: &StoredEvent, seq: i64) -> Result<Vec<Stmt>, ProjectionError> {
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
        Ok(vec![Stmt::row(
            "INSERT INTO audit_log
               (seq, tx_id, position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                wallet_id, user_id, actor, auth_method, request_id, client_addr, occurred_at, payload, role)
             VALUES",
            "ON CONFLICT (seq) DO NOTHING",
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
