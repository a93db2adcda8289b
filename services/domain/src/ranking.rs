//! Conversion into the reporting currency and the national ranking.
//!
//! A site's figure is the sum over its currencies of `net_minor x rate x 10^(reporting exponent -
//! currency exponent)`, computed exactly in integers and rounded half to even once per (site,
//! currency) total. Sites are ranked by that figure, highest first; equal figures share a rank
//! and the next rank skips (1, 2, 2, 4); among equals, by site id.

use std::collections::BTreeMap;

use crate::totals::CurrencyTotals;
use crate::{Currency, Rate, SiteId};

/// A conversion whose result leaves `i64` (or an intermediate leaves `i128`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("converting {currency} figures of site {site} into the reporting currency overflows")]
pub struct ConversionOverflow {
    /// Site being converted (empty for the national figure).
    pub site: String,
    /// Currency being converted.
    pub currency: String,
}

/// `n / d` rounded half to even (`d > 0`).
fn div_round_half_even(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    let twice = r.abs() * 2;
    if twice > d || (twice == d && q % 2 != 0) {
        q + n.signum()
    } else {
        q
    }
}

/// Converts a net amount of minor units of `from` into minor units of `to` at `rate` (major
/// units of `to` per major unit of `from`), rounded half to even. `None` on overflow.
#[must_use]
pub fn convert(net_minor: i64, from: Currency, to: Currency, rate: &Rate) -> Option<i128> {
    if from == to {
        return Some(i128::from(net_minor));
    }
    let (mantissa, scale) = rate.parts();
    let product = i128::from(net_minor).checked_mul(mantissa)?;
    // value = product x 10^(to_exp - from_exp - scale)
    let shift =
        i32::from(to.exponent()) - i32::from(from.exponent()) - i32::try_from(scale).ok()?;
    if shift >= 0 {
        product.checked_mul(10_i128.checked_pow(shift.unsigned_abs())?)
    } else {
        Some(div_round_half_even(
            product,
            10_i128.checked_pow(shift.unsigned_abs())?,
        ))
    }
}

/// One site's figures, as ranking needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFigures {
    /// The site.
    pub site_id: SiteId,
    /// Shown on screens.
    pub display_name: String,
    /// Its totals per currency (absent currencies: nothing sold).
    pub totals: BTreeMap<Currency, CurrencyTotals>,
}

/// One line of the ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedEntry {
    /// 1 for the highest figure; equal figures share a rank.
    pub rank: u32,
    /// The site.
    pub site_id: SiteId,
    /// Shown on screens.
    pub display_name: String,
    /// Net in minor units of the reporting currency, over the currencies that have a rate.
    pub net_reporting_minor: i64,
    /// Sales over every currency.
    pub sale_count: u64,
    /// Refunds over every currency.
    pub refund_count: u64,
    /// Currencies with sales but no rate: left out of `net_reporting_minor`.
    pub unconverted_currencies: Vec<Currency>,
}

