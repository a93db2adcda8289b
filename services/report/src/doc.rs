//! The report as a document: its sections as blocks of text, tables and one chart, in the
//! words and formats people read. Written once here; the HTML page ([`crate::html`]) and the
//! PDF (`saleboard-report-pdf`) only lay the blocks out, so the two always say the same.

use saleboard_proto::v1::{EventReport, FlagState, IntegrityRule, ReportKey};

use crate::format::{count, money, percent, time, time_seconds};
use crate::{Difference, currency, status_word};

/// One cell of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// What it says.
    pub text: String,
    /// A figure: aligned right.
    pub numeric: bool,
    /// Marked (a place that moved).
    pub strong: bool,
}

impl Cell {
    fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            numeric: false,
            strong: false,
        }
    }

    fn num(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            numeric: true,
            strong: false,
        }
    }
}

/// A block of the document, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A section's heading ("1. Headline").
    Heading(String),
    /// A table's own heading.
    Subheading(String),
    /// The headline figure, large.
    Headline(String),
    /// A paragraph.
    Para(String),
    /// A paragraph of hashes or other machine text (small, fixed width, broken anywhere).
    Code(String),
    /// A table: its header, then its rows.
    Table {
        /// Column headings.
        header: Vec<Cell>,
        /// Rows, each as many cells as the header.
        rows: Vec<Vec<Cell>>,
    },
    /// A bar chart (vectors), one bar per entry, with a label under every `label_every`th.
    Chart {
        /// What it shows.
        caption: String,
        /// Labels and values (a value below zero is drawn as zero).
        bars: Vec<(String, i128)>,
        /// A label under every this many bars.
        label_every: usize,
    },
}

/// The document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The title (the event and the status).
    pub title: String,
    /// The band on every page: the status, the event, what the figures are as of.
    pub band: String,
    /// PROVISIONAL (the band is red).
    pub provisional: bool,
    /// The sections.
    pub blocks: Vec<Block>,
}

fn seconds(t: Option<&saleboard_proto::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds)
}

fn rule_name(rule: i32) -> &'static str {
    match IntegrityRule::try_from(rule) {
        Ok(IntegrityRule::LateRefunds) => "late refunds",
        Ok(IntegrityRule::RefundRate) => "refund rate",
        Ok(IntegrityRule::LateSales) => "late sales",
        Ok(IntegrityRule::SettlementRank) => "settlement rank",
        Ok(IntegrityRule::HourShape) => "hour shape",
        Ok(IntegrityRule::Burst) => "burst",
        Ok(IntegrityRule::Growth) => "growth",
        Ok(IntegrityRule::StoreConcentration) => "store concentration",
        Ok(IntegrityRule::AmountPattern) => "amount pattern",
        _ => "other",
    }
}

fn state_name(state: i32) -> &'static str {
    match FlagState::try_from(state) {
        Ok(FlagState::Open) => "open",
        Ok(FlagState::UnderReview) => "under review",
        Ok(FlagState::Cleared) => "cleared",
        Ok(FlagState::Confirmed) => "confirmed",
        _ => "other",
    }
}

/// The share of `part` in `whole` (decimal integers) in percent with one decimal, in the
/// currency's style.
fn share(part: &str, whole: &str, cur: &str) -> String {
    match (part.parse::<i128>(), whole.parse::<i128>()) {
        (Ok(p), Ok(w)) if w > 0 => {
            let tenths = saleboard_domain::ranking::div_round_half_even(p.saturating_mul(1000), w);
            let sign = if tenths < 0 { "-" } else { "" };
            let t = tenths.unsigned_abs();
            percent(&format!("{sign}{}.{}", t / 10, t % 10), cur)
        }
        _ => String::new(),
    }
}

