//! `POST /api/wallet/{id}/issue` (ADMIN) and `POST /api/wallet/{id}/redeem`
//! (owner or ADMIN) `{"amount", "reference", "currency"?}`: value entering
//! or leaving walletd. ADMIN may name any wallet walletd keeps (JWT, server
//! or Sila), to fund tests and for operations.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authorize;
use super::money::{currency, origin, parse_amount, refused, source_wallet, transaction};
use super::schema::{JwtError, TransactionEnvelope};
use super::JwtApiError;
use crate::api::context::{command_meta, discard_body, parse_json, read_json_bytes};
use crate::app::App;
use crate::auth::jwt::JwtUser;
use crate::auth::roles::Role;
use crate::domain::account::Reference;
use crate::domain::WalletId;
use crate::ledger::Assets;
use crate::service::ledger::LedgerService;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = JwtMovementRequest)]
struct MovementRequest {
    /// Major units as a decimal string ("1.5"), at most the currency's
    /// decimals, > 0.
    #[schema(value_type = String, pattern = r"^(0|[1-9][0-9]*)(\.[0-9]{1,18})?$", example = "1.5")]
    amount: Value,
    /// Where the value comes from (issue) or goes (redeem) outside walletd:
    /// a payment or payout id, 1–128 printable ASCII characters, no
    /// leading or trailing space. Not an account number: events are public
    /// to auditors.
    reference: String,
    /// A configured asset code (`WALLETD_ASSETS`); default `"ETH"`.
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Issue,
    Redeem,
}

impl Kind {
    fn action(self) -> &'static str {
        match self {
            Kind::Issue => "wallet.issue",
            Kind::Redeem => "wallet.redeem",
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/wallet/{id}/issue",
    operation_id = "jwtIssue",
    tag = "jwt-wallets",
    summary = "Credit a wallet with value received outside walletd (ADMIN; any wallet)",
    security(("jwt" = [])),
    request_body = MovementRequest,
    params(
        ("id" = String, Path, description = "walletId (UUID) of any wallet walletd keeps"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request, and the value is issued once"),
    ),
    responses(
        (status = 201, description = "The issue, completed", body = TransactionEnvelope),
        (status = 400, description = "Bad JSON, field, amount, currency or reference", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not ADMIN; the wallet is not whitelisted", body = JwtError),
        (status = 404, description = "Wallet not found", body = JwtError),
        (status = 409, description = "The wallet is frozen or deleted; same Idempotency-Key still running", body = JwtError),
        (status = 413, description = "Body larger than `WALLETD_MAX_BODY`", body = JwtError),
        (status = 415, description = "Content-Type is not JSON", body = JwtError),
        (status = 422, description = "The balance would overflow; Idempotency-Key reused with a different request", body = JwtError),
        (status = 500, description = "Internal error", body = JwtError),
        (status = 503, description = "Store unavailable or too many concurrent changes to the wallet; retry (`Retry-After`, `retryAfter`)", body = JwtError, headers(("Retry-After" = Option<u64>, description = "seconds"))),
    ),
)]
pub async fn issue(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    handle(Kind::Issue, &app, req, &path.into_inner(), payload).await
}

#[utoipa::path(
    post,
    path = "/api/wallet/{id}/redeem",
    operation_id = "jwtRedeem",
    tag = "jwt-wallets",
    summary = "Debit a wallet for value paid out outside walletd (owner, SUBSCRIBER+; ADMIN: any wallet)",
    security(("jwt" = [])),
    request_body = MovementRequest,
    params(
        ("id" = String, Path, description = "walletId (UUID): the caller's JWT wallet, or for ADMIN any wallet walletd keeps"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7e]{1,255}$", description = "1–255 visible ASCII characters; the first answer is replayed to retries of the same request, and the value is redeemed once"),
    ),
    responses(
        (status = 201, description = "The redemption, completed", body = TransactionEnvelope),
        (status = 400, description = "Bad JSON, field, amount, currency or reference", body = JwtError),
        (status = 401, description = "Missing or invalid token: `{\"error\": \"Unauthorized\"}` (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Role too low; the wallet is not whitelisted", body = JwtError),
        (status = 404, description = "Wallet not found (or not the caller's)", body = JwtError),
        (status = 409, description = "The wallet is frozen or deleted; same Idempotency-Key still running", body = JwtError),
        (status = 413, description = "Body larger than `WALLETD_MAX_BODY`", body = JwtError),
        (status = 415, description = "Content-Type is not JSON", body = JwtError),
        (status = 422, description = "Insufficient funds; Idempotency-Key reused with a different request", body = JwtError),
        (status = 500, description = "Internal error", body = JwtError),
        (status = 503, description = "Store unavailable or too many concurrent changes to the wallet; retry (`Retry-After`, `retryAfter`)", body = JwtError, headers(("Retry-After" = Option<u64>, description = "seconds"))),
    ),
)]
pub async fn redeem(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    handle(Kind::Redeem, &app, req, &path.into_inner(), payload).await
}

async fn handle(
    kind: Kind,
    app: &App,
    req: HttpRequest,
    id: &str,
    payload: web::Payload,
) -> HttpResponse {
    let min = match kind {
        Kind::Issue => Role::Admin,
        Kind::Redeem => Role::Subscriber,
    };
    let user = match authorize(app, &req, kind.action(), min).await {
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
        run(kind, app, &req, &user, id, &body)
    })
    .await;
    super::respond(result)
}

/// The wallet the request acts on: ADMIN names any wallet (the ledger
/// answers "not found" for one that never existed); others only their own
/// JWT wallets.
async fn target(
    app: &App,
    req: &HttpRequest,
    kind: Kind,
    user: &JwtUser,
    id: &str,
) -> Result<WalletId, JwtApiError> {
    if user.role == Role::Admin {
        WalletId::parse(id).ok_or_else(JwtApiError::not_found)
    } else {
        source_wallet(app, req, kind.action(), user, id).await
    }
}

async fn run(
    kind: Kind,
    app: &App,
    req: &HttpRequest,
    user: &JwtUser,
    id: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), JwtApiError> {
    let request: MovementRequest = parse_json(body)?;
    let asset = currency(app, request.currency.as_deref(), Assets::ETH)?;
    let amount = parse_amount(&asset, &request.amount)?;
    let reference = Reference::parse(&request.reference)
        .map_err(|e| JwtApiError::new(400, format!("reference: {e}")))?;
    let wallet_id = target(app, req, kind, user, id).await?;
    let ledger = LedgerService::new(app);
    let meta = command_meta(req, &user.principal);
    let origin = origin(req, user);
    let done = match kind {
        Kind::Issue => {
            ledger
                .issue(wallet_id, &asset, amount, reference, &origin, &meta)
                .await
        }
        Kind::Redeem => {
            ledger
                .redeem(wallet_id, &asset, amount, reference, &origin, &meta)
                .await
        }
    };
    match done {
        Ok(done) => Ok((
            StatusCode::CREATED,
            json!({ "transaction": transaction(&done.row, None) }),
        )),
        Err(e) => Err(refused(app, req, kind.action(), user, e).await),
    }
}
