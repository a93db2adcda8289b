//! A snapshot of the figures: built from one consistent read of totals, sites, rates and the
//! event, ranked once, then shared (behind an `Arc`) by every query and watcher until the next.

use std::collections::BTreeMap;
use std::sync::Arc;

use saleboard_domain::curve::{HourNet, Hours, national_curve};
use saleboard_domain::ranking::{
    KeyFigures, KeyRanking, RankedEntry, SiteFigures, rank, rank_keys,
};
use saleboard_domain::totals::{CurrencyTotals, SegmentFigures};
use saleboard_domain::{Currency, Dimension, Rate, UnixNanos};
use saleboard_storage::{BoardData, EventTotals, SegmentRead, SiteCurrencyTotals, SiteRecord};

/// An event's national breakdown figures, by (dimension, key), every site included.
pub type SegmentMap = BTreeMap<(Dimension, String), SegmentFigures>;

/// The national breakdowns of a snapshot, ranked, one per dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breakdowns {
    brand: Arc<KeyRanking>,
    category: Arc<KeyRanking>,
    origin: Arc<KeyRanking>,
}

impl Breakdowns {
    /// The ranking of a dimension.
    #[must_use]
    pub fn get(&self, dimension: Dimension) -> &Arc<KeyRanking> {
        match dimension {
            Dimension::Brand => &self.brand,
            Dimension::Category => &self.category,
            Dimension::Origin => &self.origin,
        }
    }

    /// Ranks every dimension of `segments` (enabled sites only, see [`enabled_segments`]).
    #[must_use]
    pub fn rank(
        segments: &SegmentMap,
        rates: &BTreeMap<Currency, Rate>,
        reporting: Currency,
    ) -> Self {
        let of = |dimension: Dimension| {
            let keys = segments
                .range((dimension, String::new())..)
                .take_while(|((d, _), _)| *d == dimension)
                .map(|((_, key), f)| KeyFigures {
                    key: key.clone(),
                    site_count: f.site_count,
                    totals: f.totals.clone(),
                })
                .collect();
            Arc::new(rank_keys(keys, rates, reporting))
        };
        Self {
            brand: of(Dimension::Brand),
            category: of(Dimension::Category),
            origin: of(Dimension::Origin),
        }
    }
}

/// Folds a read of breakdown rows into what was held: a full read replaces it, a partial one
/// (rows changed since the last read) updates the rows it names.
#[must_use]
pub fn merge_segments(held: Option<&Arc<SegmentMap>>, read: &SegmentRead) -> Arc<SegmentMap> {
    let mut map = match held {
        Some(held) if !read.full => {
            if read.rows.is_empty() {
                return held.clone();
            }
            SegmentMap::clone(held)
        }
        _ => SegmentMap::new(),
    };
    for (dimension, key, currency, t, sites) in &read.rows {
        let figures = map.entry((*dimension, key.clone())).or_default();
        figures.site_count = *sites;
        figures.totals.insert(*currency, *t);
    }
    Arc::new(map)
}

/// Folds a read of site totals into what was held: a full read replaces it, a partial one
/// (totals changed since the last read) updates the (site, currency) totals it names (a total
/// is never removed: a row read replaces the held one).
pub fn merge_totals(held: &mut EventTotals, full: bool, rows: Vec<SiteCurrencyTotals>) {
    if full {
        held.clear();
    }
    for (site, currency, t) in rows {
        held.entry(site).or_default().insert(currency, t);
    }
}

/// The disabled sites' breakdown rows summed per key: how many of them sold in the key and
/// their totals per currency. Kept site by site ([`add_disabled_site`],
/// [`remove_disabled_site`]) as sites are disabled, enabled or their rows re-read, so taking
/// them out of the national figures costs one step per key, not one per row, at each refresh
/// (the board's keeper does that; the tests check the steps against this sum).
#[cfg(test)]
#[must_use]
pub fn sum_disabled<'a>(
    sites: impl IntoIterator<Item = &'a [saleboard_storage::SegmentSiteRow]>,
) -> SegmentMap {
    let mut sum = SegmentMap::new();
    for rows in sites {
        add_disabled_site(&mut sum, rows);
    }
    sum
}

