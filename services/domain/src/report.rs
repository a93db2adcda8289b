//! The official report's figures that only the ledger holds (issue 29): one pass over an
//! event's ledger rows ([`Scan`]) recomputes its totals (checked against the stored ones, as
//! `saleboard verify` does), and keeps what no totals table has: the figures received before
//! the end (the provisional ranking at `ends_at`), refunds received after it, the national net
//! per minute (peak minute, milestones), accepted transactions per received second (peak
//! second) and the voids. Nothing here reads anything: the caller feeds the rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ranking::convert;
use crate::totals::{CurrencyTotals, TotalsBook, TotalsOverflow, add_row};
use crate::{Currency, Kind, Rate, SiteId, UnixNanos, ValidTransaction};

/// Per site and currency.
pub type SiteCurrencies = BTreeMap<SiteId, BTreeMap<Currency, CurrencyTotals>>;

/// One pass over an event's ledger rows.
#[derive(Debug)]
pub struct Scan {
    event_id: String,
    ends_at: UnixNanos,
    /// Sites out of every national figure (disabled): their rows are checked, not counted.
    excluded: BTreeSet<SiteId>,
    /// The last ledger position read (any event's): a scan kept goes on from there.
    pub read_through: u64,
    /// The first and last position of the event's rows, and their number.
    pub first_position: Option<u64>,
    /// The last position of the event's rows (0: none).
    pub last_position: u64,
    /// The event's rows read (voids included).
    pub rows: u64,
    /// Every row of the event folded into the headline figures (totals and hours) as the
    /// aggregator folds them (every site).
    pub book: TotalsBook,
    /// The event's rows up to [`Scan::breakdowns_through`] folded into breakdowns as the
    /// aggregator folds them (every site): the breakdown figures carry their own watermark.
    pub breakdowns: TotalsBook,
    /// The ledger position [`Scan::breakdowns`] holds the event's rows up to.
    pub breakdowns_through: u64,
    /// The event's rows read past [`Scan::breakdowns_through`], folded into the breakdowns
    /// once their watermark passes them (at most the aggregator's deferral, about a second).
    pending: Vec<(u64, SiteId, ValidTransaction)>,
    /// Rows received before `ends_at`, per site and currency (every site).
    pub at_end: SiteCurrencies,
    /// Refunds (and their voids) received at or after `ends_at`, per site and currency.
    pub late_refunds: SiteCurrencies,
    /// Voids per currency (every site): sales voided and refunds voided, as totals.
    pub voids: BTreeMap<Currency, CurrencyTotals>,
    /// National net per (minute of occurred_at, currency), counted sites only.
    minutes: BTreeMap<(i64, Currency), i128>,
    /// Accepted sales and refunds per second received, counted sites only.
    seconds: HashMap<i64, u64>,
}

/// Seconds in a minute.
const MINUTE: i64 = 60;

impl Scan {
    /// A scan of `event_id`'s rows, whose window ends at `ends_at`; the `excluded` sites'
    /// rows are checked but left out of the national figures (peaks, milestones).
    #[must_use]
    pub fn new(event_id: &str, ends_at: UnixNanos, excluded: BTreeSet<SiteId>) -> Self {
        Self {
            event_id: event_id.to_owned(),
            ends_at,
            excluded,
            read_through: 0,
            first_position: None,
            last_position: 0,
            rows: 0,
            book: TotalsBook::default(),
            breakdowns: TotalsBook::default(),
            breakdowns_through: 0,
            pending: Vec::new(),
            at_end: BTreeMap::new(),
            late_refunds: BTreeMap::new(),
            voids: BTreeMap::new(),
            minutes: BTreeMap::new(),
            seconds: HashMap::new(),
        }
    }

