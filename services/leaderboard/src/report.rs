//! The official report of an event (issue 29, `AdminService.GetEventReport`, `/report/EVENT`):
//! the figures of one snapshot (those every other view shows, the same generation and
//! watermark), and one pass over the event's ledger rows up to that watermark
//! ([`saleboard_domain::report::Scan`]) that checks the snapshot's stored totals against the
//! ledger and adds what only the ledger holds. This is the one place the leaderboard reads the
//! ledger, through [`Reports`]: one report made at a time, in a task of its own (a request
//! that times out does not stop it; the next one gets the result), the pass kept per event so
//! the next report of it reads only the rows since, and reports kept (a closed event's until
//! an admin call, a live one's for the public page [`PROVISIONAL_REUSE`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use saleboard_domain::report::{Scan, growth_percent, milestones, peak, to_reporting};
use saleboard_domain::totals::CurrencyTotals;
use saleboard_domain::{Currency, EventState, Rate, SiteId, UnixNanos};
use saleboard_proto::v1::{
    EventReport, ExchangeRate, ReportComparison, ReportCurrency, ReportFlagCount, ReportHeadline,
    ReportHour, ReportIntegrity, ReportKey, ReportMilestone, ReportPeaks, ReportSettlement,
    ReportSite, ReportStatus, ReportVerification,
};
use saleboard_storage::{StorageError, Store};

use crate::board::Board;
use crate::messages::{event_msg, timestamp};

/// Ledger rows read per page.
const PAGE: u32 = 50_000;

/// How long the public page reuses a provisional report of an event whose figures moved.
pub const PROVISIONAL_REUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// The milestones a report names (the largest powers of ten passed).
const MILESTONES: usize = 6;

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No such event (or baseline).
    #[error("{0}")]
    NotFound(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Another event's report is being made just now (one at a time).
    #[error(
        "the report of event {event:?} is being made ({read} of {of} ledger positions read); ask again in a few seconds"
    )]
    Busy {
        /// The event whose report is being made.
        event: String,
        /// Positions read.
        read: u64,
        /// Positions to read.
        of: u64,
    },
    /// The report is being made, and was not done in time: it goes on; ask again.
    #[error(
        "the report is being made ({read} of {of} ledger positions read); ask again in a few seconds"
    )]
    InProgress {
        /// Positions read.
        read: u64,
        /// Positions to read.
        of: u64,
    },
    /// Making it failed (the message says why).
    #[error("the report could not be made: {0}")]
    Failed(String),
    /// The ledger holds what the fold cannot (a figure past its bounds).
    #[error("the ledger cannot be folded: {0}")]
    Fold(String),
}

fn decimal(v: i128) -> String {
    v.to_string()
}

/// `a + b`, or the report's failure naming `what` (figures are `i128` sums of `i64` amounts:
/// unreachable while the ledger holds fewer than 2^63 rows; checked, never wrapped).
fn add(a: i128, b: i128, what: &str) -> Result<i128, ReportError> {
    a.checked_add(b)
        .ok_or_else(|| ReportError::Fold(format!("the {what} would overflow")))
}

/// The sum of `totals` converted into `reporting` (each half to even); a currency without a
/// rate is left out, as every converted figure leaves it out.
fn converted_sum<'a>(
    totals: impl IntoIterator<Item = (&'a Currency, i128)>,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
    what: &str,
) -> Result<i128, ReportError> {
    let mut sum = 0_i128;
    for (c, v) in totals {
        if c != &reporting && !rates.contains_key(c) {
            continue;
        }
        let converted = to_reporting(v, *c, rates, reporting)
            .ok_or_else(|| ReportError::Fold(format!("the {what} in {c} cannot be converted")))?;
        sum = add(sum, converted, what)?;
    }
    Ok(sum)
}

/// How far a report being made has read: ledger positions read, of how many.
#[derive(Debug, Default)]
pub struct Progress {
    read: AtomicU64,
    of: AtomicU64,
}

impl Progress {
    /// (positions read, positions to read).
    #[must_use]
    pub fn get(&self) -> (u64, u64) {
        (
            self.read.load(Ordering::Relaxed),
            self.of.load(Ordering::Relaxed),
        )
    }
}

/// Makes the report of `event_id` (empty: the current event), compared with `baseline_id`
/// (empty: the event's own baseline, if any), at `now`, reading the whole ledger.
///
/// # Errors
/// [`ReportError::NotFound`] for an unknown event or baseline; storage errors.
pub async fn build(
    store: &dyn Store,
    board: &Board,
    event_id: &str,
    baseline_id: &str,
    now: UnixNanos,
) -> Result<EventReport, ReportError> {
    build_with(
        store,
        board,
        event_id,
        baseline_id,
        now,
        None,
        &Progress::default(),
    )
    .await
    .map(|(report, _)| report)
}

