//! The guidelines' rounding (CETS-AG-03.01-V01-2024 Annex C notes), half away from zero
//! ("四舍五入"), each applied where the guideline says and nowhere else.

use rust_decimal::{Decimal, RoundingStrategy};

/// Fuel and material quantities, t or 10^4 Nm3 (and production data).
pub const QUANTITY_DP: u32 = 2;
/// Net calorific values, GJ/t or GJ/10^4 Nm3.
pub const NCV_DP: u32 = 3;
/// Carbon contents, tC/GJ.
pub const CC_DP: u32 = 5;
/// Each emissions line, t CO2 (or t CO2e).
pub const EMISSIONS_DP: u32 = 2;
/// Intensities, t CO2 per t of product.
pub const INTENSITY_DP: u32 = 4;
/// Content fractions and rates (anode sulfur and ash, carbide-slag substitution): carbonx's
/// choice where the guideline text was not available; a rate is compared with the plan's.
pub const FRACTION_DP: u32 = 4;

/// `value` rounded half away from zero to `dp` places.
pub fn round_dp(value: Decimal, dp: u32) -> Decimal {
    value.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

pub fn quantity(value: Decimal) -> Decimal {
    round_dp(value, QUANTITY_DP)
}

pub fn ncv(value: Decimal) -> Decimal {
    round_dp(value, NCV_DP)
}

pub fn emissions(value: Decimal) -> Decimal {
    round_dp(value, EMISSIONS_DP)
}

pub fn intensity(value: Decimal) -> Decimal {
    round_dp(value, INTENSITY_DP)
}

pub fn fraction(value: Decimal) -> Decimal {
    round_dp(value, FRACTION_DP)
}

/// The enterprise total of the summary table (C.5): whole tonnes; `None` below zero (a
/// mass balance whose products carry more carbon than its inputs: the caller refuses it).
pub fn total_t(value: Decimal) -> Option<u64> {
    let rounded = round_dp(value, 0);
    if rounded < Decimal::ZERO {
        return None;
    }
    u64::try_from(rounded).ok()
}

/// Decimal places a figure is written with, ignoring trailing zeros.
pub fn places(value: Decimal) -> u32 {
    value.normalize().scale()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn each_rule_rounds_half_away_from_zero_at_its_places() {
        assert_eq!(quantity(dec!(1.005)), dec!(1.01));
        assert_eq!(quantity(dec!(1.004)), dec!(1.00));
        assert_eq!(ncv(dec!(23.7365)), dec!(23.737));
        assert_eq!(ncv(dec!(23.73649)), dec!(23.736));
        assert_eq!(emissions(dec!(-12.345)), dec!(-12.35));
        assert_eq!(emissions(dec!(12.344999)), dec!(12.34));
        assert_eq!(intensity(dec!(1.23455)), dec!(1.2346));
        assert_eq!(fraction(dec!(0.123449)), dec!(0.1234));
    }

    #[test]
    fn the_total_is_whole_tonnes() {
        assert_eq!(total_t(dec!(1234.50)), Some(1235));
        assert_eq!(total_t(dec!(1234.49)), Some(1234));
        assert_eq!(total_t(dec!(-0.49)), Some(0));
        assert_eq!(total_t(dec!(-5.00)), None);
        assert_eq!(total_t(dec!(8000000000)), Some(8_000_000_000));
    }

    #[test]
    fn places_ignore_trailing_zeros() {
        assert_eq!(places(dec!(1.2300)), 2);
        assert_eq!(places(dec!(7)), 0);
    }
}
