//! What a run measured and how it reconciles: the movements of totals, the report (a table or
//! JSON), and the comparison of what the totals moved by with what was ACCEPTED.

use std::collections::BTreeMap;
use std::time::Duration;

use saleboard_domain::Dimension;
use serde_json::json;

/// How much one (site, currency) total moved, or was told ACCEPTED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Movement {
    /// Sales.
    pub sales: i64,
    /// Sum of sales, minor units.
    pub gross: i64,
    /// Refunds.
    pub refunds: i64,
    /// Sum of refunds, minor units.
    pub refunded: i64,
}

impl Movement {
    /// `self - earlier`, figure by figure.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            sales: self.sales - earlier.sales,
            gross: self.gross - earlier.gross,
            refunds: self.refunds - earlier.refunds,
            refunded: self.refunded - earlier.refunded,
        }
    }

    /// Adds `other`, figure by figure.
    pub fn add(&mut self, other: Self) {
        self.sales += other.sales;
        self.gross += other.gross;
        self.refunds += other.refunds;
        self.refunded += other.refunded;
    }
}

impl std::fmt::Display for Movement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sales, gross {}, {} refunds, refunded {}",
            self.sales, self.gross, self.refunds, self.refunded
        )
    }
}

/// Per (site, currency): how the totals moved.
pub type Figures = BTreeMap<(String, String), Movement>;

/// Per (dimension, key, currency): what was ACCEPTED.
pub type SegmentFigures = BTreeMap<(Dimension, String, String), Movement>;

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Transactions sent.
    pub sent: u64,
    /// Told ACCEPTED, or stored by an attempt whose answer was lost (`recovered`).
    pub accepted: u64,
    /// New transactions told DUPLICATE when resent after their stream failed: their first
    /// attempt was stored (counted in `accepted`, once).
    pub recovered: u64,
    /// Told DUPLICATE (deliberate resubmissions).
    pub duplicate: u64,
    /// Streams opened again after UNAVAILABLE or RESOURCE_EXHAUSTED (or failing to open).
    pub reopened: u64,
    /// Told REJECTED, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
    /// Ack latency of batches, sorted, microseconds.
    pub ack_us: Vec<u64>,
    /// Freshness of batches, sorted, microseconds.
    pub fresh_us: Vec<u64>,
    /// Differences found by reconciliation (empty: passed).
    pub mismatches: Vec<String>,
    /// The event the run pushed into (its own, unless --event).
    pub event_id: String,
    /// The big screen's address for that event.
    pub page: String,
}

