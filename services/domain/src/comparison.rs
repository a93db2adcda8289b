//! Comparing an event with a baseline event ("+23% on Harbolnas 2025 at the same hour").
//!
//! While the event is scheduled or live, the baseline figure is the baseline's net over the same
//! elapsed time since its own start, from its hourly totals: every hour that ended by then in
//! full, plus the hour in progress scaled by the fraction of it elapsed, rounded half to even
//! to the minor unit. Once the event's window has ended, it is the baseline's whole net. Both
//! figures are in this event's reporting currency: the baseline's per-(site, currency) nets are
//! converted with the baseline's own rates into its reporting currency (half to even, once per
//! site and currency) and, when the two reporting currencies differ, each site's figure with this
//! event's rate for the baseline's reporting currency. Growth is left to clients: two integers.

use std::collections::BTreeMap;

use crate::ranking::{convert, div_round_half_even};
use crate::{Currency, Rate, SiteId, UnixNanos};

/// Nanoseconds in an hour.
pub const HOUR_NS: i128 = 3_600_000_000_000;

/// One hourly net of the baseline: site, currency, start of the (UTC) hour, net minor units.
pub type HourlyNet = (SiteId, Currency, UnixNanos, i128);

/// The baseline's net per site and currency up to `cutoff` (an instant of the baseline's own
/// time line), or of every hour when `cutoff` is `None`. `None` on overflow.
#[must_use]
pub fn nets_until(
    hourly: &[HourlyNet],
    cutoff: Option<UnixNanos>,
) -> Option<BTreeMap<SiteId, BTreeMap<Currency, i128>>> {
    let mut nets: BTreeMap<SiteId, BTreeMap<Currency, i128>> = BTreeMap::new();
    for (site, currency, hour, net) in hourly {
        let counted = match cutoff {
            None => *net,
            Some(cutoff) => {
                let into_hour = i128::from(cutoff.0) - i128::from(hour.0);
                if into_hour <= 0 {
                    continue;
                } else if into_hour >= HOUR_NS {
                    *net
                } else {
                    div_round_half_even(net.checked_mul(into_hour)?, HOUR_NS)
                }
            }
        };
        let slot = nets
            .entry(site.clone())
            .or_default()
            .entry(*currency)
            .or_default();
        *slot = slot.checked_add(counted)?;
    }
    Some(nets)
}

/// Where the baseline is cut: the same elapsed time since its start as `now` is since the
/// event's start (none elapsed before the event starts); `None` (the whole baseline) once the
/// event's window has ended.
#[must_use]
pub fn cutoff(
    event_starts: UnixNanos,
    event_ends: UnixNanos,
    baseline_starts: UnixNanos,
    now: UnixNanos,
) -> Option<UnixNanos> {
    if now >= event_ends {
        return None;
    }
    let elapsed = now.0.saturating_sub(event_starts.0).max(0);
    Some(UnixNanos(baseline_starts.0.saturating_add(elapsed)))
}

/// The baseline's figures in this event's reporting currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Each site that took part in the baseline, with its figure.
    pub per_site: BTreeMap<SiteId, i128>,
    /// The sum over the sites.
    pub national: i128,
    /// Currencies left out for want of a rate (of the baseline, or this event's rate for the
    /// baseline's reporting currency; then the comparison is empty).
    pub unconverted: Vec<Currency>,
}

/// Converts the baseline's nets.
///
/// # Errors
/// The currencies that keep the comparison from being made: this event has no rate for the
/// baseline's reporting currency, or a figure overflows.
pub fn convert_baseline(
    nets: &BTreeMap<SiteId, BTreeMap<Currency, i128>>,
    baseline_rates: &BTreeMap<Currency, Rate>,
    baseline_reporting: Currency,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> Result<Baseline, Vec<Currency>> {
    let bridge = if baseline_reporting == reporting {
        None
    } else {
        Some(
            rates
                .get(&baseline_reporting)
                .ok_or_else(|| vec![baseline_reporting])?,
        )
    };
    let mut out = Baseline::default();
    for (site, by_currency) in nets {
        let mut site_total: i128 = 0;
        for (currency, net) in by_currency {
            let value = if *currency == baseline_reporting {
                Some(*net)
            } else if let Some(rate) = baseline_rates.get(currency) {
                convert(*net, *currency, baseline_reporting, rate)
            } else {
                if !out.unconverted.contains(currency) {
                    out.unconverted.push(*currency);
                }
                continue;
            };
            site_total = value
                .and_then(|v| site_total.checked_add(v))
                .ok_or_else(|| vec![*currency])?;
        }
        let in_reporting = match bridge {
            None => site_total,
            Some(rate) => convert(site_total, baseline_reporting, reporting, rate)
                .ok_or_else(|| vec![baseline_reporting])?,
        };
        out.national = out
            .national
            .checked_add(in_reporting)
            .ok_or_else(|| vec![reporting])?;
        out.per_site.insert(site.clone(), in_reporting);
    }
    out.unconverted.sort();
    Ok(out)
}

/// What a comparison needs of the baseline event: the event, its hourly nets and its rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineData {
    /// The baseline event.
    pub event: crate::Event,
    /// Its hourly nets, every site.
    pub hourly: Vec<HourlyNet>,
    /// Its exchange rates.
    pub rates: BTreeMap<Currency, Rate>,
}

