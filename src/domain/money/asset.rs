//! An asset: its code and the number of decimal places of its major unit.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Amount, AmountParseError, AssetCode};

/// 18 is Ether's (wei) and most ERC-20 tokens'; more is refused so that a
/// major-unit spelling of any balance stays readable.
pub const MAX_DECIMALS: u8 = 18;

/// An asset as movements name it. Amounts of it are counted in minor units
/// (1 major unit = 10^decimals minor units); `decimals` only matters for
/// reading and writing major-unit spellings ("12.34").
///
/// In events it is two flat fields, `"asset": "USD", "decimals": 2`, so a
/// reader of one event can show its amount without any catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "AssetRepr")]
pub struct Asset {
    #[serde(rename = "asset")]
    code: AssetCode,
    decimals: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    #[error("an asset has 0 to 18 decimals, not {0}")]
    Decimals(u8),
}

#[derive(Deserialize)]
struct AssetRepr {
    asset: AssetCode,
    decimals: u8,
}

impl TryFrom<AssetRepr> for Asset {
    type Error = AssetError;
    fn try_from(r: AssetRepr) -> Result<Self, AssetError> {
        Asset::new(r.asset, r.decimals)
    }
}

impl Asset {
    pub fn new(code: AssetCode, decimals: u8) -> Result<Self, AssetError> {
        if decimals > MAX_DECIMALS {
            return Err(AssetError::Decimals(decimals));
        }
        Ok(Self { code, decimals })
    }

    /// Sila's token. Sila's API counts it in whole tokens (`"amount": 1000`
    /// is 1,000 SILA) and one SILA is worth one US cent, so the token itself
    /// has no fraction: 0 decimals, and a Sila wire amount is the minor-unit
    /// count as it is. (A dollar view is amount / 100, a display matter of
    /// the dialect, not a second asset.)
    pub fn sila() -> Self {
        Self {
            code: AssetCode::parse("SILA").expect("a valid code"),
            decimals: 0,
        }
    }

    pub fn code(&self) -> &AssetCode {
        &self.code
    }

    pub fn decimals(&self) -> u8 {
        self.decimals
    }

    /// A major-unit spelling of an amount of this asset ("12.34" of a
    /// 2-decimal asset is 1234 minor units).
    pub fn parse_amount(&self, s: &str) -> Result<Amount, AmountParseError> {
        Amount::parse_major(s, self.decimals)
    }

    /// The major-unit spelling, always with `decimals` digits after the
    /// point ("12.30"; none and no point for a 0-decimal asset).
    pub fn format_amount(&self, amount: Amount) -> String {
        amount.to_major_string(self.decimals)
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} decimals)", self.code, self.decimals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> AssetCode {
        AssetCode::parse(s).unwrap()
    }

    #[test]
    fn decimals_are_bounded() {
        assert!(Asset::new(code("SILA"), 0).is_ok());
        assert!(Asset::new(code("ETH"), 18).is_ok());
        assert_eq!(Asset::new(code("X1"), 19), Err(AssetError::Decimals(19)));
        assert_eq!(Asset::new(code("X1"), 255), Err(AssetError::Decimals(255)));
    }

    #[test]
    fn sila_is_whole_tokens_of_one_cent() {
        let sila = Asset::sila();
        assert_eq!((sila.code().as_str(), sila.decimals()), ("SILA", 0));
        assert_eq!(sila.parse_amount("1000"), Ok(Amount::from_minor(1000)));
        assert!(sila.parse_amount("10.5").is_err());
        assert_eq!(sila.format_amount(Amount::from_minor(1000)), "1000");
    }

    #[test]
    fn major_units_round_trip() {
        let usd = Asset::new(code("USD"), 2).unwrap();
        assert_eq!(usd.parse_amount("12.34"), Ok(Amount::from_minor(1234)));
        assert_eq!(usd.format_amount(Amount::from_minor(1234)), "12.34");
        assert_eq!(usd.format_amount(Amount::from_minor(1230)), "12.30");
    }

    #[test]
    fn serde_is_two_flat_fields_and_validates() {
        let usd = Asset::new(code("USD"), 2).unwrap();
        let json = serde_json::to_value(&usd).unwrap();
        assert_eq!(json, serde_json::json!({"asset": "USD", "decimals": 2}));
        assert_eq!(serde_json::from_value::<Asset>(json).unwrap(), usd);
        let bad = serde_json::json!({"asset": "USD", "decimals": 19});
        assert!(serde_json::from_value::<Asset>(bad).is_err());
        let bad = serde_json::json!({"asset": "usd", "decimals": 2});
        assert!(serde_json::from_value::<Asset>(bad).is_err());
    }
}
