//! Double entry: every account event as posting lines that sum to zero per
//! asset, and [`Books`], the fold of postings that the balances projection
//! and the supply check are made of.
//!
//! Sign convention: a positive amount is value *into* the account. The
//! accounts of an asset A:
//!
//! - `wallet:<id>`: a wallet's balance, never negative;
//! - `issuance:A`: where issued value comes from; its balance is minus
//!   everything ever issued, never positive;
//! - `redemption:A`: where redeemed value goes; its balance is everything
//!   ever redeemed, never negative;
//! - `transit:A`: transfers debited and not yet credited or returned, never
//!   negative.
//!
//! issued(A) = −balance(issuance:A), redeemed(A) = balance(redemption:A),
//! and supply(A) = issued(A) − redeemed(A). Since every event's postings sum
//! to zero, the balances of all of A's accounts sum to zero after every
//! event, so at every position of the log
//! supply(A) = Σ wallets' balances of A + balance(transit:A)
//!           = −balance(issuance:A) − balance(redemption:A).

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::money::{Amount, AmountError, AssetCode, SignedAmount};
use crate::domain::WalletId;

use super::AccountEvent;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerAccount {
    Wallet(WalletId),
    Issuance(AssetCode),
    Redemption(AssetCode),
    Transit(AssetCode),
}

impl fmt::Display for LedgerAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerAccount::Wallet(w) => write!(f, "wallet:{w}"),
            LedgerAccount::Issuance(a) => write!(f, "issuance:{a}"),
            LedgerAccount::Redemption(a) => write!(f, "redemption:{a}"),
            LedgerAccount::Transit(a) => write!(f, "transit:{a}"),
        }
    }
}

/// One line: `amount` of `asset` into (positive) or out of `account`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: LedgerAccount,
    pub asset: AssetCode,
    pub amount: SignedAmount,
}

impl AccountEvent {
    /// The event's postings; they sum to zero per asset. A settlement moves
    /// no value and has none.
    pub fn postings(&self) -> Vec<Posting> {
        let code = self.asset().code().clone();
        let amount = self.amount();
        let wallet = LedgerAccount::Wallet(self.wallet_id());
        let line = |account: LedgerAccount, amount: SignedAmount| Posting {
            account,
            asset: code.clone(),
            amount,
        };
        let (from, to) = match self {
            AccountEvent::FundsIssued { .. } => (LedgerAccount::Issuance(code.clone()), wallet),
            AccountEvent::TransferDebited { .. } => (wallet, LedgerAccount::Transit(code.clone())),
            AccountEvent::TransferCredited { .. } | AccountEvent::TransferReturned { .. } => {
                (LedgerAccount::Transit(code.clone()), wallet)
            }
            AccountEvent::FundsRedeemed { .. } => (wallet, LedgerAccount::Redemption(code.clone())),
            AccountEvent::TransferSettled { .. } => return Vec::new(),
        };
        vec![
            line(from, SignedAmount::minus(amount)),
            line(to, SignedAmount::plus(amount)),
        ]
    }
}

/// Whether the lines sum to zero for every asset (an overflowing sum does
/// not).
pub fn sums_to_zero(postings: &[Posting]) -> bool {
    unbalanced_asset(postings).is_none()
}

/// The first asset whose lines do not sum to zero.
fn unbalanced_asset(postings: &[Posting]) -> Option<AssetCode> {
    let mut sums: BTreeMap<&AssetCode, Result<SignedAmount, AmountError>> = BTreeMap::new();
    for p in postings {
        let sum = sums.entry(&p.asset).or_insert(Ok(SignedAmount::ZERO));
        *sum = sum.and_then(|s| s.checked_add(p.amount));
    }
    sums.into_iter()
        .find(|(_, sum)| !matches!(sum, Ok(s) if s.is_zero()))
        .map(|(asset, _)| asset.clone())
}

