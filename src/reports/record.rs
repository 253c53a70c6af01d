//! What a report reads of one event, from either source: the log itself or
//! the audit-log projection (which keeps the event's body and the metadata
//! reports use).

use serde_json::Value;
use walletd_projections::StoredEvent;

#[derive(Clone, Debug)]
pub struct Record {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    /// The event's fields (the stored payload without its enum tag).
    pub body: Value,
    pub actor: Option<String>,
    pub auth_method: Option<String>,
    /// When it was recorded (the metadata's `at`, RFC 3339).
    pub at: Option<String>,
}

impl Record {
    pub fn from_stored(e: &StoredEvent) -> Self {
        Record {
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            event_type: e.event_type.clone(),
            body: e.body().clone(),
            actor: e.meta("actor"),
            auth_method: e.meta("auth_method"),
            at: e.meta("at"),
        }
    }

    /// A string field of the body.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// A string field of the body, or "" (reports print absent text empty).
    pub fn text(&self, key: &str) -> String {
        self.str(key).unwrap_or_default().to_string()
    }

    pub fn is(&self, aggregate_type: &str, event_type: &str) -> bool {
        self.aggregate_type == aggregate_type && self.event_type == event_type
    }

    /// Which API dialect caused the event, from how its caller authenticated.
    pub fn api(&self) -> String {
        match self.auth_method.as_deref() {
            Some("api_key") => "server-wallets".into(),
            Some("jwt") => "jwt".into(),
            Some("ecdsa") => "sila".into(),
            Some(other) => other.into(),
            None => String::new(),
        }
    }
}