fn keys_blocks(
    out: &mut Vec<Block>,
    report: &EventReport,
    title: &str,
    keys: &[ReportKey],
    net: &str,
    cur: &str,
) {
    const TOP: usize = 10;
    out.push(Block::Subheading(if keys.len() > TOP {
        format!("{title}: the top {TOP} of {}", keys.len())
    } else {
        title.to_owned()
    }));
    out.push(Block::Table {
        header: vec![
            Cell::num("#"),
            Cell::text(title),
            Cell::num("net"),
            Cell::num("share"),
            Cell::num("sales"),
            Cell::num("sites"),
        ],
        rows: keys
            .iter()
            .take(TOP)
            .map(|k| {
                vec![
                    Cell::num(k.rank.to_string()),
                    Cell::text(if k.key.is_empty() {
                        "(not given)"
                    } else {
                        &k.key
                    }),
                    Cell::num(money(&k.net_minor, cur)),
                    Cell::num(share(&k.net_minor, net, cur)),
                    Cell::num(count(k.sale_count, cur)),
                    Cell::num(k.site_count.to_string()),
                ]
            })
            .collect(),
    });
    let adds = crate::adds_up(
        report,
        keys.iter()
            .filter(|k| !k.out_of_range)
            .map(|k| k.net_minor.as_str()),
        crate::breakdowns_trail(report),
    );
    if let Some(a) = adds {
        let (sum, diff) = (
            money(&a.sum.to_string(), cur),
            money(&a.difference.to_string(), cur),
        );
        out.push(Block::Para(match a.reason {
            Difference::None => format!("Every key adds up to {sum}, the national net."),
            Difference::Trailing => format!(
                "Every key adds up to {sum}: {diff} from the national net, as the breakdowns are of an earlier ledger position."
            ),
            Difference::HalfEvenRounding => format!(
                "Every key adds up to {sum}: {diff} from the national net, the half-to-even rounding of each converted (key, currency) total against each (site, currency) total."
            ),
        }));
    }
}

