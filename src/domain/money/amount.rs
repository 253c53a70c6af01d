//! A non-negative count of an asset's minor units.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Minor units (cents of USD, wei of ETH, whole SILA tokens), as a `u128`:
/// 18-decimal assets overflow 64 bits at 18.4 major units. Arithmetic is
/// checked only: an overflow is an error, never a wrap or a panic.
///
/// Serialized as a decimal string of minor units (`"1234"`): JSON numbers
/// lose precision above 2^53 in most readers. Deserialization takes only
/// that canonical spelling (digits, no sign, no leading zero), so a stored
/// amount has one form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount(u128);

/// Arithmetic that would leave `u128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount would exceed the largest representable amount")]
    Overflow,
    #[error("the amount would fall below zero")]
    Underflow,
}

/// Why a spelled amount was refused. The messages name the rule, never echo
/// the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountParseError {
    #[error("the amount is empty")]
    Empty,
    #[error("an amount has no sign")]
    Sign,
    #[error("an amount is written out in digits, without an exponent")]
    Exponent,
    #[error("an amount is made of the digits 0-9 and at most one decimal point")]
    NotADigit,
    #[error("a decimal point needs digits on both sides")]
    MisplacedPoint,
    #[error("an amount has no leading zeros")]
    LeadingZero,
    #[error("this asset has {max} decimal places; the amount has more")]
    TooManyDecimals { max: u8 },
    #[error("the amount is too large")]
    Overflow,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub const fn from_minor(minor: u128) -> Self {
        Self(minor)
    }

    pub const fn minor(self) -> u128 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_add(other.0)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_sub(other.0)
            .map(Amount)
            .ok_or(AmountError::Underflow)
    }

    /// Minor units spelled as a decimal integer: `"1234"`. The stored form
    /// and the wire form of dialects that count in minor units (Sila).
    pub fn parse_minor(s: &str) -> Result<Self, AmountParseError> {
        check_charset(s)?;
        if s.contains('.') {
            return Err(AmountParseError::TooManyDecimals { max: 0 });
        }
        digits(s, 0).map(Amount)
    }

    /// Major units with at most `decimals` digits after the point: with 2
    /// decimals, `"12.34"` is 1234, `"12"` is 1200, `"0.5"` is 50. Refused:
    /// more fraction digits than the asset has (even zeros: `"1.230"` for 2
    /// decimals; the caller should say what it means), signs, exponents,
    /// `"1."` and `".5"`, leading zeros, anything but ASCII digits.
    pub fn parse_major(s: &str, decimals: u8) -> Result<Self, AmountParseError> {
        check_charset(s)?;
        let (int, frac) = match s.split_once('.') {
            None => (s, ""),
            Some((int, frac)) => {
                if int.is_empty() || frac.is_empty() || frac.contains('.') {
                    return Err(AmountParseError::MisplacedPoint);
                }
                (int, frac)
            }
        };
        if frac.len() > usize::from(decimals) {
            return Err(AmountParseError::TooManyDecimals { max: decimals });
        }
        let scale = pow10(u32::from(decimals)).ok_or(AmountParseError::Overflow)?;
        let int = digits(int, 0)?;
        // The fraction's digits scaled to `decimals` places: "5" of 2 is 50.
        let pad = u32::from(decimals) - frac.len() as u32;
        let frac_value = if frac.is_empty() {
            0
        } else {
            digits(frac, frac.len())?
        };
        let frac_scaled = pow10(pad)
            .and_then(|p| frac_value.checked_mul(p))
            .ok_or(AmountParseError::Overflow)?;
        int.checked_mul(scale)
            .and_then(|v| v.checked_add(frac_scaled))
            .map(Amount)
            .ok_or(AmountParseError::Overflow)
    }

    /// The major-unit spelling with exactly `decimals` fraction digits:
    /// 1234 with 2 decimals is `"12.34"`, 5 is `"0.05"`; with 0 decimals
    /// there is no point.
    pub fn to_major_string(self, decimals: u8) -> String {
        let digits = self.0.to_string();
        let places = usize::from(decimals);
        if places == 0 {
            return digits;
        }
        let padded = if digits.len() <= places {
            format!("{}{digits}", "0".repeat(places + 1 - digits.len()))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - places);
        format!("{int}.{frac}")
    }
}

/// What every spelling refuses first, so the error names the actual problem
/// ("-5" is a sign, not a non-digit).
fn check_charset(s: &str) -> Result<(), AmountParseError> {
    if s.is_empty() {
        return Err(AmountParseError::Empty);
    }
    if s.starts_with(['+', '-']) {
        return Err(AmountParseError::Sign);
    }
    let scientific = |b: u8| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-');
    if s.contains(['e', 'E']) && s.bytes().all(scientific) {
        return Err(AmountParseError::Exponent);
    }
    if !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(AmountParseError::NotADigit);
    }
    Ok(())
}

/// The value of a run of ASCII digits (already checked). `fraction_len` is
/// non-zero for the digits after a point, where leading zeros are digits.
fn digits(s: &str, fraction_len: usize) -> Result<u128, AmountParseError> {
    if s.is_empty() {
        return Err(AmountParseError::MisplacedPoint);
    }
    if s.contains('.') {
        return Err(AmountParseError::MisplacedPoint);
    }
    if fraction_len == 0 && s.len() > 1 && s.starts_with('0') {
        return Err(AmountParseError::LeadingZero);
    }
    s.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .ok_or(AmountParseError::Overflow)
    })
}

fn pow10(exp: u32) -> Option<u128> {
    10u128.checked_pow(exp)
}

impl fmt::Display for Amount {
    /// Minor units, as stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Amount::parse_minor(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AmountParseError as E;