/// The `q` quantile of sorted samples.
#[must_use]
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl Report {
    /// Accepted transactions per second.
    #[must_use]
    pub fn accepted_per_sec(&self) -> f64 {
        let n = self.accepted as f64;
        n / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// As JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        json!({
            "sent": self.sent,
            "accepted": self.accepted,
            "recovered": self.recovered,
            "reopened": self.reopened,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "accepted_per_s": self.accepted_per_sec(),
            "batches": self.ack_us.len(),
            "ack_ms": {"p50": quantile(&self.ack_us, 0.5) as f64 / 1e3, "p99": quantile(&self.ack_us, 0.99) as f64 / 1e3, "p999": quantile(&self.ack_us, 0.999) as f64 / 1e3},
            "freshness_ms": {"p50": quantile(&self.fresh_us, 0.5) as f64 / 1e3, "p99": quantile(&self.fresh_us, 0.99) as f64 / 1e3},
            "reconciled": self.mismatches.is_empty(),
            "mismatches": self.mismatches,
            "event_id": self.event_id,
            "page": self.page,
        })
    }

    /// As a table.
    #[must_use]
    pub fn table(&self) -> String {
        let ms = |v: &[u64], q| quantile(v, q) as f64 / 1e3;
        let mut out = format!(
            "event {} (on the big screen: {})\nsent {} in {:.2} s\n  accepted   {:>10}  ({:.0}/s)\n  duplicate  {:>10}\n  rejected   {:>10}  {}\n  ack        p50 {:.1} ms  p99 {:.1} ms  p999 {:.1} ms\n  freshness  p50 {:.1} ms  p99 {:.1} ms\n",
            self.event_id,
            self.page,
            self.sent,
            self.elapsed.as_secs_f64(),
            self.accepted,
            self.accepted_per_sec(),
            self.duplicate,
            self.rejected.values().sum::<u64>(),
            self.rejected
                .iter()
                .map(|(reason, n)| format!("{reason}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            ms(&self.ack_us, 0.5),
            ms(&self.ack_us, 0.99),
            ms(&self.ack_us, 0.999),
            ms(&self.fresh_us, 0.5),
            ms(&self.fresh_us, 0.99),
        );
        if self.reopened > 0 {
            out.push_str(&format!(
                "  reopened   {:>10}  streams (after UNAVAILABLE or RESOURCE_EXHAUSTED; what was unanswered was sent again)\n",
                self.reopened
            ));
        }
        if self.recovered > 0 {
            out.push_str(&format!(
                "  recovered  {:>10}  (accepted by an attempt whose answer was lost: DUPLICATE when resent after UNAVAILABLE or RESOURCE_EXHAUSTED)\n",
                self.recovered
            ));
        }
        if self.mismatches.is_empty() {
            out.push_str("  reconciliation PASS: every site's totals, the national totals (and, in the run's own event, every breakdown) equal what was ACCEPTED, to the minor unit\n");
        } else {
            out.push_str(&format!(
                "  reconciliation FAIL: {} difference(s)\n",
                self.mismatches.len()
            ));
            for m in &self.mismatches {
                out.push_str(&format!("    {m}\n"));
            }
        }
        out
    }
}

/// Compares totals after the run, minus before, with what was ACCEPTED. Returns each difference
/// as a sentence; empty means the figures reconcile to the minor unit.
#[must_use]
pub fn reconcile(expected: &Figures, before: &Figures, after: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = expected.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut national_expected: BTreeMap<&str, Movement> = BTreeMap::new();
    let mut national_got: BTreeMap<&str, Movement> = BTreeMap::new();
    for key in keys {
        let e = expected.get(key).copied().unwrap_or_default();
        let b = before.get(key).copied().unwrap_or_default();
        let a = after.get(key).copied().unwrap_or_default();
        let got = a.since(b);
        if got != e {
            out.push(format!(
                "{} {}: totals moved by {got} but {e} was ACCEPTED",
                key.0, key.1
            ));
        }
        for (acc, v) in [(&mut national_expected, e), (&mut national_got, got)] {
            acc.entry(key.1.as_str()).or_default().add(v);
        }
    }
    if national_expected != national_got {
        out.push(format!(
            "national: totals moved by {} but {} was ACCEPTED",
            describe(&national_got),
            describe(&national_expected)
        ));
    }
    out
}

/// Movements per currency, as a sentence.
fn describe(by_currency: &BTreeMap<&str, Movement>) -> String {
    by_currency
        .iter()
        .map(|(currency, m)| format!("{currency}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rows: &[(&str, &str, [i64; 4])]) -> Figures {
        rows.iter()
            .map(|(s, c, [sales, gross, refunds, refunded])| {
                (
                    ((*s).to_owned(), (*c).to_owned()),
                    Movement {
                        sales: *sales,
                        gross: *gross,
                        refunds: *refunds,
                        refunded: *refunded,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn reconciliation_passes_on_exact_deltas() {
        let before = figures(&[("a", "IDR", [1, 100, 0, 0])]);
        let after = figures(&[("a", "IDR", [3, 350, 1, 50]), ("b", "USD", [1, 9, 0, 0])]);
        let expected = figures(&[("a", "IDR", [2, 250, 1, 50]), ("b", "USD", [1, 9, 0, 0])]);
        assert!(reconcile(&expected, &before, &after).is_empty());
    }

    #[test]
    fn reconciliation_fails_when_totals_are_off_by_one_minor_unit() {
        let after = figures(&[("a", "IDR", [2, 251, 1, 50])]);
        let expected = figures(&[("a", "IDR", [2, 250, 1, 50])]);
        let diffs = reconcile(&expected, &Figures::new(), &after);
        assert_eq!(diffs.len(), 2, "the site and the national line: {diffs:?}");
        assert!(diffs[0].starts_with("a IDR"));
        // Totals that moved for a site nothing was accepted for are caught too.
        let diffs = reconcile(
            &Figures::new(),
            &Figures::new(),
            &figures(&[("z", "JPY", [1, 1, 0, 0])]),
        );
        assert!(!diffs.is_empty());
    }

    #[test]
    fn quantiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 501);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