/// The ranking of every site, and the national net in the reporting currency.
///
/// # Errors
/// When a converted figure does not fit an `i64`.
pub fn rank(
    sites: Vec<SiteFigures>,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> Result<(Vec<RankedEntry>, i64), ConversionOverflow> {
    let mut national: i128 = 0;
    let mut entries = Vec::with_capacity(sites.len());
    for site in sites {
        let overflow = |currency: &Currency| ConversionOverflow {
            site: site.site_id.to_string(),
            currency: currency.code().to_owned(),
        };
        let mut net: i128 = 0;
        let mut unconverted = Vec::new();
        let (mut sale_count, mut refund_count) = (0u64, 0u64);
        for (currency, t) in &site.totals {
            sale_count = sale_count.saturating_add(t.sale_count);
            refund_count = refund_count.saturating_add(t.refund_count);
            let converted = if *currency == reporting {
                Some(i128::from(t.net_minor()))
            } else if let Some(rate) = rates.get(currency) {
                convert(t.net_minor(), *currency, reporting, rate)
            } else {
                unconverted.push(*currency);
                continue;
            };
            net = converted
                .and_then(|c| net.checked_add(c))
                .ok_or_else(|| overflow(currency))?;
        }
        national = national
            .checked_add(net)
            .ok_or_else(|| ConversionOverflow {
                site: String::new(),
                currency: reporting.code().to_owned(),
            })?;
        let net_reporting_minor = i64::try_from(net).map_err(|_| overflow(&reporting))?;
        entries.push(RankedEntry {
            rank: 0,
            site_id: site.site_id,
            display_name: site.display_name,
            net_reporting_minor,
            sale_count,
            refund_count,
            unconverted_currencies: unconverted,
        });
    }
    entries.sort_by(|a, b| {
        b.net_reporting_minor
            .cmp(&a.net_reporting_minor)
            .then_with(|| a.site_id.cmp(&b.site_id))
    });
    let mut previous: Option<(i64, u32)> = None;
    for (i, e) in entries.iter_mut().enumerate() {
        let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
        e.rank = match previous {
            Some((net, rank)) if net == e.net_reporting_minor => rank,
            _ => position,
        };
        previous = Some((e.net_reporting_minor, e.rank));
    }
    let national = i64::try_from(national).map_err(|_| ConversionOverflow {
        site: String::new(),
        currency: reporting.code().to_owned(),
    })?;
    Ok((entries, national))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(c: &str) -> Currency {
        Currency::parse(c).expect("currency")
    }

    fn rate(r: &str) -> Rate {
        Rate::parse(r).expect("rate")
    }

    fn net(n: i64) -> CurrencyTotals {
        CurrencyTotals {
            sale_count: 1,
            gross_minor: n,
            refund_count: 0,
            refunded_minor: 0,
        }
    }

    fn site(id: &str, totals: &[(&str, i64)]) -> SiteFigures {
        SiteFigures {
            site_id: SiteId::parse(id).expect("site"),
            display_name: id.to_uppercase(),
            totals: totals.iter().map(|(c, n)| (cur(c), net(*n))).collect(),
        }
    }

    #[test]
    fn converts_across_exponents() {
        // 12.34 USD at 15850.25 IDR/USD = 195,592.085 IDR = 19,559,208.5 IDR minor -> even: 208.
        assert_eq!(
            convert(1_234, cur("USD"), cur("IDR"), &rate("15850.25")),
            Some(19_559_208)
        );
        // 1,000 JPY (exponent 0) at 105.75 IDR/JPY = 105,750 IDR = 10,575,000 IDR minor.
        assert_eq!(
            convert(1_000, cur("JPY"), cur("IDR"), &rate("105.75")),
            Some(10_575_000)
        );
        // 1.234 KWD (exponent 3) into JPY (0) at 490.5: 605.277 JPY -> 605.
        assert_eq!(
            convert(1_234, cur("KWD"), cur("JPY"), &rate("490.5")),
            Some(605)
        );
        // 1 JPY into KWD (3) at 0.00204: 0.00204 KWD = 2.04 KWD minor -> 2.
        assert_eq!(
            convert(1, cur("JPY"), cur("KWD"), &rate("0.00204")),
            Some(2)
        );
        assert_eq!(
            convert(77, cur("IDR"), cur("IDR"), &rate("3")),
            Some(77),
            "same currency is 1"
        );
    }

    #[test]
    fn rounds_half_to_even_once() {
        // 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4 (IDR minor from USD cents at rate 0.5 x 100).
        for (cents, want) in [(1, 0), (3, 2), (5, 2), (7, 4), (9, 4)] {
            assert_eq!(
                convert(cents, cur("USD"), cur("IDR"), &rate("0.5")),
                Some(want),
                "{cents}"
            );
        }
        assert_eq!(div_round_half_even(-5, 2), -2);
        assert_eq!(div_round_half_even(-7, 2), -4);
        assert_eq!(div_round_half_even(-6, 4), -2);
        assert_eq!(div_round_half_even(6, 4), 2);
        assert_eq!(div_round_half_even(5, 4), 1);
    }

    #[test]
    fn ties_share_a_rank_and_the_next_skips() {
        let sites = vec![
            site("d", &[("IDR", 100)]),
            site("b", &[("IDR", 300)]),
            site("c", &[("IDR", 300)]),
            site("a", &[("IDR", 50)]),
            site("e", &[]),
        ];
        let (entries, national) = rank(sites, &BTreeMap::new(), cur("IDR")).expect("ranks");
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.rank, e.site_id.as_str(), e.net_reporting_minor))
            .collect();
        assert_eq!(
            got,
            [
                (1, "b", 300),
                (1, "c", 300),
                (3, "d", 100),
                (4, "a", 50),
                (5, "e", 0)
            ]
        );
        assert_eq!(national, 750);
    }

    #[test]
    fn missing_rates_are_listed_not_guessed() {
        let rates = BTreeMap::from([(cur("USD"), rate("15000"))]);
        let sites = vec![site(
            "a",
            &[("IDR", 100), ("USD", 1), ("SGD", 5), ("MYR", 7)],
        )];
        let (entries, national) = rank(sites, &rates, cur("IDR")).expect("ranks");
        assert_eq!(entries[0].net_reporting_minor, 100 + 15_000);
        assert_eq!(
            entries[0].unconverted_currencies,
            vec![cur("MYR"), cur("SGD")]
        );
        assert_eq!(entries[0].sale_count, 4);
        assert_eq!(national, 15_100);
    }

    #[test]
    fn large_totals_do_not_overflow() {
        // Nine quintillion rupiah minor units and a billion dollars at a 12-decimal rate.
        let rates = BTreeMap::from([(cur("USD"), rate("15850.123456789012"))]);
        let sites = vec![
            site("a", &[("IDR", 9_000_000_000_000_000_000)]),
            site("b", &[("USD", 100_000_000_000)]),
        ];
        let (entries, national) = rank(sites, &rates, cur("IDR")).expect("ranks");
        assert_eq!(entries[0].net_reporting_minor, 9_000_000_000_000_000_000);
        // 1e11 cents = 1e9 USD x 15850.123456789012 = 15,850,123,456,789.012 IDR -> minor 1,585,012,345,678,901.2 -> ...901
        assert_eq!(entries[1].net_reporting_minor, 1_585_012_345_678_901);
        assert_eq!(national, 9_001_585_012_345_678_901);
        // Past i64 is an error, not a wrapped figure.
        let sites = vec![site("a", &[("IDR", i64::MAX)]), site("b", &[("IDR", 1)])];
        assert!(rank(sites, &BTreeMap::new(), cur("IDR")).is_err());
        // The widest rate times the largest amount still converts exactly in i128 (by the rate's
        // precision bounds); only the final figure is out of range.
        let huge = rate("123456789012345678");
        assert!(
            convert(i64::MAX, cur("USD"), cur("IDR"), &huge)
                .is_some_and(|v| v > i128::from(i64::MAX))
        );
        let rates = BTreeMap::from([(cur("USD"), huge)]);
        let err =
            rank(vec![site("a", &[("USD", i64::MAX)])], &rates, cur("IDR")).expect_err("overflow");
        assert_eq!((err.site.as_str(), err.currency.as_str()), ("a", "IDR"));
    }
}
