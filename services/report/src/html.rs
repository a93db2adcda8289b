//! The report as one printable HTML page: every style inline, the hourly chart as inline SVG,
//! nothing fetched from anywhere (the leaderboard serves it at `/report/EVENT` under the
//! page's own content security policy). PROVISIONAL or FINAL is on a band that repeats on
//! every printed page.

use std::fmt::Write as _;

use saleboard_proto::v1::{EventReport, FlagState, IntegrityRule, ReportKey};

use crate::format::{count, money, percent, time, time_seconds};
use crate::{currency, status_word};

/// `text` safe inside HTML text and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:2.2cm 1.6cm;color:#111;font-size:10.5pt}\
h1{font-size:20pt;margin:.2em 0}h2{font-size:13pt;margin-top:1.6em;border-bottom:1px solid #999}\
.band{position:fixed;top:0;left:0;right:0;padding:.35em 1.6cm;font-weight:bold;color:#fff;background:#444}\
.band.provisional{background:#b3261e}.headline{font-size:22pt;font-weight:bold}\
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{padding:.15em .4em;border-bottom:1px solid #ddd;text-align:left}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.moved{font-weight:bold}\
code{font-size:8.5pt;word-break:break-all}@page{size:A4;margin:1.5cm}";

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

/// The share of `part` in `whole` (decimal integers) in percent with one decimal.
fn share(part: &str, whole: &str) -> String {
    match (part.parse::<i128>(), whole.parse::<i128>()) {
        (Ok(p), Ok(w)) if w > 0 => {
            let tenths = saleboard_domain::ranking::div_round_half_even(p.saturating_mul(1000), w);
            format!("{}.{}%", tenths / 10, (tenths % 10).abs())
        }
        _ => String::new(),
    }
}

fn keys_table(out: &mut String, title: &str, keys: &[ReportKey], net: &str, cur: &str, top: usize) {
    let _ = write!(
        out,
        "<h3>{}</h3><table><tr><th class=n>#</th><th>{}</th><th class=n>net</th><th class=n>share</th><th class=n>sales</th><th class=n>sites</th></tr>",
        escape(title),
        escape(title)
    );
    for k in keys.iter().take(top) {
        let key = if k.key.is_empty() {
            "(not given)"
        } else {
            &k.key
        };
        let _ = write!(
            out,
            "<tr><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            k.rank,
            escape(key),
            escape(&money(&k.net_minor, cur)),
            share(&k.net_minor, net),
            count(k.sale_count, cur),
            k.site_count
        );
    }
    out.push_str("</table>");
    let sum = keys
        .iter()
        .filter(|k| !k.out_of_range)
        .filter_map(|k| k.net_minor.parse::<i128>().ok())
        .fold(0_i128, i128::saturating_add);
    if let Ok(n) = net.parse::<i128>() {
        let diff = n.saturating_sub(sum);
        let _ = write!(
            out,
            "<p>Every key adds up to {}{}.</p>",
            escape(&money(&sum.to_string(), cur)),
            if diff == 0 {
                ", the national net".to_owned()
            } else {
                format!(
                    ": {} from the national net, the half-to-even rounding of each converted (key, currency) total against each (site, currency) total",
                    escape(&money(&diff.to_string(), cur))
                )
            }
        );
    }
}

/// The hourly national net as an inline SVG bar chart (vectors; no script).
fn chart(report: &EventReport) -> String {
    let values: Vec<i128> = report
        .hourly
        .iter()
        .map(|h| h.net_minor.parse::<i128>().unwrap_or(0))
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let (w, h) = (680.0_f64, 160.0_f64);
    let n = values.len().max(1);
    #[allow(clippy::cast_precision_loss)]
    let bar = w / n as f64;
    let mut svg = format!(
        "<svg role=img aria-label=\"national net per hour\" viewBox=\"0 0 {w} {}\" width=\"100%\"><line x1=0 y1={h} x2={w} y2={h} stroke=#333 />",
        h + 2.0
    );
    for (i, v) in values.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let height = (*v.max(&0) as f64) / (max as f64) * h;
        #[allow(clippy::cast_precision_loss)]
        let x = i as f64 * bar;
        let _ = write!(
            svg,
            "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{height:.2}\" fill=\"#1f5fa8\" />",
            h - height,
            (bar * 0.85).max(0.5)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report as a page. `hashes`: the data files' names and SHA-256, as the verification
/// statement lists them.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn page(report: &EventReport, hashes: &[(String, String)]) -> String {
    let cur = currency(report);
    let status = status_word(report);
    let event = report.event.clone().unwrap_or_default();
    let zone = event.time_zone.as_str();
    let head = report.headline.clone().unwrap_or_default();
    let mut out = String::new();
    let title = format!("{} — {status}", event.display_name);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
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
    let _ = write!(
        out,
        "<div class=\"band {}\">{status} · {} · {}</div>",
        status.to_lowercase(),
        escape(&event.display_name),
        escape(&as_of)
    );
    let _ = write!(
        out,
        "<h1>{}</h1><p>{} to {} ({}), settlement until {}. Reporting currency {}.</p>",
        escape(&title),
        escape(&time(seconds(event.starts_at.as_ref()), zone)),
        escape(&time(seconds(event.ends_at.as_ref()), zone)),
        escape(if zone.is_empty() { "UTC" } else { zone }),
        escape(&time(seconds(event.closes_at.as_ref()), zone)),
        escape(cur)
    );

    out.push_str("<h2>1. Headline</h2>");
    let _ = write!(
        out,
        "<p class=headline>Net {}</p><table><tr><td>Gross sales</td><td class=n>{}</td></tr><tr><td>Refunds</td><td class=n>{}</td></tr><tr><td>Net</td><td class=n>{}</td></tr><tr><td>Sales / refunds</td><td class=n>{} / {}</td></tr><tr><td>Sites: registered, sending, held, disabled, undecided for integrity</td><td class=n>{}, {}, {}, {}, {}</td></tr></table>",
        escape(&money(&head.net_minor, cur)),
        escape(&money(&head.gross_minor, cur)),
        escape(&money(&head.refunded_minor, cur)),
        escape(&money(&head.net_minor, cur)),
        count(head.sale_count, cur),
        count(head.refund_count, cur),
        head.registered_sites,
        head.sending_sites,
        head.held_sites,
        head.disabled_sites,
        head.undecided_sites
    );
    if head.rounding_difference_minor != "0" && !head.rounding_difference_minor.is_empty() {
        let _ = write!(
            out,
            "<p>Gross less refunds differs from the net by {}: each converted total is rounded half to even on its own.</p>",
            escape(&money(&head.rounding_difference_minor, cur))
        );
    }
    if !report.unconverted_currencies.is_empty() {
        let _ = write!(
            out,
            "<p>Left out of every converted figure (no exchange rate): {}.</p>",
            escape(&report.unconverted_currencies.join(", "))
        );
    }

    out.push_str("<h2>2. Comparison with the baseline</h2>");
    match &report.comparison {
        None => out.push_str("<p>This event has no baseline event.</p>"),
        Some(c) => {
            let growth = if c.growth_percent.is_empty() {
                "not computed (no positive baseline figure)".to_owned()
            } else {
                percent(&c.growth_percent, cur)
            };
            let _ = write!(
                out,
                "<p>Baseline: {} ({}), net {}. Growth: <b>{}</b>.</p><p>Formula: {}.</p><p>{}</p>",
                escape(&c.baseline_display_name),
                escape(&c.baseline_event_id),
                escape(&money(&c.baseline_net_minor, cur)),
                escape(&growth),
                escape(&c.formula),
                escape(&c.windows)
            );
            let rates = |r: &[saleboard_proto::v1::ExchangeRate]| {
                if r.is_empty() {
                    "none".to_owned()
                } else {
                    r.iter()
                        .map(|r| format!("{} {}", r.currency, r.rate))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            let _ = write!(
                out,
                "<p>Exchange rates of this event ({cur} per unit): {}. Of the baseline ({} per unit): {}.</p>",
                escape(&rates(&report.rates)),
                escape(&c.baseline_reporting_currency),
                escape(&rates(&c.baseline_rates))
            );
        }
    }

    out.push_str("<h2>3. Ranking</h2><p>Final ranking by net, beside the place at the end of the window (transactions received before it).</p><table><tr><th class=n>#</th><th>site</th><th class=n>net</th><th class=n>at end</th><th>per currency (sales, refunds, net)</th></tr>");
    for s in &report.sites {
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
        let _ = write!(
            out,
            "<tr><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=\"n{}\">{}</td><td>{}</td></tr>",
            escape(&place),
            escape(&s.display_name),
            escape(&money(&s.net_minor, cur)),
            if moved { " moved" } else { "" },
            if s.rank_at_end == 0 {
                "–".to_owned()
            } else if moved {
                format!("{} → {}", s.rank_at_end, s.rank)
            } else {
                s.rank_at_end.to_string()
            },
            escape(&per.join("; "))
        );
    }
    out.push_str("</table>");

    out.push_str("<h2>4. Breakdowns</h2>");
    keys_table(&mut out, "Brand", &report.brands, &head.net_minor, cur, 10);
    keys_table(
        &mut out,
        "Category",
        &report.categories,
        &head.net_minor,
        cur,
        10,
    );
    keys_table(
        &mut out,
        "Origin",
        &report.origins,
        &head.net_minor,
        cur,
        10,
    );

    out.push_str("<h2>5. Over time</h2>");
    out.push_str(&chart(report));
    let peaks = report.peaks.clone().unwrap_or_default();
    let _ = write!(
        out,
        "<p>Peak hour: {} ({}). Peak minute: {} ({}). Peak: {} accepted transactions in the second {}.</p>",
        escape(
            &peaks
                .peak_hour_start
                .as_ref()
                .map_or_else(|| "–".into(), |t| time(t.seconds, zone))
        ),
        escape(&money(&peaks.peak_hour_net_minor, cur)),
        escape(
            &peaks
                .peak_minute_start
                .as_ref()
                .map_or_else(|| "–".into(), |t| time(t.seconds, zone))
        ),
        escape(&money(&peaks.peak_minute_net_minor, cur)),
        count(peaks.peak_second_transactions, cur),
        escape(
            &peaks
                .peak_second_start
                .as_ref()
                .map_or_else(|| "–".into(), |t| time_seconds(t.seconds, zone))
        )
    );
    if !report.milestones.is_empty() {
        out.push_str("<table><tr><th>milestone</th><th>passed</th></tr>");
        for m in &report.milestones {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&money(&m.threshold_minor, cur)),
                escape(
                    &m.passed_at
                        .as_ref()
                        .map_or_else(|| "–".into(), |t| time(t.seconds, zone))
                )
            );
        }
        out.push_str("</table>");
    }

    let settlement = report.settlement.clone().unwrap_or_default();
    let _ = write!(
        out,
        "<h2>6. Settlement</h2><p>Refunds received after the window ended: {} ({} refunds).</p>",
        escape(&money(&settlement.late_refunded_minor, cur)),
        count(settlement.late_refund_count, cur)
    );
    let late: Vec<_> = report
        .sites
        .iter()
        .filter(|s| !s.late_refunded_minor.is_empty() && s.late_refunded_minor != "0")
        .collect();
    if !late.is_empty() {
        out.push_str("<table><tr><th>site</th><th class=n>refunded after the end</th></tr>");
        for s in late {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=n>{}</td></tr>",
                escape(&s.display_name),
                escape(&money(&s.late_refunded_minor, cur))
            );
        }
        out.push_str("</table>");
    }

    let integrity = report.integrity.clone().unwrap_or_default();
    out.push_str("<h2>7. Integrity</h2>");
    if integrity.flags.is_empty() {
        out.push_str("<p>No integrity flag was raised.</p>");
    } else {
        out.push_str("<table><tr><th>rule</th><th>state</th><th class=n>flags</th></tr>");
        for f in &integrity.flags {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td></tr>",
                rule_name(f.rule),
                state_name(f.state),
                f.count
            );
        }
        out.push_str("</table>");
    }
    let _ = write!(
        out,
        "<p>Sites held: {}. Adjustments approved: {} ({} ledger rows voided, {} taken off the net). Sites decided by the integrity rules: {} of {}.</p>",
        if integrity.held_sites.is_empty() {
            "none".to_owned()
        } else {
            escape(&integrity.held_sites.join(", "))
        },
        integrity.adjustments,
        integrity.voided_rows,
        escape(&money(&integrity.voided_net_minor, cur)),
        integrity.decided_sites,
        integrity.sites
    );

    let v = report.verification.clone().unwrap_or_default();
    let _ = write!(
        out,
        "<h2>8. Verification</h2><p>This report covers the event's ledger rows at positions {} to {} ({} rows, voids included). Recomputed from those rows, the event's totals {} the stored totals. The sites' figures {} the national figure. Audit log head: entry {}, SHA-256 <code>{}</code>. Software version {}.</p>",
        v.first_position,
        v.last_position,
        count(v.rows, cur),
        if v.totals_match_ledger {
            "agree with"
        } else {
            "DO NOT agree with"
        },
        if v.sites_add_up {
            "add up to"
        } else {
            "DO NOT add up to"
        },
        v.audit_position,
        escape(&v.audit_sha256),
        escape(&report.software_version)
    );
    for d in &v.differences {
        let _ = write!(out, "<p>Difference: {}</p>", escape(d));
    }
    out.push_str("<table><tr><th>file</th><th>SHA-256</th></tr>");
    for (name, hash) in hashes {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            escape(name),
            escape(hash)
        );
    }
    out.push_str("</table><p>Check a copy: <code>sha256sum -c MANIFEST.sha256</code>; with access to the database, <code>saleboard report check DIR</code> recomputes every figure.</p></body></html>\n");
    out
}