/// Adds one site's breakdown rows (distinct (dimension, key, currency)) to a sum: the site
/// counts once in each of its keys.
pub fn add_disabled_site(sum: &mut SegmentMap, rows: &[saleboard_storage::SegmentSiteRow]) {
    let mut counted = std::collections::HashSet::new();
    for (_, dimension, key, currency, t) in rows {
        let figures = sum.entry((*dimension, key.clone())).or_default();
        if counted.insert((*dimension, key.as_str())) {
            figures.site_count = figures.site_count.saturating_add(1);
        }
        add_national(figures.totals.entry(*currency).or_default(), t);
    }
}

/// Takes one site's rows, added before by [`add_disabled_site`], back out of a sum; a key
/// left with no site goes.
pub fn remove_disabled_site(sum: &mut SegmentMap, rows: &[saleboard_storage::SegmentSiteRow]) {
    let mut counted = std::collections::HashSet::new();
    for (_, dimension, key, currency, t) in rows {
        let k = (*dimension, key.clone());
        let Some(figures) = sum.get_mut(&k) else {
            continue;
        };
        if counted.insert((*dimension, key.as_str())) {
            figures.site_count = figures.site_count.saturating_sub(1);
        }
        if let Some(total) = figures.totals.get_mut(currency) {
            subtract(total, t);
            if *total == CurrencyTotals::default() {
                figures.totals.remove(currency);
            }
        }
        if figures.site_count == 0 {
            sum.remove(&k);
        }
    }
}

/// `acc - t`: a site's part taken out of a sum that holds it. A consistent read never holds
/// less than its parts; should it, that is said (not hidden by a floor) and the figure is
/// left as it was, to be read again whole at the next safety refresh.
fn subtract(acc: &mut CurrencyTotals, t: &CurrencyTotals) {
    match acc.checked_sub(t) {
        Some(rest) => *acc = rest,
        None => tracing::error!(
            sum = ?acc,
            part = ?t,
            "a breakdown figure holds less than a disabled site's part of it; left as read"
        ),
    }
}

/// The national figures without the disabled sites (they are off the national figure): their
/// summed rows ([`sum_disabled`]) subtracted key by key, and their number out of each key's
/// site count; a currency or key left with nothing disappears.
#[must_use]
pub fn enabled_segments(segments: &Arc<SegmentMap>, disabled: &SegmentMap) -> Arc<SegmentMap> {
    if disabled.is_empty() {
        return segments.clone();
    }
    let mut map = SegmentMap::clone(segments);
    for (k, out) in disabled {
        let Some(figures) = map.get_mut(k) else {
            continue;
        };
        figures.site_count = figures.site_count.saturating_sub(out.site_count);
        for (currency, t) in &out.totals {
            if let Some(total) = figures.totals.get_mut(currency) {
                subtract(total, t);
                if *total == CurrencyTotals::default() {
                    figures.totals.remove(currency);
                }
            }
        }
        if figures.totals.is_empty() {
            map.remove(k);
        }
    }
    Arc::new(map)
}

