//! Totals per site and currency, and per site, currency and UTC hour: what the aggregator folds
//! the ledger into.
//!
//! Money sums are `i128`. Every ledger amount is an `i64` and the ledger has fewer than 2^63 rows
//! (positions are `i64`), so no sum of amounts can pass 2^126: folding the ledger can never
//! overflow, whatever a participant sends. That is what keeps one site's figures from stopping
//! the aggregator for everyone. Counts are `u64` for the same reason. The arithmetic is still
//! checked, so a broken bound shows as an error, never as a wrapped figure.

use std::collections::BTreeMap;

// foldhash (hashbrown's default hasher, seeded per map) instead of SipHash: every ledger row
// folded looks up a few keys.
use foldhash::HashMap;

use crate::{Currency, Dimension, Kind, SiteId, UnixNanos, ValidTransaction};

/// Figures of one site in one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrencyTotals {
    /// Number of sales.
    pub sale_count: u64,
    /// Sum of sales, minor units.
    pub gross_minor: i128,
    /// Number of refunds.
    pub refund_count: u64,
    /// Sum of refunds, minor units.
    pub refunded_minor: i128,
}

impl CurrencyTotals {
    /// Gross minus refunded. Refunds never exceed their sales, so this is never negative and
    /// never overflows.
    #[must_use]
    pub fn net_minor(&self) -> i128 {
        self.gross_minor.saturating_sub(self.refunded_minor)
    }

    /// `self + other`, figure by figure; `None` when any figure would overflow (it cannot for
    /// sums of ledger rows, see the module comment: `None` is a broken bound, never a figure).
    #[must_use]
    pub fn checked_add(&self, other: &Self) -> Option<Self> {
        Some(Self {
            sale_count: self.sale_count.checked_add(other.sale_count)?,
            gross_minor: self.gross_minor.checked_add(other.gross_minor)?,
            refund_count: self.refund_count.checked_add(other.refund_count)?,
            refunded_minor: self.refunded_minor.checked_add(other.refunded_minor)?,
        })
    }

    /// `self - other`, figure by figure: a part (`other`, e.g. a disabled site's figures) taken
    /// out of a sum that holds it; `None` when `other` is not part of `self` (a figure would go
    /// below zero).
    #[must_use]
    pub fn checked_sub(&self, other: &Self) -> Option<Self> {
        let part = |whole: i128, part: i128| whole.checked_sub(part).filter(|v| *v >= 0);
        Some(Self {
            sale_count: self.sale_count.checked_sub(other.sale_count)?,
            gross_minor: part(self.gross_minor, other.gross_minor)?,
            refund_count: self.refund_count.checked_sub(other.refund_count)?,
            refunded_minor: part(self.refunded_minor, other.refunded_minor)?,
        })
    }
}

/// Figures of one site in one currency in one UTC hour (by `occurred_at`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourlyTotals {
    /// Number of sales that occurred in the hour.
    pub sale_count: u64,
    /// Sales minus refunds that occurred in the hour (a refund counts in its own hour, so this
    /// can be negative).
    pub net_minor: i128,
}

impl HourlyTotals {
    /// `self + other`; `None` on overflow (a broken bound, see the module comment).
    #[must_use]
    pub fn checked_add(&self, other: &Self) -> Option<Self> {
        Some(Self {
            sale_count: self.sale_count.checked_add(other.sale_count)?,
            net_minor: self.net_minor.checked_add(other.net_minor)?,
        })
    }

    /// `self - other`: a part taken out of a sum that holds it; `None` when the count would go
    /// below zero or a figure overflow (a net may be negative: refunds count in their hour).
    #[must_use]
    pub fn checked_sub(&self, other: &Self) -> Option<Self> {
        Some(Self {
            sale_count: self.sale_count.checked_sub(other.sale_count)?,
            net_minor: self.net_minor.checked_sub(other.net_minor)?,
        })
    }
}

/// Key of a national hourly total: event, currency, start of the hour.
pub type NationalHourKey = (String, Currency, UnixNanos);

/// Key of a per-currency total: event, site, currency.
pub type TotalsKey = (String, SiteId, Currency);
/// Key of an hourly total: event, site, currency, start of the hour.
pub type HourlyKey = (String, SiteId, Currency, UnixNanos);
/// A key of a breakdown in an event: event, dimension, key (`""` for transactions without
/// the field).
pub type SegmentKey = (String, Dimension, String);
/// A site's part of a breakdown key: event, dimension, key, site.
pub type SegmentSiteKey = (String, Dimension, String, SiteId);

/// A breakdown key's national figures: its totals per currency and how many sites sold in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentFigures {
    /// Sites with at least one transaction in the key.
    pub site_count: u32,
    /// Totals per currency.
    pub totals: BTreeMap<Currency, CurrencyTotals>,
}

/// What one ledger row adds to a per-currency total and to its hour's figures, and whether it
/// takes them away instead (a void takes away exactly what its target, a row of the same
/// content, added).
fn row_figures(kind: Kind, amount_minor: i64) -> (CurrencyTotals, HourlyTotals, bool) {
    let amount = i128::from(amount_minor);
    let (totals, hour) = match kind {
        Kind::Sale | Kind::VoidSale => (
            CurrencyTotals {
                sale_count: 1,
                gross_minor: amount,
                ..CurrencyTotals::default()
            },
            HourlyTotals {
                sale_count: 1,
                net_minor: amount,
            },
        ),
        Kind::Refund | Kind::VoidRefund => (
            CurrencyTotals {
                refund_count: 1,
                refunded_minor: amount,
                ..CurrencyTotals::default()
            },
            HourlyTotals {
                sale_count: 0,
                net_minor: -amount,
            },
        ),
    };
    (totals, hour, kind.is_void())
}

/// What a row's figures are, to name the one that broke its bound.
fn figures_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Sale => "sales",
        Kind::Refund => "refunds",
        // Below zero: a void of a row the figures never held.
        Kind::VoidSale => "sales voided",
        Kind::VoidRefund => "refunds voided",
    }
}