/// The national curve recomputed from `scan`'s rows (every site's hours less the disabled
/// sites', converted by the board's `national_curve`) against the one `f` shows: a line per
/// hour that differs. Hours whose net is zero are passed over on both sides (a sale and its
/// void leave an hour with nothing, which storage may or may not keep as a row).
fn recheck_hourly(
    scan: &Scan,
    event_id: &str,
    disabled: &BTreeSet<SiteId>,
    f: &crate::snapshot::Figures,
    reporting: Currency,
) -> Result<Vec<String>, ReportError> {
    let national: Vec<_> = scan
        .book
        .national_hourly()
        .into_iter()
        .filter(|((e, _, _), _)| e == event_id)
        .map(|((_, currency, hour), h)| (currency, hour, h))
        .collect();
    let mut off = saleboard_domain::curve::Hours::new();
    for ((e, site, currency, hour), h) in scan.book.hourly() {
        if e == event_id && disabled.contains(&site) {
            saleboard_domain::curve::add_hours(&mut off, &[(currency, hour, h)])
                .map_err(|e| ReportError::Fold(e.to_string()))?;
        }
    }
    let curve = saleboard_domain::curve::national_curve(&national, &off, &f.rates, reporting)
        .map_err(|e| ReportError::Fold(e.to_string()))?;
    let by_hour = |c: &[saleboard_domain::curve::HourNet]| -> BTreeMap<UnixNanos, Option<i128>> {
        c.iter()
            .filter(|h| h.net_reporting_minor != Some(0))
            .map(|h| (h.hour_start, h.net_reporting_minor))
            .collect()
    };
    let (shown, ledger) = (by_hour(&f.hourly), by_hour(&curve));
    let hours: BTreeSet<_> = shown.keys().chain(ledger.keys()).collect();
    let say = |v: Option<&Option<i128>>| match v {
        None => "nothing".to_owned(),
        Some(None) => "out of range".to_owned(),
        Some(Some(n)) => format!("net {n}"),
    };
    Ok(hours
        .into_iter()
        .filter(|h| shown.get(h) != ledger.get(h))
        .map(|h| {
            format!(
                "national net in the hour starting {}: stored {}, ledger says {}",
                h.to_rfc3339(),
                say(shown.get(h)),
                say(ledger.get(h))
            )
        })
        .collect())
}

/// The breakdowns recomputed from `scan`'s rows up to their watermark (every site's keys less
/// the disabled sites', ranked by the board's `Breakdowns::rank`) against the ones `f` shows:
/// a line per key that differs.
fn recheck_breakdowns(
    scan: &Scan,
    event_id: &str,
    disabled: &BTreeSet<SiteId>,
    f: &crate::snapshot::Figures,
    reporting: Currency,
) -> Vec<String> {
    use crate::snapshot::{Breakdowns, SegmentMap, add_disabled_site, enabled_segments};
    let national: SegmentMap = scan
        .breakdowns
        .segments()
        .into_iter()
        .filter(|((e, _, _), _)| e == event_id)
        .map(|((_, dimension, key), figures)| ((dimension, key), figures))
        .collect();
    let mut off = SegmentMap::new();
    let mut rows: BTreeMap<SiteId, Vec<saleboard_storage::SegmentSiteRow>> = BTreeMap::new();
    for ((e, dimension, key, site), list) in scan.breakdowns.segment_sites() {
        if e == event_id && disabled.contains(&site) {
            for (currency, t) in list {
                rows.entry(site.clone()).or_default().push((
                    site.clone(),
                    dimension,
                    key.clone(),
                    currency,
                    t,
                ));
            }
        }
    }
    for site_rows in rows.values() {
        add_disabled_site(&mut off, site_rows);
    }
    let ledger = Breakdowns::rank(
        &enabled_segments(&Arc::new(national), &off),
        &f.rates,
        reporting,
    );
    let mut out = Vec::new();
    for dimension in saleboard_domain::Dimension::ALL {
        let keyed = |b: &Breakdowns| -> BTreeMap<String, saleboard_domain::ranking::RankedKey> {
            b.get(dimension)
                .entries
                .iter()
                .map(|k| (k.key.clone(), k.clone()))
                .collect()
        };
        let (shown, again) = (keyed(&f.breakdowns), keyed(&ledger));
        let keys: BTreeSet<_> = shown.keys().chain(again.keys()).collect();
        let say = |k: Option<&saleboard_domain::ranking::RankedKey>| {
            k.map_or_else(
                || "nothing".to_owned(),
                |k| {
                    format!(
                        "net {}, {} sales, {} refunds, {} sites",
                        k.net_reporting_minor, k.sale_count, k.refund_count, k.site_count
                    )
                },
            )
        };
        for key in keys {
            let (s, l) = (shown.get(key), again.get(key));
            if s != l {
                out.push(format!(
                    "{dimension} {key:?}: stored {}, ledger says {}",
                    say(s),
                    say(l)
                ));
            }
        }
    }
    out
}

