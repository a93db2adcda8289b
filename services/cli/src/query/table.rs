//! The tables people read: the leaderboard, a breakdown, and totals per currency.

use saleboard_proto::v1::{Breakdown, CurrencyTotals, Leaderboard};

use super::figures::{growth, money, national_money, share, unconverted_warning};
use super::zone::Zone;

fn dimension_name(b: &Breakdown) -> &'static str {
    match b.dimension() {
        saleboard_proto::v1::Dimension::Brand => "brand",
        saleboard_proto::v1::Dimension::Category => "category",
        saleboard_proto::v1::Dimension::Origin => "origin",
        saleboard_proto::v1::Dimension::Unspecified => "?",
    }
}

/// A breakdown as a table: rank, key (`(none)` for transactions without the field), net,
/// share of the total, counts.
#[must_use]
pub fn breakdown_table(b: &Breakdown, zone: &Zone) -> String {
    let scope = if b.site_id.is_empty() {
        "national".to_owned()
    } else {
        format!("site {}", b.site_id)
    };
    let mut out = format!(
        "{} by {}, {scope}, in {} as of {} (ledger position {})\n{:>4}  {:<28} {:>30} {:>7} {:>10} {:>8} {:>6}\n",
        b.event_id,
        dimension_name(b),
        b.reporting_currency,
        zone.show(b.as_of.as_ref()),
        b.watermark,
        "rank",
        dimension_name(b),
        "net",
        "share",
        "sales",
        "refunds",
        "sites",
    );
    for e in &b.entries {
        let key = if e.key.is_empty() {
            "(none)"
        } else {
            e.key.as_str()
        };
        let net = if e.out_of_range {
            "out of range".to_owned()
        } else {
            money(e.net_reporting_minor, &b.reporting_currency)
        };
        out.push_str(&format!(
            "{:>4}  {:<28} {:>30} {:>7} {:>10} {:>8} {:>6}\n",
            e.rank,
            key,
            net,
            share(e.net_reporting_minor, b.total_net_reporting_minor),
            e.sale_count,
            e.refund_count,
            e.site_count
        ));
    }
    out.push_str(&format!(
        "      {:<28} {:>30}\n",
        "total",
        money(b.total_net_reporting_minor, &b.reporting_currency)
    ));
    if !b.next_page_token.is_empty() {
        out.push_str(&format!("more: --page-token {}\n", b.next_page_token));
    }
    if !b.unconverted_currencies.is_empty() {
        out.push_str(&unconverted_warning(&b.unconverted_currencies));
        out.push('\n');
    }
    out
}

/// The leaderboard as a table, times in `zone`.
#[must_use]
pub fn leaderboard_table(b: &Leaderboard, zone: &Zone) -> String {
    let mut out = format!(
        "{} — net in {} as of {} (ledger position {})\n{:>4}  {:<24} {:>30} {:>10} {:>8}  {}\n",
        b.event_id,
        b.reporting_currency,
        zone.show(b.as_of.as_ref()),
        b.watermark,
        "rank",
        "site",
        "net",
        "sales",
        "refunds",
        "not converted"
    );
    for e in &b.entries {
        let net = if e.out_of_range {
            format!("out of range ({})", e.out_of_range_currencies.join(" "))
        } else {
            money(e.net_reporting_minor, &b.reporting_currency)
        };
        // A site without any transaction has no rank (0): shown as a dash.
        let rank = if e.rank == 0 {
            "-".to_owned()
        } else {
            e.rank.to_string()
        };
        let site = if e.under_review {
            format!("{} (under review)", e.site_id)
        } else {
            e.site_id.clone()
        };
        out.push_str(&format!(
            "{:>4}  {:<24} {:>30} {:>10} {:>8}  {}\n",
            rank,
            site,
            net,
            e.sale_count,
            e.refund_count,
            e.unconverted_currencies.join(" ")
        ));
    }
    out.push_str(&format!(
        "      {:<24} {:>30}\n",
        "national",
        national_money(
            b.national_net_reporting_minor,
            &b.national_net_reporting_decimal,
            &b.reporting_currency
        )
    ));
    if !b.baseline_event_id.is_empty() {
        out.push_str(&format!(
            "      {:<24} {:>30}  {}\n",
            format!("vs {}", b.baseline_event_id),
            money(b.baseline_net_reporting_minor, &b.reporting_currency),
            growth(
                b.national_net_reporting_minor,
                b.baseline_net_reporting_minor
            )
        ));
    }
    if !b.held_sites.is_empty() {
        out.push_str(&format!(
            "held by the organizers (in the national figure, not ranked): {}\n",
            b.held_sites.join(", ")
        ));
    }
    if !b.unconverted_currencies.is_empty() {
        out.push_str(&unconverted_warning(&b.unconverted_currencies));
        out.push('\n');
    }
    out
}

pub(super) fn totals_table(totals: &[CurrencyTotals]) -> String {
    let mut out = format!(
        "{:<8} {:>10} {:>30} {:>8} {:>30} {:>30}\n",
        "currency", "sales", "gross", "refunds", "refunded", "net"
    );
    for t in totals {
        out.push_str(&format!(
            "{:<8} {:>10} {:>30} {:>8} {:>30} {:>30}\n",
            t.currency,
            t.sale_count,
            money(t.gross_minor, &t.currency),
            t.refund_count,
            money(t.refunded_minor, &t.currency),
            money(t.net_minor, &t.currency)
        ));
    }
    out
}
