//! The JWT-role wallet API's answers as the OpenAPI document describes them.
//! The handlers build their answers as JSON; the integration tests check
//! real answers against these schemas, so the two cannot drift apart
//! unnoticed.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The wallet object of the API document.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtWallet {
    #[schema(format = "uuid")]
    pub id: String,
    /// EIP-55 checksummed.
    pub address: String,
    /// Absent when the wallet has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Always `"0"`: walletd keeps no balances.
    pub balance: String,
    /// `"ETH"`.
    pub currency: String,
    /// `"ethereum"`.
    pub network: String,
    pub is_active: bool,
    pub is_primary: bool,
    pub created_at: String,
    pub updated_at: String,
    pub user_id: String,
}

/// One wallet.
#[derive(Serialize, ToSchema)]
pub struct JwtWalletEnvelope {
    pub wallet: JwtWallet,
}

/// The caller's wallets (ADMIN: the named user's), oldest first.
#[derive(Serialize, ToSchema)]
pub struct JwtWalletList {
    pub wallets: Vec<JwtWallet>,
    pub total: u64,
}

/// One event of a wallet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub seq: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: String,
    #[schema(required = true)]
    pub actor: Option<String>,
    #[schema(required = true)]
    pub role: Option<String>,
    #[schema(required = true)]
    pub auth_method: Option<String>,
    #[schema(required = true)]
    pub request_id: Option<String>,
    #[schema(required = true)]
    pub client_addr: Option<String>,
    /// The event's payload.
    pub data: Value,
}

/// A page of a wallet's events, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletHistory {
    #[schema(format = "uuid")]
    pub wallet_id: String,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub events: Vec<HistoryEvent>,
}

/// Where an audit entry comes from.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditSource {
    /// A wallet event.
    Event,
    /// Refused attempts from one source, counted.
    Refusal,
}

/// A wallet event (`source: "event"`: `seq`, `data`) or a count of refused
/// attempts (`source: "refusal"`: `status`, `reason`, `path`, `count`, `firstAt`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub source: AuditSource,
    /// RFC 3339; for refusals, the last one counted.
    pub at: String,
    #[schema(required = true)]
    pub actor: Option<String>,
    #[schema(required = true)]
    pub role: Option<String>,
    #[schema(required = true)]
    pub auth_method: Option<String>,
    pub action: String,
    #[schema(required = true)]
    pub user_id: Option<String>,
    #[schema(required = true)]
    pub wallet_id: Option<String>,
    #[schema(required = true)]
    pub request_id: Option<String>,
    #[schema(required = true)]
    pub client_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_at: Option<String>,
}

/// A page of the audit, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub entries: Vec<AuditEntry>,
}

/// Every error of this API (and of `POST /api/admin/kyc/{handle}`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtError {
    pub error: String,
    /// Seconds, on 429 (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}