/// As [`build`], going on from `kept` (an earlier pass over the same event's rows, when it
/// counts them as this one would: see [`Scan::counts_as`]), telling `progress` how far it
/// read. Returns the pass too, to be kept for the next report.
///
/// # Errors
/// As [`build`].
#[allow(clippy::too_many_lines)]
pub async fn build_with(
    store: &dyn Store,
    board: &Board,
    event_id: &str,
    baseline_id: &str,
    now: UnixNanos,
    kept: Option<Scan>,
    progress: &Progress,
) -> Result<(EventReport, Scan), ReportError> {
    let events = store.events().await?;
    let event = if event_id.is_empty() {
        events.current(now).ok_or_else(|| {
            ReportError::NotFound("no event is configured or current: name the event".into())
        })?
    } else {
        events.get(event_id).ok_or_else(|| {
            ReportError::NotFound(format!(
                "event {:?} does not exist",
                saleboard_domain::ids::excerpt(event_id)
            ))
        })?
    }
    .clone();
    let baseline_id = if baseline_id.is_empty() {
        event.baseline_event_id.clone()
    } else {
        if events.get(baseline_id).is_none() {
            return Err(ReportError::NotFound(format!(
                "baseline event {:?} does not exist",
                saleboard_domain::ids::excerpt(baseline_id)
            )));
        }
        baseline_id.to_owned()
    };
    let snapshot = board.of_event(&event.event_id).await?.ok_or_else(|| {
        ReportError::NotFound(format!("event {:?} does not exist", event.event_id))
    })?;
    let f = &snapshot.figures;
    let reporting = event.reporting_currency;
    let rates = &f.rates;

    let disabled: BTreeSet<SiteId> = f
        .sites
        .iter()
        .filter(|s| s.disabled_at.is_some())
        .map(|s| s.site_id.clone())
        .collect();
    let mut scan = match kept {
        Some(scan)
            if scan.counts_as(&event.event_id, event.ends_at, &disabled)
                && scan.read_through <= f.watermark
                && scan.breakdowns_through <= f.breakdown_watermark =>
        {
            scan
        }
        _ => Scan::new(&event.event_id, event.ends_at, disabled.clone()),
    };
    scan.breakdowns_to(f.breakdown_watermark)
        .map_err(|e| ReportError::Fold(e.to_string()))?;
    let mut after = scan.read_through;
    progress.of.store(f.watermark, Ordering::Relaxed);
    'read: while after < f.watermark {
        progress.read.store(after, Ordering::Relaxed);
        let rows = store.read_ledger(after, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            if row.position > f.watermark {
                break 'read;
            }
            scan.add(
                row.position,
                &row.event_id,
                &row.site,
                row.received_at,
                &row.tx,
            )
            .map_err(|e| ReportError::Fold(e.to_string()))?;
            after = row.position;
        }
    }

    // Closed is final only once every row of the event is in the figures: no row of it above
    // the snapshot's watermark (the aggregator may still have been folding at the close).
    let mut complete = true;
    if event.state(now) == EventState::Closed {
        let head = store.ledger_head().await?;
        let mut after = f.watermark;
        'tail: while after < head {
            let rows = store.read_ledger(after, PAGE).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                if row.event_id == event.event_id {
                    complete = false;
                    break 'tail;
                }
                after = row.position;
            }
        }
    }
    // (The breakdowns carry their own watermark: they too must hold every row.)
    complete &= f.breakdown_watermark >= scan.last_position;
    let final_ = event.state(now) == EventState::Closed && complete;

    // The check: the event's totals recomputed from its rows against the snapshot's.
    let mut differences = Vec::new();
    let mut recomputed: BTreeMap<(SiteId, Currency), CurrencyTotals> = BTreeMap::new();
    for ((e, site, currency), t) in scan.book.totals() {
        if e == event.event_id && t != CurrencyTotals::default() {
            recomputed.insert((site, currency), t);
        }
    }
    let stored: BTreeMap<(SiteId, Currency), CurrencyTotals> = f
        .totals
        .iter()
        .flat_map(|(s, m)| m.iter().map(move |(c, t)| ((s.clone(), *c), *t)))
        .filter(|(_, t)| *t != CurrencyTotals::default())
        .collect();
    let differing: BTreeSet<_> = stored.keys().chain(recomputed.keys()).cloned().collect();
    for key in differing {
        let (s, r) = (stored.get(&key), recomputed.get(&key));
        if s != r {
            let describe = saleboard_domain::totals::describe;
            differences.push(format!(
                "site {} {}: stored {}, ledger says {}",
                key.0,
                key.1,
                describe(s),
                describe(r)
            ));
        }
    }

    // The national curve and the breakdowns the report shows, recomputed from the same rows
    // by the board's own functions (the breakdowns up to their own watermark).
    let hourly_differences = recheck_hourly(&scan, &event.event_id, &disabled, f, reporting)?;
    let breakdown_differences = recheck_breakdowns(&scan, &event.event_id, &disabled, f, reporting);
    let (totals_match, hourly_match, breakdowns_match) = (
        differences.is_empty(),
        hourly_differences.is_empty(),
        breakdown_differences.is_empty(),
    );
    differences.extend(hourly_differences);
    differences.extend(breakdown_differences);

    // The sites: the final ranking (ranked, then held, then without a transaction).
    // A final report lists the sites that took part (a row in the event), not the sites
    // registered since; a provisional one every enabled site.
    let counted: Vec<_> = f
        .entries
        .iter()
        .chain(&f.held)
        .filter(|e| !final_ || f.totals.contains_key(&e.site_id))
        .collect();
    let held: BTreeSet<&SiteId> = f.held.iter().map(|e| &e.site_id).collect();
    // The enabled sites' figures from `by_site` (a held site counted nationally, not ranked,
    // as the board ranks them).
    let figures_of = |by_site: &dyn Fn(&SiteId) -> Option<BTreeMap<Currency, CurrencyTotals>>| {
        f.sites
            .iter()
            .filter(|s| s.disabled_at.is_none())
            .filter_map(|s| {
                by_site(&s.site_id).map(|totals| saleboard_domain::ranking::SiteFigures {
                    site_id: s.site_id.clone(),
                    display_name: s.display_name.clone(),
                    totals,
                    held: held.contains(&s.site_id),
                })
            })
            .collect::<Vec<_>>()
    };
    let at_end = saleboard_domain::ranking::rank(
        figures_of(&|site| scan.at_end.get(site).cloned()),
        rates,
        reporting,
    );
    // The national figure again, from the ledger's own totals.
    let mut ledger_sites: BTreeMap<SiteId, BTreeMap<Currency, CurrencyTotals>> = BTreeMap::new();
    for ((e, site, currency), t) in scan.book.totals() {
        if e == event.event_id {
            ledger_sites.entry(site).or_default().insert(currency, t);
        }
    }
    let ledger_national = saleboard_domain::ranking::rank(
        figures_of(&|site| ledger_sites.get(site).cloned()),
        rates,
        reporting,
    )
    .national_net_reporting_minor;
    let at_end: BTreeMap<&SiteId, (u32, i64)> = at_end
        .entries
        .iter()
        .map(|e| (&e.site_id, (e.rank, e.net_reporting_minor)))
        .collect();
    let (mut gross, mut refunded) = (0_i128, 0_i128);
    let (mut sale_count, mut refund_count) = (0_u64, 0_u64);
    let (mut late_total, mut late_count) = (0_i128, 0_u64);
    let mut sites = Vec::with_capacity(counted.len());
    let empty = BTreeMap::new();
    for entry in &counted {
        let totals = f.totals.get(&entry.site_id).unwrap_or(&empty);
        let in_national = entry.out_of_range.is_empty();
        if in_national {
            let site_gross = converted_sum(
                totals.iter().map(|(c, t)| (c, t.gross_minor)),
                rates,
                reporting,
                "gross",
            )?;
            gross = add(gross, site_gross, "gross")?;
            let site_refunded = converted_sum(
                totals.iter().map(|(c, t)| (c, t.refunded_minor)),
                rates,
                reporting,
                "refunded",
            )?;
            refunded = add(refunded, site_refunded, "refunded")?;
            sale_count = sale_count.saturating_add(entry.sale_count);
            refund_count = refund_count.saturating_add(entry.refund_count);
        }
        let late = scan.late_refunds.get(&entry.site_id);
        let late_site = match late {
            Some(m) => converted_sum(
                m.iter().map(|(c, t)| (c, t.refunded_minor)),
                rates,
                reporting,
                "refunded after the end",
            )?,
            None => 0,
        };
        if let Some(m) = late {
            late_count = late_count.saturating_add(m.values().map(|t| t.refund_count).sum());
        }
        late_total = add(late_total, late_site, "refunded after the end")?;
        let (rank_at_end, net_at_end) = at_end.get(&entry.site_id).copied().unwrap_or((0, 0));
        sites.push(ReportSite {
            rank: entry.rank,
            site_id: entry.site_id.to_string(),
            display_name: entry.display_name.clone(),
            net_minor: decimal(i128::from(entry.net_reporting_minor)),
            rank_at_end,
            net_at_end_minor: decimal(i128::from(net_at_end)),
            held: held.contains(&entry.site_id),
            out_of_range: !in_national,
            unconverted_currencies: entry
                .unconverted_currencies
                .iter()
                .map(ToString::to_string)
                .collect(),
            currencies: totals
                .iter()
                .map(|(c, t)| ReportCurrency {
                    currency: c.to_string(),
                    sale_count: t.sale_count,
                    gross_minor: decimal(t.gross_minor),
                    refund_count: t.refund_count,
                    refunded_minor: decimal(t.refunded_minor),
                    net_minor: decimal(t.net_minor()),
                })
                .collect(),
            late_refunded_minor: decimal(late_site),
        });
    }
    // Ranked sites first by rank, then held, then those without a transaction (rank 0).
    sites.sort_by_key(|s| {
        let group = if s.held {
            1
        } else if s.rank == 0 {
            2
        } else {
            0
        };
        (group, s.rank)
    });
    let net = f.national_net_reporting_minor;
    let mut site_sum = 0_i128;
    for entry in counted.iter().filter(|e| e.out_of_range.is_empty()) {
        site_sum = add(
            site_sum,
            i128::from(entry.net_reporting_minor),
            "national net",
        )?;
    }

    let sending = f
        .totals
        .iter()
        .filter(|(s, m)| {
            !disabled.contains(*s) && m.values().any(|t| *t != CurrencyTotals::default())
        })
        .count();
    let (flags, undecided) = store.list_flags(&event.event_id, None, None).await?;
    let mut flag_counts: BTreeMap<(i32, i32), u32> = BTreeMap::new();
    for flag in &flags {
        *flag_counts
            .entry((
                crate::admin::rule_msg(flag.rule) as i32,
                crate::admin::flag_state_msg(flag.state) as i32,
            ))
            .or_default() += 1;
    }
    let adjustments: Vec<_> = store
        .list_actions(
            Some(&event.event_id),
            Some(saleboard_domain::action::ActionState::Applied),
        )
        .await?
        .into_iter()
        .filter(|a| a.kind == saleboard_domain::action::ActionKind::Adjust)
        .collect();
    let voided_net = converted_sum(
        scan.voids.iter().map(|(c, t)| (c, t.net_minor())),
        rates,
        reporting,
        "voided net",
    )?;
    let with_sales = f
        .totals
        .iter()
        .filter(|(s, m)| !disabled.contains(*s) && m.values().any(|t| t.sale_count > 0))
        .count();
    let with_sales = u32::try_from(with_sales).unwrap_or(u32::MAX);

    let minutes = scan.minute_nets(rates, reporting);
    let hourly: Vec<(UnixNanos, Option<i128>)> = f
        .hourly
        .iter()
        .map(|h| (h.hour_start, h.net_reporting_minor))
        .collect();
    let peak_hour = peak(&hourly);
    let peak_minute = peak(&minutes);
    let peak_second = scan.peak_second();

    let comparison = if baseline_id.is_empty() {
        None
    } else {
        comparison(
            store,
            board,
            &event,
            rates,
            &baseline_id,
            &events,
            (f.watermark, now),
            net,
        )
        .await?
    };
    let (audit_position, audit_sha256) = if final_ {
        audit_at(store, event.closes_at).await?
    } else {
        store.audit_head().await?
    };
    let watermark = if final_ {
        scan.last_position
    } else {
        f.watermark
    };
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let report = EventReport {
        status: if final_ {
            ReportStatus::Final
        } else {
            ReportStatus::Provisional
        } as i32,
        event: Some(event_msg(&event, now)),
        watermark,
        as_of: (!final_).then(|| timestamp(snapshot.as_of)),
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
        headline: Some(ReportHeadline {
            gross_minor: decimal(gross),
            refunded_minor: decimal(refunded),
            net_minor: decimal(net),
            sale_count,
            refund_count,
            // A final report counts the sites registered by the close.
            registered_sites: count(
                f.sites
                    .iter()
                    .filter(|s| !final_ || s.created_at <= event.closes_at)
                    .count(),
            ),
            sending_sites: count(sending),
            held_sites: count(f.held.len()),
            disabled_sites: count(disabled.len()),
            undecided_sites: undecided,
            rounding_difference_minor: decimal(net.saturating_sub(gross.saturating_sub(refunded))),
        }),
        comparison,
        sites,
        brands: keys(f, saleboard_domain::Dimension::Brand),
        categories: keys(f, saleboard_domain::Dimension::Category),
        origins: keys(f, saleboard_domain::Dimension::Origin),
        hourly: hourly
            .iter()
            .map(|(at, v)| ReportHour {
                hour_start: Some(timestamp(*at)),
                net_minor: v.map(decimal).unwrap_or_default(),
            })
            .collect(),
        peaks: Some(ReportPeaks {
            peak_hour_start: peak_hour.map(|p| timestamp(p.0)),
            peak_hour_net_minor: peak_hour.map(|p| decimal(p.1)).unwrap_or_default(),
            peak_minute_start: peak_minute.map(|p| timestamp(p.0)),
            peak_minute_net_minor: peak_minute.map(|p| decimal(p.1)).unwrap_or_default(),
            peak_second_start: peak_second.map(|p| timestamp(p.0)),
            peak_second_transactions: peak_second.map_or(0, |p| p.1),
        }),
        milestones: milestones(&minutes, reporting.exponent(), MILESTONES)
            .into_iter()
            .map(|(threshold, at)| ReportMilestone {
                threshold_minor: decimal(threshold),
                passed_at: Some(timestamp(at)),
            })
            .collect(),
        settlement: Some(ReportSettlement {
            late_refunded_minor: decimal(late_total),
            late_refund_count: late_count,
        }),
        integrity: Some(ReportIntegrity {
            flags: flag_counts
                .into_iter()
                .map(|((rule, state), count)| ReportFlagCount { rule, state, count })
                .collect(),
            held_sites: f.held.iter().map(|e| e.site_id.to_string()).collect(),
            adjustments: count(adjustments.len()),
            voided_rows: adjustments.iter().map(|a| a.adjustment.voided_rows).sum(),
            voided_net_minor: decimal(voided_net),
            decided_sites: with_sales.saturating_sub(undecided),
            sites: with_sales,
        }),
        verification: Some(ReportVerification {
            first_position: scan.first_position.unwrap_or(0),
            last_position: scan.last_position,
            rows: scan.rows,
            totals_match_ledger: totals_match,
            hourly_match_ledger: hourly_match,
            breakdowns_match_ledger: breakdowns_match,
            differences,
            sites_add_up: site_sum == net,
            national_matches_ledger: ledger_national == net,
            complete,
            audit_position,
            audit_sha256,
        }),
        rates: rate_msgs(rates),
        breakdown_watermark: if final_ {
            watermark
        } else {
            f.breakdown_watermark
        },
        unconverted_currencies: f
            .unconverted_currencies()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    Ok((report, scan))
}

