//! Where `transfer_sila` sends the money: `destination_handle` (old name
//! `destination`), narrowed by `destination_wallet` (a nickname) and/or
//! `destination_address`; otherwise that user's default wallet. Resolved
//! through the destination's `user` aggregate at debit time, so a default
//! changed a moment ago is already the destination.

use walletd_projections::sila_queries;

use super::envelope::Fields;
use super::errors::SilaApiError;
use super::guard::Accepted;
use crate::app::App;
use crate::domain::user::UserWallet;
use crate::domain::{Address, Handle, Nickname, WalletId};
use crate::service::sila_users::SilaError;

pub struct Destination {
    pub wallet_id: WalletId,
    pub address: Address,
    pub handle: Handle,
    pub nickname: String,
}

fn unknown_handle(handle: &Handle) -> SilaApiError {
    SilaApiError::field(
        "destination_handle",
        format!("{handle} is not a registered user"),
    )
}

/// The destination wallet. `recorded_to`: where a first attempt with the
/// same reference sent the money (a retry keeps it when it names no wallet).
pub async fn resolve(
    app: &App,
    a: &Accepted,
    f: &Fields<'_>,
    recorded_to: Option<WalletId>,
) -> Result<Destination, SilaApiError> {
    let address = f
        .str("destination_address")?
        .map(|text| {
            Address::parse(text)
                .map_err(|e| SilaApiError::field("destination_address", e.to_string()))
        })
        .transpose()?;
    let nickname = f
        .str("destination_wallet")?
        .map(|text| {
            Nickname::parse(text)
                .map_err(|e| SilaApiError::field("destination_wallet", e.to_string()))
        })
        .transpose()?;
    let handle = match f.str_aliased("destination_handle", "destination")? {
        Some((text, path)) => {
            Handle::parse(text).map_err(|e| SilaApiError::field(&path, e.to_string()))?
        }
        // An address alone names its owner.
        None => {
            let Some(address) = address else {
                return Err(SilaApiError::field("destination_handle", "is required"));
            };
            let row = sila_queries::sila_wallet_by_address(&app.db, &address.to_lower_hex())
                .await?
                .ok_or_else(|| {
                    SilaApiError::field("destination_address", "is not a registered wallet")
                })?;
            Handle::parse(&row.handle).map_err(|e| SilaError::Internal(e.to_string()))?
        }
    };

    let (user, _) = app
        .users
        .load(handle.as_str())
        .await
        .map_err(|e| SilaError::Unavailable(e.to_string()))?;
    // Users of other apps are as unknown as unregistered ones.
    if user.app() != Some(&a.header.app) {
        return Err(unknown_handle(&handle));
    }
    let wallets = user.wallets();
    let named = |w: &&UserWallet| {
        address.as_ref().is_none_or(|addr| &w.address == addr)
            && nickname
                .as_ref()
                .is_none_or(|n| w.nickname.key() == n.key())
    };
    let chosen = if address.is_some() || nickname.is_some() {
        wallets.iter().find(named).ok_or_else(|| {
            let path = if nickname.is_some() {
                "destination_wallet"
            } else {
                "destination_address"
            };
            SilaApiError::field(path, format!("names no wallet of {handle}"))
        })?
    } else {
        let retried = recorded_to.and_then(|id| wallets.iter().find(|w| w.wallet_id == id));
        retried
            .or_else(|| wallets.iter().find(|w| w.default))
            .or_else(|| wallets.first())
            .ok_or_else(|| unknown_handle(&handle))?
    };
    Ok(Destination {
        wallet_id: chosen.wallet_id,
        address: chosen.address,
        handle,
        nickname: chosen.nickname.as_str().to_string(),
    })
}