    /// Adds one ledger row; rows of other events are passed over.
    ///
    /// # Errors
    /// When a figure would overflow (or a void take a figure below zero): the ledger is not
    /// what the fold can hold, which the report states rather than hides.
    pub fn add(
        &mut self,
        position: u64,
        event_id: &str,
        site: &SiteId,
        received_at: UnixNanos,
        tx: &ValidTransaction,
    ) -> Result<(), TotalsOverflow> {
        self.read_through = self.read_through.max(position);
        if event_id != self.event_id {
            return Ok(());
        }
        let overflow = |what| TotalsOverflow {
            site: site.clone(),
            currency: tx.currency,
            what,
        };
        self.first_position.get_or_insert(position);
        self.last_position = position;
        self.rows += 1;
        self.book.apply_headline(event_id, site, tx)?;
        if position <= self.breakdowns_through {
            self.breakdowns.apply_breakdowns(event_id, site, tx)?;
        } else {
            self.pending.push((position, site.clone(), tx.clone()));
        }
        let kind = tx.kind();
        if received_at < self.ends_at {
            let t = self
                .at_end
                .entry(site.clone())
                .or_default()
                .entry(tx.currency)
                .or_default();
            add_row(t, kind, tx.amount_minor).map_err(overflow)?;
        } else if matches!(kind, Kind::Refund | Kind::VoidRefund) {
            let t = self
                .late_refunds
                .entry(site.clone())
                .or_default()
                .entry(tx.currency)
                .or_default();
            add_row(t, kind, tx.amount_minor).map_err(overflow)?;
        }
        if matches!(kind, Kind::VoidSale | Kind::VoidRefund) {
            let target = match kind {
                Kind::VoidSale => Kind::Sale,
                _ => Kind::Refund,
            };
            let t = self.voids.entry(tx.currency).or_default();
            add_row(t, target, tx.amount_minor).map_err(overflow)?;
        }
        if self.excluded.contains(site) {
            return Ok(());
        }
        let minute = tx.occurred_at.0.div_euclid(1_000_000_000 * MINUTE) * MINUTE;
        let net = self.minutes.entry((minute, tx.currency)).or_default();
        *net = net
            .checked_add(net_effect(kind, tx.amount_minor))
            .ok_or_else(|| overflow("national net per minute"))?;
        if matches!(kind, Kind::Sale | Kind::Refund) {
            *self
                .seconds
                .entry(received_at.0.div_euclid(1_000_000_000))
                .or_default() += 1;
        }
        Ok(())
    }

    /// Moves the breakdowns' watermark to `position` (never back): the rows read past the old
    /// one, up to `position`, are folded into [`Scan::breakdowns`]; rows read later up to it
    /// are folded as they are added.
    ///
    /// # Errors
    /// When a figure would overflow.
    pub fn breakdowns_to(&mut self, position: u64) -> Result<(), TotalsOverflow> {
        if position <= self.breakdowns_through {
            return Ok(());
        }
        self.breakdowns_through = position;
        let mut rest = Vec::new();
        for (at, site, tx) in std::mem::take(&mut self.pending) {
            if at <= position {
                self.breakdowns
                    .apply_breakdowns(&self.event_id, &site, &tx)?;
            } else {
                rest.push((at, site, tx));
            }
        }
        self.pending = rest;
        Ok(())
    }

    /// Whether this scan counts `event_id`'s rows as a new one with `ends_at` and `excluded`
    /// would: then it may go on from [`Scan::read_through`] instead of starting again.
    #[must_use]
    pub fn counts_as(
        &self,
        event_id: &str,
        ends_at: UnixNanos,
        excluded: &BTreeSet<SiteId>,
    ) -> bool {
        self.event_id == event_id && self.ends_at == ends_at && self.excluded == *excluded
    }

    /// The national net per minute (by occurred_at), in the reporting currency: each
    /// (minute, currency) net converted half to even once; a currency without a rate is left
    /// out, as every converted figure leaves it out (`None` only for a conversion that would
    /// overflow). In time order.
    #[must_use]
    pub fn minute_nets(
        &self,
        rates: &BTreeMap<Currency, Rate>,
        reporting: Currency,
    ) -> Vec<(UnixNanos, Option<i128>)> {
        let mut out: Vec<(UnixNanos, Option<i128>)> = Vec::new();
        for (&(minute, currency), &net) in &self.minutes {
            let at = UnixNanos(minute.saturating_mul(1_000_000_000));
            let converted = if currency != reporting && !rates.contains_key(&currency) {
                Some(0)
            } else {
                to_reporting(net, currency, rates, reporting)
            };
            match out.last_mut() {
                Some((last, sum)) if *last == at => {
                    *sum = sum.zip(converted).and_then(|(a, b)| a.checked_add(b));
                }
                _ => out.push((at, converted)),
            }
        }
        out
    }

    /// The second (received) with the most accepted sales and refunds, and their number; the
    /// earliest such second on a tie. `None` without a row.
    #[must_use]
    pub fn peak_second(&self) -> Option<(UnixNanos, u64)> {
        self.seconds
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(&s, &n)| (UnixNanos(s.saturating_mul(1_000_000_000)), n))
    }
}

