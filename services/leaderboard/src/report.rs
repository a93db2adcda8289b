//! The official report of an event (issue 29, `AdminService.GetEventReport`, `/report/EVENT`):
//! the figures of one snapshot (those every other view shows, the same generation and
//! watermark), and one pass over the event's ledger rows up to that watermark
//! ([`saleboard_domain::report::Scan`]) that checks the snapshot's stored totals against the
//! ledger and adds what only the ledger holds. This is the one place the leaderboard reads the
//! ledger: on an organizer's request, or for the public page at most once per
//! [`PROVISIONAL_REUSE`] per event (a closed event's report is made once and kept).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
    /// Another report is being made just now (the public page makes one at a time).
    #[error("a report is being made just now; retry in a few seconds")]
    Busy,
    /// The ledger holds what the fold cannot (a figure past its bounds).
    #[error("the ledger cannot be folded: {0}")]
    Fold(String),
}

fn decimal(v: i128) -> String {
    v.to_string()
}

fn converted_sum<'a>(
    totals: impl IntoIterator<Item = (&'a Currency, i128)>,
    rates: &BTreeMap<Currency, Rate>,
    reporting: Currency,
) -> i128 {
    totals
        .into_iter()
        .filter_map(|(c, v)| to_reporting(v, *c, rates, reporting))
        .fold(0_i128, i128::saturating_add)
}

/// Makes the report of `event_id` (empty: the current event), compared with `baseline_id`
/// (empty: the event's own baseline, if any), at `now`.
///
/// # Errors
/// [`ReportError::NotFound`] for an unknown event or baseline; storage errors.
#[allow(clippy::too_many_lines)]
pub async fn build(
    store: &dyn Store,
    board: &Board,
    event_id: &str,
    baseline_id: &str,
    now: UnixNanos,
) -> Result<EventReport, ReportError> {
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
    let final_ = event.state(now) == EventState::Closed;

    let disabled: BTreeSet<SiteId> = f
        .sites
        .iter()
        .filter(|s| s.disabled_at.is_some())
        .map(|s| s.site_id.clone())
        .collect();
    let mut scan = Scan::new(&event.event_id, event.ends_at, disabled.clone());
    let mut after = 0;
    'read: while after < f.watermark {
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
            let describe = |t: Option<&CurrencyTotals>| {
                t.map_or_else(
                    || "nothing".to_owned(),
                    |t| {
                        format!(
                            "{} sales, gross {}, {} refunds, refunded {}",
                            t.sale_count, t.gross_minor, t.refund_count, t.refunded_minor
                        )
                    },
                )
            };
            differences.push(format!(
                "site {} {}: stored {}, ledger says {}",
                key.0,
                key.1,
                describe(s),
                describe(r)
            ));
        }
    }

    // The sites: the final ranking (ranked, then held, then without a transaction).
    let counted: Vec<_> = f.entries.iter().chain(&f.held).collect();
    let at_end = saleboard_domain::ranking::rank(
        f.sites
            .iter()
            .filter(|s| s.disabled_at.is_none())
            .filter_map(|s| {
                scan.at_end
                    .get(&s.site_id)
                    .map(|totals| saleboard_domain::ranking::SiteFigures {
                        site_id: s.site_id.clone(),
                        display_name: s.display_name.clone(),
                        totals: totals.clone(),
                        held: false,
                    })
            })
            .collect(),
        rates,
        reporting,
    );
    let at_end: BTreeMap<&SiteId, (u32, i64)> = at_end
        .entries
        .iter()
        .map(|e| (&e.site_id, (e.rank, e.net_reporting_minor)))
        .collect();
    let (mut gross, mut refunded) = (0_i128, 0_i128);
    let (mut sale_count, mut refund_count) = (0_u64, 0_u64);
    let (mut late_total, mut late_count) = (0_i128, 0_u64);
    let mut sites = Vec::with_capacity(counted.len());
    let held: BTreeSet<&SiteId> = f.held.iter().map(|e| &e.site_id).collect();
    let empty = BTreeMap::new();
    for entry in &counted {
        let totals = f.totals.get(&entry.site_id).unwrap_or(&empty);
        let in_national = entry.out_of_range.is_empty();
        if in_national {
            gross = gross.saturating_add(converted_sum(
                totals.iter().map(|(c, t)| (c, t.gross_minor)),
                rates,
                reporting,
            ));
            refunded = refunded.saturating_add(converted_sum(
                totals.iter().map(|(c, t)| (c, t.refunded_minor)),
                rates,
                reporting,
            ));
            sale_count = sale_count.saturating_add(entry.sale_count);
            refund_count = refund_count.saturating_add(entry.refund_count);
        }
        let late = scan.late_refunds.get(&entry.site_id);
        let late_site = late.map_or(0, |m| {
            converted_sum(
                m.iter().map(|(c, t)| (c, t.refunded_minor)),
                rates,
                reporting,
            )
        });
        if let Some(m) = late {
            late_count = late_count.saturating_add(m.values().map(|t| t.refund_count).sum());
        }
        late_total = late_total.saturating_add(late_site);
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
    sites.sort_by_key(|s| (s.rank == 0, s.held, s.rank));
    let net = f.national_net_reporting_minor;
    let site_sum = sites
        .iter()
        .filter(|s| !s.out_of_range)
        .filter_map(|s| s.net_minor.parse::<i128>().ok())
        .fold(0_i128, i128::saturating_add);

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
    );
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
            f.watermark,
            net,
        )
        .await?
    };
    let (audit_position, audit_sha256) = store.audit_head().await?;
    let watermark = if final_ {
        scan.last_position
    } else {
        f.watermark
    };
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(EventReport {
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
            registered_sites: count(f.sites.len()),
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
            totals_match_ledger: differences.is_empty(),
            differences,
            sites_add_up: site_sum == net,
            audit_position,
            audit_sha256,
        }),
        rates: rate_msgs(rates),
        unconverted_currencies: f
            .unconverted_currencies()
            .iter()
            .map(ToString::to_string)
            .collect(),
    })
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
    watermark: u64,
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
    let hours = |a: UnixNanos, b: UnixNanos| (b.0.saturating_sub(a.0)) / 3_600_000_000_000;
    let (this_h, base_h) = (
        hours(event.starts_at, event.ends_at),
        hours(baseline.starts_at, baseline.ends_at),
    );
    let ended = UnixNanos::now() >= event.ends_at;
    let mut windows = if this_h == base_h {
        format!("Both windows last {this_h} hours.")
    } else {
        format!(
            "This event's window lasts {this_h} hours, the baseline's {base_h} hours: the figures are not for windows of the same length."
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

/// Reports kept for the public page: a closed event's once made, a provisional one for
/// [`PROVISIONAL_REUSE`]; either made again after an admin call (the board's epoch moved). One
/// is made at a time, so requests cannot make the leaderboard read the ledger more often, and
/// none waits for another: see [`Kept::get`].
#[derive(Default)]
pub struct Kept {
    reports: std::sync::Mutex<BTreeMap<String, KeptReport>>,
    making: tokio::sync::Mutex<()>,
}

/// A kept report, its page, when it was made and the board's epoch then.
type KeptReport = (Arc<(EventReport, String)>, std::time::Instant, u64);

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").finish_non_exhaustive()
    }
}

