//! The ingest service's metrics (no-ops unless telemetry exports them).

use std::collections::BTreeMap;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use saleboard_domain::Reason;
use saleboard_domain::resolve::Decision;

/// The outcomes of one request, by domain decision (counted before they become messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    accepted: u64,
    duplicate: u64,
    rejected: BTreeMap<Reason, u64>,
}

impl Tally {
    /// One transaction rejected for `reason` (by validation or by the ledger).
    pub fn rejected(&mut self, reason: Reason) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    /// One transaction decided against the ledger.
    pub fn decided(&mut self, decision: &Decision) {
        match decision {
            Decision::Accepted { .. } => self.accepted += 1,
            Decision::Duplicate { .. } => self.duplicate += 1,
            Decision::Rejected(rejection) => self.rejected(rejection.reason),
        }
    }
}

/// Instruments of one ingest process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    transactions: Counter<u64>,
    batch_rows: Histogram<u64>,
    commit_seconds: Histogram<f64>,
}

impl IngestMetrics {
    /// Instruments from the global meter: create after telemetry is initialised.
    #[must_use]
    pub fn new() -> Self {
        let meter = saleboard_runtime::telemetry::meter();
        Self {
            transactions: meter
                .u64_counter("saleboard.ingest.transactions")
                .with_unit("{transaction}")
                .with_description(
                    "Transactions answered, by outcome (accepted, duplicate, rejected) and, for rejections, reason",
                )
                .build(),
            batch_rows: meter
                .u64_histogram("saleboard.ingest.batch.rows")
                .with_unit("{transaction}")
                .with_description("Rows in one group commit")
                .with_boundaries(vec![
                    1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0,
                ])
                .build(),
            commit_seconds: meter
                .f64_histogram("saleboard.ingest.commit.duration")
                .with_unit("s")
                .with_description("Time one group commit took in the database")
                .with_boundaries(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .build(),
        }
    }

    /// Counts the outcomes of one answered request (one `add` per distinct outcome).
    pub fn answered(&self, tally: &Tally) {
        if tally.accepted > 0 {
            self.transactions
                .add(tally.accepted, &[KeyValue::new("outcome", "accepted")]);
        }
        if tally.duplicate > 0 {
            self.transactions
                .add(tally.duplicate, &[KeyValue::new("outcome", "duplicate")]);
        }
        for (reason, n) in &tally.rejected {
            self.transactions.add(
                *n,
                &[
                    KeyValue::new("outcome", "rejected"),
                    KeyValue::new("reason", reason.code()),
                ],
            );
        }
    }

    /// Records one group commit.
    pub fn committed(&self, rows: usize, elapsed: std::time::Duration) {
        self.batch_rows.record(rows as u64, &[]);
        self.commit_seconds.record(elapsed.as_secs_f64(), &[]);
    }
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self::new()
    }
}
