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
    use super::*;

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
