//! Conversion into the reporting currency and the national ranking.
//!
//! A site's figure is the sum over its currencies of `net_minor x rate x 10^(reporting exponent -
//! currency exponent)`, computed exactly in integers and rounded half to even once per (site,
//! currency) total. Sites are ranked by that figure, highest first; equal figures share a rank
//! and the next rank skips (1, 2, 2, 4); among equals, by site id. A site without any
//! transaction yet has no rank (0): it is listed after every ranked site, by site id, so a
//! leader is never followed by a row of sites "tied" at nothing.
//!
//! Ranking never fails. A site whose figure does not fit the contract's `int64` (a participant
//! can push that much, or an organizer can set a rate that makes it so) is marked out of range:
//! it ranks after every site with a figure and is left out of the national figure, and every
//! other site stays live.

use std::collections::BTreeMap;

use crate::totals::CurrencyTotals;
use crate::{Currency, Rate, SiteId};

/// `n / d` rounded half to even (`d > 0`).
#[must_use]
pub fn div_round_half_even(n: i128, d: i128) -> i128 {
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
pub fn convert(net_minor: i128, from: Currency, to: Currency, rate: &Rate) -> Option<i128> {
    if from == to {
        return Some(net_minor);
    }
    let (mantissa, scale) = rate.parts();
    let product = net_minor.checked_mul(mantissa)?;
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
    /// Held by the organizers: counted in the national figure, left out of the ranking.
    pub held: bool,
}

/// One line of the ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedEntry {
    /// 1 for the highest figure; equal figures share a rank; 0 for a site without any
    /// transaction (listed after the ranked ones).
    pub rank: u32,
    /// The site.
    pub site_id: SiteId,
    /// Shown on screens.
    pub display_name: String,
    /// Net in minor units of the reporting currency, over the currencies that have a rate; 0
    /// when the site is [out of range](Self::out_of_range).
    pub net_reporting_minor: i64,
    /// Sales over every currency.
    pub sale_count: u64,
    /// Refunds over every currency.
    pub refund_count: u64,
    /// Currencies with sales but no rate: left out of `net_reporting_minor`.
    pub unconverted_currencies: Vec<Currency>,
    /// Not empty when the site's net does not fit an `i64`: the currencies whose figures put it
    /// there. Such a site ranks after every site with a figure and is left out of the national
    /// figure.
    pub out_of_range: Vec<Currency>,
}

/// The ranking of every site and the national net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranking {
    /// Every site but the held ones, ranked.
    pub entries: Vec<RankedEntry>,
    /// The held sites, by id, unranked (rank 0): their figures are in the national one (unless
    /// out of range), and their unconverted and out-of-range currencies count as any site's.
    pub held: Vec<RankedEntry>,
    /// Sum of the nets of the sites that are not out of range, in minor units of the reporting
    /// currency. Wider than the contract's `int64`: whoever shows it checks that it fits.
    pub national_net_reporting_minor: i128,
}