/// What a row of `kind` does to a net.
#[must_use]
pub fn net_effect(kind: Kind, amount_minor: i64) -> i128 {
    let amount = i128::from(amount_minor);
    match kind {
        Kind::Sale | Kind::VoidRefund => amount,
        Kind::Refund | Kind::VoidSale => -amount,
    }
}

/// `amount` of `currency` in the reporting currency at `rates` (half to even); `None` without
/// a rate or on overflow.
#[must_use]
pub fn to_reporting(
    amount: i128,
    currency: Currency,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> Option<i128> {
    if currency == reporting {
        return Some(amount);
    }
    convert(amount, currency, reporting, rates.get(&currency)?)
}

/// The entry with the largest figure (the earliest on a tie); entries without a figure are
/// passed over.
#[must_use]
pub fn peak(series: &[(UnixNanos, Option<i128>)]) -> Option<(UnixNanos, i128)> {
    series
        .iter()
        .filter_map(|(at, v)| v.map(|v| (*at, v)))
        .fold(
            None,
            |best: Option<(UnixNanos, i128)>, (at, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((at, v)),
            },
        )
}

/// The times a running sum of `series` first reached each power of ten of major units
/// (`10^exponent` minor units each), the largest `keep` of them, smallest first. A minute
/// without a figure stops the count (no milestone is claimed past a figure unknown).
#[must_use]
pub fn milestones(
    series: &[(UnixNanos, Option<i128>)],
    exponent: u8,
    keep: usize,
) -> Vec<(i128, UnixNanos)> {
    let mut passed = Vec::new();
    let Some(mut next) = 10_i128.checked_pow(u32::from(exponent)) else {
        return passed;
    };
    let mut sum: i128 = 0;
    for (at, v) in series {
        let Some(v) = v else { break };
        let Some(s) = sum.checked_add(*v) else { break };
        sum = s;
        while sum >= next {
            passed.push((next, *at));
            match next.checked_mul(10) {
                Some(n) => next = n,
                None => return tail(passed, keep),
            }
        }
    }
    tail(passed, keep)
}

fn tail<T>(mut v: Vec<T>, keep: usize) -> Vec<T> {
    let cut = v.len().saturating_sub(keep);
    v.drain(..cut);
    v
}

/// Growth of `now` over `baseline` in percent, rounded half to even to two decimals, as
/// text ("21.40", "-3.05"); `None` when the baseline is not positive.
#[must_use]
pub fn growth_percent(now: i128, baseline: i128) -> Option<String> {
    if baseline <= 0 {
        return None;
    }
    // (now - baseline) / baseline x 10,000 hundredths of a percent.
    let diff = now.checked_sub(baseline)?;
    let scaled = diff.checked_mul(10_000)?;
    let q = crate::ranking::div_round_half_even(scaled, baseline);
    let sign = if q < 0 { "-" } else { "" };
    let q = q.unsigned_abs();
    Some(format!("{sign}{}.{:02}", q / 100, q % 100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::Nature;
    use crate::{StoreId, TransactionId};

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).expect("test data")
    }

    fn valid(
        id: &str,
        kind: Kind,
        amount: i64,
        currency: &str,
        occurred_s: i64,
    ) -> ValidTransaction {
        ValidTransaction {
            id: TransactionId::parse(id).expect("test data"),
            store_id: StoreId::default(),
            nature: Nature::from_parts(
                kind,
                (kind != Kind::Sale).then(|| TransactionId::parse("s1").expect("test data")),
            )
            .expect("test data"),
            currency: Currency::parse(currency).expect("test data"),
            amount_minor: amount,
            occurred_at: UnixNanos(occurred_s * 1_000_000_000),
            segments: crate::Segments::default(),
        }
    }

    fn tx(id: &str, kind: Kind, amount: i64, occurred_s: i64) -> ValidTransaction {
        valid(id, kind, amount, "IDR", occurred_s)
    }

    #[test]
    fn a_scan_counts_its_event_only_and_splits_at_the_end() {
        let ends = UnixNanos(1_000 * 1_000_000_000);
        let mut scan = Scan::new("e", ends, BTreeSet::new());
        let a = site("a");
        let s1 = tx("s1", Kind::Sale, 500, 100);
        let s2 = tx("s2", Kind::Sale, 300, 161);
        let r1 = tx("r1", Kind::Refund, 200, 170);
        scan.add(1, "e", &a, UnixNanos(101 * 1_000_000_000), &s1)
            .expect("test data");
        scan.add(2, "other", &a, UnixNanos(101 * 1_000_000_000), &s1)
            .expect("test data");
        scan.add(3, "e", &a, UnixNanos(161 * 1_000_000_000), &s2)
            .expect("test data");
        scan.add(4, "e", &a, UnixNanos(2_000 * 1_000_000_000), &r1)
            .expect("test data");
        assert_eq!(
            (scan.first_position, scan.last_position, scan.rows),
            (Some(1), 4, 3)
        );
        assert_eq!(scan.read_through, 4);
        assert!(scan.counts_as("e", ends, &BTreeSet::new()));
        assert!(!scan.counts_as("e", UnixNanos(0), &BTreeSet::new()));
        assert!(!scan.counts_as("e", ends, &BTreeSet::from([a.clone()])));
        assert!(!scan.counts_as("other", ends, &BTreeSet::new()));
        let idr = Currency::parse("IDR").expect("test data");
        let at_end = scan.at_end[&a][&idr];
        assert_eq!(
            (at_end.sale_count, at_end.gross_minor, at_end.refund_count),
            (2, 800, 0)
        );
        let late = scan.late_refunds[&a][&idr];
        assert_eq!((late.refund_count, late.refunded_minor), (1, 200));
        let minutes = scan.minute_nets(&BTreeMap::new(), idr);
        assert_eq!(
            minutes,
            vec![
                (UnixNanos(60 * 1_000_000_000), Some(500)),
                (UnixNanos(120 * 1_000_000_000), Some(100)),
            ]
        );
        assert_eq!(peak(&minutes), Some((UnixNanos(60 * 1_000_000_000), 500)));
        assert_eq!(
            scan.peak_second(),
            Some((UnixNanos(101 * 1_000_000_000), 1))
        );
    }

    #[test]
    fn breakdowns_hold_the_rows_up_to_their_own_watermark() {
        let mut scan = Scan::new("e", UnixNanos(i64::MAX), BTreeSet::new());
        let a = site("a");
        scan.breakdowns_to(1).expect("test data");
        scan.add(1, "e", &a, UnixNanos(0), &tx("s1", Kind::Sale, 500, 0))
            .expect("test data");
        scan.add(2, "other", &a, UnixNanos(0), &tx("o1", Kind::Sale, 7, 0))
            .expect("test data");
        scan.add(3, "e", &a, UnixNanos(0), &tx("s2", Kind::Sale, 300, 0))
            .expect("test data");
        let gross = |scan: &Scan| -> Vec<i128> {
            scan.breakdowns
                .segments()
                .values()
                .map(|f| f.totals.values().map(|t| t.gross_minor).sum())
                .collect()
        };
        // Row 3 is past the breakdowns' watermark: in the headline book, not yet here.
        assert_eq!(gross(&scan), vec![500; 3], "one key per dimension");
        assert_eq!(
            scan.book.totals().values().next().map(|t| t.gross_minor),
            Some(800)
        );
        // The watermark never goes back; moving it on folds what was read past it.
        scan.breakdowns_to(0).expect("test data");
        assert_eq!(scan.breakdowns_through, 1);
        scan.breakdowns_to(3).expect("test data");
        assert_eq!(gross(&scan), vec![800; 3]);
        scan.add(4, "e", &a, UnixNanos(0), &tx("s3", Kind::Sale, 1, 0))
            .expect("test data");
        assert_eq!(gross(&scan), vec![800; 3], "row 4 waits for the watermark");
        scan.breakdowns_to(4).expect("test data");
        assert_eq!(gross(&scan), vec![801; 3]);
    }

    #[test]
    fn voids_are_taken_away_and_counted_as_voids() {
        let mut scan = Scan::new("e", UnixNanos(i64::MAX), BTreeSet::new());
        let a = site("a");
        let s1 = tx("s1", Kind::Sale, 500, 100);
        scan.add(1, "e", &a, UnixNanos(0), &s1).expect("test data");
        let void = s1.voided().expect("test data");
        scan.add(2, "e", &a, UnixNanos(0), &void)
            .expect("test data");
        let idr = Currency::parse("IDR").expect("test data");
        assert_eq!(scan.at_end[&a][&idr], CurrencyTotals::default());
        assert_eq!(scan.voids[&idr].gross_minor, 500);
        assert_eq!(scan.voids[&idr].sale_count, 1);
        assert_eq!(
            scan.minute_nets(&BTreeMap::new(), idr),
            vec![(UnixNanos(60 * 1_000_000_000), Some(0))]
        );
        // A void is not an accepted transaction of its own.
        assert_eq!(scan.peak_second(), Some((UnixNanos(0), 1)));
    }

    #[test]
    fn excluded_sites_are_checked_but_not_counted_nationally() {
        let b = site("b");
        let mut scan = Scan::new("e", UnixNanos(i64::MAX), BTreeSet::from([b.clone()]));
        scan.add(1, "e", &b, UnixNanos(0), &tx("s1", Kind::Sale, 5, 0))
            .expect("test data");
        assert_eq!(scan.rows, 1);
        assert!(
            scan.minute_nets(&BTreeMap::new(), Currency::parse("IDR").expect("test data"))
                .is_empty()
        );
        assert_eq!(scan.peak_second(), None);
        assert_eq!(scan.book.totals().len(), 1);
    }

    #[test]
    fn a_currency_without_a_rate_is_left_out_of_a_minute() {
        let mut scan = Scan::new("e", UnixNanos(i64::MAX), BTreeSet::new());
        let usd = valid("u", Kind::Sale, 100, "USD", 0);
        scan.add(1, "e", &site("a"), UnixNanos(0), &usd)
            .expect("test data");
        let idr = Currency::parse("IDR").expect("test data");
        // Left out, as the national figure leaves it out.
        assert_eq!(
            scan.minute_nets(&BTreeMap::new(), idr),
            vec![(UnixNanos(0), Some(0))]
        );
        let rates = BTreeMap::from([(
            Currency::parse("USD").expect("test data"),
            "15000".parse().expect("test data"),
        )]);
        // 1.00 USD at 15,000 IDR per USD: Rp 15.000,00 (ISO 4217 gives IDR two minor digits).
        assert_eq!(
            scan.minute_nets(&rates, idr),
            vec![(UnixNanos(0), Some(1_500_000))]
        );
    }

    #[test]
    fn milestones_are_the_largest_powers_of_ten_passed() {
        let m = |s: i64| UnixNanos(s * 60 * 1_000_000_000);
        let series = vec![
            (m(0), Some(9)),
            (m(1), Some(2)),
            (m(2), Some(-5)),
            (m(3), Some(120)),
        ];
        // Exponent 0: 1 minor unit is the first milestone.
        assert_eq!(
            milestones(&series, 0, 6),
            vec![(1, m(0)), (10, m(1)), (100, m(3))]
        );
        assert_eq!(milestones(&series, 0, 2), vec![(10, m(1)), (100, m(3))]);
        // Two minor digits: 1.00 is 100 minor units.
        assert_eq!(milestones(&series, 2, 6), vec![(100, m(3))]);
        let unknown = vec![(m(0), Some(5)), (m(1), None), (m(2), Some(500))];
        assert_eq!(milestones(&unknown, 0, 6), vec![(1, m(0))]);
        assert!(milestones(&[], 0, 6).is_empty());
    }

    #[test]
    fn growth_is_rounded_half_to_even_in_hundredths_of_a_percent() {
        assert_eq!(growth_percent(1214, 1000).as_deref(), Some("21.40"));
        assert_eq!(growth_percent(1000, 1000).as_deref(), Some("0.00"));
        assert_eq!(growth_percent(9695, 10000).as_deref(), Some("-3.05"));
        // 1/3 = 33.333...%
        assert_eq!(growth_percent(4, 3).as_deref(), Some("33.33"));
        // 0.005% -> half to even: 0.00; 0.015% -> 0.02
        assert_eq!(growth_percent(200_010, 200_000).as_deref(), Some("0.00"));
        assert_eq!(growth_percent(200_030, 200_000).as_deref(), Some("0.02"));
        assert_eq!(growth_percent(5, 0), None);
        assert_eq!(growth_percent(5, -1), None);
    }

    #[test]
    fn net_effect_signs() {
        assert_eq!(net_effect(Kind::Sale, 5), 5);
        assert_eq!(net_effect(Kind::Refund, 5), -5);
        assert_eq!(net_effect(Kind::VoidSale, 5), -5);
        assert_eq!(net_effect(Kind::VoidRefund, 5), 5);
    }
}
