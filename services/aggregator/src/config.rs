//! Settings of the aggregator. Every flag can also be given by its environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use saleboard_runtime::database::DatabaseArgs;

/// Aggregator settings.
#[derive(Debug, Clone, clap::Args)]
pub struct AggregatorConfig {
    /// Address of the status gRPC server (port 0 picks a free port).
    #[arg(
        long = "aggregator-listen",
        env = "SALEBOARD_AGGREGATOR_LISTEN",
        default_value = "127.0.0.1:50053"
    )]
    pub listen: SocketAddr,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,

    /// Most ledger rows folded into one totals transaction. Reached only while behind (a
    /// backlog after a stop, a burst): a bigger batch writes each totals row it touches once
    /// for more ledger rows (catch-up from 2,000,000 rows: 186k rows/s at 20,000, 336-343k
    /// at 100,000), for about 25 MB more memory per 100,000 rows held (two batches: one
    /// written, the next read and folded meanwhile).
    #[arg(long = "aggregator-batch", env = "SALEBOARD_AGGREGATOR_BATCH", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_rows: u32,

    /// How long to wait before reading the ledger again when it had nothing new, in ms.
    #[arg(long = "aggregator-idle-poll-ms", env = "SALEBOARD_AGGREGATOR_IDLE_POLL_MS", default_value_t = 25,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub idle_poll_ms: u64,

    /// Fewest milliseconds between the starts of two totals transactions while rows keep
    /// coming (a full batch goes at once): rows arriving meanwhile are folded together, so a
    /// busy site's brand is written once per interval rather than once per small batch. Adds
    /// at most this much to freshness; 0 folds whatever is there as soon as it is there.
    /// (75 against 100, alternating quick runs: open-loop freshness p99 at 40,000/s 227-229 ms
    /// against 280-348 ms, closed loop 68-73k/s against 66-68k/s.)
    #[arg(long = "aggregator-min-apply-ms", env = "SALEBOARD_AGGREGATOR_MIN_APPLY_MS", default_value_t = 75,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub min_apply_ms: u64,

    /// While the ledger is busy (batches of at least 1,000 rows), the breakdown figures (per
    /// site and national, by brand, category and origin) are written at most this often, in
    /// ms, with their own watermark (`Breakdown.watermark`, behind the headline figures' by at
    /// most about this much): a busy site's brand is then written once per interval rather
    /// than once per apply. Headline figures (site and national totals, the hourly curve) are
    /// written on every apply whatever this says, and never wait for a breakdown write. A
    /// quieter ledger (or 0) writes the breakdowns right after each apply, in a write of their
    /// own.
    #[arg(long = "aggregator-breakdown-ms", env = "SALEBOARD_AGGREGATOR_BREAKDOWN_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub breakdown_ms: u64,

    /// Length of the active aggregator's lease, in ms: a standby takes over this long after the
    /// active one stops renewing it.
    #[arg(long = "aggregator-lease-ms", env = "SALEBOARD_AGGREGATOR_LEASE_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub lease_ms: u64,

    /// Rows waiting with the applied position not moving for this long make the totals stale:
    /// health NOT_SERVING, GetStatus `stale`, the `saleboard.aggregator.stalled` metric, in ms.
    #[arg(long = "aggregator-stale-ms", env = "SALEBOARD_AGGREGATOR_STALE_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub stale_ms: u64,
}

impl AggregatorConfig {
    /// Idle poll as a duration.
    #[must_use]
    pub fn idle_poll(&self) -> Duration {
        Duration::from_millis(self.idle_poll_ms)
    }

    /// Stale threshold as a duration.
    #[must_use]
    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_ms)
    }

    /// Longest deferral of breakdown writes as a duration.
    #[must_use]
    pub fn breakdown_interval(&self) -> Duration {
        Duration::from_millis(self.breakdown_ms)
    }

    /// Lease length as a duration.
    #[must_use]
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// Parses [`AggregatorConfig`] alone, for [`AggregatorConfig::defaults`].
#[derive(clap::Parser)]
struct Standalone {
    #[command(flatten)]
    config: AggregatorConfig,
}

impl AggregatorConfig {
    /// The settings a bare `saleboard-aggregator` would run with (defaults and `SALEBOARD_*`
    /// environment variables), for embedding it in another program or a test.
    ///
    /// # Errors
    /// When an environment variable holds an invalid value.
    pub fn defaults() -> Result<Self, clap::Error> {
        saleboard_runtime::config::parse::<Standalone>(["saleboard-aggregator"], true)
            .map(|s| s.config)
    }

    /// The built-in defaults alone, whatever the environment says (for tests).
    ///
    /// # Panics
    /// Never: the defaults are valid (every black-box test starts from them).
    #[must_use]
    pub fn built_in() -> Self {
        #[allow(clippy::expect_used)]
        saleboard_runtime::config::parse::<Standalone>(["saleboard-aggregator"], false)
            .map(|s| s.config)
            .expect("the built-in defaults are valid")
    }
}
