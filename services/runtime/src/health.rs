//! Health that follows the database: every second each service reads one row (giving up after
//! a second); while that fails its gRPC health says NOT_SERVING, so a load balancer or
//! orchestrator stops sending it work within a few seconds of an outage, and says SERVING
//! again once the database answers. Shutdown's NOT_SERVING always wins.

use std::sync::Arc;
use std::time::Duration;

use saleboard_storage::Store;
use tokio::sync::watch;

/// How often the database is probed, and how long a probe may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Keeps the health of `services` (and the server as a whole, "") in step with the database
/// until `draining` turns true.
pub async fn follow_database(
    store: Arc<dyn Store>,
    reporter: tonic_health::server::HealthReporter,
    services: Vec<&'static str>,
    mut draining: watch::Receiver<bool>,
) {
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
            tracing::error!("the database does not answer; health is NOT_SERVING until it does");
        }
        let status = if up {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        for name in services.iter().copied().chain([""]) {
            reporter.set_service_status(name, status).await;
        }
        last = up;
    }
}
