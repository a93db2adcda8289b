//! gRPC health of a service: one reporter for the service names it serves and the server as a
//! whole (""), SERVING or NOT_SERVING together. It can follow the database: every second the
//! service reads one row (giving up after a second); while that fails health says NOT_SERVING,
//! so a load balancer or orchestrator stops sending it work within a few seconds of an outage,
//! and SERVING again once the database answers. Shutdown's NOT_SERVING always wins.

use std::sync::Arc;
use std::time::Duration;

use saleboard_storage::Store;
use tokio::sync::watch;

/// How often the database is probed, and how long a probe may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

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
        let mut ticker = tokio::time::interval(PROBE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = true;
        loop {
            tokio::select! {
                _ = draining.wait_for(|d| *d) => return,
                _ = ticker.tick() => {}
            }
            let up = matches!(
                tokio::time::timeout(PROBE_EVERY, store.applied_position()).await,
                Ok(Ok(_))
            );
            if up == last || *draining.borrow() {
                continue;
            }
            if up {
                tracing::info!("the database answers again; serving");
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
