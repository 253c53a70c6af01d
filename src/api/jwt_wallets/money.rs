//! What the money endpoints share: amounts and currencies on the wire, the
//! movement id of a request, the movement objects of the answers, and the
//! refusals they record.

use actix_web::HttpRequest;
use serde_json::{json, Map, Value};
use walletd_projections::ledger_queries::MovementRow;

use super::auth::refuse;
use super::errors::ledger_error;
use super::primary::visible_wallet;
use super::JwtApiError;
use crate::app::App;
use crate::auth::jwt::JwtUser;
use crate::domain::account::MovementId;
use crate::domain::money::{Amount, Asset};
use crate::domain::WalletId;
use crate::ledger::Assets;
use crate::service::ledger::{LedgerError, Origin};

pub(crate) use crate::api::amounts::wire_amount;

/// A request's `amount`: a decimal string of major units, greater than
/// zero. A JSON number is refused: a float cannot carry 18 decimals
/// exactly, and the document promises strings both ways.
pub(crate) fn parse_amount(asset: &Asset, v: &Value) -> Result<Amount, JwtApiError> {
    let Value::String(text) = v else {
        return Err(JwtApiError::new(
            400,
            "amount must be a decimal string such as \"1.5\", not a JSON number",
        ));
    };
    let amount = asset
        .parse_amount(text)
        .map_err(|e| JwtApiError::new(400, format!("amount: {e}")))?;
    if amount.is_zero() {
        return Err(JwtApiError::new(400, "amount must be greater than zero"));
    }
    Ok(amount)
}

/// The asset a request names (`currency`), `default` when it names none.
pub(crate) fn currency(
    app: &App,
    given: Option<&str>,
    default: &'static str,
) -> Result<Asset, JwtApiError> {
    let code = given.unwrap_or(default);
    app.settings
        .assets
        .get(code)
        .cloned()
        .ok_or_else(|| JwtApiError::new(400, "unknown currency"))
}

/// The JWT wallets' own currency: a transfer between them moves only it.
pub(crate) fn jwt_currency(app: &App, given: Option<&str>) -> Result<Asset, JwtApiError> {
    let asset = currency(app, given, Assets::ETH)?;
    if asset.code().as_str() != Assets::ETH {
        return Err(JwtApiError::new(400, "currency must be ETH"));
    }
    Ok(asset)
}

/// Who asks and under which movement: the same caller and Idempotency-Key
/// always name the same movement, so a retry cannot move money twice.
pub(crate) fn origin(req: &HttpRequest, user: &JwtUser) -> Origin {
    let actor = &user.principal.actor;
    let movement_id = match req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
    {
        Some(key) => MovementId::for_request(actor, key),
        None => MovementId::random(),
    };
    Origin {
        movement_id,
        requested_by: actor.clone(),
    }
}

/// A movement row's status in this API: `completed` once the value is
/// where it goes (a return row: back on the source), `failed` for a
/// transfer that came back, `pending` while it is in transit.
pub(crate) fn status(row: &MovementRow) -> &'static str {
    match (row.kind.as_str(), row.status.as_str()) {
        ("return", _) | (_, "settled") => "completed",
        (_, "returned") => "failed",
        _ => "pending",
    }
}

/// One movement as a wallet's history shows it.
pub(crate) fn transaction(row: &MovementRow, reason: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(row.movement_id));
    m.insert("walletId".into(), json!(row.wallet_id));
    m.insert("type".into(), json!(row.kind));
    m.insert(
        "amount".into(),
        json!(wire_amount(row.amount, row.decimals)),
    );
    m.insert("currency".into(), json!(row.asset));
    m.insert("status".into(), json!(status(row)));
    match row.kind.as_str() {
        "issue" | "redeem" => m.insert("reference".into(), json!(row.counterparty)),
        _ => m.insert("counterpartyWalletId".into(), json!(row.counterparty)),
    };
    if let Some(memo) = &row.memo {
        m.insert("memo".into(), json!(memo));
    }
    if let Some(reason) = reason.or(row.reason.as_deref()) {
        m.insert("reason".into(), json!(reason));
    }
    m.insert("createdAt".into(), json!(row.at));
    m.insert("updatedAt".into(), json!(row.updated_at));
    Value::Object(m)
}

/// The caller's wallet that money would leave ([`visible_wallet`]); a
/// "not found" is recorded in the security log (someone tried to move a
/// wallet that is not theirs, or guessed an id).
pub(crate) async fn source_wallet(
    app: &App,
    req: &HttpRequest,
    action: &'static str,
    user: &JwtUser,
    id: &str,
) -> Result<WalletId, JwtApiError> {
    match visible_wallet(app, user, id).await {
        Err(e) if e.status.as_u16() == 404 => {
            Err(refuse(app, req, action, user, e, "wallet_not_visible").await)
        }
        other => other,
    }
}

/// Maps a ledger error, recording it in the security log when the client
/// caused it.
pub(crate) async fn refused(
    app: &App,
    req: &HttpRequest,
    action: &'static str,
    user: &JwtUser,
    e: LedgerError,
) -> JwtApiError {
    match ledger_error(e) {
        (err, Some(reason)) => refuse(app, req, action, user, err, reason).await,
        (err, None) => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, status: &str, reason: Option<&str>) -> MovementRow {
        MovementRow {
            wallet_id: "w".into(),
            movement_id: "m".into(),
            kind: kind.into(),
            asset: "ETH".into(),
            decimals: 18,
            amount: 15 * 10u128.pow(17),
            counterparty: "other".into(),
            status: status.into(),
            memo: None,
            requested_by: None,
            reason: reason.map(str::to_string),
            at: "t0".into(),
            updated_at: "t1".into(),
            seq: 1,
        }
    }

    #[test]
    fn statuses_and_rows_on_the_wire() {
        for (kind, stored, wire) in [
            ("transfer_out", "pending", "pending"),
            ("transfer_out", "settled", "completed"),
            ("transfer_out", "returned", "failed"),
            ("transfer_in", "settled", "completed"),
            ("return", "returned", "completed"),
            ("issue", "settled", "completed"),
            ("redeem", "settled", "completed"),
        ] {
            assert_eq!(status(&row(kind, stored, None)), wire, "{kind} {stored}");
        }
        let back = transaction(
            &row("transfer_out", "returned", None),
            Some("destination_frozen"),
        );
        assert_eq!(back["status"], "failed");
        assert_eq!(back["reason"], "destination_frozen");
        assert_eq!(back["amount"], "1.5");
        assert_eq!(back["counterpartyWalletId"], "other");
        assert!(back.get("reference").is_none() && back.get("memo").is_none());
        let issued = transaction(&row("issue", "settled", None), None);
        assert_eq!(issued["reference"], "other");
        assert!(issued.get("counterpartyWalletId").is_none() && issued.get("reason").is_none());
    }

    #[test]
    fn amounts_must_be_positive_decimal_strings() {
        let eth = Assets::default().eth().clone();
        assert_eq!(
            parse_amount(&eth, &json!("1.5")).unwrap().minor(),
            15 * 10u128.pow(17)
        );
        for bad in [
            json!("0"),
            json!("-1"),
            json!("1.0000000000000000001"),
            json!(1.5),
            json!(2),
            json!("abc"),
            json!(""),
            json!(null),
            json!("1e3"),
        ] {
            let e = parse_amount(&eth, &bad).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{bad}");
        }
    }
}
