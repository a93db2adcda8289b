//! Exchange rates: exact decimals, never floats.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Major units of the reporting currency per major unit of another currency, e.g. USD
/// `15850.25` when reporting in IDR. Always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

/// Why a rate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Not a plain decimal number.
    #[error("{0:?} is not a decimal number such as \"15850.25\"")]
    NotDecimal(String),
    /// Zero or negative.
    #[error("{0:?} is not positive")]
    NotPositive(String),
    /// More precision than conversions can carry exactly.
    #[error("{0:?} has more than {max_digits} significant digits or {max_scale} decimal places", max_digits = Rate::MAX_DIGITS, max_scale = Rate::MAX_SCALE)]
    TooPrecise(String),
    /// Larger than any real exchange rate.
    #[error("{0:?} is larger than {max}: no real exchange rate is that large; check the decimal point", max = Rate::MAX)]
    TooLarge(String),
}

impl Rate {
    /// Most significant digits of a rate: keeps `amount x rate` inside `i128` for any `i64`
    /// amount, so conversion is exact integer arithmetic.
    pub const MAX_DIGITS: u32 = 18;
    /// Most decimal places of a rate.
    pub const MAX_SCALE: u32 = 12;
    /// Largest rate an organizer may set: a billion units of the reporting currency per unit
    /// of another. The widest real gap (a dinar in rial or dong) is under 10^7; a larger figure
    /// is a typo that would only push every site selling that currency out of range.
    pub const MAX: u64 = 1_000_000_000;

    /// [`Rate::parse`], and at most [`Rate::MAX`]: what an organizer may set.
    ///
    /// # Errors
    /// As [`Rate::parse`], and [`RateError::TooLarge`].
    pub fn parse_bounded(text: &str) -> Result<Self, RateError> {
        let rate = Self::parse(text)?;
        if rate.0 > Decimal::from(Self::MAX) {
            return Err(RateError::TooLarge(text.to_owned()));
        }
        Ok(rate)
    }

    /// Parses a plain decimal string (digits with at most one '.', no exponent, no sign), with
    /// at most 18 significant digits and 12 decimal places once trailing zeros are dropped.
    ///
    /// # Errors
    /// When the text is not such a number or is not positive.
    pub fn parse(text: &str) -> Result<Self, RateError> {
        let plain = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            && text.bytes().filter(|b| *b == b'.').count() <= 1;
        if !plain {
            return Err(RateError::NotDecimal(text.to_owned()));
        }
        let value =
            Decimal::from_str_exact(text).map_err(|_| RateError::NotDecimal(text.to_owned()))?;
        if value <= Decimal::ZERO {
            return Err(RateError::NotPositive(text.to_owned()));
        }
        let value = value.normalize();
        let digits = value
            .mantissa()
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d + 1);
        if digits > Self::MAX_DIGITS || value.scale() > Self::MAX_SCALE {
            return Err(RateError::TooPrecise(text.to_owned()));
        }
        Ok(Self(value))
    }

    /// The rate as `mantissa / 10^scale`, both exact.
    #[must_use]
    pub fn parts(&self) -> (i128, u32) {
        (self.0.mantissa(), self.0.scale())
    }

    /// The exact value.
    #[must_use]
    pub fn value(&self) -> Decimal {
        self.0
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Rate {
    /// The canonical form: no trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalises() {
        assert_eq!(
            Rate::parse("15850.25").map(|r| r.to_string()),
            Ok("15850.25".into())
        );
        assert_eq!(
            Rate::parse("1.500").map(|r| r.to_string()),
            Ok("1.5".into())
        );
        assert_eq!(
            Rate::parse("0.0001").map(|r| r.to_string()),
            Ok("0.0001".into())
        );
        assert_eq!(Rate::parse("100").map(|r| r.to_string()), Ok("100".into()));
    }

    #[test]
    fn organizers_cannot_set_absurd_rates() {
        assert!(Rate::parse_bounded("1000000000").is_ok());
        assert!(Rate::parse_bounded("0.000000000001").is_ok());
        for bad in ["1000000000.5", "999999999999999999", "1000000001"] {
            assert!(
                matches!(Rate::parse_bounded(bad), Err(RateError::TooLarge(_))),
                "{bad}"
            );
            assert!(Rate::parse(bad).is_ok(), "stored rates still load: {bad}");
        }
        assert!(matches!(
            Rate::parse_bounded("x"),
            Err(RateError::NotDecimal(_))
        ));
    }

    #[test]
    fn refuses_non_decimals_and_non_positive() {
        for bad in ["", "abc", "1e5", "1,5", "1.2.3", " 1", "NaN", "+1"] {
            assert!(
                matches!(Rate::parse(bad), Err(RateError::NotDecimal(_))),
                "{bad}"
            );
        }
        for bad in ["0", "0.000", "-1"] {
            assert!(
                matches!(Rate::parse(bad), Err(RateError::NotPositive(_))),
                "{bad}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// Any text parses or is refused with a reason; a parsed rate prints to a text that
        /// parses back to the same rate, and is within the bounds.
        #[test]
        fn parsing_never_panics_and_round_trips(text in "[0-9.\\-+eE ]{0,30}|.{0,30}") {
            if let Ok(rate) = Rate::parse_bounded(&text) {
                prop_assert!(rate.value() > Decimal::ZERO);
                prop_assert!(rate.value() <= Decimal::from(Rate::MAX));
                prop_assert_eq!(Rate::parse_bounded(&rate.to_string()), Ok(rate));
            }
            drop(Rate::parse(&text));
        }
    }
}
