//! ISO 4217 currencies, from the `iso_currency` crate's table (never a hand list). Only codes
//! with a defined minor-unit exponent are money here: funds, metals and "no currency" (XXX, XAU,
//! XDR...) have none and are refused.

use std::fmt;
use std::str::FromStr;

/// An ISO 4217 currency with a defined number of minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: iso_currency::Currency,
    exponent: u8,
}

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not an ISO 4217 alphabetic code at all (codes are three upper-case letters).
    #[error("{0:?} is not an ISO 4217 currency code")]
    Unknown(String),
    /// A valid code without a minor-unit exponent: not usable as money.
    #[error("{0} has no minor unit defined in ISO 4217 and cannot be used as money")]
    NoMinorUnit(String),
}

impl Currency {
    /// Parses an upper-case ISO 4217 alphabetic code such as `"IDR"`.
    ///
    /// # Errors
    /// When the code is unknown (including lower case) or has no minor-unit exponent.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let is_upper_alpha = code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase());
        let parsed = is_upper_alpha
            .then(|| iso_currency::Currency::from_code(code))
            .flatten()
            .ok_or_else(|| CurrencyError::Unknown(crate::ids::excerpt(code)))?;
        let exponent = parsed
            .exponent()
            .and_then(|e| u8::try_from(e).ok())
            .ok_or_else(|| CurrencyError::NoMinorUnit(code.to_owned()))?;
        Ok(Self {
            code: parsed,
            exponent,
        })
    }

    /// The alphabetic code, e.g. `"USD"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        // `iso_currency` returns codes of static storage.
        self.code.code()
    }

    /// Number of decimal places of the minor unit (ISO 4217): 2 for IDR and USD, 0 for JPY,
    /// 3 for KWD.
    #[must_use]
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Minor units written in major units, exactly: 1234 USD is `"12.34"`, -5 KWD `"-0.005"`,
    /// 7 JPY `"7"`.
    #[must_use]
    pub fn format_minor(&self, minor: i64) -> String {
        let digits = minor.unsigned_abs().to_string();
        let sign = if minor < 0 { "-" } else { "" };
        let exp = usize::from(self.exponent);
        if exp == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = exp + 1);
        let (int, frac) = padded.split_at(padded.len() - exp);
        format!("{sign}{int}.{frac}")
    }
}

/// Why an amount in major units (as a shop shows a price) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MajorAmountError {
    /// Nothing was given.
    #[error("is empty")]
    Empty,
    /// A decimal comma or a thousands separator.
    #[error(
        "{0:?} has a comma; write the amount with a decimal point and no thousands separators \
         (15.99, 656015900)"
    )]
    Comma(String),
    /// Not a decimal number.
    #[error("{0:?} is not a decimal number (digits, optionally one '.' and decimals)")]
    NotANumber(String),
    /// More decimals than the currency's minor unit has.
    #[error("{text:?} has {decimals} decimals; {currency} has {exponent}")]
    TooManyDecimals {
        /// The amount as given.
        text: String,
        /// Decimals given.
        decimals: usize,
        /// The currency.
        currency: &'static str,
        /// Its minor-unit exponent.
        exponent: u8,
    },
    /// The amount in minor units does not fit a 64-bit integer.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