/// The audit log's entry at `at`: the last one made at or before it (position 0 and the
/// genesis hash for none). A final report names the log as it was at the close, so later
/// admin calls (of any event) do not change it.
async fn audit_at(store: &dyn Store, at: UnixNanos) -> Result<(u64, String), ReportError> {
    let mut last = (0, saleboard_domain::audit::GENESIS.to_owned());
    let mut after = 0;
    loop {
        let page = store
            .audit_log(&saleboard_storage::AuditQuery {
                after,
                organizer: None,
                since: None,
                limit: 1_000,
            })
            .await?;
        let Some(tail) = page.last() else {
            return Ok(last);
        };
        after = tail.position;
        for entry in &page {
            if entry.at > at {
                return Ok(last);
            }
            last = (entry.position, entry.sha256.clone());
        }
    }
}

fn rate_msgs(rates: &BTreeMap<Currency, Rate>) -> Vec<ExchangeRate> {
    rates
        .iter()
        .map(|(c, r)| ExchangeRate {
            currency: c.to_string(),
            rate: r.to_string(),
        })
        .collect()
}

fn keys(f: &crate::snapshot::Figures, dimension: saleboard_domain::Dimension) -> Vec<ReportKey> {
    f.breakdowns
        .get(dimension)
        .entries
        .iter()
        .map(|k| ReportKey {
            rank: k.rank,
            key: k.key.clone(),
            net_minor: decimal(i128::from(k.net_reporting_minor)),
            sale_count: k.sale_count,
            refund_count: k.refund_count,
            site_count: k.site_count,
            out_of_range: !k.out_of_range.is_empty(),
        })
        .collect()
}