/// A total as people read it in a difference ("3 sales, gross 900, 1 refunds, refunded
/// 200"; "nothing" for none): what `verify` and the report's check print.
#[must_use]
pub fn describe(t: Option<&CurrencyTotals>) -> String {
    t.map_or_else(
        || "nothing".to_owned(),
        |t| {
            format!(
                "{} sales, gross {}, {} refunds, refunded {}",
                t.sale_count, t.gross_minor, t.refund_count, t.refunded_minor
            )
        },
    )
}

/// Adds one ledger row to a per-currency total (a void takes its target's figures away).
///
/// # Errors
/// Names the figure that would overflow (or, for a void, go below zero).
pub fn add_row(t: &mut CurrencyTotals, kind: Kind, amount_minor: i64) -> Result<(), &'static str> {
    add(t, kind, amount_minor)
}

/// Adds one ledger row to a per-currency total (a void takes its target's figures away).
fn add(t: &mut CurrencyTotals, kind: Kind, amount_minor: i64) -> Result<(), &'static str> {
    let (row, _, void) = row_figures(kind, amount_minor);
    let sum = if void {
        t.checked_sub(&row)
    } else {
        t.checked_add(&row)
    };
    *t = sum.ok_or(figures_of(kind))?;
    Ok(())
}

/// Adds one row's hourly figures (a void takes them away).
fn add_hour(h: &mut HourlyTotals, row: &HourlyTotals, void: bool) -> Option<()> {
    *h = if void {
        h.checked_sub(row)?
    } else {
        h.checked_add(row)?
    };
    Some(())
}

/// A total would leave the range of `i64` / `u64`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {what} of site {site} in {currency} would overflow; the aggregator stops rather than store a wrong figure"
)]
// Unreachable while the ledger holds i64 amounts (see the module comment); kept so that a
// broken bound stops the fold instead of storing a wrapped figure.
pub struct TotalsOverflow {
    /// Site whose total overflowed.
    pub site: SiteId,
    /// Currency of that total.
    pub currency: Currency,
    /// Which figure.
    pub what: &'static str,
}

/// Every total, with a record of which ones changed since the last [`TotalsBook::take_changes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TotalsBook {
    /// Site and hourly totals by event, then site: looked up with borrowed keys, so folding a
    /// row allocates nothing for a (site, currency, hour) it has seen.
    sites: HashMap<String, HashMap<SiteId, SiteBook>>,
    /// Sites with a change not yet taken, each listed once.
    dirty_sites: Vec<(String, SiteId)>,
    /// Breakdown figures by event, then dimension, then key: looked up with borrowed strings,
    /// so folding a row allocates nothing for a key it has seen (the fold's hot path).
    segments: HashMap<String, [HashMap<String, KeyBook>; 3]>,
    /// Keys with a change not yet taken, each listed once.
    dirty_keys: Vec<SegmentKey>,
    /// Every site's hourly totals summed, by event, then (currency, hour), with whether each
    /// changed since the last take: derived from the sites' (never loaded), so the national
    /// curve is read as a few hundred rows instead of every site's.
    national_hourly: HashMap<String, NationalHours>,
}

/// One event's national hourly totals by (currency, hour), with whether each changed since the
/// last [`TotalsBook::take_changes`].
type NationalHours = HashMap<(Currency, UnixNanos), (HourlyTotals, bool)>;

/// One site in one event: its totals per currency and per (currency, hour), with what changed
/// since the last [`TotalsBook::take_changes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SiteBook {
    totals: Vec<(Currency, CurrencyTotals, bool)>,
    hourly: HashMap<(Currency, UnixNanos), (HourlyTotals, bool)>,
    /// In `TotalsBook::dirty_sites`.
    dirty: bool,
}

impl TotalsBook {
    /// The book of `site` in `event_id`, made when new (the only allocations of a fold).
    fn site_book(&mut self, event_id: &str, site: &SiteId) -> &mut SiteBook {
        if !self.sites.contains_key(event_id) {
            self.sites.insert(event_id.to_owned(), HashMap::default());
        }
        let sites = self
            .sites
            .get_mut(event_id)
            .unwrap_or_else(|| unreachable!("inserted above"));
        if !sites.contains_key(site) {
            sites.insert(site.clone(), SiteBook::default());
        }
        sites
            .get_mut(site)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }
}

/// A site's totals in one currency, made when new.
fn currency_entry(
    list: &mut Vec<(Currency, CurrencyTotals, bool)>,
    currency: Currency,
) -> &mut (Currency, CurrencyTotals, bool) {
    let i = match list.binary_search_by_key(&currency, |(c, _, _)| *c) {
        Ok(i) => i,
        Err(i) => {
            list.insert(i, (currency, CurrencyTotals::default(), false));
            i
        }
    };
    &mut list[i]
}

/// One breakdown key of one event: each site's figures and the national ones (derived from
/// them, never loaded), with what changed since the last [`TotalsBook::take_changes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct KeyBook {
    /// Per site: per currency (a short list) the totals and whether they changed.
    sites: HashMap<SiteId, Vec<SiteFigure>>,
    national: SegmentFigures,
    /// In `TotalsBook::dirty_keys`.
    dirty: bool,
}

/// One site's figures under one breakdown key, in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SiteFigure {
    currency: Currency,
    totals: CurrencyTotals,
    /// Changed since the last [`TotalsBook::take_changes`].
    changed: bool,
    /// The store holds a row of it: it was loaded, or taken as a change before.
    stored: bool,
}

impl SiteFigure {
    fn new(currency: Currency) -> Self {
        Self {
            currency,
            totals: CurrencyTotals::default(),
            changed: false,
            stored: false,
        }
    }
}

fn dimension_index(d: Dimension) -> usize {
    match d {
        Dimension::Brand => 0,
        Dimension::Category => 1,
        Dimension::Origin => 2,
    }
}

