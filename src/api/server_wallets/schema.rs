//! The server-wallet API's answers as the OpenAPI document
//! describes them. The handlers build their answers as JSON; the integration
//! tests check real answers against these schemas, so the two cannot drift
//! apart unnoticed.

use serde::Serialize;
use utoipa::ToSchema;

/// A server wallet. `createdAt` is present on `GET`, not on create.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerWallet {
    /// Always `true`.
    pub success: bool,
    pub user_id: String,
    /// EIP-55 checksummed.
    #[schema(example = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")]
    pub address: String,
    #[schema(format = "uuid")]
    pub wallet_id: String,
    /// Uncompressed SEC1 public key: `0x04` and 128 hex digits.
    pub public_key: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// On `GET`: every asset the wallet has held (the ledger's balances),
    /// by asset code; empty when it never held any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<ServerWalletBalance>>,
}

/// One asset's balance of a server wallet.
#[derive(Serialize, ToSchema)]
pub struct ServerWalletBalance {
    /// The asset code (`ETH`, `SILA`, …).
    pub asset: String,
    /// Major units as a decimal string, no trailing zeros (`"0"`, `"1.5"`).
    pub balance: String,
}

/// A message signature.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
    pub success: bool,
    /// r‖s‖v, low-s, v ∈ {27, 28}: `0x` and 130 hex digits.
    pub signature: String,
    /// The EIP-191 digest.
    pub message_hash: String,
    pub address: String,
    #[schema(format = "uuid")]
    pub wallet_id: String,
}

/// A typed-data signature.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypedDataSignature {
    pub success: bool,
    pub signature: String,
    /// keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)).
    pub digest: String,
    pub address: String,
    #[schema(format = "uuid")]
    pub wallet_id: String,
}

/// A signed transaction, ready for `eth_sendRawTransaction`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionSignature {
    pub success: bool,
    /// EIP-2718 envelope (eip1559) or EIP-155 RLP (legacy).
    pub signed_transaction: String,
    /// keccak256 of `signedTransaction`.
    pub transaction_hash: String,
    /// r‖s‖v (v ∈ {27, 28}) over the transaction's signing hash.
    pub signature: String,
    pub address: String,
    #[schema(format = "uuid")]
    pub wallet_id: String,
}

/// Every error of this API.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerWalletError {
    /// Always `false`.
    pub success: bool,
    pub error: String,
    /// The existing wallet, on the duplicate-create 409.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    pub wallet_id: Option<String>,
    /// Seconds, on the 503 of an MPC create that found no key ready (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The errors of the three signing operations (the OpenAPI responses they
/// share).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum SignErrors {
    #[response(
        status = 400,
        description = "Bad request: body, field or path identifier not valid for the endpoint"
    )]
    BadRequest(ServerWalletError),
    #[response(status = 401, description = "Missing or unknown API key (`WWW-Authenticate: Bearer`)", headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    Unauthorized(ServerWalletError),
    #[response(
        status = 404,
        description = "No such wallet (or a wallet of another API)"
    )]
    NotFound(ServerWalletError),
    #[response(
        status = 409,
        description = "Same Idempotency-Key still running; too many concurrent changes; the wallet's key is frozen (MPC peer misbehaved: `WalletKeyFrozen`)"
    )]
    Conflict(ServerWalletError),
    #[response(status = 413, description = "Body larger than `WALLETD_MAX_BODY`")]
    TooLarge(ServerWalletError),
    #[response(status = 415, description = "Content-Type is not JSON")]
    UnsupportedMediaType(ServerWalletError),
    #[response(
        status = 422,
        description = "Idempotency-Key reused with a different request; wallet key not held by walletd"
    )]
    Unprocessable(ServerWalletError),
    #[response(
        status = 500,
        description = "No master key configured, or an internal error"
    )]
    Internal(ServerWalletError),
    #[response(status = 503, description = "Store or MPC cosigner unavailable, or no MPC key ready (`Retry-After`, `retryAfter`)", headers(("Retry-After" = Option<u64>, description = "seconds; on 503 only when no MPC key was ready")))]
    Unavailable(ServerWalletError),
}
