//! `register_wallet`, `get_wallet`, `get_wallets`, `update_wallet`, `delete_wallet`.

use serde_json::{json, Value};
use walletd_projections::sila_queries::{self, SilaWalletRow, WalletSearch};

use super::endpoint;
use super::envelope::Fields;
use super::errors::{Reply, SilaApiError};
use super::guard::{Accepted, Caller, Effect, Needs};
use super::schema::{
    GetWalletReply, GetWalletsReply, GetWalletsRequest, RegisterWalletRequest, RegisteredWallet,
    SilaErrors, SilaMessage, SilaRequest, UpdateWalletReply, UpdateWalletRequest,
};
use crate::app::App;
use crate::domain::wallet::OwnershipProof;
use crate::domain::{Address, Nickname, RecoverableSignature, WalletId};
use crate::service::ledger::LedgerService;
use crate::service::sila_users::{NewWallet, SilaUsers, WalletRequest};

endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/register_wallet",
        tag = "sila",
        summary = "Register another wallet of a user (ECDSA), or create a custodial one (token mode)",
        security(("authsignature" = [], "usersignature" = []), ("sila_token" = [])),
        request_body = RegisterWalletRequest,
        responses(
            (status = 200, description = "The wallet is registered", body = RegisteredWallet),
            SilaErrors,
        ),
    )]
    register_wallet,
    "register_wallet",
    Needs::SignedByUserOrToken,
    Effect::Writes,
    register_wallet_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/get_wallet",
        tag = "sila",
        summary = "The signing wallet",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = SilaRequest,
        responses(
            (status = 200, description = "The wallet", body = GetWalletReply),
            SilaErrors,
        ),
    )]
    get_wallet,
    "get_wallet",
    Needs::SignedByUser,
    Effect::Reads,
    get_wallet_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/get_wallets",
        tag = "sila",
        summary = "The user's wallets, filtered and paged",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = GetWalletsRequest,
        responses(
            (status = 200, description = "A page of wallets", body = GetWalletsReply),
            SilaErrors,
        ),
    )]
    get_wallets,
    "get_wallets",
    Needs::SignedByUser,
    Effect::Reads,
    get_wallets_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/update_wallet",
        tag = "sila",
        summary = "Change the signing wallet's nickname, default or statements flag",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = UpdateWalletRequest,
        responses(
            (status = 200, description = "The wallet and what changed", body = UpdateWalletReply),
            SilaErrors,
        ),
    )]
    update_wallet,
    "update_wallet",
    Needs::SignedByUser,
    Effect::Writes,
    update_wallet_body
);
endpoint!(
    #[utoipa::path(
        post,
        path = "/0.2/delete_wallet",
        tag = "sila",
        summary = "Remove the signing wallet (not the user's last)",
        security(("authsignature" = [], "usersignature" = [])),
        request_body = SilaRequest,
        responses(
            (status = 200, description = "The wallet is removed", body = SilaMessage),
            SilaErrors,
        ),
    )]
    delete_wallet,
    "delete_wallet",
    Needs::SignedByUser,
    Effect::Writes,
    delete_wallet_body
);

fn wallet_json(w: &SilaWalletRow) -> Value {
    json!({
        "wallet_id": w.wallet_id,
        "nickname": w.nickname,
        "default": w.is_default,
        "blockchain_address": checksummed(&w.address),
        "blockchain_network": "ETH",
        "statements_enabled": w.statements_enabled,
    })
}

fn checksummed(lower: &str) -> String {
    Address::parse(lower).map_or_else(|_| lower.to_string(), |a| a.to_checksum())
}

/// `blockchain_network` (or `network`): absent, or the one network walletd serves.
fn network(fields: &Fields) -> Result<(), SilaApiError> {
    match fields.str_aliased("blockchain_network", "network")? {
        None => Ok(()),
        Some(("ETH", _)) => Ok(()),
        Some((_, path)) => Err(SilaApiError::field(
            &path,
            "the only valid value is \"ETH\"",
        )),
    }
}

fn signer(a: &Accepted) -> Result<Address, SilaApiError> {
    a.signer
        .ok_or_else(|| SilaApiError::forbidden("usersignature header is required"))
}

/// The signing wallet, as the read side shows it.
async fn signing_wallet(app: &App, a: &Accepted) -> Result<SilaWalletRow, SilaApiError> {
    let address = signer(a)?;
    sila_queries::sila_wallet_by_address(&app.db, &address.to_lower_hex())
        .await?
        .ok_or_else(|| {
            SilaApiError::forbidden(
                "usersignature does not belong to a wallet of header.user_handle",
            )
        })
}

