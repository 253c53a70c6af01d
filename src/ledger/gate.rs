//! Which wallets may move money: the one place the whitelist policy lives.

use crate::domain::account::WalletGate;
use crate::domain::wallet::{Wallet, WalletKind};

/// The gate a movement passes for `wallet`, `None` if it never existed.
///
/// The whitelist is Sila's rule (seed 003: "allow a few minutes for this
/// new address to be added to our whitelist"), for addresses whose owner
/// walletd knows only by a proof of key ownership. Server and JWT wallets
/// are custodial: walletd made their key and their owner authenticated
/// with the dialect's own credentials, so they pass the whitelist from
/// creation. Frozen and deleted gate every kind.
pub fn money_gate(wallet: &Wallet) -> Option<WalletGate> {
    let mut gate = wallet.gate()?;
    if let Some(identity) = wallet.identity() {
        if identity.kind != WalletKind::External {
            gate.whitelisted = true;
        }
    }
    Some(gate)
}
