//! gRPC health of a service: one reporter for the service names it serves and the server as a
//! whole (""), SERVING or NOT_SERVING together. It can follow the database: every second the
//! service reads one row (giving up after a second); while that fails health says NOT_SERVING,
//! so a load balancer or orchestrator stops sending it work within a few seconds of an outage,
//! and SERVING again once the database answers. It also says NOT_SERVING while the database
//! answers but cannot take writes (a full disk, an I/O error: the store's last write failed
//! with such a fault); once no write has failed for [`QUIET_BEFORE_PROBE`], each probe also
//! tries a write that changes nothing ([`Store::probe_write`]), so health comes back by itself
//! once the database takes writes again, even with no client writing (a load balancer stops
//! sending them while NOT_SERVING). Shutdown's NOT_SERVING always wins.

use std::sync::Arc;
use std::time::Duration;

use saleboard_storage::Store;
use tokio::sync::watch;

/// How often the database is probed, and how long a probe may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// While writes fail, how long since the last failed write before health tries a write of its
/// own (which, small, may pass on a nearly full disk while the service's writes do not).
pub const QUIET_BEFORE_PROBE: Duration = Duration::from_secs(2);

/// The health of one server's services.
#[derive(Clone)]
pub struct Health {
    reporter: tonic_health::server::HealthReporter,
    names: Arc<[&'static str]>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("names", &self.names)
            .finish()
    }
}

impl Health {
    /// Health for the services named `names` (their `NamedService::NAME`), not yet reported.
    #[must_use]
    pub fn new(names: &[&'static str]) -> Self {
        Self {
            reporter: tonic_health::server::HealthReporter::new(),
            names: names.into(),
        }
    }

    /// The reporter the health service answers from.
    #[must_use]
    pub fn reporter(&self) -> &tonic_health::server::HealthReporter {
        &self.reporter
    }

    /// Reports every name, and the server as a whole, SERVING or NOT_SERVING.
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        for name in self.names.iter().copied().chain([""]) {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Follows the database until `draining` turns true.
    pub async fn follow_database(self, store: Arc<dyn Store>, mut draining: watch::Receiver<bool>) {
        let _connections = ConnectionMetrics::observe(&store);
        let mut ticker = tokio::time::interval(PROBE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = true;
        loop {
            tokio::select! {
                _ = draining.wait_for(|d| *d) => return,
                _ = ticker.tick() => {}
            }
            let answers = matches!(
                tokio::time::timeout(PROBE_EVERY, store.applied_position()).await,
                Ok(Ok(_))
            );
            let writes = answers
                && match store.write_fault() {
                    None => true,
                    // The service's own writes still fail: a small probe could pass anyway.
                    Some(w) if w.last_failed < QUIET_BEFORE_PROBE => false,
                    Some(_) => matches!(
                        tokio::time::timeout(PROBE_EVERY, store.probe_write()).await,
                        Ok(Ok(()))
                    ),
                };
            let up = answers && writes;
            if up == last || *draining.borrow() {
                continue;
            }
            if up {
                tracing::info!("the database answers and takes writes again; serving");
            } else if answers {
                let fault = store
                    .write_fault()
                    .map_or("the database cannot take writes", |w| w.fault.describe());
                tracing::error!("{fault}; health is NOT_SERVING until it takes writes again");
            } else {
                tracing::error!(
                    "the database does not answer; health is NOT_SERVING until it does"
                );
            }
            self.set(up).await;
            last = up;
        }
    }
}

/// The store's connection counts as metrics, observed at every export while this is kept:
/// `saleboard.storage.connections.discarded` (closed because their transaction failed or was
/// abandoned: storage faults, cancelled requests) and
/// `saleboard.storage.connections.refused_in_transaction` (found still inside a transaction
/// when taken from the pool: a bug; always zero).
#[derive(Debug)]
pub struct ConnectionMetrics {
    _discarded: opentelemetry::metrics::ObservableCounter<u64>,
    _refused: opentelemetry::metrics::ObservableCounter<u64>,
}

impl ConnectionMetrics {
    /// Starts observing `store`'s counts.
    #[must_use]
    pub fn observe(store: &Arc<dyn Store>) -> Self {
        let meter = crate::telemetry::meter();
        let discarded = store.clone();
        let refused = store.clone();
        Self {
            _discarded: meter
                .u64_observable_counter("saleboard.storage.connections.discarded")
                .with_description(
                    "Database connections closed instead of pooled because their transaction \
                     failed or was abandoned",
                )
                .with_callback(move |c| c.observe(discarded.connection_stats().discarded, &[]))
                .build(),
            _refused: meter
                .u64_observable_counter("saleboard.storage.connections.refused_in_transaction")
                .with_description(
                    "Pooled database connections found still inside a transaction (a bug: \
                     always zero)",
                )
                .with_callback(move |c| {
                    c.observe(refused.connection_stats().refused_in_transaction, &[]);
                })
                .build(),
        }
    }
}
