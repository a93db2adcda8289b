//! `saleboard.v1.AggregatorService`: status, for operators and health checks.

use std::sync::Arc;

use saleboard_proto::Timestamp;
use saleboard_proto::v1::aggregator_service_server::AggregatorService as AggregatorApi;
use saleboard_proto::v1::{AggregatorStatus, GetAggregatorStatusRequest};
use saleboard_storage::Store;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::engine::LocalStatus;

/// The status service.
#[derive(Debug, Clone)]
pub struct AggregatorService {
    store: Arc<dyn Store>,
    local: watch::Receiver<LocalStatus>,
    instance_id: String,
}

impl AggregatorService {
    /// A service reporting the database's view and this process's role.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        local: watch::Receiver<LocalStatus>,
        instance_id: String,
    ) -> Self {
        Self {
            store,
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
        let state = self
            .store
            .aggregator_state()
            .await
            .map_err(|e| saleboard_runtime::status::from_storage(&e))?;
        let (seconds, nanos) = state.updated_at.to_parts();
        Ok(Response::new(AggregatorStatus {
            applied_position: state.applied,
            ledger_head: state.head,
            lag: state.head.saturating_sub(state.applied),
            active: self.local.borrow().active,
            holder: state.holder,
            updated_at: Some(Timestamp { seconds, nanos }),
            instance_id: self.instance_id.clone(),
        }))
    }
}