impl Currency {
    /// An amount in major units (`"15.99"`, `"656015900"`, `"-3.5"`) as minor units, exactly:
    /// no floating point, no rounding. More decimals than the currency has is an error, never
    /// a rounding.
    ///
    /// # Errors
    /// See [`MajorAmountError`].
    pub fn parse_major(&self, text: &str) -> Result<i64, MajorAmountError> {
        let shown = crate::ids::excerpt(text);
        if text.is_empty() {
            return Err(MajorAmountError::Empty);
        }
        if text.contains(',') {
            return Err(MajorAmountError::Comma(shown));
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (unsigned.ends_with('.')) {
            return Err(MajorAmountError::NotANumber(shown));
        }
        let exponent = usize::from(self.exponent);
        if frac.len() > exponent {
            return Err(MajorAmountError::TooManyDecimals {
                text: shown,
                decimals: frac.len(),
                currency: self.code(),
                exponent: self.exponent,
            });
        }
        let minor = format!("{int}{frac:0<exponent$}");
        let magnitude: i128 = minor
            .parse()
            .map_err(|_| MajorAmountError::TooLarge(shown.clone()))?;
        let signed = if negative { -magnitude } else { magnitude };
        i64::try_from(signed).map_err(|_| MajorAmountError::TooLarge(shown))
    }

    /// Minor units as people read them: the code, thousands separated by `,`, the decimal
    /// point, every minor digit: `IDR 6,557,786.00`, `USD -1,234.50`, `JPY 7`.
    #[must_use]
    pub fn display_minor(&self, minor: i128) -> String {
        let digits = minor.unsigned_abs().to_string();
        let exponent = usize::from(self.exponent);
        let padded = format!("{digits:0>width$}", width = exponent + 1);
        let (int, frac) = padded.split_at(padded.len() - exponent);
        let mut grouped = String::with_capacity(int.len() + int.len() / 3);
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if minor < 0 { "-" } else { "" };
        if frac.is_empty() {
            format!("{} {sign}{grouped}", self.code())
        } else {
            format!("{} {sign}{grouped}.{frac}", self.code())
        }
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// Every amount written in major units reads back to the same minor units, and any
        /// text is read or refused without a panic.
        #[test]
        fn major_units_round_trip(
            minor in any::<i64>(),
            code in prop::sample::select(vec!["IDR", "USD", "JPY", "KWD"]),
            text in "[0-9.,+\\-]{0,25}|.{0,25}",
        ) {
            let currency = Currency::parse(code).expect("known");
            prop_assert_eq!(currency.parse_major(&currency.format_minor(minor)), Ok(minor));
            drop(currency.parse_major(&text));
            let shown = currency.display_minor(i128::from(minor));
            prop_assert!(shown.starts_with(code));
            prop_assert_eq!(
                currency.parse_major(&shown[4..].replace(',', "")),
                Ok(minor)
            );
        }
    }

    #[test]
    fn exponents_follow_iso_4217() {
        for (code, exp) in [
            ("IDR", 2),
            ("USD", 2),
            ("JPY", 0),
            ("KWD", 3),
            ("SGD", 2),
            ("MYR", 2),
            ("BHD", 3),
            ("KRW", 0),
        ] {
            let c = Currency::parse(code).expect(code);
            assert_eq!((c.code(), c.exponent()), (code, exp), "{code}");
        }
    }

    #[test]
    fn reads_major_units_exactly_by_exponent() {
        let c = |code| Currency::parse(code).expect(code);
        assert_eq!(c("IDR").parse_major("656015900"), Ok(65_601_590_000));
        assert_eq!(c("IDR").parse_major("656015900.5"), Ok(65_601_590_050));
        assert_eq!(c("USD").parse_major("15.99"), Ok(1_599));
        assert_eq!(c("USD").parse_major("0.05"), Ok(5));
        assert_eq!(c("USD").parse_major("+2"), Ok(200));
        assert_eq!(c("USD").parse_major("-3.5"), Ok(-350));
        assert_eq!(c("JPY").parse_major("1500"), Ok(1_500));
        assert_eq!(c("KWD").parse_major("1.234"), Ok(1_234));
        assert_eq!(
            c("IDR").parse_major("92233720368547758.07"),
            Ok(i64::MAX),
            "the largest amount that fits"
        );
    }

    #[test]
    fn refuses_what_is_not_exact() {
        let c = |code| Currency::parse(code).expect(code);
        assert_eq!(
            c("USD").parse_major("15,99"),
            Err(MajorAmountError::Comma("15,99".into()))
        );
        assert_eq!(
            c("IDR").parse_major("6,557,786"),
            Err(MajorAmountError::Comma("6,557,786".into()))
        );
        assert!(matches!(
            c("USD").parse_major("15.999"),
            Err(MajorAmountError::TooManyDecimals {
                decimals: 3,
                exponent: 2,
                currency: "USD",
                ..
            })
        ));
        assert!(matches!(
            c("JPY").parse_major("10.5"),
            Err(MajorAmountError::TooManyDecimals {
                decimals: 1,
                exponent: 0,
                ..
            })
        ));
        assert!(
            c("JPY").parse_major("10.0").is_err(),
            "JPY has no decimals at all"
        );
        for bad in [
            "", "abc", "1.2.3", ".5", "5.", "1e3", "- 1", "1 000", "0x10", "١٢",
        ] {
            assert!(c("USD").parse_major(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            c("IDR").parse_major("92233720368547758.08"),
            Err(MajorAmountError::TooLarge("92233720368547758.08".into()))
        );
        assert!(matches!(
            c("IDR").parse_major(&"9".repeat(60)),
            Err(MajorAmountError::TooLarge(_))
        ));
        let message = c("USD")
            .parse_major("15.999")
            .expect_err("three decimals")
            .to_string();
        assert_eq!(message, "\"15.999\" has 3 decimals; USD has 2");
    }

    #[test]
    fn displays_money_as_people_read_it() {
        let c = |code| Currency::parse(code).expect(code);
        assert_eq!(c("IDR").display_minor(655_778_600), "IDR 6,557,786.00");
        assert_eq!(c("USD").display_minor(-123_450), "USD -1,234.50");
        assert_eq!(c("USD").display_minor(5), "USD 0.05");
        assert_eq!(c("USD").display_minor(0), "USD 0.00");
        assert_eq!(c("JPY").display_minor(7), "JPY 7");
        assert_eq!(c("JPY").display_minor(1_000), "JPY 1,000");
        assert_eq!(c("JPY").display_minor(100), "JPY 100");
        assert_eq!(c("KWD").display_minor(1_234_567), "KWD 1,234.567");
        assert_eq!(
            c("IDR").display_minor(-i128::MAX),
            "IDR -1,701,411,834,604,692,317,316,873,037,158,841,057.27"
        );
    }

    #[test]
    fn formats_minor_units_exactly() {
        let c = |code| Currency::parse(code).expect(code);
        assert_eq!(c("USD").format_minor(1_234), "12.34");
        assert_eq!(c("USD").format_minor(5), "0.05");
        assert_eq!(c("USD").format_minor(0), "0.00");
        assert_eq!(c("KWD").format_minor(-5), "-0.005");
        assert_eq!(c("JPY").format_minor(7), "7");
        assert_eq!(c("IDR").format_minor(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn refuses_unknown_and_lower_case() {
        for bad in ["", "US", "USDD", "usd", "Usd", "ABC", "ZZZ", "12 "] {
            assert_eq!(
                Currency::parse(bad),
                Err(CurrencyError::Unknown(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_codes_without_minor_unit() {
        for code in ["XXX", "XAU", "XDR"] {
            assert_eq!(
                Currency::parse(code),
                Err(CurrencyError::NoMinorUnit(code.to_owned())),
                "{code}"
            );
        }
    }
}
