//! Figures as people read them, from the integers the service sends: money in its currency's
//! units with grouping, shares and growth to a tenth of a percent (half to even), and the
//! warning for sales left out of the national figure.

use saleboard_domain::Currency;

/// `n / d` in tenths of a percent (`n x 1000 / d`), rounded half to even; `d` is not 0.
fn tenths_of_percent(n: i128, d: i128) -> i128 {
    let n = n * 1_000;
    let (q, r) = (n / d, n % d);
    let twice = (r * 2).abs();
    if twice > d.abs() || (twice == d.abs() && q % 2 != 0) {
        q + if (n < 0) == (d < 0) { 1 } else { -1 }
    } else {
        q
    }
}

/// Tenths of a percent as text, with `plus` before a figure that is not negative.
fn percent_text(tenths: i128, plus: &str) -> String {
    let sign = if tenths < 0 { "-" } else { plus };
    format!("{sign}{}.{}%", tenths.abs() / 10, tenths.abs() % 10)
}

/// `part` of `whole` in percent to a tenth (half to even), from the two integers.
#[must_use]
pub fn share(part: i64, whole: i64) -> String {
    if whole == 0 {
        return "n/a".to_owned();
    }
    percent_text(tenths_of_percent(i128::from(part), i128::from(whole)), "")
}

/// Money as people read it: `IDR 6,557,786.00` (the raw number and code when the code is
/// unknown).
#[must_use]
pub fn money(minor: i64, currency: &str) -> String {
    wide_money(i128::from(minor), currency)
}

/// As [`money`], for a figure that may pass `i64` (sent as decimal text).
#[must_use]
pub fn wide_money(minor: i128, currency: &str) -> String {
    Currency::parse(currency).map_or_else(
        |_| format!("{currency} {minor} (minor units)"),
        |c| c.display_minor(minor),
    )
}

/// A national figure: the exact decimal text when the service sent one, else the int64.
pub(super) fn national_money(minor: i64, decimal: &str, currency: &str) -> String {
    decimal.parse::<i128>().map_or_else(
        |_| money(minor, currency),
        |wide| wide_money(wide, currency),
    )
}

/// The line that says the national figure leaves sales out.
#[must_use]
pub fn unconverted_warning(currencies: &[String]) -> String {
    format!(
        "warning: sales in {} have no exchange rate and are left out of the national figure; \
         set a rate with `saleboard admin rates set FILE`",
        currencies.join(", ")
    )
}

/// Growth of `now` over `then`, to a tenth of a percent (half to even), from the two integers:
/// `+23.4%`; `n/a` when the baseline is zero.
#[must_use]
pub fn growth(now: i64, then: i64) -> String {
    if then == 0 {
        return "n/a".to_owned();
    }
    let (now, then) = (i128::from(now), i128::from(then));
    percent_text(tenths_of_percent(now - then, then), "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_half_to_even() {
        assert_eq!(share(4_500, 8_500), "52.9%");
        assert_eq!(share(1, 3), "33.3%");
        assert_eq!(share(1, 8), "12.5%");
        assert_eq!(share(1, 16), "6.2%", "62.5 tenths -> 62");
        assert_eq!(share(3, 16), "18.8%", "187.5 tenths -> 188");
        assert_eq!(share(-1, 3), "-33.3%");
        assert_eq!(share(5, 0), "n/a");
    }

    #[test]
    fn growth_from_two_integers() {
        assert_eq!(growth(1_234, 1_000), "+23.4%");
        assert_eq!(growth(1_000, 1_000), "+0.0%");
        assert_eq!(growth(500, 1_000), "-50.0%");
        assert_eq!(
            growth(10_005, 10_000),
            "+0.0%",
            "0.05% rounds half to even: 0"
        );
        assert_eq!(
            growth(10_015, 10_000),
            "+0.2%",
            "0.15% rounds half to even: 0.2"
        );
        assert_eq!(growth(1, 0), "n/a");
    }

    #[test]
    fn money_reads_like_money() {
        assert_eq!(money(655_778_600, "IDR"), "IDR 6,557,786.00");
        assert_eq!(
            national_money(0, "92233720368547758070", "IDR"),
            "IDR 922,337,203,685,477,580.70"
        );
        assert_eq!(national_money(150, "", "USD"), "USD 1.50");
        assert_eq!(money(5, "???"), "??? 5 (minor units)");
    }
}
