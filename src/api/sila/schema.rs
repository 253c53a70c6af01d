//! The Sila-style API's requests and answers as the OpenAPI document
//! describes them. The handlers read the signed body field by field (the
//! signatures cover its exact bytes) and build their answers as JSON; the
//! integration tests check real answers against these schemas.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The `header` every request starts with. Unknown extra fields are ignored.
#[derive(Serialize, ToSchema)]
pub struct SilaHeader {
    /// Epoch seconds, within ±`WALLETD_SIGNATURE_WINDOW` of the server clock.
    #[schema(minimum = 0)]
    pub created: i64,
    /// An app registered with `walletd app register` (old name: `auth_handle`).
    #[schema(pattern = r"^[A-Za-z0-9._-]{3,100}$")]
    pub app_handle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9._-]{3,100}$")]
    pub auth_handle: Option<String>,
    /// 3–100 letters, digits, `.`, `-`, `_`; case-insensitive. Required by
    /// every endpoint (401 without it).
    #[schema(pattern = r"^[A-Za-z0-9._-]{3,100}$")]
    pub user_handle: String,
    /// `"0.2"` or `"v0.2"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^v?0\.2$")]
    pub version: Option<String>,
    /// `"ETH"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^ETH$")]
    pub crypto: Option<String>,
    /// Up to 128 characters, echoed in the answer; accepted once per app.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub reference: Option<String>,
}

/// A request that carries only its header.
#[derive(Serialize, ToSchema)]
pub struct SilaRequest {
    pub header: SilaHeader,
}

/// `crypto_entry` of `register`.
#[derive(Serialize, ToSchema)]
pub struct CryptoEntry {
    /// 0x + 40 hex digits: the user's first, default wallet.
    #[schema(pattern = r"^0x[0-9a-fA-F]{40}$")]
    pub crypto_address: String,
    /// The wallet's nickname; empty or absent: generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crypto_alias: Option<String>,
    /// `"ETH"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crypto_code: Option<String>,
}

/// `register`. `entity`, `address`, `identity` and `contact` are accepted and not stored.
#[derive(Serialize, ToSchema)]
pub struct RegisterRequest {
    pub header: SilaHeader,
    pub crypto_entry: CryptoEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Value>,
}

/// `wallet` of `register_wallet`. In token mode only `nickname`, `default`
/// and `statements_enabled` are read.
#[derive(Serialize, ToSchema)]
pub struct NewSilaWallet {
    /// 0x + 40 hex digits (ECDSA mode: required; or as `wallet_address`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^0x[0-9a-fA-F]{40}$")]
    pub blockchain_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^0x[0-9a-fA-F]{40}$")]
    pub wallet_address: Option<String>,
    /// `"ETH"` (or as `network`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^ETH$")]
    pub blockchain_network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^ETH$")]
    pub network: Option<String>,
    /// 1–40 characters, no control characters, unique per user.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[^\x00-\x1f\x7f]{1,40}$")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements_enabled: Option<bool>,
}

/// `register_wallet`.
#[derive(Serialize, ToSchema)]
pub struct RegisterWalletRequest {
    pub header: SilaHeader,
    /// ECDSA mode: the new address's signature (130 hex digits r‖s‖v) over
    /// keccak256 of `blockchain_address` exactly as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{130}$")]
    pub wallet_verification_signature: Option<String>,
    pub wallet: NewSilaWallet,
}

/// `search_filters` of `get_wallets`.
#[derive(Serialize, ToSchema)]
pub struct SearchFilters {
    /// At least 1 (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub page: Option<i64>,
    /// 1–100 (default 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Default `false`: newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_ascending: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blockchain_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blockchain_network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Case-insensitive substring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
}

/// `get_wallets`.
#[derive(Serialize, ToSchema)]
pub struct GetWalletsRequest {
    pub header: SilaHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_filters: Option<SearchFilters>,
}

/// `update_wallet`: at least one of the three.
#[derive(Serialize, ToSchema)]
pub struct UpdateWalletRequest {
    pub header: SilaHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements_enabled: Option<bool>,
}

/// `request_kyc`.
#[derive(Serialize, ToSchema)]
pub struct RequestKycRequest {
    pub header: SilaHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kyc_level: Option<String>,
}

/// `SUCCESS` or `FAILURE`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SilaStatus {
    Success,
    Failure,
}

/// An answer with a message: the envelope every Sila answer carries.
#[derive(Serialize, ToSchema)]
pub struct SilaMessage {
    pub success: bool,
    pub status: SilaStatus,
    /// The request's `header.reference`, or null.
    #[schema(required = true)]
    pub reference: Option<String>,
    /// Milliseconds, as a decimal string.
    pub response_time_ms: String,
    pub message: String,
}

/// A wallet as the Sila API shows it.
#[derive(Serialize, ToSchema)]
pub struct SilaWallet {
    #[schema(format = "uuid")]
    pub wallet_id: String,
    pub nickname: String,
    pub default: bool,
    /// EIP-55 checksummed.
    pub blockchain_address: String,
    /// `"ETH"`.
    pub blockchain_network: String,
    pub statements_enabled: bool,
}

