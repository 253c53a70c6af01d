//! Amounts as the JWT and server-wallet dialects write them: major units as
//! a decimal string, no trailing zeros and no trailing point ("1.5", "12",
//! "0"), whatever the asset's decimals. (`Asset::format_amount` keeps every
//! decimal, "1.500000000000000000", which is exact but not what a client
//! of these dialects shows.)

use crate::domain::money::Amount;

pub fn wire_amount(minor: u128, decimals: u8) -> String {
    let text = Amount::from_minor(minor).to_major_string(decimals);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_amounts_are_canonical() {
        let one = 10u128.pow(18);
        assert_eq!(wire_amount(0, 18), "0");
        assert_eq!(wire_amount(one, 18), "1");
        assert_eq!(wire_amount(one * 3 / 2, 18), "1.5");
        assert_eq!(wire_amount(12 * one, 18), "12");
        assert_eq!(wire_amount(10 * one, 18), "10");
        assert_eq!(wire_amount(1, 18), "0.000000000000000001");
        assert_eq!(wire_amount(1200, 0), "1200");
        assert_eq!(wire_amount(1230, 2), "12.3");
        assert_eq!(wire_amount(u128::MAX, 18).len(), 40);
    }
}