/// A site's net in the reporting currency: `Ok(net, unconverted)`, or `Err(currencies)` naming
/// what puts it out of the `i64` range.
fn site_net(
    totals: &BTreeMap<Currency, CurrencyTotals>,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> (Result<i64, Vec<Currency>>, Vec<Currency>) {
    let mut unconverted = Vec::new();
    let mut converted = Vec::new();
    for (currency, t) in totals {
        let value = if *currency == reporting {
            Some(t.net_minor())
        } else if let Some(rate) = rates.get(currency) {
            convert(t.net_minor(), *currency, reporting, rate)
        } else {
            unconverted.push(*currency);
            continue;
        };
        converted.push((*currency, value));
    }
    let sum = converted
        .iter()
        .try_fold(0_i128, |acc, (_, v)| v.and_then(|v| acc.checked_add(v)));
    if let Some(net) = sum.and_then(|s| i64::try_from(s).ok()) {
        return (Ok(net), unconverted);
    }
    // Name the currencies that are out of range on their own; if none is, their sum is.
    let alone: Vec<Currency> = converted
        .iter()
        .filter(|(_, v)| v.is_none_or(|v| i64::try_from(v).is_err()))
        .map(|(c, _)| *c)
        .collect();
    let culprits = if alone.is_empty() {
        converted.iter().map(|(c, _)| *c).collect()
    } else {
        alone
    };
    (Err(culprits), unconverted)
}

/// The ranking of every site but the held ones, and the national net in the reporting
/// currency (of every site, the held ones included).
#[must_use]
pub fn rank(
    sites: Vec<SiteFigures>,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> Ranking {
    let mut national: i128 = 0;
    let mut entries = Vec::with_capacity(sites.len());
    let mut held = Vec::new();
    for site in sites {
        let (sale_count, refund_count) = site.totals.values().fold((0u64, 0u64), |(s, r), t| {
            (
                s.saturating_add(t.sale_count),
                r.saturating_add(t.refund_count),
            )
        });
        let (net, unconverted_currencies) = site_net(&site.totals, rates, reporting);
        let (net_reporting_minor, out_of_range) = match net {
            Ok(net) => {
                // At most 2^32 sites of at most 2^63 each: the sum fits an i128.
                national += i128::from(net);
                (net, Vec::new())
            }
            Err(currencies) => (0, currencies),
        };
        let entry = RankedEntry {
            rank: 0,
            site_id: site.site_id,
            display_name: site.display_name,
            net_reporting_minor,
            sale_count,
            refund_count,
            unconverted_currencies,
            out_of_range,
        };
        if site.held {
            // In the national figure (above), not ranked: the sites after it move up.
            held.push(entry);
        } else {
            entries.push(entry);
        }
    }
    order_and_rank(
        &mut entries,
        |e| {
            if e.sale_count == 0 && e.refund_count == 0 {
                Standing::Nothing
            } else if e.out_of_range.is_empty() {
                Standing::Figure(e.net_reporting_minor)
            } else {
                Standing::OutOfRange
            }
        },
        |a, b| a.site_id.cmp(&b.site_id),
        |e, rank| e.rank = rank,
    );
    held.sort_by(|a, b| a.site_id.cmp(&b.site_id));
    Ranking {
        entries,
        held,
        national_net_reporting_minor: national,
    }
}

/// Where an entry stands, in the order it is listed: by figure, then out of range, then with
/// nothing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// A figure to rank by.
    Figure(i64),
    /// Transactions whose figure does not fit an `i64`: ranked after every figure, each on its
    /// own position.
    OutOfRange,
    /// No transaction yet: listed last, without a rank (0).
    Nothing,
}

impl Standing {
    /// Sort key: the lower, the earlier.
    fn order(self) -> (u8, std::cmp::Reverse<i64>) {
        match self {
            Self::Figure(net) => (0, std::cmp::Reverse(net)),
            Self::OutOfRange => (1, std::cmp::Reverse(0)),
            Self::Nothing => (2, std::cmp::Reverse(0)),
        }
    }
}

/// Sorts by figure, highest first, then those out of range, then those with nothing, equals by
/// `tie`; then gives ranks: equal figures share one and the next skips (1, 2, 2, 4); those
/// with nothing get 0.
fn order_and_rank<T>(
    entries: &mut [T],
    standing: impl Fn(&T) -> Standing,
    tie: impl Fn(&T, &T) -> std::cmp::Ordering,
    set_rank: impl Fn(&mut T, u32),
) {
    entries.sort_by(|a, b| {
        standing(a)
            .order()
            .cmp(&standing(b).order())
            .then_with(|| tie(a, b))
    });
    let mut previous: Option<(Standing, u32)> = None;
    for (i, e) in entries.iter_mut().enumerate() {
        let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let now = standing(e);
        let rank = match (now, previous) {
            (Standing::Nothing, _) => 0,
            // Entries out of range have no figure to tie on: each takes its own position.
            (Standing::Figure(net), Some((Standing::Figure(before), rank))) if net == before => {
                rank
            }
            _ => position,
        };
        set_rank(e, rank);
        previous = Some((now, rank));
    }
}

/// One key of a breakdown (a brand, a category, an origin, or `""` for transactions without
/// the field), as ranking needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFigures {
    /// The key.
    pub key: String,
    /// Sites with at least one transaction in the key.
    pub site_count: u32,
    /// Its totals per currency.
    pub totals: BTreeMap<Currency, CurrencyTotals>,
}