async fn register_wallet_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let handle = a.handle()?;
    let w = Fields::of(&a.env.body, "wallet")?;
    let token_mode = matches!(a.caller, Caller::Token(_));
    let nickname = w
        .str("nickname")?
        .map(Nickname::parse)
        .transpose()
        .map_err(|e| SilaApiError::field("wallet.nickname", e.to_string()))?;
    let default = w.bool("default")?.unwrap_or(false);
    let statements_enabled = w.bool("statements_enabled")?.unwrap_or(false);
    let wallet = if token_mode {
        // The document: address and proof are ignored for token requests.
        NewWallet::Custodial
    } else {
        if !w.present() {
            return Err(SilaApiError::field("wallet", "is required"));
        }
        // Sila's Python SDK template names these `wallet_address` and
        // `network`; Sila accepts either name.
        let (text, path) = w
            .str_aliased("blockchain_address", "wallet_address")?
            .ok_or_else(|| SilaApiError::field("wallet.blockchain_address", "is required"))?;
        let address =
            Address::parse(text).map_err(|e| SilaApiError::field(&path, e.to_string()))?;
        network(&w)?;
        let proof = Fields::top(&a.env.body)
            .str("wallet_verification_signature")?
            .ok_or_else(|| SilaApiError::forbidden("wallet_verification_signature is required"))?;
        let signature = RecoverableSignature::parse_hex(proof.trim()).map_err(|_| {
            SilaApiError::field(
                "wallet_verification_signature",
                "must be 130 hex digits (r, s, v)",
            )
        })?;
        NewWallet::External {
            address,
            proof: OwnershipProof {
                // Signed over the address exactly as sent.
                message: text.to_string(),
                signature,
            },
        }
    };
    let registered = SilaUsers::new(app)
        .register_wallet(
            handle,
            a.signer,
            WalletRequest {
                wallet,
                nickname,
                default,
                statements_enabled,
            },
            &a.meta,
        )
        .await?;
    let message = if token_mode {
        format!("New ledger account created, id: {}", registered.wallet_id)
    } else {
        format!("Blockchain address {} registered.", registered.address)
    };
    Ok(Reply::success(json!({
        "message": message,
        "wallet_nickname": registered.nickname.as_str(),
        "statements_enabled": registered.statements_enabled,
        "queued_for_whitelist": registered.queued_for_whitelist,
        "wallet_id": registered.wallet_id.to_string(),
    })))
}

async fn get_wallets_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let f = Fields::of(&a.env.body, "search_filters")?;
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
    let address = f
        .str_aliased("blockchain_address", "wallet_address")?
        .map(|(text, path)| {
            Address::parse(text).map_err(|e| SilaApiError::field(&path, e.to_string()))
        })
        .transpose()?;
    network(&f)?;
    let wallet_id = f
        .str("wallet_id")?
        .map(|s| {
            WalletId::parse(s).ok_or_else(|| {
                SilaApiError::field("search_filters.wallet_id", "must be a wallet id (UUID)")
            })
        })
        .transpose()?;
    let search = WalletSearch {
        handle: a.handle()?.to_string(),
        page,
        per_page,
        ascending: f.bool("sort_ascending")?.unwrap_or(false),
        address: address.map(|a| a.to_lower_hex()),
        nickname: f.str("nickname")?.map(str::to_owned),
        wallet_id: wallet_id.map(|w| w.to_string()),
    };
    let (wallets, total) = sila_queries::search_sila_wallets(&app.db, &search).await?;
    Ok(Reply::success(json!({
        "wallets": wallets.iter().map(wallet_json).collect::<Vec<_>>(),
        "page": page,
        "returned_count": wallets.len(),
        "total_count": total,
        "total_page_count": (total + per_page - 1) / per_page,
    })))
}

async fn update_wallet_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let f = Fields::top(&a.env.body);
    let nickname = f
        .str("nickname")?
        .map(Nickname::parse)
        .transpose()
        .map_err(|e| SilaApiError::field("nickname", e.to_string()))?;
    let default = f.bool("default")?;
    let statements_enabled = f.bool("statements_enabled")?;
    if nickname.is_none() && default.is_none() && statements_enabled.is_none() {
        return Err(SilaApiError::new(
            400,
            "Bad request format: give at least one of nickname, default, statements_enabled",
        ));
    }
    let changes = SilaUsers::new(app)
        .update_wallet(
            a.handle()?,
            signer(a)?,
            nickname,
            default,
            statements_enabled,
            &a.meta,
        )
        .await?;
    let (b, n) = (&changes.before, &changes.after);
    let mut list = Vec::new();
    if b.nickname != n.nickname {
        list.push(json!({"attribute": "nickname", "old_value": b.nickname.as_str(), "new_value": n.nickname.as_str()}));
    }
    if b.default != n.default {
        list.push(json!({"attribute": "default", "old_value": b.default, "new_value": n.default}));
    }
    if b.statements_enabled != n.statements_enabled {
        list.push(json!({"attribute": "statements_enabled", "old_value": b.statements_enabled, "new_value": n.statements_enabled}));
    }
    Ok(Reply::success(json!({
        "message": "Wallet updated.",
        "wallet": {
            "wallet_id": n.wallet_id.to_string(),
            "nickname": n.nickname.as_str(),
            "default": n.default,
            "blockchain_address": n.address.to_checksum(),
            "blockchain_network": "ETH",
            "statements_enabled": n.statements_enabled,
        },
        "changes": list,
    })))
}

async fn get_wallet_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let w = signing_wallet(app, a).await?;
    let balance = match WalletId::parse(&w.wallet_id) {
        Some(id) => LedgerService::new(app)
            .balance(id, app.settings.assets.sila())
            .await?
            .minor(),
        None => 0,
    };
    Ok(Reply::success(json!({
        "wallet": wallet_json(&w),
        "is_whitelisted": w.is_whitelisted,
        "sila_balance": u64::try_from(balance).unwrap_or(u64::MAX),
    })))
}

async fn delete_wallet_body(app: &App, a: &Accepted) -> Result<Reply, SilaApiError> {
    let address = signer(a)?;
    SilaUsers::new(app)
        .delete_wallet(a.handle()?, address, &a.meta)
        .await?;
    Ok(Reply::success(
        json!({ "message": format!("Blockchain address {address} removed.") }),
    ))
}
