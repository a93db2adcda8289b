//! Admission checks as one tower layer: a check that a request passes or fails at once, before
//! its service sees it, without waiting. A failed check is answered with its status at once
//! (never queued); a passed check may hand back something the request holds until its handler
//! has answered (a permit). The load shedder ([`crate::shed`]) and ingest's per-site rate limit
//! are such checks.

use std::task::{Context, Poll};

use tonic::Status;

use crate::auth::BoxFuture;

/// A check on a request, made in `call` (not `poll_ready`, which a router does not drive per
/// request).
pub trait Admit: Clone + Send + Sync + 'static {
    /// What an admitted request holds while its handler works; `()` when nothing.
    type Pass: Send + 'static;

    /// Admits the request, or says why not.
    ///
    /// # Errors
    /// The status the request is answered with at once.
    fn admit<B>(&self, request: &http::Request<B>) -> Result<Self::Pass, Status>;
}

/// Layer adding [`Admitted`].
#[derive(Debug, Clone)]
pub struct AdmitLayer<A> {
    check: A,
}

impl<A> AdmitLayer<A> {
    /// A layer making `check` on every request.
    #[must_use]
    pub fn with(check: A) -> Self {
        Self { check }
    }
}

impl<S, A: Clone> tower::Layer<S> for AdmitLayer<A> {
    type Service = Admitted<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        Admitted {
            inner,
            check: self.check.clone(),
        }
    }
}

/// The service wrapped by [`AdmitLayer`].
#[derive(Debug, Clone)]
pub struct Admitted<S, A> {
    inner: S,
    check: A,
}

impl<S: tonic::server::NamedService, A> tonic::server::NamedService for Admitted<S, A> {
    const NAME: &'static str = S::NAME;
}

impl<S, A, B> tower::Service<http::Request<B>> for Admitted<S, A>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    A: Admit,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The clone is not ready; keep the ready service for this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match self.check.admit(&req) {
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
            Ok(pass) => Box::pin(async move {
                // Held while the handler works, given back when it has answered.
                let response = inner.call(req).await;
                drop(pass);
                response
            }),
        }
    }
}