/// One line of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedKey {
    /// 1 for the highest figure; equal figures share a rank.
    pub rank: u32,
    /// The key.
    pub key: String,
    /// Net in minor units of the reporting currency (half-even once per (key, currency)); 0
    /// when out of range.
    pub net_reporting_minor: i64,
    /// Sales over every currency.
    pub sale_count: u64,
    /// Refunds over every currency.
    pub refund_count: u64,
    /// Sites with at least one transaction in the key.
    pub site_count: u32,
    /// Currencies with sales but no rate: left out of `net_reporting_minor`.
    pub unconverted_currencies: Vec<Currency>,
    /// Not empty when the key's net does not fit an `i64`: it ranks last and is left out of
    /// the total.
    pub out_of_range: Vec<Currency>,
}

/// A breakdown, ranked: the rules of the site ranking, keys in place of sites.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRanking {
    /// Every key, ranked (ties by key).
    pub entries: Vec<RankedKey>,
    /// Sum of the entries' nets (those in range), in minor units of the reporting currency.
    pub total_net_reporting_minor: i128,
}

impl KeyRanking {
    /// Currencies some key sold in that have no exchange rate.
    #[must_use]
    pub fn unconverted_currencies(&self) -> Vec<Currency> {
        let set: std::collections::BTreeSet<Currency> = self
            .entries
            .iter()
            .flat_map(|e| e.unconverted_currencies.iter().copied())
            .collect();
        set.into_iter().collect()
    }
}