/// `register_wallet`.
#[derive(Serialize, ToSchema)]
pub struct RegisteredWallet {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub message: String,
    pub wallet_nickname: String,
    pub statements_enabled: bool,
    pub queued_for_whitelist: bool,
    #[schema(format = "uuid")]
    pub wallet_id: String,
}

/// `get_wallet`: the signing wallet.
#[derive(Serialize, ToSchema)]
pub struct GetWalletReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub wallet: SilaWallet,
    pub is_whitelisted: bool,
    /// The wallet's SILA balance (whole SILA; 1 SILA = 1 US cent).
    #[schema(minimum = 0)]
    pub sila_balance: i64,
}

/// `get_wallets`.
#[derive(Serialize, ToSchema)]
pub struct GetWalletsReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub wallets: Vec<SilaWallet>,
    pub page: i64,
    pub returned_count: i64,
    pub total_count: i64,
    pub total_page_count: i64,
}

/// One attribute `update_wallet` changed.
#[derive(Serialize, ToSchema)]
pub struct WalletChange {
    /// `nickname`, `default` or `statements_enabled`.
    pub attribute: String,
    /// A string (nickname) or a boolean.
    pub old_value: Value,
    pub new_value: Value,
}

/// `update_wallet`.
#[derive(Serialize, ToSchema)]
pub struct UpdateWalletReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub message: String,
    pub wallet: SilaWallet,
    pub changes: Vec<WalletChange>,
}

/// `request_kyc`.
#[derive(Serialize, ToSchema)]
pub struct RequestKycReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub message: String,
    #[schema(format = "uuid")]
    pub verification_uuid: String,
}

/// The state of a user's KYC.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KycStatus {
    Unverified,
    Pending,
    Passed,
    Failed,
}

/// `check_kyc`: `success: true` only when passed.
#[derive(Serialize, ToSchema)]
pub struct CheckKycReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub message: String,
    pub verification_status: KycStatus,
}

/// A message template of `getmessage`: the message's fields, null where the
/// caller fills them in, and `message` naming the template.
#[derive(Serialize, ToSchema)]
pub struct MessageTemplate {
    pub header: Value,
    /// `header_msg`, `entity_msg`, `identity_msg`, `crypto_msg` or `link_account_msg`.
    pub message: String,
    /// The template's other fields.
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

/// `issue_sila` and `redeem_sila`.
#[derive(Serialize, ToSchema)]
pub struct IssueSilaRequest {
    pub header: SilaHeader,
    /// Whole SILA (1 SILA = 1 US cent), 1 to 2^53 − 1.
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_f64)]
    pub amount: i64,
    /// The bank account (default `"default"`): 1–40 printable ASCII
    /// characters, no `/`. Recorded with `header.reference` as the
    /// movement's external reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 40)]
    pub account_name: Option<String>,
    /// Up to 100 characters, echoed in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub descriptor: Option<String>,
}

/// `redeem_sila`: as `issue_sila`; `account_name` receives the value.
#[derive(Serialize, ToSchema)]
pub struct RedeemSilaRequest {
    #[serde(flatten)]
    pub fields: IssueSilaRequest,
}

/// `transfer_sila`: `destination_handle` (or `destination`), or
/// `destination_address` alone; `destination_wallet` (a nickname) and
/// `destination_address` narrow the handle's wallets, otherwise its
/// default wallet receives.
#[derive(Serialize, ToSchema)]
pub struct TransferSilaRequest {
    pub header: SilaHeader,
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_f64)]
    pub amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_wallet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^0x[0-9a-fA-F]{40}$")]
    pub destination_address: Option<String>,
    /// The transfer's memo, up to 100 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub descriptor: Option<String>,
}

/// A transaction's state: `pending` until a transfer's credit, `failed`
/// when it came back to the sender.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransactionStatus {
    Pending,
    Success,
    Failed,
}

/// `issue_sila`, `redeem_sila`.
#[derive(Serialize, ToSchema)]
pub struct MovementReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub message: String,
    /// The movement's id; the same for every retry with this reference.
    #[schema(format = "uuid")]
    pub transaction_id: String,
    pub transaction_status: TransactionStatus,
    /// As sent, or empty.
    pub descriptor: String,
}

/// `transfer_sila`.
#[derive(Serialize, ToSchema)]
pub struct TransferReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub message: String,
    #[schema(format = "uuid")]
    pub transaction_id: String,
    pub transaction_status: TransactionStatus,
    pub descriptor: String,
    /// EIP-55 checksummed.
    pub destination_address: String,
    pub destination_handle: String,
    /// The receiving wallet's nickname.
    pub destination_wallet: String,
}

/// `get_sila_balance`: no header, no signature.
#[derive(Serialize, ToSchema)]
pub struct GetSilaBalanceRequest {
    #[schema(pattern = r"^0x[0-9a-fA-F]{40}$")]
    pub address: String,
}

