//! Whether the totals keep up with the ledger, watched from outside the fold loop: every second
//! it reads the ledger head and the applied position (giving up after a second), and publishes
//! what it saw. Stale means rows are waiting and the applied position has not moved for longer
//! than `--aggregator-stale-ms`, whatever the cause (a stuck or crashed active aggregator, a
//! row it cannot fold, a lost lease nobody takes). `GetStatus` falls back on this observation
//! when the database does not answer at once, and health reports NOT_SERVING while it is stale
//! or the database is unreachable. The same read serves, while this process is the active
//! aggregator, the lag metric (every second) and the progress log (every ten).

use std::sync::Arc;
use std::time::Duration;

use saleboard_domain::UnixNanos;
use saleboard_storage::{AggregatorState, Store};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::engine::LocalStatus;

/// How often the state is read.
pub const EVERY: Duration = Duration::from_secs(1);

/// What the monitor saw last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The last state read successfully (`None` before the first).
    pub state: Option<AggregatorState>,
    /// When it was read.
    pub checked_at: Option<UnixNanos>,
    /// Whether the last read succeeded in time.
    pub reachable: bool,
    /// How long rows have been waiting with the applied position not moving (zero when caught
    /// up or moving).
    pub stalled_for: Duration,
    /// `stalled_for` is past the threshold.
    pub stale: bool,
}

impl Observation {
    /// Whether health should say SERVING.
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.reachable && !self.stale
    }
}

/// Reads the state every [`EVERY`] until `stop` turns true, publishing to `out`.
pub async fn run(
    store: Arc<dyn Store>,
    stale_after: Duration,
    local: watch::Receiver<LocalStatus>,
    lag_gauge: opentelemetry::metrics::Gauge<u64>,
    out: watch::Sender<Observation>,
    mut stop: watch::Receiver<bool>,
) {
    let mut logged = Instant::now();
    let _connections = saleboard_runtime::health::ConnectionMetrics::observe(&store);
    let stalled_gauge = saleboard_runtime::telemetry::meter()
        .f64_gauge("saleboard.aggregator.stalled")
        .with_unit("s")
        .with_description(
            "How long ledger rows have waited with the totals not moving (0: caught up or moving)",
        )
        .build();
    // (applied position, when it was first seen at that value)
    let mut last_move: Option<(u64, Instant)> = None;
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = ticker.tick() => {}
        }
        let read = tokio::time::timeout(EVERY, store.aggregator_state()).await;
        let now = Instant::now();
        let mut seen = out.borrow().clone();
        match read {
            Ok(Ok(state)) => {
                if last_move.is_none_or(|(applied, _)| applied != state.applied) {
                    last_move = Some((state.applied, now));
                }
                let since = last_move.map_or(now, |(_, t)| t);
                seen.stalled_for = if state.head > state.applied {
                    now.duration_since(since)
                } else {
                    Duration::ZERO
                };
                seen.stale = seen.stalled_for > stale_after;
                if local.borrow().active {
                    let lag = state.head.saturating_sub(state.applied);
                    lag_gauge.record(lag, &[]);
                    if logged.elapsed() >= Duration::from_secs(10) {
                        tracing::info!(
                            applied = state.applied,
                            head = state.head,
                            lag,
                            "aggregator progress"
                        );
                        logged = now;
                    }
                }
                seen.reachable = true;
                seen.checked_at = Some(UnixNanos::now());
                seen.state = Some(state);
            }
            // Logged once when reads start failing (and once when they work again, above),
            // not every second of an outage.
            Ok(Err(e)) => {
                if out.borrow().reachable {
                    tracing::warn!(error = %e, "cannot read the aggregator state");
                }
                seen.reachable = false;
            }
            Err(_) => {
                if out.borrow().reachable {
                    tracing::warn!("the database did not answer within {EVERY:?}");
                }
                seen.reachable = false;
            }
        }
        if seen.reachable && !out.borrow().reachable && out.borrow().checked_at.is_some() {
            tracing::info!("the aggregator state reads again");
        }
        if seen.stale && !out.borrow().stale {
            let (applied, head) = seen.state.as_ref().map_or((0, 0), |s| (s.applied, s.head));
            tracing::error!(
                applied,
                head,
                stalled_s = seen.stalled_for.as_secs(),
                "the totals are stale: {} ledger rows wait and the applied position has not moved \
                 for {} s",
                head.saturating_sub(applied),
                seen.stalled_for.as_secs()
            );
        }
        stalled_gauge.record(seen.stalled_for.as_secs_f64(), &[]);
        out.send_replace(seen);
    }
}
