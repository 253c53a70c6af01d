//! Whether a wallet may move funds, as the service read it from the
//! `wallet` aggregate just before the command.

use crate::domain::WalletId;

use super::AccountError;

/// The wallet aggregate owns these facts (`WalletWhitelisted`,
/// `WalletKeyFrozen`, `WalletDeleted`); the account aggregate is a separate
/// stream, so the service reads them and passes them in, and the account
/// refuses purely. The service reads them from the wallet's aggregate (not a
/// projection), like request authentication does, so a freeze or deletion
/// stops movements the moment its event commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalletGate {
    pub whitelisted: bool,
    pub frozen: bool,
    pub deleted: bool,
}

impl WalletGate {
    /// A whitelisted, live wallet.
    pub const OPEN: WalletGate = WalletGate {
        whitelisted: true,
        frozen: false,
        deleted: false,
    };

    /// Refused with the most final reason first: deleted, then frozen, then
    /// not (yet) whitelisted.
    pub fn check(self, wallet_id: WalletId) -> Result<(), AccountError> {
        if self.deleted {
            Err(AccountError::Deleted { wallet_id })
        } else if self.frozen {
            Err(AccountError::Frozen { wallet_id })
        } else if !self.whitelisted {
            Err(AccountError::NotWhitelisted { wallet_id })
        } else {
            Ok(())
        }
    }
}
