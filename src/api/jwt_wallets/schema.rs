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
    /// The wallet's ETH balance: major units as a decimal string, no
    /// trailing zeros (`"0"`, `"1.5"`).
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
    /// Seconds, on 429 and on a money endpoint's 503 (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// A wallet's balance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletBalance {
    #[schema(format = "uuid")]
    pub wallet_id: String,
    /// `"ETH"`.
    pub currency: String,
    /// Major units as a decimal string, no trailing zeros (`"0"`, `"1.5"`).
    pub balance: String,
}

/// Where a transfer stands.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransferStatus {
    /// Debited; the credit has not been applied yet.
    Pending,
    /// Credited to the destination.
    Completed,
    /// Returned to the source (`reason` says why).
    Failed,
}

/// A transfer as its source records it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// The movement id (the same on both wallets' histories).
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub from_wallet_id: String,
    #[schema(format = "uuid")]
    pub to_wallet_id: String,
    pub amount: String,
    pub currency: String,
    pub status: TransferStatus,
    /// Why a failed transfer came back: `destination_deleted`,
    /// `destination_frozen`, `destination_not_whitelisted`,
    /// `destination_refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// RFC 3339: when the debit was recorded.
    pub created_at: String,
}

/// One transfer.
#[derive(Serialize, ToSchema)]
pub struct TransferEnvelope {
    pub transfer: Transfer,
}

/// The kind of a movement in a wallet's history.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransactionType {
    Issue,
    TransferIn,
    TransferOut,
    /// A transfer's value back on its source.
    Return,
    Redeem,
}

/// One movement of a wallet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// The movement id: a transfer's rows on both wallets share it.
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub wallet_id: String,
    #[serde(rename = "type")]
    pub kind: TransactionType,
    pub amount: String,
    pub currency: String,
    /// `completed` (a `return` row: the value is back), `pending` (a
    /// transfer out still in transit) or `failed` (a transfer out that came
    /// back).
    pub status: TransferStatus,
    /// The other wallet (transfers and returns).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    pub counterparty_wallet_id: Option<String>,
    /// The external reference (issues and redemptions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Why a transfer came back (failed transfers out and return rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339: when it was recorded.
    pub created_at: String,
    /// RFC 3339: its last change (a transfer out: settled or returned).
    pub updated_at: String,
}

/// One issue or redemption.
#[derive(Serialize, ToSchema)]
pub struct TransactionEnvelope {
    pub transaction: Transaction,
}

/// A page of a wallet's movements, newest first.
#[derive(Serialize, ToSchema)]
pub struct TransactionPage {
    pub transactions: Vec<Transaction>,
    /// Movements matching the filters, over all pages.
    pub total: i64,
    pub page: i64,
    pub limit: i64,
}