/// Totals and hourly totals that changed, with their new values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changed per-currency totals.
    pub totals: Vec<(TotalsKey, CurrencyTotals)>,
    /// Changed hourly totals.
    pub hourly: Vec<(HourlyKey, HourlyTotals)>,
    /// Changed per-site breakdown totals, and whether each is new: the store holds no row of
    /// it yet, as far as this book knows (it was neither loaded nor taken as a change before).
    /// A store may insert those without looking for a row first (issue 15: a plain insert
    /// costs PostgreSQL about 40% less than an upsert's); a row found there anyway is an
    /// error of the write, never a figure added twice (the figures are absolute).
    pub segment_sites: Vec<(SegmentSiteKey, Currency, CurrencyTotals, bool)>,
    /// Changed national breakdown keys, with every currency of the key and its site count.
    pub segments: Vec<(SegmentKey, SegmentFigures)>,
    /// Changed national hourly totals (every site's summed).
    pub national_hourly: Vec<(NationalHourKey, HourlyTotals)>,
    /// These changes carry every breakdown change of the book (`segment_sites` and
    /// `segments`, empty or not): once written, the breakdown figures include every row the
    /// headline figures do, and their watermark moves with the applied position. `false`:
    /// the breakdown changes stay in the book for a later write (see
    /// [`TotalsBook::take_headline_changes`]).
    pub breakdowns: bool,
    /// Changed late figures and windows (`crate::late`): written with the breakdowns, at
    /// their watermark. The aggregator's `LateBook` fills them; this book never does.
    pub late: crate::late::LateChanges,
}

impl TotalsBook {
    /// Loads a stored per-currency total (not marked changed).
    pub fn load_totals(&mut self, key: TotalsKey, value: CurrencyTotals) {
        let (event, site, currency) = key;
        let entry = currency_entry(&mut self.site_book(&event, &site).totals, currency);
        entry.1 = value;
    }

    /// Loads a stored hourly total (not marked changed); the national hourly totals follow
    /// from these.
    ///
    /// # Errors
    /// When the national sum would overflow (it cannot, see the module comment).
    pub fn load_hourly(
        &mut self,
        key: HourlyKey,
        value: HourlyTotals,
    ) -> Result<(), TotalsOverflow> {
        let (event, site, currency, hour) = key;
        let national = self
            .national_hourly
            .entry(event.clone())
            .or_default()
            .entry((currency, hour))
            .or_default();
        national.0 = national
            .0
            .checked_add(&value)
            .ok_or_else(|| TotalsOverflow {
                site: site.clone(),
                currency,
                what: "national hourly net",
            })?;
        self.site_book(&event, &site)
            .hourly
            .insert((currency, hour), (value, false));
        Ok(())
    }

    /// Loads a stored per-site breakdown total (not marked changed); the national figures and
    /// site counts follow from these.
    ///
    /// # Errors
    /// When the national sum would overflow (it cannot, see the module comment).
    pub fn load_segment_site(
        &mut self,
        key: SegmentSiteKey,
        currency: Currency,
        value: CurrencyTotals,
    ) -> Result<(), TotalsOverflow> {
        let (event, dimension, k, site) = key;
        let overflow = {
            let site = site.clone();
            move |what| TotalsOverflow {
                site: site.clone(),
                currency,
                what,
            }
        };
        let book = self.segments.entry(event).or_default()[dimension_index(dimension)]
            .entry(k)
            .or_default();
        let list = book.sites.entry(site).or_default();
        let first_of_site = list.is_empty();
        let i = match list.binary_search_by_key(&currency, |f| f.currency) {
            Ok(i) => i,
            Err(i) => {
                list.insert(i, SiteFigure::new(currency));
                i
            }
        };
        list[i].totals = value;
        list[i].stored = true;
        let national = &mut book.national;
        if first_of_site {
            national.site_count = national.site_count.saturating_add(1);
        }
        let t = national.totals.entry(currency).or_default();
        t.sale_count = t
            .sale_count
            .checked_add(value.sale_count)
            .ok_or_else(|| overflow("breakdown sale count"))?;
        t.gross_minor = t
            .gross_minor
            .checked_add(value.gross_minor)
            .ok_or_else(|| overflow("breakdown gross"))?;
        t.refund_count = t
            .refund_count
            .checked_add(value.refund_count)
            .ok_or_else(|| overflow("breakdown refund count"))?;
        t.refunded_minor = t
            .refunded_minor
            .checked_add(value.refunded_minor)
            .ok_or_else(|| overflow("breakdown refunded"))?;
        Ok(())
    }

    /// Adds one ledger row, counted in `event_id`: its headline figures ([`Self::apply_headline`])
    /// and its breakdowns ([`Self::apply_breakdowns`]).
    ///
    /// # Errors
    /// When a figure would overflow. The book is then partly updated and must be discarded.
    pub fn apply(
        &mut self,
        event_id: &str,
        site: &SiteId,
        tx: &ValidTransaction,
    ) -> Result<(), TotalsOverflow> {
        self.apply_headline(event_id, site, tx)?;
        self.apply_breakdowns(event_id, site, tx)
    }

    /// Adds one ledger row to the headline figures alone (the site's totals, its hours and the
    /// national hours): for a reader that folds the breakdowns apart, up to their own
    /// watermark (the official report's pass).
    ///
    /// # Errors
    /// When a figure would overflow. The book is then partly updated and must be discarded.
    pub fn apply_headline(
        &mut self,
        event_id: &str,
        site: &SiteId,
        tx: &ValidTransaction,
    ) -> Result<(), TotalsOverflow> {
        let overflow = |what| TotalsOverflow {
            site: site.clone(),
            currency: tx.currency,
            what,
        };
        let book = self.site_book(event_id, site);
        let newly_dirty = !book.dirty;
        book.dirty = true;
        let entry = currency_entry(&mut book.totals, tx.currency);
        entry.2 = true;
        let t = &mut entry.1;
        let hour = book
            .hourly
            .entry((tx.currency, tx.occurred_at.hour_start()))
            .or_default();
        hour.1 = true;
        let h = &mut hour.0;
        let (row, hour_row, void) = row_figures(tx.kind(), tx.amount_minor);
        let what = figures_of(tx.kind());
        *t = if void {
            t.checked_sub(&row)
        } else {
            t.checked_add(&row)
        }
        .ok_or_else(|| overflow(what))?;
        add_hour(h, &hour_row, void).ok_or_else(|| overflow("hourly figures"))?;
        if newly_dirty {
            self.dirty_sites.push((event_id.to_owned(), site.clone()));
        }
        if !self.national_hourly.contains_key(event_id) {
            self.national_hourly
                .insert(event_id.to_owned(), HashMap::default());
        }
        let national = self
            .national_hourly
            .get_mut(event_id)
            .unwrap_or_else(|| unreachable!("inserted above"))
            .entry((tx.currency, tx.occurred_at.hour_start()))
            .or_default();
        add_hour(&mut national.0, &hour_row, void)
            .ok_or_else(|| overflow("national hourly figures"))?;
        national.1 = true;
        Ok(())
    }

