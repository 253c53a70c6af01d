//! Event metadata: the audit trail of who did what, how and from where.

use std::collections::HashMap;

use crate::domain::Timestamp;

#[derive(Clone, Debug)]
pub struct CommandMeta {
    /// Who: e.g. `apikey:<id>`, `jwt:<sub>`, `cli`, `scheduler`.
    pub actor: String,
    /// How they authenticated: `api_key`, `jwt`, `ecdsa`, `cli`, `system`.
    pub auth_method: String,
    /// The caller's JWT role, when authenticated by JWT.
    pub role: Option<String>,
    pub request_id: String,
    pub client_addr: Option<String>,
    pub at: Timestamp,
    /// The request's Idempotency-Key, so a retry after a crash can recognise
    /// the events its first attempt committed.
    pub idempotency_key: Option<String>,
    /// The request's once-only keys, recorded in the transaction that stores
    /// its events (a unit of work's), so a request is accepted exactly once.
    /// Not part of the event metadata.
    pub nonces: Vec<super::Nonce>,
}

impl CommandMeta {
    pub fn system(actor: &str) -> Self {
        Self {
            actor: actor.to_string(),
            auth_method: "system".to_string(),
            role: None,
            request_id: uuid::Uuid::new_v4().to_string(),
            client_addr: None,
            at: Timestamp::now(),
            idempotency_key: None,
            nonces: Vec::new(),
        }
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::with_capacity(7);
        m.insert("actor".into(), self.actor.clone());
        m.insert("auth_method".into(), self.auth_method.clone());
        m.insert("request_id".into(), self.request_id.clone());
        if let Some(r) = &self.role {
            m.insert("role".into(), r.clone());
        }
        if let Some(a) = &self.client_addr {
            m.insert("client_addr".into(), a.clone());
        }
        m.insert("at".into(), self.at.to_text());
        if let Some(k) = &self.idempotency_key {
            m.insert("idempotency_key".into(), k.clone());
        }
        m
    }
}
