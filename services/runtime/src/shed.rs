//! A global concurrency limit that sheds load: when every permit is taken, a request is answered
//! RESOURCE_EXHAUSTED at once instead of queueing, so an overloaded server stays responsive and
//! clients back off. It counts work in progress: a request holds its permit while its handler
//! runs (a unary call until its answer is ready, a streaming call until its stream is set up).
//! An open stream that sends nothing holds no permit, so a client opening thousands of idle
//! streams cannot lock every other client out; streams are bounded by their own limits (per
//! site on ingest, per peer and in total for watchers) and by the connection limit. (tower's
//! `GlobalConcurrencyLimit` + `LoadShed` need `poll_ready` to be driven per request, which a
//! router does not guarantee; a `try_acquire` in `call` does not.)

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::admit::{Admit, AdmitLayer, Admitted};

/// The work-in-progress limit: permits shared by every clone.
#[derive(Debug, Clone)]
pub struct InProgress {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Admit for InProgress {
    type Pass = OwnedSemaphorePermit;

    fn admit<B>(&self, _: &http::Request<B>) -> Result<OwnedSemaphorePermit, Status> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "server is at its limit of {} concurrent requests; retry with backoff",
                self.limit
            ))
        })
    }
}

/// Layer adding [`ShedLoad`].
pub type ShedLoadLayer = AdmitLayer<InProgress>;

/// The service wrapped by [`ShedLoadLayer`].
pub type ShedLoad<S> = Admitted<S, InProgress>;

impl AdmitLayer<InProgress> {
    /// At most `limit` requests in progress at once across every service wrapped by this
    /// layer (clones share the permits).
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self::with(InProgress {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        })
    }
}
