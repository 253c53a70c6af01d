//! The wallet object exactly as the API document shows it. `label` is absent
//! (not null) when the wallet has none; `balance` is the wallet's ETH
//! balance (the ledger's), as a decimal string.

use serde_json::{json, Map, Value};
use walletd_projections::queries::WalletRow;

use crate::service::wallets::CreatedWallet;

pub(crate) fn from_row(r: &WalletRow, balance: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.wallet_id));
    m.insert("address".into(), json!(r.address));
    if let Some(l) = &r.label {
        m.insert("label".into(), json!(l));
    }
    m.insert("balance".into(), json!(balance));
    m.insert("currency".into(), json!("ETH"));
    m.insert("network".into(), json!("ethereum"));
    m.insert("isActive".into(), json!(r.status == "active"));
    m.insert("isPrimary".into(), json!(r.is_default));
    m.insert("createdAt".into(), json!(r.created_at));
    m.insert("updatedAt".into(), json!(r.updated_at));
    m.insert("userId".into(), json!(r.user_id));
    Value::Object(m)
}

/// A just-created wallet, as the read model will show it: nothing can have
/// moved money into it before its owner learns its id.
pub(crate) fn from_created(w: &CreatedWallet) -> Value {
    let at = w.created_at.to_text();
    from_row(
        &WalletRow {
            wallet_id: w.wallet_id.to_string(),
            address: w.address.to_checksum(),
            user_id: w.user_id.to_string(),
            kind: "custodial".into(),
            custody: "local".into(),
            public_key: Some(w.public_key.clone()),
            status: "active".into(),
            whitelist_status: "none".into(),
            label: w.label.clone(),
            nickname: None,
            is_default: false,
            created_at: at.clone(),
            updated_at: at,
        },
        "0",
    )
}
