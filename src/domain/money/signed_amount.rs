//! A signed count of minor units: a posting line, or the balance of an
//! account that may be negative (the issuance account of an asset).

use std::fmt;

use super::{Amount, AmountError};

/// Sign and magnitude rather than `i128`, so that every [`Amount`] (all of
/// `u128`) has a signed counterpart. Zero is never negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SignedAmount {
    negative: bool,
    magnitude: Amount,
}

impl SignedAmount {
    pub const ZERO: SignedAmount = SignedAmount {
        negative: false,
        magnitude: Amount::ZERO,
    };

    /// Value into the account.
    pub fn plus(amount: Amount) -> Self {
        Self {
            negative: false,
            magnitude: amount,
        }
    }

    /// Value out of the account.
    pub fn minus(amount: Amount) -> Self {
        Self {
            negative: !amount.is_zero(),
            magnitude: amount,
        }
    }

    pub fn is_negative(self) -> bool {
        self.negative
    }

    pub fn is_zero(self) -> bool {
        self.magnitude.is_zero()
    }

    pub fn magnitude(self) -> Amount {
        self.magnitude
    }

    /// The value as an [`Amount`] if it is not negative.
    pub fn non_negative(self) -> Option<Amount> {
        (!self.negative).then_some(self.magnitude)
    }

    pub fn negated(self) -> Self {
        if self.negative {
            Self::plus(self.magnitude)
        } else {
            Self::minus(self.magnitude)
        }
    }

    /// Checked: a sum whose magnitude leaves `u128` is an error.
    pub fn checked_add(self, other: SignedAmount) -> Result<SignedAmount, AmountError> {
        if self.negative == other.negative {
            let magnitude = self.magnitude.checked_add(other.magnitude)?;
            return Ok(Self {
                negative: self.negative && !magnitude.is_zero(),
                magnitude,
            });
        }
        // Opposite signs: the larger magnitude keeps its sign.
        let (large, small) = if self.magnitude >= other.magnitude {
            (self, other)
        } else {
            (other, self)
        };
        let magnitude = large.magnitude.checked_sub(small.magnitude)?;
        Ok(Self {
            negative: large.negative && !magnitude.is_zero(),
            magnitude,
        })
    }
}

impl fmt::Display for SignedAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            write!(f, "-{}", self.magnitude)
        } else {
            write!(f, "{}", self.magnitude)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m: u128) -> SignedAmount {
        SignedAmount::plus(Amount::from_minor(m))
    }

    fn n(m: u128) -> SignedAmount {
        SignedAmount::minus(Amount::from_minor(m))
    }

    #[test]
    fn sums() {
        assert_eq!(p(5).checked_add(n(3)), Ok(p(2)));
        assert_eq!(p(3).checked_add(n(5)), Ok(n(2)));
        assert_eq!(n(3).checked_add(n(5)), Ok(n(8)));
        assert_eq!(p(5).checked_add(n(5)), Ok(SignedAmount::ZERO));
        assert_eq!(n(5).checked_add(p(5)), Ok(SignedAmount::ZERO));
        assert!(!n(0).is_negative());
        assert_eq!(n(0), SignedAmount::ZERO);
        assert_eq!(p(7).negated(), n(7));
        assert_eq!(n(7).to_string(), "-7");
        assert_eq!(n(7).non_negative(), None);
        assert_eq!(p(7).non_negative(), Some(Amount::from_minor(7)));
    }

    #[test]
    fn the_full_range_is_signed_and_checked() {
        assert_eq!(
            p(u128::MAX).checked_add(n(u128::MAX)),
            Ok(SignedAmount::ZERO)
        );
        assert_eq!(p(u128::MAX).checked_add(p(1)), Err(AmountError::Overflow));
        assert_eq!(n(u128::MAX).checked_add(n(1)), Err(AmountError::Overflow));
        assert_eq!(
            n(u128::MAX).checked_add(p(u128::MAX)),
            Ok(SignedAmount::ZERO)
        );
    }
}