/// The comparison with `baseline_id`, by the board's (the domain's) one rule.
#[allow(clippy::too_many_arguments)]
async fn comparison(
    store: &dyn Store,
    board: &Board,
    event: &saleboard_domain::Event,
    rates: &BTreeMap<Currency, Rate>,
    baseline_id: &str,
    events: &saleboard_domain::Events,
    (watermark, now): (u64, UnixNanos),
    net: i128,
) -> Result<Option<ReportComparison>, ReportError> {
    let Some(compared) = board
        .compare(event, rates, baseline_id, events, (watermark, None))
        .await?
    else {
        return Ok(None);
    };
    let Some(baseline) = events.get(baseline_id) else {
        return Ok(None);
    };
    let baseline_rates: BTreeMap<Currency, Rate> = store
        .list_exchange_rates(baseline_id)
        .await?
        .into_iter()
        .collect();
    let length = |a: UnixNanos, b: UnixNanos| {
        let minutes = b.0.saturating_sub(a.0) / 60_000_000_000;
        match (minutes / 60, minutes % 60) {
            (h, 0) => format!("{h} hours"),
            (h, m) => format!("{h} hours {m} minutes"),
        }
    };
    let (this_w, base_w) = (
        length(event.starts_at, event.ends_at),
        length(baseline.starts_at, baseline.ends_at),
    );
    let ended = now >= event.ends_at;
    let mut windows = if this_w == base_w {
        format!("Both windows last {this_w}.")
    } else {
        format!(
            "This event's window lasts {this_w}, the baseline's {base_w}: the figures are not for windows of the same length."
        )
    };
    windows.push_str(if ended {
        " The window has ended: the baseline's figure is its whole net."
    } else {
        " The window has not ended: the baseline's figure is its net over the same time since its own start (whole hours, the hour in progress pro rata)."
    });
    if event.reporting_currency != baseline.reporting_currency {
        windows.push_str(&format!(
            " The baseline reported in {}; its figures are converted with its own rates into {}, then with this event's rates.",
            baseline.reporting_currency, event.reporting_currency
        ));
    }
    let (baseline_net, growth, unconverted) = match &compared.figure {
        Ok(b) => (
            decimal(b.national),
            growth_percent(net, b.national).unwrap_or_default(),
            b.unconverted.iter().map(ToString::to_string).collect(),
        ),
        Err(missing) => (
            String::new(),
            String::new(),
            missing.iter().map(ToString::to_string).collect(),
        ),
    };
    Ok(Some(ReportComparison {
        baseline_event_id: baseline_id.to_owned(),
        baseline_display_name: baseline.display_name.clone(),
        baseline_net_minor: baseline_net,
        growth_percent: growth,
        formula: "growth = (net / baseline net - 1) x 100%, rounded half to even to 0.01%"
            .to_owned(),
        baseline_rates: rate_msgs(&baseline_rates),
        baseline_reporting_currency: baseline.reporting_currency.to_string(),
        windows,
        unconverted_currencies: unconverted,
    }))
}