/// The figures of a snapshot: what decides whether a new one is worth publishing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Ledger position the figures include.
    pub watermark: u64,
    /// Ledger position the breakdowns include: the breakdown figures carry their own
    /// watermark, at most `watermark` (behind it while the aggregator defers their writes).
    pub breakdown_watermark: u64,
    /// (event id, reporting currency), when an event is set.
    pub event: Option<(String, Currency)>,
    /// Every site, ranked (empty without an event).
    pub entries: Vec<RankedEntry>,
    /// Sum of the converted nets of every site that is not out of range (may exceed `i64`:
    /// the gRPC edge says so when it does).
    pub national_net_reporting_minor: i128,
    /// Totals per currency over every site.
    pub national_totals: Vec<(Currency, CurrencyTotals)>,
    /// Registered sites.
    pub site_count: u32,
    /// The national breakdowns (enabled sites), ranked.
    pub breakdowns: Breakdowns,
    /// The national net per UTC hour (enabled sites), in the reporting currency.
    pub hourly: Vec<HourNet>,
    /// The event's exchange rates.
    pub rates: BTreeMap<Currency, Rate>,
    /// The comparison with the event's own baseline, when it has one, as of the build.
    pub comparison: Option<Comparison>,
    /// Every registered site, disabled ones included, by id: what `GetSiteTotals` answers
    /// from.
    pub sites: Arc<Vec<SiteRecord>>,
    /// Every site's totals in the event, by site and currency (disabled sites' included).
    pub totals: Arc<EventTotals>,
    /// The sites held in the event (enabled ones: a disabled site is out of every figure), by
    /// id, unranked: in the national figures, not in `entries`.
    pub held: Vec<RankedEntry>,
    /// The sites with an integrity flag under review in the event, by id (the public board
    /// marks them; their figures are unchanged).
    pub under_review: Vec<saleboard_domain::SiteId>,
}

/// An event compared with a baseline event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The baseline event.
    pub baseline_event_id: String,
    /// The baseline's figures, or the currencies that keep it from being converted.
    pub figure: Result<saleboard_domain::comparison::Baseline, Vec<Currency>>,
}

/// A published snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Increases with every published snapshot; names it in page tokens.
    pub generation: u64,
    /// When storage last confirmed the figures: when they were read, or, for a stale copy,
    /// the last time storage answered.
    pub as_of: UnixNanos,
    /// Storage cannot be read just now: these are the last figures read, served until it can.
    pub stale: bool,
    /// The figures.
    pub figures: Figures,
}

impl Snapshot {
    /// The same figures marked stale, as of `checked_at` (the last time storage answered), under
    /// a new generation: every watcher is sent the mark.
    #[must_use]
    pub fn paused(&self, generation: u64, checked_at: UnixNanos) -> Self {
        Self {
            generation,
            as_of: checked_at,
            stale: true,
            figures: self.figures.clone(),
        }
    }
}

/// Adds a site's totals to the national ones. Every total is a sum of ledger amounts, and all
/// of them together are still at most 2^126 (see `saleboard_domain::totals`), so this cannot
/// overflow; should that bound ever break, it is said and the sum left as it was (never
/// wrapped, never silently saturated).
fn add_national(acc: &mut CurrencyTotals, t: &CurrencyTotals) {
    match acc.checked_add(t) {
        Some(sum) => *acc = sum,
        None => tracing::error!(sum = ?acc, part = ?t, "a national figure would overflow i128"),
    }
}

/// The organizers' marks on sites in an event, as read with the sites.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks<'a> {
    /// Held: out of the ranking, in the national figures.
    pub held: &'a [saleboard_domain::SiteId],
    /// With an integrity flag under review: marked on the board.
    pub under_review: &'a [saleboard_domain::SiteId],
}

impl Figures {
    /// Currencies some site sold in that have no exchange rate: left out of every converted
    /// figure, the national one included.
    #[must_use]
    pub fn unconverted_currencies(&self) -> Vec<Currency> {
        let set: std::collections::BTreeSet<Currency> = self
            .entries
            .iter()
            .chain(&self.held)
            .flat_map(|e| e.unconverted_currencies.iter().copied())
            .collect();
        set.into_iter().collect()
    }

