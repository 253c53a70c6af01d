//! `issue_sila`, `transfer_sila`, `redeem_sila`: Sila's wire forms over the
//! ledger service. Amounts are whole SILA (1 SILA = 1 US cent, 0 decimals).
//!
//! Idempotency: the movement id is `MovementId::for_request("sila:<app>/<user>",
//! reference)`, so a new signed request with a reference already used answers
//! the first outcome, and the same reference for another movement is refused.

use serde_json::{json, Value};

use super::destination;
use super::endpoint;
use super::envelope::Fields;
use super::errors::{Reply, SilaApiError};
use super::guard::{Accepted, Effect, Needs};
use super::schema::{
    IssueSilaRequest, MovementReply, RedeemSilaRequest, SilaErrors, TransferReply,
    TransferSilaRequest,
};
use crate::app::App;
use crate::domain::account::{AccountError, Memo, MovementId, Reference};
use crate::domain::money::Amount;
use crate::domain::WalletId;
use crate::service::ledger::{LedgerError, LedgerService, Origin, Recorded, TRANSFER_WAIT};

endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/issue_sila",
        tag = "sila",
        summary = "Credit the signing wallet with SILA funded from a bank account",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = IssueSilaRequest,
        responses(
            (status = 200, description = "Issued (a retry with the same reference answers the first outcome)", body = MovementReply),
            SilaErrors,
        ),
    )]
    issue_sila,
    "issue_sila",
    Needs::SignedByUser,
    Effect::Moves,
    issue_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/transfer_sila",
        tag = "sila",
        summary = "Move SILA from the signing wallet to another user's wallet",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = TransferSilaRequest,
        responses(
            (status = 200, description = "Debited; `transaction_status` says whether the credit is done", body = TransferReply),
            SilaErrors,
        ),
    )]
    transfer_sila,
    "transfer_sila",
    Needs::SignedByUser,
    Effect::Moves,
    transfer_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/redeem_sila",
        tag = "sila",
        summary = "Debit SILA from the signing wallet, paid out to a bank account",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = RedeemSilaRequest,
        responses(
            (status = 200, description = "Redeemed (a retry with the same reference answers the first outcome)", body = MovementReply),
            SilaErrors,
        ),
    )]
    redeem_sila,
    "redeem_sila",
    Needs::SignedByUser,
    Effect::Moves,
    redeem_body
);

/// JSON numbers are exact to 2^53 in every client Sila ships an SDK for.
const MAX_AMOUNT: u64 = (1 << 53) - 1;
/// Sila's limit for `account_name`.
const MAX_ACCOUNT_NAME: usize = 40;
/// Sila's limit for `descriptor`.
const MAX_DESCRIPTOR: usize = 100;

/// `amount`: a whole number of SILA, 1 to 2^53 - 1.
fn amount(f: &Fields) -> Result<Amount, SilaApiError> {
    let bad = |problem: &str| SilaApiError::field("amount", problem);
    match f.value("amount") {
        None => Err(bad("is required")),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(0), _) => Err(bad("must be greater than 0")),
            (Some(v), _) if v > MAX_AMOUNT => Err(bad("is too large (at most 2^53 - 1)")),
            (Some(v), _) => Ok(Amount::from_minor(u128::from(v))),
            (None, Some(_)) => Err(bad("must be greater than 0")),
            (None, None) if n.as_f64().is_some_and(|x| x <= 0.0) => {
                Err(bad("must be greater than 0"))
            }
            (None, None) if n.as_f64().is_some_and(|x| x > MAX_AMOUNT as f64) => {
                Err(bad("is too large (at most 2^53 - 1)"))
            }
            (None, None) => Err(bad(
                "must be a whole number of SILA (1 SILA = 1 cent; no fraction)",
            )),
        },
        Some(_) => Err(bad("must be a number (whole SILA)")),
    }
}

/// The bank account side of an issue or a redemption: `account_name`
/// (Sila's default: `"default"`) and the request's reference, as
/// `<account_name>/<reference>`, so the ledger shows which request of which
/// account funded (or received) the value.
fn bank_reference(a: &Accepted, f: &Fields) -> Result<Reference, SilaApiError> {
    let name = f.str("account_name")?.unwrap_or("default");
    let printable = name
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) || b == b' ');
    if name.trim().is_empty()
        || name.trim() != name
        || name.len() > MAX_ACCOUNT_NAME
        || !printable
        || name.contains('/')
    {
        return Err(SilaApiError::field(
            "account_name",
            "must be 1 to 40 printable ASCII characters, without '/' or surrounding spaces",
        ));
    }
    let text = match a.reference() {
        Some(r) => format!("{name}/{r}"),
        None => name.to_string(),
    };
    Reference::parse(&text).map_err(|_| {
        SilaApiError::field(
            "header.reference",
            "with account_name must fit 128 printable ASCII characters",
        )
    })
}

/// `descriptor`: the transfer's memo, echoed by every movement.
fn descriptor(f: &Fields) -> Result<Option<Memo>, SilaApiError> {
    let Some(text) = f.str("descriptor")?.filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTOR {
        return Err(SilaApiError::field(
            "descriptor",
            "must be at most 100 characters",
        ));
    }
    Memo::parse(text)
        .map(Some)
        .map_err(|e| SilaApiError::field("descriptor", e.to_string()))
}

/// Who moves the money, and the movement's id.
pub(super) fn origin(a: &Accepted) -> Result<Origin, SilaApiError> {
    let actor = actor(a)?;
    let movement_id = match a.reference() {
        Some(r) => MovementId::for_request(&actor, r),
        // Without a reference nothing can name the movement again.
        None => MovementId::random(),
    };
    Ok(Origin {
        movement_id,
        requested_by: actor,
    })
}

