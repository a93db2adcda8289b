//! The national curve: an event's national net per UTC hour in its reporting currency, from the
//! national hourly totals (every site's summed) less the disabled sites' (off the national
//! figure). Each (hour, currency) is converted once, half to even, like a site's total in the
//! ranking; a currency without a rate is left out, as it is of the national figure.

use std::collections::BTreeMap;

use crate::ranking::convert;
use crate::totals::HourlyTotals;
use crate::{Currency, Rate, UnixNanos};

/// Hourly totals by (hour, currency).
pub type Hours = BTreeMap<(UnixNanos, Currency), HourlyTotals>;

/// One hour of the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourNet {
    /// Start of the UTC hour.
    pub hour_start: UnixNanos,
    /// The net in minor units of the reporting currency; `None` when it does not fit `i128`
    /// (a converted figure past every real amount: shown as out of range, never wrapped).
    pub net_reporting_minor: Option<i128>,
}

/// A part (a site's hours) was not part of the sum it was to be taken out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the hour starting {} in {currency} holds less than the part taken out of it", hour.to_rfc3339())]
pub struct NotAPart {
    /// The hour.
    pub hour: UnixNanos,
    /// The currency.
    pub currency: Currency,
}

/// Adds `part` (one site's hours) into `sum`; `Err` on overflow (a broken bound).
///
/// # Errors
/// When a figure would overflow.
pub fn add_hours(
    sum: &mut Hours,
    part: &[(Currency, UnixNanos, HourlyTotals)],
) -> Result<(), NotAPart> {
    for (currency, hour, h) in part {
        let slot = sum.entry((*hour, *currency)).or_default();
        *slot = slot.checked_add(h).ok_or(NotAPart {
            hour: *hour,
            currency: *currency,
        })?;
    }
    Ok(())
}

/// Takes `part` (hours added before) back out of `sum`; an hour left with nothing goes.
///
/// # Errors
/// When `part` is not part of `sum`.
pub fn remove_hours(
    sum: &mut Hours,
    part: &[(Currency, UnixNanos, HourlyTotals)],
) -> Result<(), NotAPart> {
    for (currency, hour, h) in part {
        let err = NotAPart {
            hour: *hour,
            currency: *currency,
        };
        let slot = sum.get_mut(&(*hour, *currency)).ok_or(err)?;
        *slot = slot.checked_sub(h).ok_or(err)?;
        if *slot == HourlyTotals::default() {
            sum.remove(&(*hour, *currency));
        }
    }
    Ok(())
}

/// The curve of `national` (every site's hours) without `disabled` (their sum), converted with
/// `rates` into `reporting`, oldest hour first. Hours with nothing left are left out.
///
/// # Errors
/// When `disabled` is not part of `national` (the two come from one consistent read, so this
/// is a storage fault, not a figure).
pub fn national_curve(
    national: &[(Currency, UnixNanos, HourlyTotals)],
    disabled: &Hours,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> Result<Vec<HourNet>, NotAPart> {
    let mut enabled = Hours::new();
    add_hours(&mut enabled, national)?;
    for ((hour, currency), h) in disabled {
        remove_hours(&mut enabled, &[(*currency, *hour, *h)])?;
    }
    let mut curve: BTreeMap<UnixNanos, Option<i128>> = BTreeMap::new();
    for ((hour, currency), h) in &enabled {
        let converted = if *currency == reporting {
            Some(h.net_minor)
        } else {
            match rates.get(currency) {
                Some(rate) => convert(h.net_minor, *currency, reporting, rate),
                // Without a rate: left out, as of the national figure.
                None => continue,
            }
        };
        let slot = curve.entry(*hour).or_insert(Some(0));
        *slot = slot.zip(converted).and_then(|(a, b)| a.checked_add(b));
    }
    Ok(curve
        .into_iter()
        .map(|(hour_start, net_reporting_minor)| HourNet {
            hour_start,
            net_reporting_minor,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    fn c(code: &str) -> Currency {
        Currency::parse(code).expect("currency")
    }

    fn h(sales: u64, net: i128) -> HourlyTotals {
        HourlyTotals {
            sale_count: sales,
            net_minor: net,
        }
    }

    #[test]
    fn converts_each_hour_and_currency_once_and_leaves_out_the_disabled() {
        let (idr, usd, eur) = (c("IDR"), c("USD"), c("EUR"));
        let national = [
            (idr, UnixNanos(0), h(3, 1_000)),
            (usd, UnixNanos(0), h(1, 150)),
            (eur, UnixNanos(0), h(1, 999)),
            (idr, UnixNanos(HOUR), h(2, 500)),
            (idr, UnixNanos(2 * HOUR), h(1, 70)),
        ];
        let mut disabled = Hours::new();
        add_hours(&mut disabled, &[(idr, UnixNanos(HOUR), h(1, 200))]).expect("add");
        add_hours(&mut disabled, &[(idr, UnixNanos(2 * HOUR), h(1, 70))]).expect("add");
        let rates = [(usd, Rate::parse("15000.5").expect("rate"))]
            .into_iter()
            .collect();
        let curve = national_curve(&national, &disabled, &rates, idr).expect("curve");
        // 150 cents = USD 1.50 x 15000.5 = IDR 22,500.75 = 2,250,075 minor units.
        assert_eq!(
            curve,
            [
                HourNet {
                    hour_start: UnixNanos(0),
                    net_reporting_minor: Some(1_000 + 2_250_075)
                },
                HourNet {
                    hour_start: UnixNanos(HOUR),
                    net_reporting_minor: Some(300)
                },
            ],
            "EUR without a rate is left out; the hour the disabled site alone sold in goes"
        );
    }

    #[test]
    fn a_part_that_is_not_part_of_the_sum_is_an_error_not_a_floor() {
        let idr = c("IDR");
        let mut disabled = Hours::new();
        add_hours(&mut disabled, &[(idr, UnixNanos(0), h(5, 10))]).expect("add");
        assert!(
            national_curve(
                &[(idr, UnixNanos(0), h(1, 10))],
                &disabled,
                &BTreeMap::new(),
                idr
            )
            .is_err()
        );
        let mut sum = disabled.clone();
        remove_hours(&mut sum, &[(idr, UnixNanos(0), h(5, 10))]).expect("remove");
        assert!(sum.is_empty());
        assert!(remove_hours(&mut sum, &[(idr, UnixNanos(0), h(1, 1))]).is_err());
    }

    #[test]
    fn an_hour_past_every_real_amount_is_out_of_range_not_wrapped() {
        let (idr, usd) = (c("IDR"), c("USD"));
        let national = [
            (idr, UnixNanos(0), h(1, i128::MAX)),
            (usd, UnixNanos(0), h(1, 1)),
        ];
        let rates = [(usd, Rate::parse("1").expect("rate"))]
            .into_iter()
            .collect();
        let curve = national_curve(&national, &Hours::new(), &rates, idr).expect("curve");
        assert_eq!(curve[0].net_reporting_minor, None);
    }
}
