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
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::Status;

use crate::auth::BoxFuture;

/// Layer adding [`ShedLoad`].
#[derive(Debug, Clone)]
pub struct ShedLoadLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ShedLoadLayer {
    /// At most `limit` requests in progress at once across every service wrapped by this
    /// layer (clones share the permits).
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> tower::Layer<S> for ShedLoadLayer {
    type Service = ShedLoad<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShedLoad {
            inner,
            permits: self.permits.clone(),
            limit: self.limit,
        }
    }
}

/// The service wrapped by [`ShedLoadLayer`].
#[derive(Debug, Clone)]
pub struct ShedLoad<S> {
    inner: S,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for ShedLoad<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for ShedLoad<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "server is at its limit of {} concurrent requests; retry with backoff",
                self.limit
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        Box::pin(async move {
            // Held while the handler works, given back when it has answered.
            let response = inner.call(req).await;
            drop(permit);
            response
        })
    }
}
