use crate::domain::money::{Amount, Asset};
use crate::domain::{Timestamp, WalletId};

use super::{Memo, MovementId, Reference, ReturnReason, WalletGate};

/// Every command names the account's wallet (the aggregate id; events carry
/// it so each reads alone) and its movement: the id the service chose, the
/// asset and the amount in minor units. `requested_by` is who asked
/// (`apikey:3`, `jwt:<sub>`, `sila:<app>/<user>`), recorded in the event.
#[derive(Clone, Debug)]
pub enum AccountCommand {
    /// Credits the wallet against value received outside walletd.
    Issue {
        wallet_id: WalletId,
        movement_id: MovementId,
        asset: Asset,
        amount: Amount,
        funding_reference: Reference,
        gate: WalletGate,
        requested_by: String,
        at: Timestamp,
    },
    /// The first leg of a transfer, on the source: refused unless both
    /// wallets may move funds now and the balance covers the amount. The
    /// value is then in transit until the process manager credits the
    /// destination (`CreditTransfer`) or gives it back (`ReturnTransfer`).
    DebitForTransfer {
        wallet_id: WalletId,
        movement_id: MovementId,
        asset: Asset,
        amount: Amount,
        to_wallet: WalletId,
        memo: Option<Memo>,
        gate: WalletGate,
        to_gate: WalletGate,
        requested_by: String,
        at: Timestamp,
    },
    /// The second leg, on the destination, run by the process manager for a
    /// `TransferDebited`. Refused when the destination may not receive now
    /// (then the process manager returns the transfer; see
    /// [`ReturnReason::for_refused_credit`]).
    CreditTransfer {
        wallet_id: WalletId,
        movement_id: MovementId,
        asset: Asset,
        amount: Amount,
        from_wallet: WalletId,
        gate: WalletGate,
        at: Timestamp,
    },
    /// The compensation, on the source: the transfer's value comes back.
    /// Not gated: value is never left in transit because the source was
    /// frozen or deleted meanwhile (it then holds the funds, unmovable).
    ReturnTransfer {
        wallet_id: WalletId,
        movement_id: MovementId,
        asset: Asset,
        amount: Amount,
        reason: ReturnReason,
        at: Timestamp,
    },
    /// Tells the source its transfer was credited, so it stops holding it
    /// in flight. Moves no value. Not gated.
    SettleTransfer {
        wallet_id: WalletId,
        movement_id: MovementId,
        asset: Asset,
        amount: Amount,
        at: Timestamp,
    },
    /// Debits the wallet for value paid out outside walletd.
    Redeem {
        wallet_id: WalletId,
        movement_id: MovementId,
        asset: Asset,
        amount: Amount,
        destination_reference: Reference,
        gate: WalletGate,
        requested_by: String,
        at: Timestamp,
    },
}

impl AccountCommand {
    pub fn wallet_id(&self) -> WalletId {
        match self {
            AccountCommand::Issue { wallet_id, .. }
            | AccountCommand::DebitForTransfer { wallet_id, .. }
            | AccountCommand::CreditTransfer { wallet_id, .. }
            | AccountCommand::ReturnTransfer { wallet_id, .. }
            | AccountCommand::SettleTransfer { wallet_id, .. }
            | AccountCommand::Redeem { wallet_id, .. } => *wallet_id,
        }
    }

    pub fn movement_id(&self) -> MovementId {
        match self {
            AccountCommand::Issue { movement_id, .. }
            | AccountCommand::DebitForTransfer { movement_id, .. }
            | AccountCommand::CreditTransfer { movement_id, .. }
            | AccountCommand::ReturnTransfer { movement_id, .. }
            | AccountCommand::SettleTransfer { movement_id, .. }
            | AccountCommand::Redeem { movement_id, .. } => *movement_id,
        }
    }
}

impl crate::domain::CommandName for AccountCommand {
    fn name(&self) -> &'static str {
        match self {
            AccountCommand::Issue { .. } => "issue",
            AccountCommand::DebitForTransfer { .. } => "debit_for_transfer",
            AccountCommand::CreditTransfer { .. } => "credit_transfer",
            AccountCommand::ReturnTransfer { .. } => "return_transfer",
            AccountCommand::SettleTransfer { .. } => "settle_transfer",
            AccountCommand::Redeem { .. } => "redeem",
        }
    }
}