pub(super) fn actor(a: &Accepted) -> Result<String, SilaApiError> {
    Ok(format!("sila:{}/{}", a.header.app, a.handle()?))
}

/// The wallet that made usersignature: money moves from (or to) it.
fn signing_wallet(a: &Accepted) -> Result<WalletId, SilaApiError> {
    let not_a_wallet = || {
        SilaApiError::forbidden("usersignature does not belong to a wallet of header.user_handle")
    };
    let signer = a.signer.ok_or_else(not_a_wallet)?;
    a.user
        .as_ref()
        .and_then(|u| u.wallet_by_address(&signer))
        .map(|w| w.wallet_id)
        .ok_or_else(not_a_wallet)
}

/// The reference already names a movement that is not this one (another
/// wallet of the user, another kind): refused before anything moves. The
/// service checks amount, asset and counterparty on the same wallet.
async fn reused_elsewhere(
    ledger: &LedgerService<'_>,
    origin: &Origin,
    wallet_id: WalletId,
    kind: &str,
) -> Result<Option<Recorded>, SilaApiError> {
    let rows = ledger.movement(origin.movement_id).await?;
    let wallet = wallet_id.to_string();
    match rows
        .iter()
        .find(|r| r.kind != "return" && r.kind != "transfer_in")
    {
        None => Ok(None),
        Some(r) if r.wallet_id == wallet && r.kind == kind => Ok(Some(Recorded {
            movement_id: origin.movement_id,
            row: r.clone(),
        })),
        Some(_) => Err(LedgerError::Refused(AccountError::DuplicateMovement {
            movement_id: origin.movement_id,
        })
        .into()),
    }
}

/// Sila's transaction status for a movement row's.
pub(super) fn sila_status(row_status: &str) -> &'static str {
    match row_status {
        "pending" => "pending",
        "returned" => "failed",
        _ => "success",
    }
}

fn movement_fields(done: &Recorded, descriptor: Option<&Memo>) -> Value {
    json!({
        "message": "Transaction submitted to processing queue.",
        "transaction_id": done.movement_id.to_string(),
        "transaction_status": sila_status(done.status()),
        "descriptor": descriptor.map_or("", Memo::as_str),
    })
}

async fn issue_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let f = Fields::top(&a.env.body);
    let amount = amount(&f)?;
    let funding = bank_reference(a, &f)?;
    let memo = descriptor(&f)?;
    let wallet_id = signing_wallet(a)?;
    let origin = origin(a)?;
    let ledger = LedgerService::new(app);
    reused_elsewhere(&ledger, &origin, wallet_id, "issue").await?;
    let asset = app.settings.assets.sila();
    let done = ledger
        .issue(wallet_id, asset, amount, funding, &origin, &a.meta)
        .await?;
    Ok(Reply::success(movement_fields(&done, memo.as_ref())))
}

async fn redeem_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let f = Fields::top(&a.env.body);
    let amount = amount(&f)?;
    let destination = bank_reference(a, &f)?;
    let memo = descriptor(&f)?;
    let wallet_id = signing_wallet(a)?;
    let origin = origin(a)?;
    let ledger = LedgerService::new(app);
    reused_elsewhere(&ledger, &origin, wallet_id, "redeem").await?;
    let asset = app.settings.assets.sila();
    let done = ledger
        .redeem(wallet_id, asset, amount, destination, &origin, &a.meta)
        .await?;
    Ok(Reply::success(movement_fields(&done, memo.as_ref())))
}

async fn transfer_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let f = Fields::top(&a.env.body);
    let amount = amount(&f)?;
    let memo = descriptor(&f)?;
    let from = signing_wallet(a)?;
    let origin = origin(a)?;
    let ledger = LedgerService::new(app);
    let recorded = reused_elsewhere(&ledger, &origin, from, "transfer_out").await?;
    // A retry goes where the first attempt went, even if the destination's
    // default wallet changed since.
    let recorded_to = recorded
        .as_ref()
        .and_then(|r| WalletId::parse(&r.row.counterparty));
    let to = destination::resolve(app, a, &f, recorded_to).await?;
    let asset = app.settings.assets.sila();
    let done = ledger
        .transfer(
            from,
            to.wallet_id,
            asset,
            amount,
            memo.clone(),
            &origin,
            &a.meta,
            TRANSFER_WAIT,
        )
        .await?;
    let mut fields = movement_fields(&done, memo.as_ref());
    fields["destination_address"] = json!(to.address.to_checksum());
    fields["destination_handle"] = json!(to.handle.as_str());
    fields["destination_wallet"] = json!(to.nickname);
    Ok(Reply::success(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn parse(v: Value) -> Result<u128, String> {
        let mut m = Map::new();
        m.insert("amount".into(), v);
        amount(&Fields::top(&m))
            .map(Amount::minor)
            .map_err(|e| e.message)
    }

    #[test]
    fn amounts_are_whole_positive_sila() {
        assert_eq!(parse(json!(1)), Ok(1));
        assert_eq!(parse(json!(MAX_AMOUNT)), Ok(u128::from(MAX_AMOUNT)));
        for (bad, why) in [
            (json!(0), "greater than 0"),
            (json!(-5), "greater than 0"),
            (json!(-0.5), "greater than 0"),
            (json!(1.5), "whole number"),
            (json!(MAX_AMOUNT + 1), "too large"),
            (json!(u64::MAX), "too large"),
            (json!(1e30), "too large"),
            (json!("100"), "must be a number"),
            (json!(true), "must be a number"),
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = amount(&Fields::top(&Map::new())).unwrap_err();
        assert!(e.message.contains("required"));
    }
}