/// Ranks the keys of a breakdown by their net in the reporting currency.
#[must_use]
pub fn rank_keys(
    keys: Vec<KeyFigures>,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> KeyRanking {
    let mut total: i128 = 0;
    let mut entries: Vec<RankedKey> = keys
        .into_iter()
        .map(|k| {
            let (sale_count, refund_count) = k.totals.values().fold((0u64, 0u64), |(s, r), t| {
                (
                    s.saturating_add(t.sale_count),
                    r.saturating_add(t.refund_count),
                )
            });
            let (net, unconverted_currencies) = site_net(&k.totals, rates, reporting);
            let (net_reporting_minor, out_of_range) = match net {
                Ok(net) => {
                    total += i128::from(net);
                    (net, Vec::new())
                }
                Err(currencies) => (0, currencies),
            };
            RankedKey {
                rank: 0,
                key: k.key,
                net_reporting_minor,
                sale_count,
                refund_count,
                site_count: k.site_count,
                unconverted_currencies,
                out_of_range,
            }
        })
        .collect();
    order_and_rank(
        &mut entries,
        |e| {
            if e.out_of_range.is_empty() {
                Standing::Figure(e.net_reporting_minor)
            } else {
                Standing::OutOfRange
            }
        },
        |a, b| a.key.cmp(&b.key),
        |e, rank| e.rank = rank,
    );
    KeyRanking {
        entries,
        total_net_reporting_minor: total,
    }
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
            gross_minor: i128::from(n),
            refund_count: 0,
            refunded_minor: 0,
        }
    }

    fn site(id: &str, totals: &[(&str, i64)]) -> SiteFigures {
        SiteFigures {
            site_id: SiteId::parse(id).expect("site"),
            display_name: id.to_uppercase(),
            totals: totals.iter().map(|(c, n)| (cur(c), net(*n))).collect(),
            held: false,
        }
    }

    #[test]
    fn a_held_site_counts_in_the_national_figure_and_leaves_the_ranking() {
        let idr = cur("IDR");
        let mut held = site("b", &[("IDR", 500)]);
        held.held = true;
        let sites = vec![site("a", &[("IDR", 900)]), held, site("c", &[("IDR", 100)])];
        let r = rank(sites, &BTreeMap::new(), idr);
        assert_eq!(r.national_net_reporting_minor, 1_500);
        let ranks: Vec<(&str, u32)> = r
            .entries
            .iter()
            .map(|e| (e.site_id.as_str(), e.rank))
            .collect();
        // c moves up to second: ranks are over the ranked sites.
        assert_eq!(ranks, [("a", 1), ("c", 2)]);
        assert_eq!(r.held.len(), 1);
        assert_eq!(r.held[0].site_id.as_str(), "b");
        assert_eq!(r.held[0].net_reporting_minor, 500);
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
        let Ranking {
            entries,
            national_net_reporting_minor: national,
            ..
        } = rank(sites, &BTreeMap::new(), cur("IDR"));
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
                (0, "e", 0)
            ]
        );
        assert_eq!(national, 750);
    }

    #[test]
    fn sites_without_a_transaction_have_no_rank_and_come_last() {
        let mut refunded = site("r", &[("IDR", 0)]);
        if let Some(t) = refunded.totals.get_mut(&cur("IDR")) {
            // A sale refunded in full: a net of 0, but a site that sold.
            *t = CurrencyTotals {
                sale_count: 1,
                gross_minor: 500,
                refund_count: 1,
                refunded_minor: 500,
            };
        }
        let sites = vec![
            site("z", &[]),
            site("a", &[]),
            site("big", &[("IDR", i64::MAX), ("USD", 1)]),
            refunded,
            site("m", &[("IDR", 10)]),
        ];
        let rates = BTreeMap::from([(cur("USD"), rate("15000"))]);
        let got: Vec<_> = rank(sites, &rates, cur("IDR"))
            .entries
            .iter()
            .map(|e| (e.rank, e.site_id.as_str().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "m".to_owned()),
                (2, "r".to_owned()),
                (3, "big".to_owned()),
                (0, "a".to_owned()),
                (0, "z".to_owned()),
            ],
            "figures, then out of range, then the sites with nothing, unranked, by id"
        );
    }

    #[test]
    fn missing_rates_are_listed_not_guessed() {
        let rates = BTreeMap::from([(cur("USD"), rate("15000"))]);
        let sites = vec![site(
            "a",
            &[("IDR", 100), ("USD", 1), ("SGD", 5), ("MYR", 7)],
        )];
        let Ranking {
            entries,
            national_net_reporting_minor: national,
            ..
        } = rank(sites, &rates, cur("IDR"));
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
        let Ranking {
            entries,
            national_net_reporting_minor: national,
            ..
        } = rank(sites, &rates, cur("IDR"));
        assert_eq!(entries[0].net_reporting_minor, 9_000_000_000_000_000_000);
        // 1e11 cents = 1e9 USD x 15850.123456789012 = 15,850,123,456,789.012 IDR -> minor 1,585,012,345,678,901.2 -> ...901
        assert_eq!(entries[1].net_reporting_minor, 1_585_012_345_678_901);
        assert_eq!(national, 9_001_585_012_345_678_901);
        // One site past i64 is marked and left out; the others stay ranked and national.
        let sites = vec![
            site("a", &[("IDR", i64::MAX)]),
            site("b", &[("IDR", 1)]),
            site("c", &[("IDR", 2)]),
        ];
        let rates = BTreeMap::from([(cur("USD"), rate("2"))]);
        let mut sites = sites;
        sites[0].totals.insert(cur("USD"), net(1));
        let r = rank(sites, &rates, cur("IDR"));
        let got: Vec<_> = r
            .entries
            .iter()
            .map(|e| (e.rank, e.site_id.as_str(), e.net_reporting_minor))
            .collect();
        assert_eq!(got, [(1, "c", 2), (2, "b", 1), (3, "a", 0)]);
        assert_eq!(r.entries[2].out_of_range, vec![cur("IDR"), cur("USD")]);
        assert_eq!(r.national_net_reporting_minor, 3);
        // The widest rate times the largest amount still converts exactly in i128 (by the rate's
        // precision bounds); only the final figure is out of range, and named by its currency.
        let huge = rate("123456789012345678");
        assert!(
            convert(i128::from(i64::MAX), cur("USD"), cur("IDR"), &huge)
                .is_some_and(|v| v > i128::from(i64::MAX))
        );
        let rates = BTreeMap::from([(cur("USD"), huge)]);
        let r = rank(
            vec![
                site("a", &[("USD", i64::MAX), ("IDR", 5)]),
                site("b", &[("IDR", 7)]),
            ],
            &rates,
            cur("IDR"),
        );
        assert_eq!(r.entries[1].site_id.as_str(), "a");
        assert_eq!(r.entries[1].out_of_range, vec![cur("USD")]);
        assert_eq!(r.national_net_reporting_minor, 7);
        // A conversion past i128 itself is out of range too, not a panic.
        assert_eq!(
            convert(i128::MAX / 2, cur("USD"), cur("IDR"), &rate("4")),
            None
        );
    }

    #[test]
    fn out_of_range_sites_take_their_own_positions() {
        let sites = vec![
            site("x", &[("IDR", i64::MAX)]),
            site("y", &[("IDR", i64::MAX)]),
            // A sale of nothing: a figure of 0, still ahead of the sites out of range.
            site("z", &[("IDR", 0)]),
        ];
        let mut sites = sites;
        for s in &mut sites[..2] {
            s.totals.get_mut(&cur("IDR")).expect("IDR").gross_minor += 1;
        }
        let r = rank(sites, &BTreeMap::new(), cur("IDR"));
        let got: Vec<_> = r
            .entries
            .iter()
            .map(|e| (e.rank, e.site_id.as_str(), e.out_of_range.len()))
            .collect();
        assert_eq!(got, [(1, "z", 0), (2, "x", 1), (3, "y", 1)]);
        assert_eq!(r.national_net_reporting_minor, 0);
    }
    #[test]
    fn breakdown_keys_rank_like_sites() {
        let key = |k: &str, totals: &[(&str, i64)]| KeyFigures {
            key: k.to_owned(),
            site_count: 1,
            totals: totals.iter().map(|(c, n)| (cur(c), net(*n))).collect(),
        };
        let rates: BTreeMap<Currency, Rate> = [(cur("USD"), rate("15850.25"))].into();
        let r = rank_keys(
            vec![
                key("b", &[("IDR", 500)]),
                key("", &[("IDR", 700)]),
                key("a", &[("IDR", 500)]),
                // 12.34 USD -> 19,559,208.5 IDR minor -> 19,559,208 (half-even).
                key("c", &[("USD", 1_234), ("IDR", 2)]),
                key("d", &[("EUR", 9), ("IDR", 1)]),
                key("z", &[("IDR", 500)]),
            ],
            &rates,
            cur("IDR"),
        );
        let got: Vec<(u32, &str, i64)> = r
            .entries
            .iter()
            .map(|e| (e.rank, e.key.as_str(), e.net_reporting_minor))
            .collect();
        assert_eq!(
            got,
            [
                (1, "c", 19_559_210),
                (2, "", 700),
                (3, "a", 500),
                (3, "b", 500),
                (3, "z", 500),
                (6, "d", 1)
            ]
        );
        assert_eq!(r.entries[5].unconverted_currencies, [cur("EUR")]);
        assert_eq!(r.total_net_reporting_minor, 19_559_210 + 700 + 1_500 + 1);
        let wide = rank_keys(
            vec![
                key("x", &[("IDR", i64::MAX)]),
                key("y", &[("USD", i64::MAX)]),
            ],
            &rates,
            cur("IDR"),
        );
        assert_eq!(wide.entries[1].key, "y", "out of range ranks last");
        assert_eq!(wide.entries[1].out_of_range, [cur("USD")]);
        assert_eq!(wide.total_net_reporting_minor, i128::from(i64::MAX));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// The model: `net x rate x 10^(to_exp - from_exp)` as an exact fraction, rounded half to
    /// even by comparing twice the remainder with the divisor.
    fn model_convert(net: i128, from: Currency, to: Currency, rate: &Rate) -> Option<i128> {
        if from == to {
            return Some(net);
        }
        let (mantissa, scale) = rate.parts();
        let mut num = net.checked_mul(mantissa)?;
        let mut den: i128 = 10_i128.checked_pow(scale)?;
        let shift = i32::from(to.exponent()) - i32::from(from.exponent());
        if shift >= 0 {
            num = num.checked_mul(10_i128.checked_pow(shift.unsigned_abs())?)?;
        } else {
            den = den.checked_mul(10_i128.checked_pow(shift.unsigned_abs())?)?;
        }
        let (q, r) = (num.div_euclid(den), num.rem_euclid(den));
        Some(match (2 * r).cmp(&den) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
        })
    }

    fn currency() -> impl Strategy<Value = Currency> {
        prop_oneof![
            Just("IDR"),
            Just("USD"),
            Just("JPY"),
            Just("KWD"),
            Just("SGD")
        ]
        .prop_map(|c| Currency::parse(c).expect("currency"))
    }

    fn rate() -> impl Strategy<Value = Rate> {
        (1u64..=999_999_999_999, 0u32..=9).prop_filter_map("a valid rate", |(m, s)| {
            let text = if s == 0 {
                m.to_string()
            } else {
                let digits = format!("{m:0>width$}", width = s as usize + 1);
                let (int, frac) = digits.split_at(digits.len() - s as usize);
                format!("{int}.{frac}")
            };
            Rate::parse_bounded(&text).ok()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn conversion_matches_exact_rational_arithmetic(
            net in -(1_i128 << 70)..(1_i128 << 70),
            from in currency(),
            to in currency(),
            rate in rate(),
        ) {
            prop_assert_eq!(convert(net, from, to, &rate), model_convert(net, from, to, &rate));
        }

        /// Competition ranking: sorted by net (out-of-range last), a rank is one more than the
        /// number of sites strictly ahead; the national figure is the sum of the in-range nets.
        #[test]
        fn ranks_are_competition_ranks_and_national_adds_up(
            nets in proptest::collection::vec((0i64..50, any::<bool>()), 0..30),
        ) {
            let idr = Currency::parse("IDR").expect("IDR");
            let sites: Vec<SiteFigures> = nets
                .iter()
                .enumerate()
                .map(|(i, (net, huge))| {
                    let gross = if *huge { i128::from(i64::MAX) + 1 } else { i128::from(*net) };
                    SiteFigures {
                        site_id: SiteId::parse(&format!("s{i:02}")).expect("site"),
                        display_name: String::new(),
                        totals: BTreeMap::from([(idr, CurrencyTotals { sale_count: 1, gross_minor: gross, ..CurrencyTotals::default() })]),
                        held: false,
                    }
                })
                .collect();
            let ranking = rank(sites, &BTreeMap::new(), idr);
            let in_range: Vec<i64> = nets.iter().filter(|(_, huge)| !huge).map(|(n, _)| *n).collect();
            prop_assert_eq!(ranking.national_net_reporting_minor, in_range.iter().map(|n| i128::from(*n)).sum::<i128>());
            for (i, e) in ranking.entries.iter().enumerate() {
                if e.out_of_range.is_empty() {
                    let ahead = in_range.iter().filter(|n| **n > e.net_reporting_minor).count();
                    prop_assert_eq!(e.rank as usize, ahead + 1);
                } else {
                    prop_assert_eq!(e.rank as usize, i + 1);
                    prop_assert!(i >= in_range.len(), "out-of-range sites rank last");
                }
                if let Some(next) = ranking.entries.get(i + 1)
                    && next.out_of_range.is_empty() && e.out_of_range.is_empty()
                    && next.net_reporting_minor == e.net_reporting_minor
                {
                    prop_assert!(e.site_id < next.site_id, "ties by site id");
                }
            }
        }
    }
}
