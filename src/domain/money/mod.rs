//! Money as the ledger counts it: integers of an asset's minor unit, never
//! floats. An [`Asset`] names its code and how many decimal places its major
//! unit has; an [`Amount`] is a count of minor units (checked arithmetic
//! only); a [`SignedAmount`] is a posting's or an external account's
//! balance, which may be negative.

mod amount;
mod asset;
mod asset_code;
mod signed_amount;

pub use amount::{Amount, AmountError, AmountParseError};
pub use asset::{Asset, AssetError, MAX_DECIMALS};
pub use asset_code::{AssetCode, AssetCodeError};
pub use signed_amount::SignedAmount;
