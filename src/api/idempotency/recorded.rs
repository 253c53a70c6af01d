//! What an earlier attempt of the same request committed, found through the
//! `idempotency_key` and `actor` in the events' metadata (indexed by
//! migration 0012). A retry answers from these instead of acting again: the
//! wallet it created, the signature it made, the default it set.
//!
//! A key names one request for as long as the event log lasts: a recorded
//! event under the same caller and key that does not match this request
//! (another digest, another wallet, another owner) makes the retry a 422,
//! even after the stored response has been pruned.

use sqlx::Row;
use walletd_projections::{with_db, Db};

use super::IdempotencyRefusal;
use crate::domain::eth::SignPayload;
use crate::domain::wallet::WalletEvent;
use crate::domain::{UserId, WalletId};
use crate::service::wallets::{CreatedWallet, Signed};
use crate::store::upcast::current_form;
use crate::store::CommandMeta;

/// One request causes a handful of events; more than this under one key
/// cannot come from one request.
const MAX_EVENTS: i64 = 64;

struct Recorded {
    aggregate_id: String,
    event: WalletEvent,
}

/// The wallet events committed under this request's caller and key, oldest
/// first; none when the request carries no key.
async fn wallet_events(db: &Db, meta: &CommandMeta) -> Result<Vec<Recorded>, IdempotencyRefusal> {
    let Some(key) = &meta.idempotency_key else {
        return Ok(Vec::new());
    };
    let sql = match db {
        Db::Postgres(_) => {
            "SELECT aggregate_id, event_type, event_version, payload::text AS p FROM events
              WHERE (metadata->>'idempotency_key') = $1 AND (metadata->>'actor') = $2
                AND aggregate_type = 'wallet'
              ORDER BY position LIMIT $3"
        }
        Db::Sqlite(_) => {
            "SELECT aggregate_id, event_type, event_version, payload AS p FROM events
              WHERE json_extract(metadata, '$.idempotency_key') = $1
                AND json_extract(metadata, '$.actor') = $2
                AND aggregate_type = 'wallet'
              ORDER BY position LIMIT $3"
        }
    };
    let rows: Vec<(String, String, String, String)> = with_db!(db, pool => {
        let rows = sqlx::query(sql)
            .bind(key)
            .bind(&meta.actor)
            .bind(MAX_EVENTS)
            .fetch_all(pool)
            .await
            .map_err(IdempotencyRefusal::Store)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("aggregate_id")?,
                    r.try_get("event_type")?,
                    r.try_get("event_version")?,
                    r.try_get("p")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IdempotencyRefusal::Store)?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(aggregate_id, event_type, version, payload)| {
            // Every stored wallet event parses once brought to its current
            // version; one that does not is not ours.
            let payload = serde_json::from_str(&payload).ok()?;
            let (_, payload) = current_form("wallet", &event_type, &version, payload);
            let event = serde_json::from_value(payload).ok()?;
            Some(Recorded {
                aggregate_id,
                event,
            })
        })
        .collect())
}

/// The signature an earlier attempt of this request made with `wallet`, as
/// the sign endpoints answer it. `payload` is this request's: a recorded
/// signature of another digest or wallet under the same key is a mismatch.
pub async fn signature(
    db: &Db,
    wallet: WalletId,
    meta: &CommandMeta,
    payload: &SignPayload,
) -> Result<Option<Signed>, IdempotencyRefusal> {
    let digest = payload.digest();
    let wanted = format!("0x{}", hex::encode(digest));
    let wallet_text = wallet.to_string();
    let mut mismatch = false;
    for r in wallet_events(db, meta).await? {
        if let WalletEvent::MessageSigned {
            digest: recorded,
            signature,
            ..
        } = r.event
        {
            if r.aggregate_id == wallet_text && recorded.eq_ignore_ascii_case(&wanted) {
                let transaction = payload.signed_transaction(&signature);
                return Ok(Some(Signed {
                    signature,
                    digest,
                    transaction,
                }));
            }
            mismatch = true;
        }
    }
    if mismatch {
        return Err(IdempotencyRefusal::Mismatch);
    }
    Ok(None)
}

/// The wallet an earlier attempt of this request created. `owner` and
/// `label` are this request's; a recorded wallet of another owner or label
/// under the same key is a mismatch.
pub async fn created_wallet(
    db: &Db,
    meta: &CommandMeta,
    owner: &UserId,
    label: Option<&str>,
) -> Result<Option<CreatedWallet>, IdempotencyRefusal> {
    for r in wallet_events(db, meta).await? {
        if let WalletEvent::WalletCreated {
            wallet_id,
            user_id,
            address,
            public_key,
            label: recorded_label,
            created_at,
            ..
        } = r.event
        {
            if &user_id != owner || recorded_label.as_deref() != label {
                return Err(IdempotencyRefusal::Mismatch);
            }
            return Ok(Some(CreatedWallet {
                wallet_id,
                user_id,
                address,
                public_key,
                label: recorded_label,
                created_at,
            }));
        }
    }
    Ok(None)
}

/// Whether an earlier attempt of this request already made `wallet` the
/// default; a default set on another wallet under the same key is a mismatch.
pub async fn default_set(
    db: &Db,
    wallet: WalletId,
    meta: &CommandMeta,
) -> Result<bool, IdempotencyRefusal> {
    let wallet_text = wallet.to_string();
    for r in wallet_events(db, meta).await? {
        if let WalletEvent::DefaultWalletSet { .. } = r.event {
            if r.aggregate_id != wallet_text {
                return Err(IdempotencyRefusal::Mismatch);
            }
            return Ok(true);
        }
    }
    Ok(false)
}