impl Kept {
    /// The report of `event_id` (empty: the current event; compared with its own baseline)
    /// and its HTML page, reused while fresh enough.
    ///
    /// # Errors
    /// As [`build`].
    pub async fn get(
        &self,
        store: &dyn Store,
        board: &Board,
        event_id: &str,
    ) -> Result<Arc<(EventReport, String)>, ReportError> {
        let fresh = |kept: Option<KeptReport>| {
            kept.and_then(|(r, at, epoch)| {
                (epoch == board.epoch()
                    && (r.0.status == ReportStatus::Final as i32
                        || at.elapsed() < PROVISIONAL_REUSE))
                    .then_some(r)
            })
        };
        let look = || {
            self.reports
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(event_id)
                .cloned()
        };
        if let Some(r) = fresh(look()) {
            return Ok(r);
        }
        if !event_id.is_empty() && board.events().get(event_id).is_none() {
            return Err(ReportError::NotFound(format!(
                "event {:?} does not exist",
                saleboard_domain::ids::excerpt(event_id)
            )));
        }
        // One report is made at a time; a request that comes while one is being made gets the
        // last one kept for its event (however old), or is asked to come back: requests never
        // queue up behind a pass over the ledger.
        let Ok(_one) = self.making.try_lock() else {
            return look().map(|k| k.0).ok_or(ReportError::Busy);
        };
        if let Some(r) = fresh(look()) {
            return Ok(r);
        }
        let epoch = board.epoch();
        let report = build(store, board, event_id, "", UnixNanos::now()).await?;
        let hashes =
            saleboard_report::data_hashes(&report).map_err(|e| ReportError::Fold(e.to_string()))?;
        let page = saleboard_report::html::page(&report, &hashes);
        let kept = Arc::new((report, page));
        let mut reports = self
            .reports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if reports.len() >= 64 {
            reports.clear();
        }
        reports.insert(
            event_id.to_owned(),
            (kept.clone(), std::time::Instant::now(), epoch),
        );
        Ok(kept)
    }
}