/// A report kept: its page (made on first use), when it was made, the board's epoch then.
struct KeptReport {
    report: Arc<EventReport>,
    page: std::sync::OnceLock<String>,
    made: Instant,
    epoch: u64,
}

/// The report being made.
struct Making {
    key: (String, String),
    progress: Arc<Progress>,
    done: tokio::sync::watch::Receiver<Option<Result<Arc<KeptReport>, String>>>,
}

#[derive(Default)]
struct State {
    kept: BTreeMap<(String, String), Arc<KeptReport>>,
    /// Each event's last pass over its rows, to go on from.
    scans: BTreeMap<String, Scan>,
    making: Option<Making>,
}

/// Who asks: an organizer (wants the figures as they are now) or the public page (takes a
/// provisional report up to [`PROVISIONAL_REUSE`] old).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// `GetEventReport`.
    Organizer,
    /// `/report/{event}`.
    Public,
}

/// The reports of a leaderboard process: one made at a time, in a task of its own; each
/// event's pass over its rows kept, so the next report reads only the rows since; reports
/// kept (see [`Reports::get`]).
pub struct Reports {
    store: Arc<dyn Store>,
    board: Arc<Board>,
    state: std::sync::Mutex<State>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

/// Events whose pass is kept (the oldest forgotten past it).
const SCANS_KEPT: usize = 8;

impl Reports {
    /// Reports of `board`'s figures and `store`'s ledger.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, board: Arc<Board>) -> Arc<Self> {
        Arc::new(Self {
            store,
            board,
            state: std::sync::Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The report of `event_id` (empty: the current event) compared with `baseline_id`
    /// (empty: its own baseline), waiting at most `wait` for it to be made. A kept report is
    /// given when it is still right: made in the same epoch (no admin call since) and FINAL,
    /// or made from the figures the board holds now, or (for the public page) at most
    /// [`PROVISIONAL_REUSE`] old. Otherwise one is made, in a task of its own.
    ///
    /// # Errors
    /// [`ReportError::InProgress`] when it is not made within `wait` (it goes on: ask again),
    /// [`ReportError::Busy`] while another event's report is being made, and as [`build`].
    pub async fn get(
        self: &Arc<Self>,
        event_id: &str,
        baseline_id: &str,
        asker: Asker,
        wait: Duration,
    ) -> Result<(Arc<EventReport>, String), ReportError> {
        let now = UnixNanos::now();
        let events = self.board.events();
        let event = if event_id.is_empty() {
            events
                .current(now)
                .map(|e| e.event_id.clone())
                .ok_or_else(|| {
                    ReportError::NotFound(
                        "no event is configured or current: name the event".into(),
                    )
                })?
        } else if events.get(event_id).is_some() {
            event_id.to_owned()
        } else {
            return Err(ReportError::NotFound(format!(
                "event {:?} does not exist",
                saleboard_domain::ids::excerpt(event_id)
            )));
        };
        if !baseline_id.is_empty() && events.get(baseline_id).is_none() {
            return Err(ReportError::NotFound(format!(
                "baseline event {:?} does not exist",
                saleboard_domain::ids::excerpt(baseline_id)
            )));
        }
        let key = (event.clone(), baseline_id.to_owned());
        let watermark = self
            .board
            .of_event(&event)
            .await?
            .map_or(0, |s| s.figures.watermark);
        let page = |kept: &Arc<KeptReport>| {
            let text = kept.page.get_or_init(|| {
                let hashes = saleboard_report::data_hashes(&kept.report).unwrap_or_default();
                saleboard_report::html::page(&kept.report, &hashes)
            });
            (kept.report.clone(), text.clone())
        };
        let mut done = {
            let mut state = self.state();
            if let Some(kept) = state.kept.get(&key) {
                let right = kept.epoch == self.board.epoch()
                    && (kept.report.status == ReportStatus::Final as i32
                        || kept.report.watermark == watermark
                        || (asker == Asker::Public && kept.made.elapsed() < PROVISIONAL_REUSE));
                if right {
                    return Ok(page(kept));
                }
            }
            // A making whose task is gone (it panicked) is no longer one.
            let alive = |m: &Making| m.done.has_changed().is_ok();
            match &state.making {
                Some(making) if making.key == key && alive(making) => making.done.clone(),
                Some(making) if making.done.borrow().is_none() && alive(making) => {
                    let (read, of) = making.progress.get();
                    return match state.kept.get(&key) {
                        // The public page takes the last one kept rather than wait.
                        Some(kept) if asker == Asker::Public => Ok(page(kept)),
                        _ => Err(ReportError::Busy {
                            event: making.key.0.clone(),
                            read,
                            of,
                        }),
                    };
                }
                _ => self.start(&mut state, key.clone()),
            }
        };
        let finished = tokio::time::timeout(wait, done.wait_for(Option::is_some)).await;
        match finished {
            Ok(Ok(result)) => match result.as_ref() {
                Some(Ok(kept)) => Ok(page(kept)),
                Some(Err(message)) => Err(ReportError::Failed(message.clone())),
                None => Err(ReportError::Failed("the report was not made".into())),
            },
            Ok(Err(_)) => Err(ReportError::Failed("the report was not made".into())),
            Err(_) => {
                let state = self.state();
                let (read, of) = state.making.as_ref().map_or((0, 0), |m| m.progress.get());
                if asker == Asker::Public
                    && let Some(kept) = state.kept.get(&key)
                {
                    return Ok(page(kept));
                }
                Err(ReportError::InProgress { read, of })
            }
        }
    }

    /// Starts making the report of `key` in a task of its own; its result goes to the kept
    /// reports (and its pass to the kept passes).
    fn start(
        self: &Arc<Self>,
        state: &mut State,
        key: (String, String),
    ) -> tokio::sync::watch::Receiver<Option<Result<Arc<KeptReport>, String>>> {
        let (tx, rx) = tokio::sync::watch::channel(None);
        let progress = Arc::new(Progress::default());
        let scan = state.scans.remove(&key.0);
        state.making = Some(Making {
            key: key.clone(),
            progress: progress.clone(),
            done: rx.clone(),
        });
        let this = self.clone();
        tokio::spawn(async move {
            let epoch = this.board.epoch();
            let made = build_with(
                this.store.as_ref(),
                &this.board,
                &key.0,
                &key.1,
                UnixNanos::now(),
                scan,
                &progress,
            )
            .await;
            let mut state = this.state();
            let result = match made {
                Ok((report, scan)) => {
                    if state.scans.len() >= SCANS_KEPT
                        && let Some(oldest) = state.scans.keys().next().cloned()
                    {
                        state.scans.remove(&oldest);
                    }
                    state.scans.insert(key.0.clone(), scan);
                    let kept = Arc::new(KeptReport {
                        report: Arc::new(report),
                        page: std::sync::OnceLock::new(),
                        made: Instant::now(),
                        epoch,
                    });
                    if state.kept.len() >= 64 {
                        state.kept.clear();
                    }
                    state.kept.insert(key, kept.clone());
                    Ok(kept)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a report could not be made");
                    Err(e.to_string())
                }
            };
            state.making = None;
            drop(state);
            tx.send_replace(Some(result));
        });
        rx
    }
}