/// `get_sila_balance`.
#[derive(Serialize, ToSchema)]
pub struct SilaBalanceReply {
    pub success: bool,
    pub status: SilaStatus,
    /// Null: the request has no header.
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    /// As sent.
    pub address: String,
    /// Whole SILA.
    #[schema(minimum = 0)]
    pub sila_balance: i64,
}

/// `search_filters` of `get_transactions`. Empty lists filter nothing;
/// `min_sila_amount`, `max_sila_amount`, `bank_account_name`,
/// `processing_type` and `payment_method_id` are refused (unsupported).
#[derive(Serialize, ToSchema)]
pub struct TransactionFilters {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    pub transaction_id: Option<String>,
    /// The `header.reference` of the issue, transfer or redemption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// Of `issue`, `transfer`, `redeem`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_types: Option<Vec<String>>,
    /// Of `pending`, `success`, `failed` (and Sila's `queued`, `rollback`,
    /// `review`, which never happen here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<String>>,
    /// Epoch seconds, inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_epoch: Option<i64>,
    /// Epoch seconds, inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_epoch: Option<i64>,
    /// Only this wallet of the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blockchain_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Default `false`: newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_ascending: Option<bool>,
    /// Accepted and ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_timelines: Option<bool>,
}

/// `get_transactions`: usersignature optional (Sila's Python SDK signs
/// with the app key only).
#[derive(Serialize, ToSchema)]
pub struct GetTransactionsRequest {
    pub header: SilaHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_filters: Option<TransactionFilters>,
}

/// One transaction of `get_transactions`: one row of a wallet's history.
#[derive(Serialize, ToSchema)]
pub struct SilaTransaction {
    pub user_handle: String,
    #[schema(format = "uuid")]
    pub transaction_id: String,
    /// The request's reference when known (issues and redemptions record
    /// it; a transfer's shows when filtered by it).
    #[schema(required = true)]
    pub reference_id: Option<String>,
    /// `issue`, `transfer` or `redeem`.
    pub transaction_type: String,
    /// Whole SILA.
    #[schema(minimum = 1)]
    pub sila_amount: i64,
    pub status: TransactionStatus,
    pub usd_status: TransactionStatus,
    pub token_status: TransactionStatus,
    /// RFC 3339.
    pub created: String,
    pub last_update: String,
    pub created_epoch: i64,
    pub last_update_epoch: i64,
    /// The transfer's memo, or empty.
    pub descriptor: String,
    /// Issues and redemptions: the bank account.
    #[schema(required = true)]
    pub bank_account_name: Option<String>,
    /// The sender (null when a wallet was deleted since).
    #[schema(required = true)]
    pub handle: Option<String>,
    #[schema(required = true)]
    pub handle_address: Option<String>,
    #[schema(required = true)]
    pub destination_handle: Option<String>,
    #[schema(required = true)]
    pub destination_address: Option<String>,
    /// The wallet whose history this row is.
    #[schema(format = "uuid")]
    pub wallet_id: String,
    /// Why a transfer came back.
    #[schema(required = true)]
    pub error_msg: Option<String>,
}

/// `get_transactions`.
#[derive(Serialize, ToSchema)]
pub struct GetTransactionsReply {
    pub success: bool,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub response_time_ms: String,
    pub page: i64,
    pub returned_count: i64,
    pub total_count: i64,
    pub total_page_count: i64,
    pub transactions: Vec<SilaTransaction>,
}

/// Every error of this API. `validation_details` maps a field path to its problem.
#[derive(Serialize, ToSchema)]
pub struct SilaError {
    /// Always `false`.
    pub success: bool,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub message: String,
    pub status: SilaStatus,
    #[schema(required = true)]
    pub validation_details: Option<Value>,
}

/// `POST /api/admin/kyc/{handle}`.
#[derive(Serialize, ToSchema)]
pub struct KycDecisionReply {
    pub success: bool,
    pub user_handle: String,
    pub verification_status: KycStatus,
}

/// The errors every Sila endpoint can answer, in Sila's envelope (the
/// OpenAPI responses the operations share).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum SilaErrors {
    #[response(
        status = 400,
        description = "Malformed body or header, bad field, taken address or nickname, unknown user, replayed request (`validation_details` names the field)"
    )]
    BadRequest(SilaError),
    #[response(
        status = 401,
        description = "`header.app_handle` or `header.user_handle` missing; bad or missing bearer token (token mode)"
    )]
    Unauthorized(SilaError),
    #[response(
        status = 403,
        description = "`authsignature`, `usersignature` or `wallet_verification_signature` absent or not matching"
    )]
    Forbidden(SilaError),
    #[response(status = 409, description = "Too many concurrent changes; retry")]
    Conflict(SilaError),
    #[response(status = 413, description = "Body larger than `WALLETD_MAX_BODY`")]
    TooLarge(SilaError),
    #[response(
        status = 415,
        description = "A Content-Type that is present and not JSON"
    )]
    UnsupportedMediaType(SilaError),
    #[response(status = 500, description = "Server configuration or internal error")]
    Internal(SilaError),
    #[response(status = 503, description = "Store unavailable; retry")]
    Unavailable(SilaError),
}