/// Compares `event` (its rates `rates`, its reporting currency) at `now` with the baseline:
/// the baseline cut at the same elapsed time ([`cutoff`]), summed ([`nets_until`]) and
/// converted ([`convert_baseline`]). The one way every view's comparison is computed.
///
/// # Errors
/// The currencies that keep the comparison from being made (see [`convert_baseline`]; a
/// figure that overflows names the baseline's reporting currency).
pub fn compare(
    event: &crate::Event,
    rates: &BTreeMap<Currency, Rate>,
    baseline: &BaselineData,
    now: UnixNanos,
) -> Result<Baseline, Vec<Currency>> {
    let cut = cutoff(
        event.starts_at,
        event.ends_at,
        baseline.event.starts_at,
        now,
    );
    let nets =
        nets_until(&baseline.hourly, cut).ok_or_else(|| vec![baseline.event.reporting_currency])?;
    convert_baseline(
        &nets,
        &baseline.rates,
        baseline.event.reporting_currency,
        rates,
        event.reporting_currency,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).expect("site")
    }

    fn cur(c: &str) -> Currency {
        Currency::parse(c).expect("currency")
    }

    #[test]
    fn full_hours_and_a_pro_rata_hour() {
        let a = site("a");
        let hourly = vec![
            (a.clone(), cur("IDR"), UnixNanos(0), 1_000),
            (a.clone(), cur("IDR"), UnixNanos(HOUR), 3_600),
            (a.clone(), cur("IDR"), UnixNanos(2 * HOUR), 5_000),
        ];
        let at = |t: i64| nets_until(&hourly, Some(UnixNanos(t))).expect("fits")[&a][&cur("IDR")];
        assert_eq!(
            at(HOUR),
            1_000,
            "the first hour in full, nothing of the second"
        );
        assert_eq!(
            at(HOUR + HOUR / 4),
            1_000 + 900,
            "a quarter of the second hour"
        );
        assert_eq!(at(HOUR + HOUR / 3), 1_000 + 1_200);
        assert_eq!(at(3 * HOUR + 1), 9_600);
        assert!(
            nets_until(&hourly, Some(UnixNanos(0)))
                .expect("fits")
                .is_empty()
        );
        assert_eq!(
            nets_until(&hourly, None).expect("fits")[&a][&cur("IDR")],
            9_600,
            "the whole baseline"
        );
        // Half to even on the minor unit: 1 unit over half an hour is 0.5 -> 0; 3 -> 1.5 -> 2.
        let odd = vec![
            (a.clone(), cur("IDR"), UnixNanos(0), 1),
            (site("b"), cur("IDR"), UnixNanos(0), 3),
        ];
        let half = nets_until(&odd, Some(UnixNanos(HOUR / 2))).expect("fits");
        assert_eq!(
            (half[&a][&cur("IDR")], half[&site("b")][&cur("IDR")]),
            (0, 2)
        );
    }

    #[test]
    fn the_same_elapsed_time_since_each_start() {
        let (start, end, base) = (
            UnixNanos(100 * HOUR),
            UnixNanos(172 * HOUR),
            UnixNanos(7 * HOUR),
        );
        assert_eq!(
            cutoff(start, end, base, UnixNanos(90 * HOUR)),
            Some(base),
            "not started"
        );
        assert_eq!(
            cutoff(start, end, base, UnixNanos(102 * HOUR + 5)),
            Some(UnixNanos(9 * HOUR + 5))
        );
        assert_eq!(
            cutoff(start, end, base, end),
            None,
            "ended: the whole baseline"
        );
    }

    #[test]
    fn converted_with_the_baselines_rates_then_into_this_events_currency() {
        let mut nets = BTreeMap::new();
        nets.insert(
            site("a"),
            BTreeMap::from([
                (cur("USD"), 1_000),
                (cur("IDR"), 1_585_025),
                (cur("EUR"), 5),
            ]),
        );
        nets.insert(site("b"), BTreeMap::from([(cur("USD"), 333)]));
        let baseline_rates = BTreeMap::from([(cur("IDR"), Rate::parse("0.0000631").expect("r"))]);
        let rates = BTreeMap::from([(cur("USD"), Rate::parse("15850.25").expect("r"))]);
        let got = convert_baseline(&nets, &baseline_rates, cur("USD"), &rates, cur("IDR"))
            .expect("comparable");
        // a: 10.00 USD + 15,850.25 IDR x 0.0000631 = 1.00016... USD -> 100 cents (half-even);
        // 1,100 cents x 15850.25 = 174,352.75 IDR -> 17,435,275 minor. b: 3.33 USD x 15850.25.
        assert_eq!(got.per_site[&site("a")], 17_435_275);
        assert_eq!(got.per_site[&site("b")], 5_278_133);
        assert_eq!(got.national, 17_435_275 + 5_278_133);
        assert_eq!(got.unconverted, [cur("EUR")]);
        let none = convert_baseline(
            &nets,
            &baseline_rates,
            cur("USD"),
            &BTreeMap::new(),
            cur("IDR"),
        );
        assert_eq!(
            none,
            Err(vec![cur("USD")]),
            "no rate for the baseline's currency"
        );
    }
}