fn rates_text(r: &[saleboard_proto::v1::ExchangeRate]) -> String {
    if r.is_empty() {
        "none".to_owned()
    } else {
        r.iter()
            .map(|r| format!("{} {}", r.currency, r.rate))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The report as a document. `hashes`: the data files' names and SHA-256, as the verification
/// statement lists them.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn document(report: &EventReport, hashes: &[(String, String)]) -> Document {
    let cur = currency(report);
    let status = status_word(report);
    let event = report.event.clone().unwrap_or_default();
    let zone = event.time_zone.as_str();
    let head = report.headline.clone().unwrap_or_default();
    let mut b = Vec::new();
    let as_of = report.as_of.as_ref().map_or_else(
        || format!("final figures, ledger position {}", report.watermark),
        |t| {
            format!(
                "figures as of {}, ledger position {}: they can still change",
                time_seconds(t.seconds, zone),
                report.watermark
            )
        },
    );
    b.push(Block::Para(format!(
        "{} to {} ({}), refunds settled until {}. Reporting currency {cur}.",
        time(seconds(event.starts_at.as_ref()), zone),
        time(seconds(event.ends_at.as_ref()), zone),
        if zone.is_empty() { "UTC" } else { zone },
        time(seconds(event.closes_at.as_ref()), zone),
    )));

    b.push(Block::Heading("1. Headline".into()));
    b.push(Block::Headline(format!(
        "Net {}",
        money(&head.net_minor, cur)
    )));
    b.push(Block::Table {
        header: vec![Cell::text("figure"), Cell::num("value")],
        rows: vec![
            vec![
                Cell::text("Gross sales"),
                Cell::num(money(&head.gross_minor, cur)),
            ],
            vec![
                Cell::text("Refunds"),
                Cell::num(money(&head.refunded_minor, cur)),
            ],
            vec![Cell::text("Net"), Cell::num(money(&head.net_minor, cur))],
            vec![Cell::text("Sales"), Cell::num(count(head.sale_count, cur))],
            vec![
                Cell::text("Refunds (count)"),
                Cell::num(count(head.refund_count, cur)),
            ],
            vec![
                Cell::text("Sites registered / sending / held / disabled"),
                Cell::num(format!(
                    "{} / {} / {} / {}",
                    head.registered_sites, head.sending_sites, head.held_sites, head.disabled_sites
                )),
            ],
            vec![
                Cell::text("Sites undecided for integrity"),
                Cell::num(head.undecided_sites.to_string()),
            ],
        ],
    });
    if !head.rounding_difference_minor.is_empty() && head.rounding_difference_minor != "0" {
        b.push(Block::Para(format!(
            "Gross less refunds differs from the net by {}: each converted total is rounded half to even on its own.",
            money(&head.rounding_difference_minor, cur)
        )));
    }
    if !report.unconverted_currencies.is_empty() {
        b.push(Block::Para(format!(
            "Left out of every converted figure (no exchange rate): {}.",
            report.unconverted_currencies.join(", ")
        )));
    }

    b.push(Block::Heading("2. Comparison with the baseline".into()));
    match &report.comparison {
        None => b.push(Block::Para("This event has no baseline event.".into())),
        Some(c) => {
            let growth = if c.growth_percent.is_empty() {
                "not computed (no positive baseline figure)".to_owned()
            } else {
                percent(&c.growth_percent, cur)
            };
            b.push(Block::Para(format!(
                "Baseline: {} ({}), net {}. Growth: {growth}.",
                c.baseline_display_name,
                c.baseline_event_id,
                money(&c.baseline_net_minor, cur)
            )));
            b.push(Block::Para(format!("Formula: {}.", c.formula)));
            b.push(Block::Para(c.windows.clone()));
            b.push(Block::Para(format!(
                "Exchange rates of this event ({cur} per unit): {}. Of the baseline ({} per unit): {}.",
                rates_text(&report.rates),
                c.baseline_reporting_currency,
                rates_text(&c.baseline_rates)
            )));
        }
    }

    b.push(Block::Heading("3. Ranking".into()));
    b.push(Block::Para(
        "The final ranking by net, beside each site's place at the end of the window (by the transactions received before it); a place that moved is marked.".into(),
    ));
    b.push(Block::Table {
        header: vec![
            Cell::num("#"),
            Cell::text("site"),
            Cell::num("net"),
            Cell::num("at end"),
            Cell::text("per currency: sales, refunds, net"),
        ],
        rows: report
            .sites
            .iter()
            .map(|s| {
                let place = if s.held {
                    "held".to_owned()
                } else if s.rank == 0 {
                    "–".to_owned()
                } else {
                    s.rank.to_string()
                };
                let moved = s.rank != 0 && s.rank_at_end != 0 && s.rank != s.rank_at_end;
                let per: Vec<String> = s
                    .currencies
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {}, {}, {}",
                            c.currency,
                            money(&c.gross_minor, &c.currency),
                            money(&c.refunded_minor, &c.currency),
                            money(&c.net_minor, &c.currency)
                        )
                    })
                    .collect();
                vec![
                    Cell::num(place),
                    Cell::text(s.display_name.clone()),
                    Cell::num(money(&s.net_minor, cur)),
                    Cell {
                        text: if s.rank_at_end == 0 {
                            "–".to_owned()
                        } else if moved {
                            format!("{} → {}", s.rank_at_end, s.rank)
                        } else {
                            s.rank_at_end.to_string()
                        },
                        numeric: true,
                        strong: moved,
                    },
                    Cell::text(per.join("; ")),
                ]
            })
            .collect(),
    });

    b.push(Block::Heading("4. Breakdowns".into()));
    if crate::breakdowns_trail(report) {
        b.push(Block::Para(format!(
            "The breakdowns are of ledger position {} (they trail the headline figures by at most about a second while the ledger is busy).",
            report.breakdown_watermark
        )));
    }
    for (title, keys) in [
        ("Brand", &report.brands),
        ("Category", &report.categories),
        ("Origin", &report.origins),
    ] {
        keys_blocks(&mut b, report, title, keys, &head.net_minor, cur);
    }

    b.push(Block::Heading("5. Over time".into()));
    let every = report.hourly.len().div_ceil(8).max(1);
    b.push(Block::Chart {
        caption: format!(
            "The national net per hour ({zone_name})",
            zone_name = if zone.is_empty() { "UTC" } else { zone }
        ),
        bars: report
            .hourly
            .iter()
            .map(|h| {
                (
                    crate::format::short_time(seconds(h.hour_start.as_ref()), zone),
                    h.net_minor.parse::<i128>().unwrap_or(0),
                )
            })
            .collect(),
        label_every: every,
    });
    if let Some(a) = crate::adds_up(
        report,
        report.hourly.iter().map(|h| h.net_minor.as_str()),
        false,
    )
    .filter(|a| a.difference != 0)
    {
        b.push(Block::Para(format!(
            "The hours add up to {}: {} from the national net, the half-to-even rounding of each converted (hour, currency) total against each (site, currency) total.",
            money(&a.sum.to_string(), cur),
            money(&a.difference.to_string(), cur)
        )));
    }
    let peaks = report.peaks.clone().unwrap_or_default();
    let when = |t: Option<&saleboard_proto::Timestamp>, with_seconds: bool| {
        t.map_or_else(
            || "–".to_owned(),
            |t| {
                if with_seconds {
                    time_seconds(t.seconds, zone)
                } else {
                    time(t.seconds, zone)
                }
            },
        )
    };
    b.push(Block::Para(format!(
        "Peak hour: {} ({}). Peak minute: {} ({}). Peak: {} accepted transactions in one second, at {}.",
        when(peaks.peak_hour_start.as_ref(), false),
        money(&peaks.peak_hour_net_minor, cur),
        when(peaks.peak_minute_start.as_ref(), false),
        money(&peaks.peak_minute_net_minor, cur),
        count(peaks.peak_second_transactions, cur),
        when(peaks.peak_second_start.as_ref(), true)
    )));
    if !report.milestones.is_empty() {
        b.push(Block::Table {
            header: vec![Cell::text("milestone (national net)"), Cell::text("passed")],
            rows: report
                .milestones
                .iter()
                .map(|m| {
                    vec![
                        Cell::text(money(&m.threshold_minor, cur)),
                        Cell::text(when(m.passed_at.as_ref(), false)),
                    ]
                })
                .collect(),
        });
    }

    let settlement = report.settlement.clone().unwrap_or_default();
    b.push(Block::Heading("6. Settlement".into()));
    b.push(Block::Para(format!(
        "Refunds received after the window ended: {} ({} refunds).",
        money(&settlement.late_refunded_minor, cur),
        count(settlement.late_refund_count, cur)
    )));
    let late: Vec<_> = report
        .sites
        .iter()
        .filter(|s| !s.late_refunded_minor.is_empty() && s.late_refunded_minor != "0")
        .collect();
    if !late.is_empty() {
        b.push(Block::Table {
            header: vec![Cell::text("site"), Cell::num("refunded after the end")],
            rows: late
                .iter()
                .map(|s| {
                    vec![
                        Cell::text(s.display_name.clone()),
                        Cell::num(money(&s.late_refunded_minor, cur)),
                    ]
                })
                .collect(),
        });
    }

    let integrity = report.integrity.clone().unwrap_or_default();
    b.push(Block::Heading("7. Integrity".into()));
    if integrity.flags.is_empty() {
        b.push(Block::Para("No integrity flag was raised.".into()));
    } else {
        b.push(Block::Table {
            header: vec![Cell::text("rule"), Cell::text("state"), Cell::num("flags")],
            rows: integrity
                .flags
                .iter()
                .map(|f| {
                    vec![
                        Cell::text(rule_name(f.rule)),
                        Cell::text(state_name(f.state)),
                        Cell::num(f.count.to_string()),
                    ]
                })
                .collect(),
        });
    }
    b.push(Block::Para(format!(
        "Sites held: {}. Adjustments approved: {} ({} ledger rows voided, {} taken off the net). Sites decided by the integrity rules: {} of {}.",
        if integrity.held_sites.is_empty() {
            "none".to_owned()
        } else {
            integrity.held_sites.join(", ")
        },
        integrity.adjustments,
        integrity.voided_rows,
        money(&integrity.voided_net_minor, cur),
        integrity.decided_sites,
        integrity.sites
    )));

    let v = report.verification.clone().unwrap_or_default();
    b.push(Block::Heading("8. Verification".into()));
    b.push(Block::Para(format!(
        "This report covers the event's ledger rows at positions {} to {} ({} rows, voids included). Recomputed from those rows, each site's totals per currency {} the stored totals, the national net {} the stored figure, the national net per hour {} the stored hourly totals, and every breakdown key {} the stored breakdown totals. The sites' figures {} the national figure. Software version {}.",
        v.first_position,
        v.last_position,
        count(v.rows, cur),
        if v.totals_match_ledger { "agree with" } else { "DO NOT agree with" },
        if v.national_matches_ledger { "equals" } else { "DOES NOT equal" },
        if v.hourly_match_ledger { "agrees with" } else { "DOES NOT agree with" },
        if v.breakdowns_match_ledger { "agrees with" } else { "DOES NOT agree with" },
        if v.sites_add_up { "add up to" } else { "DO NOT add up to" },
        report.software_version
    )));
    if !v.complete {
        b.push(Block::Para(
            "The event is closed, but rows of it are still being folded into the figures: this report is provisional until they are.".into(),
        ));
    }
    for d in &v.differences {
        b.push(Block::Para(format!("Difference: {d}")));
    }
    b.push(Block::Para(format!(
        "Audit log head: entry {}, SHA-256:",
        v.audit_position
    )));
    b.push(Block::Code(v.audit_sha256.clone()));
    b.push(Block::Para("The data files' SHA-256:".into()));
    for (name, hash) in hashes {
        b.push(Block::Code(format!("{hash}  {name}")));
    }
    b.push(Block::Para(
        "Check a copy: sha256sum -c MANIFEST.sha256. With access to the database, saleboard report check DIR recomputes every figure.".into(),
    ));
    Document {
        title: format!("{} — {status}", event.display_name),
        band: format!("{status} · {} · {as_of}", event.display_name),
        provisional: status != "FINAL",
        blocks: b,
    }
}