    /// Adds one ledger row to the breakdown figures alone: for an aggregator whose stored
    /// breakdowns trail its stored headline totals (they carry their own watermark), folding
    /// the rows in between.
    ///
    /// # Errors
    /// When a figure would overflow. The book is then partly updated and must be discarded.
    pub fn apply_breakdowns(
        &mut self,
        event_id: &str,
        site: &SiteId,
        tx: &ValidTransaction,
    ) -> Result<(), TotalsOverflow> {
        for dimension in Dimension::ALL {
            self.apply_segment(event_id, dimension, site, tx)
                .map_err(|what| TotalsOverflow {
                    site: site.clone(),
                    currency: tx.currency,
                    what,
                })?;
        }
        Ok(())
    }

    /// Whether breakdown changes wait to be taken.
    #[must_use]
    pub fn breakdowns_pending(&self) -> bool {
        !self.dirty_keys.is_empty()
    }

    /// Adds one ledger row to its key of one breakdown dimension, for its site and nationally.
    fn apply_segment(
        &mut self,
        event_id: &str,
        dimension: Dimension,
        site: &SiteId,
        tx: &ValidTransaction,
    ) -> Result<(), &'static str> {
        let key_text = tx.segments.key(dimension);
        if !self.segments.contains_key(event_id) {
            self.segments
                .insert(event_id.to_owned(), Default::default());
        }
        let keys = &mut self.segments.get_mut(event_id).ok_or("breakdown event")?
            [dimension_index(dimension)];
        if !keys.contains_key(key_text) {
            keys.insert(key_text.to_owned(), KeyBook::default());
        }
        let book = keys.get_mut(key_text).ok_or("breakdown key")?;
        if !book.sites.contains_key(site) {
            book.sites.insert(site.clone(), Vec::new());
        }
        let list = book.sites.get_mut(site).ok_or("breakdown site")?;
        let first_of_site = list.is_empty();
        let i = match list.binary_search_by_key(&tx.currency, |f| f.currency) {
            Ok(i) => i,
            Err(i) => {
                list.insert(i, SiteFigure::new(tx.currency));
                i
            }
        };
        add(&mut list[i].totals, tx.kind(), tx.amount_minor)?;
        list[i].changed = true;
        if first_of_site {
            book.national.site_count = book.national.site_count.saturating_add(1);
        }
        add(
            book.national.totals.entry(tx.currency).or_default(),
            tx.kind(),
            tx.amount_minor,
        )?;
        if !book.dirty {
            book.dirty = true;
            self.dirty_keys
                .push((event_id.to_owned(), dimension, key_text.to_owned()));
        }
        Ok(())
    }

    /// Marks changed every national breakdown key whose figures `stored` does not hold as the
    /// book derives them (after a migration, or a write lost to a bug), so the next write puts
    /// them right. Returns how many keys were marked, and how many `stored` has that the book
    /// does not (those cannot be fixed by a write; `verify` reports them).
    pub fn mark_segments_differing(
        &mut self,
        stored: &BTreeMap<SegmentKey, SegmentFigures>,
    ) -> (usize, usize) {
        let mut marked = 0;
        for (event, dimensions) in &mut self.segments {
            for (dimension, keys) in Dimension::ALL.into_iter().zip(dimensions.iter_mut()) {
                for (k, book) in keys {
                    let key = (event.clone(), dimension, k.clone());
                    if stored.get(&key) != Some(&book.national) {
                        marked += 1;
                        if !book.dirty {
                            book.dirty = true;
                            self.dirty_keys.push(key);
                        }
                    }
                }
            }
        }
        let extra = stored
            .keys()
            .filter(|(e, d, k)| self.key_book(e, *d, k).is_none())
            .count();
        (marked, extra)
    }

    fn key_book(&self, event: &str, dimension: Dimension, key: &str) -> Option<&KeyBook> {
        self.segments.get(event)?[dimension_index(dimension)].get(key)
    }

    /// Every figure changed since it was last taken (headline and breakdowns), and forgets
    /// that they changed.
    pub fn take_changes(&mut self) -> Changes {
        let mut changes = self.take_headline_changes();
        let breakdowns = self.take_breakdown_changes();
        changes.segment_sites = breakdowns.segment_sites;
        changes.segments = breakdowns.segments;
        changes.breakdowns = true;
        changes
    }

    /// The headline figures changed since they were last taken (site totals, site and
    /// national hourly totals), and forgets that they changed; the breakdown changes stay
    /// (`breakdowns` is false).
    pub fn take_headline_changes(&mut self) -> Changes {
        let mut totals = Vec::new();
        let mut hourly = Vec::new();
        for (event, site) in std::mem::take(&mut self.dirty_sites) {
            let Some(book) = self
                .sites
                .get_mut(event.as_str())
                .and_then(|sites| sites.get_mut(&site))
            else {
                continue;
            };
            book.dirty = false;
            for (currency, t, changed) in book.totals.iter_mut().filter(|e| e.2) {
                *changed = false;
                totals.push(((event.clone(), site.clone(), *currency), *t));
            }
            for ((currency, hour), (h, changed)) in book.hourly.iter_mut().filter(|e| e.1.1) {
                *changed = false;
                hourly.push(((event.clone(), site.clone(), *currency, *hour), *h));
            }
        }
        // In key order, as the stores write them (and as the tests read them).
        totals.sort_by(|a, b| a.0.cmp(&b.0));
        hourly.sort_by(|a, b| a.0.cmp(&b.0));
        let mut national_hourly = Vec::new();
        for (event, hours) in &mut self.national_hourly {
            for ((currency, hour), (h, changed)) in hours.iter_mut().filter(|e| e.1.1) {
                *changed = false;
                national_hourly.push(((event.clone(), *currency, *hour), *h));
            }
        }
        national_hourly.sort_by(|a, b| a.0.cmp(&b.0));
        Changes {
            totals,
            hourly,
            national_hourly,
            ..Changes::default()
        }
    }

    /// The breakdown figures changed since they were last taken (per site and national), and
    /// forgets that they changed (`breakdowns` is true).
    pub fn take_breakdown_changes(&mut self) -> Changes {
        let mut segment_sites = Vec::new();
        let mut segments = Vec::new();
        for key in std::mem::take(&mut self.dirty_keys) {
            let (event, dimension, k) = &key;
            let Some(book) = self
                .segments
                .get_mut(event.as_str())
                .and_then(|d| d[dimension_index(*dimension)].get_mut(k.as_str()))
            else {
                continue;
            };
            book.dirty = false;
            for (site, list) in &mut book.sites {
                for figure in list.iter_mut().filter(|f| f.changed) {
                    figure.changed = false;
                    segment_sites.push((
                        (event.clone(), *dimension, k.clone(), site.clone()),
                        figure.currency,
                        figure.totals,
                        !figure.stored,
                    ));
                    // Written by the caller, or the caller's write fails and this book is
                    // thrown away with it.
                    figure.stored = true;
                }
            }
            segments.push((key.clone(), book.national.clone()));
        }
        // In the stores' primary-key order (event, site, dimension, key, currency): each
        // upserted row's index probe then lands next to the previous one's (issue 15: about 5%
        // of that statement's time on PostgreSQL).
        segment_sites.sort_by(
            |((e1, d1, k1, s1), c1, _, _), ((e2, d2, k2, s2), c2, _, _)| {
                (e1, s1, d1, k1, c1).cmp(&(e2, s2, d2, k2, c2))
            },
        );
        segments.sort_by(|a, b| a.0.cmp(&b.0));
        Changes {
            segment_sites,
            segments,
            breakdowns: true,
            ..Changes::default()
        }
    }

    /// Marks changed every national hourly total that `stored` does not hold as the book
    /// derives it (a write lost to a bug), so the next write puts it right. Returns how many
    /// were marked, and how many `stored` has that the book does not (`verify` reports those).
    pub fn mark_national_hours_differing(
        &mut self,
        stored: &BTreeMap<NationalHourKey, HourlyTotals>,
    ) -> (usize, usize) {
        let mut marked = 0;
        for (event, hours) in &mut self.national_hourly {
            for ((currency, hour), (h, changed)) in hours.iter_mut() {
                if stored.get(&(event.clone(), *currency, *hour)) != Some(h) {
                    marked += 1;
                    *changed = true;
                }
            }
        }
        let extra = stored
            .keys()
            .filter(|(e, c, h)| {
                self.national_hourly
                    .get(e.as_str())
                    .is_none_or(|hours| !hours.contains_key(&(*c, *h)))
            })
            .count();
        (marked, extra)
    }

    /// Every national hourly total, in key order (built on each call).
    #[must_use]
    pub fn national_hourly(&self) -> BTreeMap<NationalHourKey, HourlyTotals> {
        let mut out = BTreeMap::new();
        for (event, hours) in &self.national_hourly {
            for ((currency, hour), (h, _)) in hours {
                out.insert((event.clone(), *currency, *hour), *h);
            }
        }
        out
    }

    /// Every per-currency total, in key order (built on each call: for `verify` and tests).
    #[must_use]
    pub fn totals(&self) -> BTreeMap<TotalsKey, CurrencyTotals> {
        let mut out = BTreeMap::new();
        for (event, sites) in &self.sites {
            for (site, book) in sites {
                for (currency, t, _) in &book.totals {
                    out.insert((event.clone(), site.clone(), *currency), *t);
                }
            }
        }
        out
    }

    /// Every hourly total, in key order (built on each call).
    #[must_use]
    pub fn hourly(&self) -> BTreeMap<HourlyKey, HourlyTotals> {
        let mut out = BTreeMap::new();
        for (event, sites) in &self.sites {
            for (site, book) in sites {
                for ((currency, hour), (h, _)) in &book.hourly {
                    out.insert((event.clone(), site.clone(), *currency, *hour), *h);
                }
            }
        }
        out
    }

    /// Every site's breakdown totals, per key, per currency, in key order (built on each
    /// call: for `verify` and tests, not the fold).
    #[must_use]
    pub fn segment_sites(&self) -> BTreeMap<SegmentSiteKey, Vec<(Currency, CurrencyTotals)>> {
        let mut out = BTreeMap::new();
        for (event, dimensions) in &self.segments {
            for (dimension, keys) in Dimension::ALL.into_iter().zip(dimensions.iter()) {
                for (k, book) in keys {
                    for (site, list) in &book.sites {
                        out.insert(
                            (event.clone(), dimension, k.clone(), site.clone()),
                            list.iter().map(|f| (f.currency, f.totals)).collect(),
                        );
                    }
                }
            }
        }
        out
    }

    /// Every national breakdown key's figures, in key order (built on each call).
    #[must_use]
    pub fn segments(&self) -> BTreeMap<SegmentKey, SegmentFigures> {
        let mut out = BTreeMap::new();
        for (event, dimensions) in &self.segments {
            for (dimension, keys) in Dimension::ALL.into_iter().zip(dimensions.iter()) {
                for (k, book) in keys {
                    out.insert((event.clone(), dimension, k.clone()), book.national.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Nature, StoreId, TransactionId};

    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn checked_sums_refuse_rather_than_saturate() {
        let t = CurrencyTotals {
            sale_count: 3,
            gross_minor: 300,
            refund_count: 1,
            refunded_minor: 50,
        };
        let part = CurrencyTotals {
            sale_count: 1,
            gross_minor: 100,
            refund_count: 1,
            refunded_minor: 50,
        };
        let rest = t.checked_sub(&part).expect("a part of the sum");
        assert_eq!(rest.checked_add(&part), Some(t));
        assert_eq!(
            (rest.sale_count, rest.gross_minor, rest.refunded_minor),
            (2, 200, 0)
        );
        // Not a part of it: refused, not floored at zero.
        assert_eq!(part.checked_sub(&t), None);
        let big = CurrencyTotals {
            gross_minor: i128::MAX,
            ..CurrencyTotals::default()
        };
        assert_eq!(big.checked_add(&t), None);
        let h = HourlyTotals {
            sale_count: 0,
            net_minor: -40,
        };
        assert_eq!(
            h.checked_sub(&HourlyTotals {
                sale_count: 0,
                net_minor: 60
            }),
            Some(HourlyTotals {
                sale_count: 0,
                net_minor: -100
            })
        );
        assert_eq!(
            h.checked_sub(&HourlyTotals {
                sale_count: 1,
                net_minor: 0
            }),
            None
        );
        assert_eq!(
            HourlyTotals {
                sale_count: 0,
                net_minor: i128::MIN
            }
            .checked_add(&h),
            None
        );
    }

    fn tx(kind: Kind, currency: &str, amount: i64, at: i64) -> ValidTransaction {
        ValidTransaction {
            id: TransactionId::parse("t").expect("id"),
            store_id: StoreId::default(),
            nature: Nature::from_parts(
                kind,
                (kind != Kind::Sale).then(|| TransactionId::parse("s").expect("id")),
            )
            .expect("nature"),
            currency: Currency::parse(currency).expect("currency"),
            amount_minor: amount,
            occurred_at: UnixNanos(at),
            segments: crate::Segments::default(),
        }
    }

    fn branded(t: ValidTransaction, brand: &str, origin: crate::Origin) -> ValidTransaction {
        ValidTransaction {
            segments: crate::Segments {
                brand: (!brand.is_empty()).then(|| crate::Slug::parse(brand).expect("slug")),
                category: None,
                origin,
            },
            ..t
        }
    }

    #[test]
    fn breakdowns_per_site_and_national_with_site_counts() {
        use crate::Origin;
        let (a, b) = (
            SiteId::parse("a").expect("site"),
            SiteId::parse("b").expect("site"),
        );
        let idr = Currency::parse("IDR").expect("IDR");
        let usd = Currency::parse("USD").expect("USD");
        let mut book = TotalsBook::default();
        let rows = [
            (
                &a,
                branded(tx(Kind::Sale, "IDR", 100, 0), "nestle", Origin::Domestic),
            ),
            (
                &a,
                branded(tx(Kind::Sale, "USD", 7, 0), "nestle", Origin::CrossBorder),
            ),
            (
                &a,
                branded(tx(Kind::Refund, "IDR", 30, 0), "nestle", Origin::Domestic),
            ),
            (
                &b,
                branded(tx(Kind::Sale, "IDR", 50, 0), "nestle", Origin::Unspecified),
            ),
            (&b, tx(Kind::Sale, "IDR", 5, 0)),
        ];
        for (site, t) in &rows {
            book.apply("e", site, t).expect("ok");
        }
        let national =
            |d: Dimension, k: &str| book.segments()[&("e".to_owned(), d, k.to_owned())].clone();
        let nestle = national(Dimension::Brand, "nestle");
        assert_eq!(nestle.site_count, 2, "a in two currencies counts once");
        assert_eq!(nestle.totals[&idr].net_minor(), 120);
        assert_eq!(nestle.totals[&usd].net_minor(), 7);
        let none = national(Dimension::Brand, "");
        assert_eq!((none.site_count, none.totals[&idr].net_minor()), (1, 5));
        assert_eq!(
            national(Dimension::Origin, "domestic").totals[&idr].net_minor(),
            70
        );
        assert_eq!(national(Dimension::Origin, "").site_count, 1);
        // Every dimension adds up to the site totals.
        for d in Dimension::ALL {
            let sum: i128 = book
                .segments()
                .iter()
                .filter(|((_, dim, _), _)| *dim == d)
                .filter_map(|(_, f)| f.totals.get(&idr).map(CurrencyTotals::net_minor))
                .sum();
            assert_eq!(sum, 125, "{d}");
            let category = national(Dimension::Category, "");
            assert_eq!(category.site_count, 2);
        }
        let a_nestle = &book.segment_sites()[&(
            "e".to_owned(),
            Dimension::Brand,
            "nestle".to_owned(),
            a.clone(),
        )];
        assert_eq!(a_nestle.len(), 2);
        let changes = book.take_changes();
        // (a: brand nestle IDR/USD, b: nestle IDR, "" IDR) + category (a IDR/USD, b IDR) +
        // origin (a domestic IDR, cross-border USD, b "" IDR).
        assert_eq!(changes.segment_sites.len(), 4 + 3 + 3);
        assert_eq!(changes.segments.len(), 2 + 1 + 3);
        assert!(changes.segment_sites.iter().all(|r| r.3), "all new");

        // Taken once, a figure is stored: it changes again as an existing row, beside a new one.
        let new_of = |changes: &Changes| -> BTreeMap<(Dimension, String, Currency), bool> {
            changes
                .segment_sites
                .iter()
                .filter(|((_, _, _, site), _, _, _)| *site == a)
                .map(|((_, d, k, _), c, _, new)| ((*d, k.clone(), *c), *new))
                .collect()
        };
        let more = [
            branded(tx(Kind::Sale, "IDR", 5, 0), "nestle", Origin::Domestic),
            branded(tx(Kind::Sale, "IDR", 5, 0), "unilever", Origin::Domestic),
        ];
        let mut later = book.clone();
        for t in &more {
            later.apply("e", &a, t).expect("ok");
        }
        let expected = BTreeMap::from([
            ((Dimension::Brand, "nestle".to_owned(), idr), false),
            ((Dimension::Brand, "unilever".to_owned(), idr), true),
            ((Dimension::Category, String::new(), idr), false),
            ((Dimension::Origin, "domestic".to_owned(), idr), false),
        ]);
        assert_eq!(new_of(&later.take_changes()), expected);

        // A restart from the stored per-site rows derives the same national figures, and
        // knows the loaded rows are stored.
        let mut resumed = TotalsBook::default();
        for (k, list) in book.segment_sites() {
            for (c, v) in list {
                resumed.load_segment_site(k.clone(), c, v).expect("load");
            }
        }
        assert_eq!(resumed.segments(), book.segments());
        for t in &more {
            resumed.apply("e", &a, t).expect("ok");
        }
        assert_eq!(new_of(&resumed.take_changes()), expected);
    }

    #[test]
    fn headline_and_breakdown_changes_are_taken_apart_and_add_up_to_all() {
        use crate::Origin;
        let a = SiteId::parse("a").expect("site");
        let rows = [
            branded(tx(Kind::Sale, "IDR", 100, 0), "nestle", Origin::Domestic),
            branded(tx(Kind::Sale, "IDR", 40, 0), "wings", Origin::Domestic),
            branded(tx(Kind::Refund, "IDR", 30, 0), "nestle", Origin::Domestic),
        ];
        let (mut split, mut whole) = (TotalsBook::default(), TotalsBook::default());
        split.apply("e", &a, &rows[0]).expect("ok");
        whole.apply("e", &a, &rows[0]).expect("ok");
        // The headline figures go; the breakdowns wait.
        let headline = split.take_headline_changes();
        assert!(!headline.breakdowns);
        assert!(headline.segment_sites.is_empty() && headline.segments.is_empty());
        assert_eq!((headline.totals.len(), headline.hourly.len()), (1, 1));
        assert_eq!(headline.national_hourly.len(), 1);
        assert!(split.breakdowns_pending());
        for t in &rows[1..] {
            split.apply("e", &a, t).expect("ok");
            whole.apply("e", &a, t).expect("ok");
        }
        // Taken later, the breakdowns hold every row folded, each row once.
        let breakdowns = split.take_breakdown_changes();
        assert!(breakdowns.breakdowns && breakdowns.totals.is_empty());
        assert!(!split.breakdowns_pending());
        let all = whole.take_changes();
        assert!(all.breakdowns);
        assert_eq!(breakdowns.segment_sites, all.segment_sites);
        assert_eq!(breakdowns.segments, all.segments);
        assert_eq!(split.take_headline_changes().totals, all.totals);
        assert_eq!(split, whole);

        // Folding the breakdowns alone (an aggregator whose stored breakdowns trail its
        // totals) changes nothing else.
        let mut behind = TotalsBook::default();
        behind.apply("e", &a, &rows[0]).expect("ok");
        behind.take_changes();
        let totals = behind.totals();
        let hourly = behind.hourly();
        for t in &rows[1..] {
            behind.apply_breakdowns("e", &a, t).expect("ok");
        }
        assert_eq!((behind.totals(), behind.hourly()), (totals, hourly));
        assert_eq!(behind.segments(), whole.segments());
        assert_eq!(behind.segment_sites(), whole.segment_sites());
        let changes = behind.take_changes();
        assert!(changes.totals.is_empty() && changes.hourly.is_empty());
        assert_eq!(changes.segments, all.segments);
    }

    #[test]
    fn folds_sales_and_refunds_per_currency_and_hour() {
        let a = SiteId::parse("a").expect("site");
        let mut book = TotalsBook::default();
        book.apply("e", &a, &tx(Kind::Sale, "IDR", 100, 10))
            .expect("ok");
        book.apply("e", &a, &tx(Kind::Sale, "IDR", 50, HOUR + 5))
            .expect("ok");
        book.apply("e", &a, &tx(Kind::Refund, "IDR", 30, HOUR + 6))
            .expect("ok");
        book.apply("e", &a, &tx(Kind::Sale, "USD", 7, 0))
            .expect("ok");
        let idr = Currency::parse("IDR").expect("IDR");
        let t = book.totals()[&("e".to_owned(), a.clone(), idr)];
        assert_eq!(
            t,
            CurrencyTotals {
                sale_count: 2,
                gross_minor: 150,
                refund_count: 1,
                refunded_minor: 30
            }
        );
        assert_eq!(t.net_minor(), 120);
        assert_eq!(
            book.hourly()[&("e".to_owned(), a.clone(), idr, UnixNanos(0))],
            HourlyTotals {
                sale_count: 1,
                net_minor: 100
            }
        );
        assert_eq!(
            book.hourly()[&("e".to_owned(), a.clone(), idr, UnixNanos(HOUR))],
            HourlyTotals {
                sale_count: 1,
                net_minor: 20
            }
        );
        let changes = book.take_changes();
        assert_eq!((changes.totals.len(), changes.hourly.len()), (2, 3));
        assert_eq!(
            book.take_changes(),
            Changes {
                breakdowns: true,
                ..Changes::default()
            },
            "changes are taken once"
        );
    }

    #[test]
    fn a_refund_alone_in_its_hour_is_negative() {
        let a = SiteId::parse("a").expect("site");
        let mut book = TotalsBook::default();
        book.apply("e", &a, &tx(Kind::Sale, "JPY", 100, 0))
            .expect("ok");
        book.apply("e", &a, &tx(Kind::Refund, "JPY", 40, 5 * HOUR))
            .expect("ok");
        let jpy = Currency::parse("JPY").expect("JPY");
        assert_eq!(
            book.hourly()[&("e".to_owned(), a, jpy, UnixNanos(5 * HOUR))].net_minor,
            -40
        );
    }

    #[test]
    fn a_void_takes_away_exactly_what_its_target_added() {
        let a = SiteId::parse("a").expect("site");
        let idr = Currency::parse("IDR").expect("IDR");
        let sale = branded(
            tx(Kind::Sale, "IDR", 100, 10),
            "nestle",
            crate::Origin::Domestic,
        );
        let refund = ValidTransaction {
            id: TransactionId::parse("r").expect("id"),
            nature: Nature::Refund {
                of: sale.id.clone(),
            },
            amount_minor: 30,
            occurred_at: UnixNanos(HOUR + 1),
            ..sale.clone()
        };
        let other = branded(
            tx(Kind::Sale, "IDR", 40, 20),
            "nestle",
            crate::Origin::Domestic,
        );
        let mut book = TotalsBook::default();
        for row in [&other, &sale, &refund] {
            book.apply("e", &a, row).expect("fold");
        }
        // Voided with its refund: every figure is as if only `other` had been pushed.
        let mut only_other = TotalsBook::default();
        only_other.apply("e", &a, &other).expect("fold");
        for row in [&sale, &refund] {
            let void = row.voided().expect("a sale or a refund is voided");
            assert!(void.kind().is_void());
            assert_eq!(void.id, TransactionId::void_of(&row.id));
            assert_eq!(void.nature.names(), Some(&row.id));
            assert_eq!(void.voided(), None, "a void is never voided");
            book.apply("e", &a, &void).expect("fold");
        }
        assert_eq!(book.totals(), only_other.totals());
        // The refund's hour keeps a row at zero; the figures per hour are the same.
        let hourly: BTreeMap<_, _> = book
            .hourly()
            .into_iter()
            .filter(|(_, h)| *h != HourlyTotals::default())
            .collect();
        assert_eq!(hourly, only_other.hourly());
        assert_eq!(
            book.national_hourly()
                .into_iter()
                .filter(|(_, h)| *h != HourlyTotals::default())
                .collect::<BTreeMap<_, _>>(),
            only_other.national_hourly()
        );
        let brand = ("e".to_owned(), Dimension::Brand, "nestle".to_owned());
        assert_eq!(
            book.segments()[&brand].totals[&idr],
            only_other.segments()[&brand].totals[&idr]
        );
        let t = book.totals()[&("e".to_owned(), a.clone(), idr)];
        assert_eq!((t.sale_count, t.gross_minor, t.refund_count), (1, 40, 0));
        // A void of a row the figures never held is a broken bound, never a negative figure.
        let mut empty = TotalsBook::default();
        let e = empty
            .apply("e", &a, &sale.voided().expect("void"))
            .expect_err("nothing to take away");
        assert_eq!(e.what, "sales voided");
    }

    #[test]
    fn sums_past_i64_are_exact() {
        // What used to stop the aggregator for every site: one site's gross past i64::MAX.
        let a = SiteId::parse("a").expect("site");
        let mut book = TotalsBook::default();
        for _ in 0..10_000 {
            book.apply("e", &a, &tx(Kind::Sale, "IDR", 1_000_000_000_000_000, 0))
                .expect("fits");
        }
        book.apply("e", &a, &tx(Kind::Refund, "IDR", i64::MAX, 0))
            .expect("fits");
        let idr = Currency::parse("IDR").expect("IDR");
        let t = book.totals()[&("e".to_owned(), a.clone(), idr)];
        assert_eq!(t.gross_minor, 10_000_000_000_000_000_000);
        assert_eq!(
            t.net_minor(),
            10_000_000_000_000_000_000 - i128::from(i64::MAX)
        );
        assert_eq!(
            book.hourly()[&("e".to_owned(), a, idr, UnixNanos(0))].net_minor,
            t.net_minor()
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::{Nature, StoreId, TransactionId};

    fn rows() -> impl Strategy<Value = Vec<(u8, ValidTransaction)>> {
        proptest::collection::vec(
            (
                0u8..3,
                any::<bool>(),
                prop_oneof![Just("IDR"), Just("USD"), Just("JPY")],
                1..=i64::MAX,
                0i64..(10 * 3_600_000_000_000),
            ),
            0..60,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(site, refund, currency, amount, at)| {
                    let nature = if refund {
                        Nature::Refund {
                            of: TransactionId::parse("s").expect("id"),
                        }
                    } else {
                        Nature::Sale
                    };
                    (
                        site,
                        ValidTransaction {
                            id: TransactionId::parse("t").expect("id"),
                            store_id: StoreId::default(),
                            nature,
                            currency: Currency::parse(currency).expect("currency"),
                            amount_minor: amount,
                            occurred_at: UnixNanos(at),
                            segments: crate::Segments {
                                brand: Some(
                                    crate::Slug::parse(["x", "y", "z"][usize::from(site % 3)])
                                        .expect("slug"),
                                )
                                .filter(|_| !refund),
                                category: None,
                                origin: if at % 2 == 0 {
                                    crate::Origin::Domestic
                                } else {
                                    crate::Origin::Unspecified
                                },
                            },
                        },
                    )
                })
                .collect()
        })
    }

    fn fold<'a>(book: &mut TotalsBook, rows: impl IntoIterator<Item = &'a (u8, ValidTransaction)>) {
        for (site, tx) in rows {
            let site = SiteId::parse(&format!("site-{site}")).expect("site");
            book.apply("e", &site, tx)
                .expect("an i128 fold of i64 amounts never overflows");
        }
    }

    proptest! {
        /// Folding in any order, and in any split (as the aggregator does batch by batch, and
        /// after a restart from stored totals), gives the same totals as one fold; even with
        /// amounts near i64::MAX, nothing overflows.
        #[test]
        fn any_order_and_split_gives_the_same_totals(
            rows in rows(),
            split in any::<prop::sample::Index>(),
            seed in any::<u64>(),
        ) {
            let mut whole = TotalsBook::default();
            fold(&mut whole, &rows);

            let at = split.index(rows.len() + 1);
            let mut first = TotalsBook::default();
            fold(&mut first, &rows[..at]);
            first.take_changes();
            // A restart: a new book loaded with what the first one stored.
            let mut resumed = TotalsBook::default();
            for (k, v) in first.totals() {
                resumed.load_totals(k.clone(), v);
            }
            for (k, v) in first.hourly() {
                resumed.load_hourly(k.clone(), v).expect("load");
            }
            for (k, list) in first.segment_sites() {
                for (c, v) in list {
                    resumed.load_segment_site(k.clone(), c, v).expect("load");
                }
            }
            fold(&mut resumed, &rows[at..]);
            prop_assert_eq!(resumed.totals(), whole.totals());
            prop_assert_eq!(resumed.hourly(), whole.hourly());
            prop_assert_eq!(resumed.segment_sites(), whole.segment_sites());
            prop_assert_eq!(resumed.segments(), whole.segments());
            prop_assert_eq!(resumed.national_hourly(), whole.national_hourly());
            // The national hours are the sites' hours summed.
            let mut summed: BTreeMap<NationalHourKey, HourlyTotals> = BTreeMap::new();
            for ((e, _, c, h), v) in whole.hourly() {
                let n = summed.entry((e, c, h)).or_default();
                *n = n.checked_add(&v).expect("sum");
            }
            prop_assert_eq!(whole.national_hourly(), summed);

            let mut shuffled = rows.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, usize::try_from(state % (i as u64 + 1)).unwrap_or(0));
            }
            let mut reordered = TotalsBook::default();
            fold(&mut reordered, &shuffled);
            prop_assert_eq!(reordered.totals(), whole.totals());
            prop_assert_eq!(reordered.hourly(), whole.hourly());
            prop_assert_eq!(reordered.segments(), whole.segments());
            prop_assert_eq!(reordered.national_hourly(), whole.national_hourly());
        }
    }
}
