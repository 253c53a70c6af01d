//! The auditor endpoints' answers as the OpenAPI document describes them.
//! Hashes are base64 (standard, padded), as in the checkpoint itself.

use serde::Serialize;

use crate::api::jwt_wallets::schema::JwtError;
use utoipa::ToSchema;

/// `GET /api/admin/log/checkpoint`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedCheckpoint {
    /// Leaves in the tree (events sealed).
    pub size: u64,
    /// The tree's root hash.
    pub root: String,
    /// The c2sp.org/tlog-checkpoint body signed as a c2sp.org/signed-note:
    /// what an auditor saves and verifies with the pinned key.
    pub checkpoint: String,
    /// The checkpoints' origin (the log key's name).
    pub origin: String,
    /// The signed-note verifier key this server signs with (pin it from a
    /// trusted channel, e.g. `walletd log-key`, not from here).
    pub verifier_key: String,
}

/// `GET /api/admin/log/proof/inclusion`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The leaf's index (its position in the log, from 0).
    pub position: u64,
    pub tree_size: u64,
    /// The event's row in the store (`position` of the export).
    pub event_position: i64,
    /// SHA-256(0x00 ‖ the leaf's canonical encoding).
    pub leaf_hash: String,
    /// The audit path, leaf to root (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
}

/// `GET /api/admin/log/proof/consistency`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// RFC 9162 §2.1.4.
    pub proof: Vec<String>,
}

/// The errors the proof operations share.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum LogErrors {
    #[response(status = 401, description = "Missing or invalid token (`WWW-Authenticate: Bearer`)", headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    Unauthorized(JwtError),
    #[response(status = 403, description = "Not ADMIN")]
    Forbidden(JwtError),
    #[response(status = 404, description = "Nothing sealed yet")]
    NotFound(JwtError),
    #[response(status = 500, description = "Internal error")]
    Internal(JwtError),
    #[response(status = 503, description = "Store unavailable; retry")]
    Unavailable(JwtError),
}

/// One sealed event, as `walletd events export` writes it.
#[derive(Serialize, ToSchema)]
pub struct ExportedEvent {
    /// Its leaf index: the log position.
    pub index: u64,
    /// Its row in the store.
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// As stored: `{"EventType": {fields}}` (see docs/events.md).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// SHA-256(0x00 ‖ the leaf's canonical encoding), base64.
    pub leaf_hash: String,
}

/// `GET /api/admin/events`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    pub from: u64,
    /// The sealed log's size when the page was read.
    pub tree_size: u64,
    pub events: Vec<ExportedEvent>,
    /// Where the next page starts; null when this page reaches the end.
    pub next: Option<u64>,
}
