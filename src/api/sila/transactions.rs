//! `get_transactions`: the user's movements on all its wallets, with Sila's
//! filters and paging, one Sila transaction per row of the ledger's history
//! (a transfer shows as sent on the sender's side and received on the
//! receiver's).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use walletd_projections::ledger_queries::{self, MovementRow, MovementSearch};
use walletd_projections::sila_queries;

use super::endpoint;
use super::envelope::Fields;
use super::errors::{Reply, SilaApiError};
use super::guard::{Accepted, Effect, Needs};
use super::money::{actor, sila_status};
use super::schema::{GetTransactionsReply, GetTransactionsRequest, SilaErrors};
use crate::app::App;
use crate::domain::account::MovementId;
use crate::domain::{Address, Handle};

endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/get_transactions",
        tag = "sila",
        summary = "The user's transactions, filtered and paged",
        security(("authsignature" = [], "usersignature" = []), ("authsignature" = [])),
        request_body = GetTransactionsRequest,
        responses(
            (status = 200, description = "A page of transactions", body = GetTransactionsReply),
            SilaErrors,
        ),
    )]
    get_transactions,
    "get_transactions",
    Needs::User,
    Effect::Reads,
    get_transactions_body
);

/// Sila's statuses and the ledger's: `queued`, `rollback` and `review` are
/// Sila's and never happen here (they match nothing).
fn row_statuses(sila: &str) -> Option<&'static [&'static str]> {
    Some(match sila {
        "pending" => &["pending"],
        "success" => &["settled"],
        "failed" => &["returned"],
        "queued" | "rollback" | "review" => &[],
        _ => return None,
    })
}

fn row_kinds(sila: &str) -> Option<&'static [&'static str]> {
    Some(match sila {
        "issue" => &["issue"],
        "transfer" => &["transfer_out", "transfer_in"],
        "redeem" => &["redeem"],
        _ => return None,
    })
}

/// A list of strings from the filters: absent, null and `[]` filter nothing.
fn list<'a>(f: &Fields<'a>, key: &str) -> Result<Vec<&'a str>, SilaApiError> {
    match f.value(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| SilaApiError::field(&f.path(key), "must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(SilaApiError::field(
            &f.path(key),
            "must be a list of strings",
        )),
    }
}

/// Epoch seconds as the ledger stores times (RFC 3339, UTC, microseconds).
fn stored_time(f: &Fields, key: &str, plus: i64) -> Result<Option<String>, SilaApiError> {
    let Some(epoch) = f.int(key)? else {
        return Ok(None);
    };
    let at = epoch
        .checked_add(plus)
        .filter(|e| *e >= 0)
        .and_then(|e| DateTime::<Utc>::from_timestamp(e, 0))
        .ok_or_else(|| SilaApiError::field(&f.path(key), "must be epoch seconds"))?;
    Ok(Some(at.to_rfc3339_opts(SecondsFormat::Micros, true)))
}

fn epoch(stored: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(stored)
        .ok()
        .map(|t| t.timestamp())
}

/// A Sila wallet by id, as the read side has it (`None` once deleted).
struct Wallets<'a> {
    app: &'a App,
    seen: HashMap<String, Option<sila_queries::SilaWalletRow>>,
}

impl Wallets<'_> {
    async fn get(&mut self, id: &str) -> Result<Option<sila_queries::SilaWalletRow>, SilaApiError> {
        if let Some(known) = self.seen.get(id) {
            return Ok(known.clone());
        }
        let row = sila_queries::sila_wallet_by_id(&self.app.db, id).await?;
        self.seen.insert(id.to_string(), row.clone());
        Ok(row)
    }
}

fn checksummed(lower: &str) -> String {
    Address::parse(lower).map_or_else(|_| lower.to_string(), |a| a.to_checksum())
}