/// What a check of the books found wrong. Any of these means walletd
/// itself is wrong, never a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerViolation {
    #[error("postings for {asset} do not sum to zero")]
    Unbalanced { asset: AssetCode },
    #[error("{account} has a balance of {balance} {asset}, on the wrong side of zero")]
    WrongSign {
        account: LedgerAccount,
        asset: AssetCode,
        balance: SignedAmount,
    },
    #[error("the {asset} balances do not add up to issued minus redeemed")]
    SupplyMismatch { asset: AssetCode },
    #[error("a {asset} total exceeds the largest representable amount")]
    Overflow { asset: AssetCode },
}

/// Balances of every ledger account per asset, folded from postings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Books {
    balances: BTreeMap<AssetCode, BTreeMap<LedgerAccount, SignedAmount>>,
}

impl Books {
    /// Posts one event's lines; refused whole (nothing posted) unless they
    /// sum to zero and every new balance fits.
    pub fn post(&mut self, postings: &[Posting]) -> Result<(), LedgerViolation> {
        if let Some(asset) = unbalanced_asset(postings) {
            return Err(LedgerViolation::Unbalanced { asset });
        }
        let mut next = Vec::with_capacity(postings.len());
        for p in postings {
            let balance = self
                .balance(&p.account, &p.asset)
                .checked_add(p.amount)
                .map_err(|_| LedgerViolation::Overflow {
                    asset: p.asset.clone(),
                })?;
            next.push((p, balance));
        }
        for (p, balance) in next {
            self.balances
                .entry(p.asset.clone())
                .or_default()
                .insert(p.account.clone(), balance);
        }
        Ok(())
    }

    pub fn balance(&self, account: &LedgerAccount, asset: &AssetCode) -> SignedAmount {
        self.balances
            .get(asset)
            .and_then(|a| a.get(account))
            .copied()
            .unwrap_or_default()
    }

    pub fn assets(&self) -> impl Iterator<Item = &AssetCode> {
        self.balances.keys()
    }

    /// Every account that has held `asset`, with its balance, in order.
    pub fn accounts(
        &self,
        asset: &AssetCode,
    ) -> impl Iterator<Item = (&LedgerAccount, SignedAmount)> {
        self.balances
            .get(asset)
            .into_iter()
            .flat_map(|a| a.iter().map(|(account, b)| (account, *b)))
    }

    /// Everything of the asset ever issued.
    pub fn issued(&self, asset: &AssetCode) -> SignedAmount {
        self.balance(&LedgerAccount::Issuance(asset.clone()), asset)
            .negated()
    }

    /// Everything of the asset ever redeemed.
    pub fn redeemed(&self, asset: &AssetCode) -> SignedAmount {
        self.balance(&LedgerAccount::Redemption(asset.clone()), asset)
    }

    /// Issued minus redeemed.
    pub fn supply(&self, asset: &AssetCode) -> Result<Amount, LedgerViolation> {
        self.issued(asset)
            .checked_add(self.redeemed(asset).negated())
            .ok()
            .and_then(SignedAmount::non_negative)
            .ok_or_else(|| LedgerViolation::SupplyMismatch {
                asset: asset.clone(),
            })
    }

    /// Every rule of the books, for every asset: each account on its side of
    /// zero, and supply = Σ wallets + transit = issued − redeemed.
    pub fn check(&self) -> Result<(), LedgerViolation> {
        for (asset, accounts) in &self.balances {
            let overflow = |_: AmountError| LedgerViolation::Overflow {
                asset: asset.clone(),
            };
            let mut held = SignedAmount::ZERO;
            for (account, &balance) in accounts {
                let right_side = match account {
                    LedgerAccount::Issuance(_) => balance.is_negative() || balance.is_zero(),
                    _ => !balance.is_negative(),
                };
                if !right_side {
                    return Err(LedgerViolation::WrongSign {
                        account: account.clone(),
                        asset: asset.clone(),
                        balance,
                    });
                }
                if matches!(
                    account,
                    LedgerAccount::Wallet(_) | LedgerAccount::Transit(_)
                ) {
                    held = held.checked_add(balance).map_err(overflow)?;
                }
            }
            let supply = self.supply(asset)?;
            if held != SignedAmount::plus(supply) {
                return Err(LedgerViolation::SupplyMismatch {
                    asset: asset.clone(),
                });
            }
        }
        Ok(())
    }
}
