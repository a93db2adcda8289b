//! A global concurrency limit that sheds load: when every permit is taken, a request is answered
//! RESOURCE_EXHAUSTED at once instead of queueing, so an overloaded server stays responsive and
//! clients back off. A request holds its permit until its response body ends, so a streaming
//! call counts for as long as it streams. (tower's `GlobalConcurrencyLimit` + `LoadShed` need
//! `poll_ready` to be driven per request, which a router does not guarantee, and release at the
//! response head; a `try_acquire` in `call` and a guarded body do neither.)

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
            // The permit lives as long as the response body: a stream counts until it ends.
            let response = inner.call(req).await?;
            Ok(response.map(|body| {
                tonic::body::Body::new(Guarded {
                    inner: body,
                    _permit: permit,
                })
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps a concurrency permit until it is dropped.
    struct Guarded<B> {
        #[pin]
        inner: B,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }
}

impl<B: http_body::Body> http_body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
