//! The assets walletd keeps balances of: configuration
//! (`WALLETD_ASSETS=SILA:0,ETH:18`), so every process on one database must
//! be started with the same list. A movement naming an asset not listed is
//! refused before anything is written.

use std::fmt;
use std::str::FromStr;

use crate::domain::money::{Asset, AssetCode};

/// The configured assets, in the order given; the first two named
/// [`Assets::SILA`] and [`Assets::ETH`] are what the Sila and JWT dialects
/// move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assets(Vec<Asset>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetsError {
    #[error("WALLETD_ASSETS entry {0:?} is not CODE:DECIMALS")]
    Entry(String),
    #[error("WALLETD_ASSETS entry {entry:?}: {why}")]
    Invalid { entry: String, why: String },
    #[error("WALLETD_ASSETS names {0} twice")]
    Twice(String),
    #[error("WALLETD_ASSETS must list {0}: the {1} dialect moves it")]
    Missing(&'static str, &'static str),
}

impl Assets {
    /// Sila's token (1 SILA = 1 US cent, no fraction).
    pub const SILA: &'static str = "SILA";
    /// The JWT dialect's wallet `currency`.
    pub const ETH: &'static str = "ETH";
    pub const DEFAULT: &'static str = "SILA:0,ETH:18";

    pub fn get(&self, code: &str) -> Option<&Asset> {
        self.0.iter().find(|a| a.code().as_str() == code)
    }

    pub fn sila(&self) -> &Asset {
        self.get(Self::SILA).expect("checked when parsed")
    }

    pub fn eth(&self) -> &Asset {
        self.get(Self::ETH).expect("checked when parsed")
    }

    pub fn iter(&self) -> impl Iterator<Item = &Asset> {
        self.0.iter()
    }
}

impl Default for Assets {
    fn default() -> Self {
        Self::DEFAULT.parse().expect("the default parses")
    }
}

impl FromStr for Assets {
    type Err = AssetsError;

    fn from_str(s: &str) -> Result<Self, AssetsError> {
        let mut out: Vec<Asset> = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (code, decimals) = entry
                .split_once(':')
                .ok_or_else(|| AssetsError::Entry(entry.into()))?;
            let invalid = |why: String| AssetsError::Invalid {
                entry: entry.into(),
                why,
            };
            let code = AssetCode::parse(code.trim()).map_err(|e| invalid(e.to_string()))?;
            let decimals: u8 = decimals
                .trim()
                .parse()
                .map_err(|_| invalid("decimals must be a number from 0 to 18".into()))?;
            let asset = Asset::new(code, decimals).map_err(|e| invalid(e.to_string()))?;
            if out.iter().any(|a| a.code() == asset.code()) {
                return Err(AssetsError::Twice(asset.code().to_string()));
            }
            out.push(asset);
        }
        let assets = Assets(out);
        // The dialects' fixed assets: Sila's token has no fraction by
        // definition, so only the listing is checked, not the decimals.
        if assets.get(Self::SILA).is_none() {
            return Err(AssetsError::Missing(Self::SILA, "Sila"));
        }
        if assets.get(Self::ETH).is_none() {
            return Err(AssetsError::Missing(Self::ETH, "JWT"));
        }
        Ok(assets)
    }
}

impl fmt::Display for Assets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|a| format!("{}:{}", a.code(), a.decimals()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_and_refuses_bad_lists() {
        let a = Assets::default();
        assert_eq!(a.sila().decimals(), 0);
        assert_eq!(a.eth().decimals(), 18);
        assert_eq!(a.to_string(), Assets::DEFAULT);
        let usd: Assets = "SILA:0, ETH:18, USD:2".parse().unwrap();
        assert_eq!(usd.get("USD").unwrap().decimals(), 2);
        assert!(usd.get("EUR").is_none());
        for (bad, why) in [
            ("SILA:0,ETH", "CODE:DECIMALS"),
            ("SILA:0,ETH:19", "0 to 18"),
            ("SILA:0,eth:18", "A-Z"),
            ("SILA:0,ETH:x", "number"),
            ("SILA:0,ETH:18,ETH:2", "twice"),
            ("ETH:18", "SILA"),
            ("SILA:0", "ETH"),
        ] {
            let e = bad.parse::<Assets>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
