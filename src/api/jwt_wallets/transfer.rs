//! `POST /api/wallet/transfer` `{"fromWalletId", "toWalletId" | "toAddress",
//! "amount", "currency"?, "memo"?}`: moves ETH from one of the caller's
//! wallets (ADMIN: any JWT wallet) to any wallet walletd keeps.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::authorize;
use super::money::{
    jwt_currency, origin, parse_amount, refused, source_wallet, status, wire_amount,
};
use super::schema::{JwtError, TransferEnvelope};
use super::JwtApiError;
use crate::api::context::{command_meta, discard_body, parse_json, read_json_bytes};
use crate::app::App;
use crate::auth::jwt::JwtUser;
use crate::auth::roles::Role;
use crate::domain::account::Memo;
use crate::domain::{Address, WalletId};
use crate::service::ledger::{LedgerError, LedgerService, Recorded, TRANSFER_WAIT};
use crate::service::WalletService;

const ACTION: &str = "wallet.transfer";

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = JwtTransferRequest)]
struct TransferRequest {
    /// The caller's wallet (ADMIN: any JWT wallet).
    #[schema(format = "uuid")]
    from_wallet_id: String,
    /// The destination by id; exactly one of `toWalletId` and `toAddress`.
    #[serde(default)]
    #[schema(format = "uuid")]
    to_wallet_id: Option<String>,
    /// The destination by address (`0x` + 40 hex digits).
    #[serde(default)]
    #[schema(pattern = "^0[xX][0-9a-fA-F]{40}$")]
    to_address: Option<String>,
    /// Major units as a decimal string ("1.5"), at most 18 decimals, > 0.
    #[schema(value_type = String, pattern = r"^(0|[1-9][0-9]*)(\.[0-9]{1,18})?$", example = "1.5")]
    amount: Value,
    /// `"ETH"` (the default): JWT wallets hold ETH.
    #[serde(default)]
    currency: Option<String>,
    /// 1–280 characters, no control characters.
    #[serde(default)]
    memo: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/wallet/transfer",
    operation_id = "jwtTransfer",
    tag = "jwt-wallets",
    summary = "Transfer ETH from a wallet (owner, SUBSCRIBER+, or ADMIN)",
    description = "Debits `fromWalletId` at once; the ledger's process manager then credits the destination \
        (or returns the value if the destination may no longer receive). Without `Prefer: respond-async` \
        the answer waits up to 3 s for that second leg (201, `status` `completed`, `failed` with a `reason`, \
        or still `pending`); with it, the answer comes right after the debit (202, `pending`). \
        The same `Idempotency-Key` answers the same transfer and moves money once.",
    security(("jwt" = [])),
    request_body = TransferRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request"),
        ("Prefer" = Option<String>, Header, description = "`respond-async` (RFC 7240): answer 202 once the debit is recorded, without waiting for the credit"),
    ),
    responses(
        (status = 201, description = "The transfer, after up to 3 s for its credit", body = TransferEnvelope),
        (status = 202, description = "The transfer, debited and `pending` (`Prefer: respond-async`)", body = TransferEnvelope),
        (status = 400, description = "Bad JSON, field, amount (not a decimal string, zero, negative, too many decimals), currency, memo, or destination", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Role too low; a wallet not whitelisted", body = JwtError),
        (status = 404, description = "Source wallet not found (or not the caller's); destination not found", body = JwtError),
        (status = 409, description = "A wallet is frozen or deleted; same Idempotency-Key still running", body = JwtError),
        (status = 413, description = "Body larger than `WALLETD_MAX_BODY`", body = JwtError),
        (status = 415, description = "Content-Type is not JSON", body = JwtError),
        (status = 422, description = "Insufficient funds; Idempotency-Key reused with a different request", body = JwtError),
        (status = 500, description = "Internal error", body = JwtError),
        (status = 503, description = "Store unavailable or too many concurrent changes to the wallet; retry (`Retry-After`, `retryAfter`)", body = JwtError, headers(("Retry-After" = Option<u64>, description = "seconds"))),
    ),
)]
pub async fn transfer(
    app: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let user = match authorize(&app, &req, ACTION, Role::Subscriber).await {
        Ok(u) => u,
        Err(e) => {
            discard_body(&req, payload, app.settings.max_body).await;
            return e.response();
        }
    };
    let body = match read_json_bytes(&req, payload, app.settings.max_body).await {
        Ok(b) => b,
        Err(e) => return JwtApiError::from(e).response(),
    };
    let result = super::idempotent_status(&app.db, &req, &user, &body, || {
        run(&app, &req, &user, &body)
    })
    .await;
    super::respond(result)
}