    /// Currencies in the totals that the given rates do not cover (the reporting currency
    /// needs none): what an organizer still has to set.
    #[must_use]
    pub fn currencies_without_rate(
        &self,
        rates: &[(Currency, saleboard_domain::Rate)],
    ) -> Vec<Currency> {
        self.national_totals
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| {
                self.event
                    .as_ref()
                    .is_none_or(|(_, reporting)| reporting != c)
            })
            .filter(|c| !rates.iter().any(|(r, _)| r == c))
            .collect()
    }

    /// Ranks every site of `sites` with its `totals` (every site and total of the event, as
    /// the board holds them after the read `data`, whose own `sites` and `totals` are not
    /// used: they may be only what changed), and the event's national breakdown figures
    /// `segments` (every site; the `disabled` sites' rows are taken out here). Never fails: a
    /// figure out of the contract's range marks its site (see `saleboard_domain::ranking`), it
    /// does not stop the board.
    #[must_use]
    pub fn build(
        mut data: BoardData,
        sites: &[SiteRecord],
        totals: &EventTotals,
        segments: &Arc<SegmentMap>,
        disabled: &SegmentMap,
        disabled_hours: &Hours,
        marks: Marks<'_>,
    ) -> Self {
        let Marks {
            held: holds,
            under_review,
        } = marks;
        // A disabled site leaves the board and the national figures (its totals stay stored).
        let enabled: Vec<&SiteRecord> = sites.iter().filter(|s| s.disabled_at.is_none()).collect();
        let mut national: BTreeMap<Currency, CurrencyTotals> = BTreeMap::new();
        for site in &enabled {
            for (currency, t) in totals.get(&site.site_id).into_iter().flatten() {
                add_national(national.entry(*currency).or_default(), t);
            }
        }
        let site_count = u32::try_from(enabled.len()).unwrap_or(u32::MAX);
        let national_hours = std::mem::take(&mut data.national_hourly);
        let mut event_rates = BTreeMap::new();
        let (entries, held, national_net, event, breakdowns, hourly) = match data.event {
            Some(event) => {
                let sites = enabled
                    .iter()
                    .map(|s| SiteFigures {
                        totals: totals.get(&s.site_id).cloned().unwrap_or_default(),
                        site_id: s.site_id.clone(),
                        display_name: s.display_name.clone(),
                        held: holds.contains(&s.site_id),
                    })
                    .collect();
                let rates = data.rates.into_iter().collect();
                let hourly =
                    national_curve(&national_hours, disabled_hours, &rates, event.reporting_currency)
                        .unwrap_or_else(|e| {
                            tracing::error!(error = %e, "the national hourly rows do not add up; the curve is left empty until they do");
                            Vec::new()
                        });
                let ranking = rank(sites, &rates, event.reporting_currency);
                event_rates.clone_from(&rates);
                let breakdowns = Breakdowns::rank(
                    &enabled_segments(segments, disabled),
                    &rates,
                    event.reporting_currency,
                );
                (
                    ranking.entries,
                    ranking.held,
                    ranking.national_net_reporting_minor,
                    Some((event.event_id, event.reporting_currency)),
                    breakdowns,
                    hourly,
                )
            }
            None => (
                Vec::new(),
                Vec::new(),
                0,
                None,
                Breakdowns::default(),
                Vec::new(),
            ),
        };
        Self {
            watermark: data.applied,
            breakdown_watermark: data.segments.applied,
            event,
            entries,
            national_net_reporting_minor: national_net,
            national_totals: national.into_iter().collect(),
            site_count,
            breakdowns,
            hourly,
            rates: event_rates,
            comparison: None,
            sites: Arc::new(sites.to_vec()),
            totals: Arc::new(totals.clone()),
            held,
            under_review: enabled
                .iter()
                .filter(|s| under_review.contains(&s.site_id))
                .map(|s| s.site_id.clone())
                .collect(),
        }
    }

    /// A registered site and its totals in the event, by currency (`None`: not registered).
    #[must_use]
    pub fn site(
        &self,
        site: &saleboard_domain::SiteId,
    ) -> Option<(&SiteRecord, Option<&BTreeMap<Currency, CurrencyTotals>>)> {
        let record = self.sites.iter().find(|s| s.site_id == *site)?;
        Some((record, self.totals.get(site)))
    }

    /// The sites whose figure is out of range (held ones too: they are left out of the
    /// national figure likewise), with the currencies that put them there.
    pub fn out_of_range(&self) -> impl Iterator<Item = &RankedEntry> {
        self.entries
            .iter()
            .chain(&self.held)
            .filter(|e| !e.out_of_range.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saleboard_domain::{Event, Rate, SiteId};

    /// The figures of a full read.
    fn build(mut data: BoardData) -> Figures {
        let sites = data.sites.take().expect("a full read's sites");
        let data_holds = data.held.take().unwrap_or_default();
        let mut totals = EventTotals::new();
        merge_totals(&mut totals, true, std::mem::take(&mut data.totals));
        Figures::build(
            data,
            &sites,
            &totals,
            &Arc::default(),
            &SegmentMap::new(),
            &Hours::new(),
            Marks {
                held: &data_holds,
                under_review: &[],
            },
        )
    }

    fn site(id: &str) -> SiteRecord {
        SiteRecord {
            site_id: SiteId::parse(id).expect("site"),
            display_name: id.to_uppercase(),
            created_at: UnixNanos(0),
            disabled_at: None,
        }
    }

    fn totals(gross: i128, refunded: i128) -> CurrencyTotals {
        CurrencyTotals {
            sale_count: 2,
            gross_minor: gross,
            refund_count: 1,
            refunded_minor: refunded,
        }
    }

    #[test]
    fn disabled_sites_leave_each_key_once_with_their_totals() {
        let idr = Currency::parse("IDR").expect("IDR");
        let usd = Currency::parse("USD").expect("USD");
        let key = |k: &str| (Dimension::Brand, k.to_owned());
        let figures = |sites: u32, per: &[(Currency, CurrencyTotals)]| SegmentFigures {
            site_count: sites,
            totals: per.iter().copied().collect(),
        };
        // National: "nestle" sold by three sites in IDR and USD, "acme" by one in IDR.
        let national: Arc<SegmentMap> = Arc::new(
            [
                (
                    key("nestle"),
                    figures(
                        3,
                        &[
                            (
                                idr,
                                CurrencyTotals {
                                    sale_count: 5,
                                    gross_minor: 900,
                                    refund_count: 3,
                                    refunded_minor: 30,
                                },
                            ),
                            (usd, totals(50, 5)),
                        ],
                    ),
                ),
                (key("acme"), figures(1, &[(idr, totals(70, 7))])),
            ]
            .into_iter()
            .collect(),
        );
        let a = SiteId::parse("a").expect("a");
        let b = SiteId::parse("b").expect("b");
        // Site a sold nestle in two currencies (counted out once), site b nestle in IDR and
        // all of acme.
        let rows = [
            (
                a.clone(),
                Dimension::Brand,
                "nestle".to_owned(),
                idr,
                totals(100, 10),
            ),
            (a, Dimension::Brand, "nestle".to_owned(), usd, totals(50, 5)),
            (
                b.clone(),
                Dimension::Brand,
                "nestle".to_owned(),
                idr,
                totals(200, 0),
            ),
            (b, Dimension::Brand, "acme".to_owned(), idr, totals(70, 7)),
        ];
        let (a_rows, b_rows) = rows.split_at(2);
        let sum = sum_disabled([a_rows, b_rows]);
        assert_eq!(sum[&key("nestle")].site_count, 2);
        assert_eq!(sum[&key("acme")].site_count, 1);
        let enabled = enabled_segments(&national, &sum);
        let mut left = totals(600, 20);
        left.sale_count = 1;
        left.refund_count = 1;
        assert_eq!(
            enabled.get(&key("nestle")),
            Some(&figures(1, &[(idr, left)])),
            "USD emptied out, IDR less both sites' rows"
        );
        assert_eq!(
            enabled.get(&key("acme")),
            None,
            "a key left with nothing goes"
        );
        // Kept site by site: b enabled again leaves a's rows alone.
        let mut kept = sum.clone();
        remove_disabled_site(&mut kept, b_rows);
        assert_eq!(kept, sum_disabled([a_rows]));
        remove_disabled_site(&mut kept, a_rows);
        assert!(kept.is_empty());
        assert!(Arc::ptr_eq(
            &enabled_segments(&national, &SegmentMap::new()),
            &national
        ));
    }

    #[test]
    fn every_site_appears_and_national_totals_add_up() {
        let idr = Currency::parse("IDR").expect("IDR");
        let usd = Currency::parse("USD").expect("USD");
        let data = BoardData {
            applied: 42,
            event: Some(Event::new("e", "E", UnixNanos(0), UnixNanos(1), "IDR").expect("event")),
            sites: Some(vec![site("a"), site("b"), site("c")]),
            totals: vec![
                (SiteId::parse("a").expect("a"), idr, totals(1_000, 100)),
                (SiteId::parse("b").expect("b"), usd, totals(10, 0)),
                (SiteId::parse("b").expect("b"), idr, totals(5, 5)),
            ],
            rates: vec![(usd, Rate::parse("15000").expect("rate"))],
            events: saleboard_domain::Events::default(),
            totals_full: true,
            ..BoardData::default()
        };
        let f = build(data);
        let ranked: Vec<_> = f
            .entries
            .iter()
            .map(|e| (e.rank, e.site_id.as_str(), e.net_reporting_minor))
            .collect();
        assert_eq!(ranked, [(1, "b", 150_000), (2, "a", 900), (0, "c", 0)]);
        assert_eq!(f.national_net_reporting_minor, 150_900);
        assert_eq!(
            f.national_totals,
            vec![
                (
                    idr,
                    CurrencyTotals {
                        sale_count: 4,
                        gross_minor: 1_005,
                        refund_count: 2,
                        refunded_minor: 105
                    }
                ),
                (usd, totals(10, 0))
            ]
        );
        assert_eq!((f.site_count, f.watermark), (3, 42));
    }

    #[test]
    fn without_an_event_there_is_no_ranking() {
        let f = build(BoardData {
            sites: Some(vec![site("a")]),
            ..BoardData::default()
        });
        assert_eq!(f.event, None);
        assert!(f.entries.is_empty());
        assert_eq!(f.site_count, 1);
    }

    #[test]
    fn one_site_out_of_range_leaves_the_others_live() {
        let idr = Currency::parse("IDR").expect("IDR");
        let usd = Currency::parse("USD").expect("USD");
        let big = 59 * 1_000_000_000_000_000;
        let data = BoardData {
            applied: 7,
            event: Some(Event::new("e", "E", UnixNanos(0), UnixNanos(1), "IDR").expect("event")),
            sites: Some(vec![site("a"), site("b")]),
            totals: vec![
                (SiteId::parse("a").expect("a"), usd, totals(big, 0)),
                (SiteId::parse("b").expect("b"), idr, totals(500, 0)),
            ],
            rates: vec![(usd, Rate::parse("15850.25").expect("rate"))],
            events: saleboard_domain::Events::default(),
            totals_full: true,
            ..BoardData::default()
        };
        let f = build(data);
        let out: Vec<_> = f
            .out_of_range()
            .map(|e| (e.site_id.as_str(), e.out_of_range.clone()))
            .collect();
        assert_eq!(out, [("a", vec![usd])]);
        assert_eq!(f.entries[0].site_id.as_str(), "b");
        assert_eq!(f.national_net_reporting_minor, 500);
        assert_eq!(f.national_totals[1].1.gross_minor, big);
    }
}