async fn get_transactions_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let handle = a.handle()?;
    let f = Fields::of(&a.env.body, "search_filters")?;
    for unsupported in [
        "min_sila_amount",
        "max_sila_amount",
        "bank_account_name",
        "processing_type",
        "payment_method_id",
    ] {
        if f.value(unsupported).is_some_and(|v| v.as_str() != Some("")) {
            return Err(SilaApiError::field(
                &f.path(unsupported),
                "this filter is not supported by walletd",
            ));
        }
    }
    let page = f.int("page")?.unwrap_or(1);
    if page < 1 {
        return Err(SilaApiError::field(
            "search_filters.page",
            "must be at least 1",
        ));
    }
    let per_page = f.int("per_page")?.unwrap_or(20);
    if !(1..=100).contains(&per_page) {
        return Err(SilaApiError::field(
            "search_filters.per_page",
            "must be 1 to 100",
        ));
    }
    let mut kinds: Vec<&str> = Vec::new();
    for t in list(&f, "transaction_types")? {
        kinds.extend(row_kinds(t).ok_or_else(|| {
            SilaApiError::field(
                "search_filters.transaction_types",
                "each must be issue, transfer or redeem",
            )
        })?);
    }
    let asked_statuses = list(&f, "statuses")?;
    let mut statuses: Vec<&str> = Vec::new();
    for s in &asked_statuses {
        statuses.extend(row_statuses(s).ok_or_else(|| {
            SilaApiError::field(
                "search_filters.statuses",
                "each must be queued, pending, success, failed, rollback or review",
            )
        })?);
    }
    // Only statuses that never happen here: nothing matches.
    let impossible = !asked_statuses.is_empty() && statuses.is_empty();

    let by_id = f
        .str("transaction_id")?
        .map(|t| {
            MovementId::parse(t).ok_or_else(|| {
                SilaApiError::field("search_filters.transaction_id", "must be a UUID")
            })
        })
        .transpose()?;
    let reference = f.str("reference_id")?;
    let actor = actor(a)?;
    let by_reference = reference.map(|r| MovementId::for_request(&actor, r));
    let movement_id = match (by_id, by_reference) {
        (Some(a), Some(b)) if a != b => None,
        (a, b) => a.or(b),
    };
    let contradictory = by_id.is_some() && by_reference.is_some() && movement_id.is_none();
    let movement_text = movement_id.map(|m| m.to_string());

    let user_wallets = a.user.as_ref().map(|u| u.wallets()).unwrap_or_default();
    let only = f
        .str("blockchain_address")?
        .map(|t| {
            Address::parse(t).map_err(|e| {
                SilaApiError::field("search_filters.blockchain_address", e.to_string())
            })
        })
        .transpose()?;
    let wallet_ids: Vec<String> = user_wallets
        .iter()
        .filter(|w| only.is_none_or(|addr| w.address == addr))
        .map(|w| w.wallet_id.to_string())
        .collect();
    let since = stored_time(&f, "start_epoch", 0)?;
    // `end_epoch` is inclusive, to the second.
    let until = stored_time(&f, "end_epoch", 1)?;

    let wallet_ids: &[String] = if impossible || contradictory {
        &[]
    } else {
        &wallet_ids
    };
    // A return shows as its transfer, failed.
    let kinds: &[&str] = if kinds.is_empty() {
        &["issue", "transfer_out", "transfer_in", "redeem"]
    } else {
        &kinds
    };
    let search = MovementSearch {
        wallet_ids,
        kinds,
        statuses: &statuses,
        movement_id: movement_text.as_deref(),
        since: since.as_deref(),
        until: until.as_deref(),
        ascending: f.bool("sort_ascending")?.unwrap_or(false),
    };
    let (rows, total) =
        ledger_queries::search_movements(&app.db, &search, (page - 1) * per_page, per_page).await?;
    let mut wallets = Wallets {
        app,
        seen: HashMap::new(),
    };
    let mut transactions = Vec::with_capacity(rows.len());
    for row in &rows {
        transactions.push(transaction(&mut wallets, handle, reference, row).await?);
    }
    Ok(Reply::success(json!({
        "page": page,
        "returned_count": transactions.len(),
        "total_count": total,
        "total_page_count": (total + per_page - 1) / per_page,
        "transactions": transactions,
    })))
}

/// One row as Sila shows a transaction.
async fn transaction(
    wallets: &mut Wallets<'_>,
    handle: &Handle,
    reference: Option<&str>,
    row: &MovementRow,
) -> Result<Value, SilaApiError> {
    let own = wallets.get(&row.wallet_id).await?;
    let own_address = own.as_ref().map(|w| checksummed(&w.address));
    let (kind, source, destination) = match row.kind.as_str() {
        "transfer_out" | "transfer_in" => {
            let other = wallets.get(&row.counterparty).await?;
            let other_side = (
                other.as_ref().map(|w| w.handle.clone()),
                other.as_ref().map(|w| checksummed(&w.address)),
            );
            let this_side = (Some(handle.to_string()), own_address.clone());
            if row.kind == "transfer_out" {
                ("transfer", this_side, other_side)
            } else {
                ("transfer", other_side, this_side)
            }
        }
        "issue" => (
            "issue",
            (Some(handle.to_string()), None),
            (Some(handle.to_string()), own_address.clone()),
        ),
        _ => (
            "redeem",
            (Some(handle.to_string()), own_address.clone()),
            (None, None),
        ),
    };
    // Issues and redemptions carry `<account_name>/<reference>`.
    let (bank_account, carried) = match kind {
        "issue" | "redeem" => match row.counterparty.split_once('/') {
            Some((account, r)) => (Some(account), Some(r)),
            None => (Some(row.counterparty.as_str()), None),
        },
        _ => (None, None),
    };
    let status = sila_status(&row.status);
    Ok(json!({
        "user_handle": handle.as_str(),
        "transaction_id": row.movement_id,
        "reference_id": carried.or(reference),
        "transaction_type": kind,
        "sila_amount": u64::try_from(row.amount).map_or_else(|_| json!(row.amount.to_string()), |a| json!(a)),
        "status": status,
        "usd_status": status,
        "token_status": status,
        "created": row.at,
        "last_update": row.updated_at,
        "created_epoch": epoch(&row.at),
        "last_update_epoch": epoch(&row.updated_at),
        "descriptor": row.memo.as_deref().unwrap_or(""),
        "bank_account_name": bank_account,
        "handle": source.0,
        "handle_address": source.1,
        "destination_handle": destination.0,
        "destination_address": destination.1,
        "wallet_id": row.wallet_id,
        "error_msg": row.reason,
    }))
}