/// Whether the client asked not to wait (`Prefer: respond-async`).
fn respond_async(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            let token = p.split([';', '=']).next().unwrap_or("").trim();
            token.eq_ignore_ascii_case("respond-async")
        })
}

fn destination_not_found() -> JwtApiError {
    JwtApiError::new(404, "Destination wallet not found")
}

async fn destination(app: &App, r: &TransferRequest) -> Result<WalletId, JwtApiError> {
    match (&r.to_wallet_id, &r.to_address) {
        (Some(id), None) => WalletId::parse(id)
            .ok_or_else(|| JwtApiError::new(400, "toWalletId must be a wallet id (UUID)")),
        (None, Some(address)) => {
            let address = Address::parse(address).map_err(|_| {
                JwtApiError::new(400, "toAddress must be 0x followed by 40 hex digits")
            })?;
            WalletService::new(app)
                .address_holder(&address)
                .await?
                .ok_or_else(destination_not_found)
        }
        _ => Err(JwtApiError::new(
            400,
            "give exactly one of toWalletId and toAddress",
        )),
    }
}

async fn run(
    app: &App,
    req: &HttpRequest,
    user: &JwtUser,
    body: &[u8],
) -> Result<(StatusCode, Value), JwtApiError> {
    let request: TransferRequest = parse_json(body)?;
    let asset = jwt_currency(app, request.currency.as_deref())?;
    let amount = parse_amount(&asset, &request.amount)?;
    let memo = request
        .memo
        .as_deref()
        .map(Memo::parse)
        .transpose()
        .map_err(|e| JwtApiError::new(400, format!("memo: {e}")))?;
    let to = destination(app, &request).await?;
    let from = source_wallet(app, req, ACTION, user, &request.from_wallet_id).await?;
    let asynchronous = respond_async(req);
    let wait = if asynchronous {
        Duration::ZERO
    } else {
        TRANSFER_WAIT
    };
    let ledger = LedgerService::new(app);
    let meta = command_meta(req, &user.principal);
    let done = match ledger
        .transfer(
            from,
            to,
            &asset,
            amount,
            memo,
            &origin(req, user),
            &meta,
            wait,
        )
        .await
    {
        Ok(done) => done,
        Err(LedgerError::WalletNotFound(w)) if w == to => return Err(destination_not_found()),
        Err(e) => return Err(refused(app, req, ACTION, user, e).await),
    };
    let body = json!({ "transfer": transfer_json(&ledger, &done).await? });
    let code = if asynchronous {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((code, body))
}

/// The transfer as its source records it; a failed one carries the reason
/// its value came back (on the movement's `return` row).
async fn transfer_json(ledger: &LedgerService<'_>, done: &Recorded) -> Result<Value, JwtApiError> {
    let row = &done.row;
    let mut m = Map::new();
    m.insert("id".into(), json!(row.movement_id));
    m.insert("fromWalletId".into(), json!(row.wallet_id));
    m.insert("toWalletId".into(), json!(row.counterparty));
    m.insert(
        "amount".into(),
        json!(wire_amount(row.amount, row.decimals)),
    );
    m.insert("currency".into(), json!(row.asset));
    let status = status(row);
    m.insert("status".into(), json!(status));
    if status == "failed" {
        let rows = ledger
            .movement(done.movement_id)
            .await
            .map_err(|e| super::errors::ledger_error(e).0)?;
        if let Some(reason) = rows
            .iter()
            .find(|r| r.kind == "return")
            .and_then(|r| r.reason.clone())
        {
            m.insert("reason".into(), json!(reason));
        }
    }
    if let Some(memo) = &row.memo {
        m.insert("memo".into(), json!(memo));
    }
    m.insert("createdAt".into(), json!(row.at));
    Ok(Value::Object(m))
}