    fn major(s: &str, decimals: u8) -> Result<u128, AmountParseError> {
        Amount::parse_major(s, decimals).map(Amount::minor)
    }

    #[test]
    fn major_spellings() {
        assert_eq!(major("12.34", 2), Ok(1234));
        assert_eq!(major("12", 2), Ok(1200));
        assert_eq!(major("12.3", 2), Ok(1230));
        assert_eq!(major("0.05", 2), Ok(5));
        assert_eq!(major("0.5", 2), Ok(50));
        assert_eq!(major("0", 2), Ok(0));
        assert_eq!(major("0.00", 2), Ok(0));
        assert_eq!(major("1000", 0), Ok(1000));
        assert_eq!(
            major("1.000000000000000001", 18),
            Ok(1_000_000_000_000_000_001)
        );
        assert_eq!(major("0.000000000000000001", 18), Ok(1));
    }

    #[test]
    fn major_refusals() {
        assert_eq!(major("", 2), Err(E::Empty));
        assert_eq!(major("-1", 2), Err(E::Sign));
        assert_eq!(major("+1", 2), Err(E::Sign));
        assert_eq!(major("1e3", 2), Err(E::Exponent));
        assert_eq!(major("1E3", 2), Err(E::Exponent));
        assert_eq!(major("1.5e2", 2), Err(E::Exponent));
        assert_eq!(major("1.5e-3", 2), Err(E::Exponent));
        assert_eq!(major("seven", 2), Err(E::NotADigit));
        assert_eq!(major("12.345", 2), Err(E::TooManyDecimals { max: 2 }));
        assert_eq!(major("1.230", 2), Err(E::TooManyDecimals { max: 2 }));
        assert_eq!(major("10.5", 0), Err(E::TooManyDecimals { max: 0 }));
        assert_eq!(major("1.", 2), Err(E::MisplacedPoint));
        assert_eq!(major(".5", 2), Err(E::MisplacedPoint));
        assert_eq!(major(".", 2), Err(E::MisplacedPoint));
        assert_eq!(major("1.2.3", 4), Err(E::MisplacedPoint));
        assert_eq!(major("01", 2), Err(E::LeadingZero));
        assert_eq!(major("00.5", 2), Err(E::LeadingZero));
        for bad in [
            " 1", "1 ", "1,000", "1_000", "0x10", "١", "1.2\n", "NaN", "inf",
        ] {
            assert_eq!(major(bad, 2), Err(E::NotADigit), "{bad:?}");
        }
    }

    #[test]
    fn the_edges_of_u128() {
        let max = u128::MAX.to_string();
        assert_eq!(major(&max, 0), Ok(u128::MAX));
        assert_eq!(Amount::parse_minor(&max).map(Amount::minor), Ok(u128::MAX));
        // One more than u128::MAX.
        let over = "340282366920938463463374607431768211456";
        assert_eq!(major(over, 0), Err(E::Overflow));
        assert_eq!(Amount::parse_minor(over), Err(E::Overflow));
        // Fits as minor units, not once scaled.
        assert_eq!(major(&max, 1), Err(E::Overflow));
        let big_int = "340282366920938463463";
        assert_eq!(
            major(big_int, 18),
            Ok(340_282_366_920_938_463_463 * 10u128.pow(18))
        );
        assert_eq!(major("340282366920938463464", 18), Err(E::Overflow));
    }

    #[test]
    fn minor_spellings() {
        assert_eq!(Amount::parse_minor("1234"), Ok(Amount::from_minor(1234)));
        assert_eq!(Amount::parse_minor("0"), Ok(Amount::ZERO));
        assert_eq!(Amount::parse_minor(""), Err(E::Empty));
        assert_eq!(Amount::parse_minor("-1"), Err(E::Sign));
        assert_eq!(Amount::parse_minor("1e2"), Err(E::Exponent));
        assert_eq!(Amount::parse_minor("007"), Err(E::LeadingZero));
        assert_eq!(
            Amount::parse_minor("12.34"),
            Err(E::TooManyDecimals { max: 0 })
        );
        assert_eq!(Amount::parse_minor("12a"), Err(E::NotADigit));
    }

    #[test]
    fn formatting() {
        let f = |m: u128, d: u8| Amount::from_minor(m).to_major_string(d);
        assert_eq!(f(1234, 2), "12.34");
        assert_eq!(f(1230, 2), "12.30");
        assert_eq!(f(5, 2), "0.05");
        assert_eq!(f(0, 2), "0.00");
        assert_eq!(f(100, 2), "1.00");
        assert_eq!(f(1234, 0), "1234");
        assert_eq!(f(1, 18), "0.000000000000000001");
        assert_eq!(f(u128::MAX, 18), "340282366920938463463.374607431768211455");
        // Every formatted amount parses back to itself.
        for (m, d) in [(0, 0), (7, 3), (1234, 2), (u128::MAX, 0), (u128::MAX, 18)] {
            assert_eq!(major(&f(m, d), d), Ok(m), "{m} with {d} decimals");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Amount::from_minor;
        assert_eq!(a(2).checked_add(a(3)), Ok(a(5)));
        assert_eq!(a(u128::MAX).checked_add(a(1)), Err(AmountError::Overflow));
        assert_eq!(a(3).checked_sub(a(3)), Ok(Amount::ZERO));
        assert_eq!(a(2).checked_sub(a(3)), Err(AmountError::Underflow));
    }

    #[test]
    fn serde_is_a_string_of_minor_units() {
        let a = Amount::from_minor(u128::MAX);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{}\"", u128::MAX));
        assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), a);
        // A JSON number is not an amount: it may already have lost digits.
        assert!(serde_json::from_str::<Amount>("1234").is_err());
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Amount>("\"01\"").is_err());
        assert!(serde_json::from_str::<Amount>("\"1.5\"").is_err());
    }
}
