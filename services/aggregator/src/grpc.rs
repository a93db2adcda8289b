//! `saleboard.v1.AggregatorService`: status, for operators and health checks.

use std::sync::Arc;
use std::time::Duration;

use saleboard_proto::Timestamp;
use saleboard_proto::v1::aggregator_service_server::AggregatorService as AggregatorApi;
use saleboard_proto::v1::{AggregatorStatus, GetAggregatorStatusRequest};
use saleboard_storage::Store;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::engine::LocalStatus;
use crate::monitor::Observation;

/// How long GetStatus waits for a fresh read before answering from the monitor's last one.
pub const FRESH_READ: Duration = Duration::from_millis(500);

/// The status service.
#[derive(Debug, Clone)]
pub struct AggregatorService {
    store: Arc<dyn Store>,
    observed: watch::Receiver<Observation>,
    local: watch::Receiver<LocalStatus>,
    instance_id: String,
}

impl AggregatorService {
    /// A service reporting the database's view (read fresh, or the monitor's last view when the
    /// database does not answer in [`FRESH_READ`]) and this process's role.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        observed: watch::Receiver<Observation>,
        local: watch::Receiver<LocalStatus>,
        instance_id: String,
    ) -> Self {
        Self {
            store,
            observed,
            local,
            instance_id,
        }
    }
}

#[tonic::async_trait]
impl AggregatorApi for AggregatorService {
    async fn get_status(
        &self,
        _: Request<GetAggregatorStatusRequest>,
    ) -> Result<Response<AggregatorStatus>, Status> {
        let mut seen = self.observed.borrow().clone();
        if let Ok(Ok(fresh)) = tokio::time::timeout(FRESH_READ, self.store.aggregator_state()).await
        {
            seen.reachable = true;
            seen.checked_at = Some(saleboard_domain::UnixNanos::now());
            seen.state = Some(fresh);
        } else {
            seen.reachable = false;
        }
        let Some(state) = seen.state else {
            return Err(Status::unavailable(
                "the aggregator has not read the database yet; retry in a second",
            ));
        };
        let timestamp = |t: saleboard_domain::UnixNanos| {
            let (seconds, nanos) = t.to_parts();
            Timestamp { seconds, nanos }
        };
        Ok(Response::new(AggregatorStatus {
            applied_position: state.applied,
            ledger_head: state.head,
            lag: state.head.saturating_sub(state.applied),
            active: self.local.borrow().active,
            holder: state.holder,
            updated_at: Some(timestamp(state.updated_at)),
            instance_id: self.instance_id.clone(),
            stale: seen.stale,
            stalled_for_ms: u64::try_from(seen.stalled_for.as_millis()).unwrap_or(u64::MAX),
            database_reachable: seen.reachable,
            checked_at: seen.checked_at.map(timestamp),
        }))
    }
}
