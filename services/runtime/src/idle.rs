//! What a connection tells each of its requests, and how a public port closes idle connections.
//!
//! The listener ([`crate::grpc::incoming`]) gives every connection a [`ConnectionInfo`]: tonic
//! puts it into each request's extensions, and [`ConnectionLayer`] (the server's outermost
//! layer) turns it into tonic's own `TcpConnectInfo` (which `Request::remote_addr` and the
//! per-peer limits read) and counts the request as open on its connection until its response
//! body ends or is dropped.
//!
//! A connection is idle when none of its requests is open: an HTTP/1.1 keep-alive connection
//! between requests, an HTTP/2 connection with no stream. Bytes cannot tell it (HTTP/2 keep-alive
//! pings flow either way), open requests can. With an idle timeout, the connection's reads end
//! (EOF) once it has been idle that long, and hyper closes it; an SSE stream or a watch is an
//! open request, so a screen is never cut while it watches.

use std::future::Future as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::server::TcpConnectInfo;

use crate::auth::BoxFuture;

/// Requests open on one connection, and since when it has had none.
#[derive(Debug)]
pub struct Activity {
    open: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Activity {
    /// A connection accepted now, with no request yet.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    /// Counts one request as open until the returned guard is dropped.
    #[must_use]
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.open.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// When the connection will have been idle for `timeout`: `None` while a request is open.
    #[must_use]
    pub fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(
            *self
                .idle_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                + timeout,
        )
    }
}

/// One open request of a connection (see [`Activity::begin`]).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The idle clock starts when the last open request ends.
        let mut since = self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            *since = Instant::now();
        }
    }
}

/// Watches one connection's idleness from inside its reads (see the module comment).
#[derive(Debug)]
pub struct IdleTimer {
    activity: Arc<Activity>,
    timeout: Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimer {
    /// A timer for `activity`'s connection, closing it after `timeout` without an open request.
    #[must_use]
    pub fn new(activity: Arc<Activity>, timeout: Duration) -> Self {
        let sleep = Box::pin(tokio::time::sleep(timeout));
        Self {
            activity,
            timeout,
            sleep,
        }
    }

    /// Ready when the connection has been idle for the timeout; otherwise re-arms itself for
    /// the next moment that could be so, and registers `cx` to be woken then.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.sleep.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match self.activity.idle_deadline(self.timeout) {
                Some(deadline) if deadline <= now => return Poll::Ready(()),
                Some(deadline) => self.sleep.as_mut().reset(deadline),
                None => self.sleep.as_mut().reset(now + self.timeout),
            }
        }
        Poll::Pending
    }
}

/// What every request of a connection carries in its extensions (from the listener).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The addresses, as tonic's own type.
    pub tcp: TcpConnectInfo,
    /// The connection's open requests, when its port closes idle connections.
    pub activity: Option<Arc<Activity>>,
}

/// The server's outermost layer: see the module comment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionLayer;

impl<S> tower::Layer<S> for ConnectionLayer {
    type Service = ConnectionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectionService { inner }
    }
}

/// The service wrapped by [`ConnectionLayer`].
#[derive(Debug, Clone)]
pub struct ConnectionService<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for ConnectionService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    R: http_body::Body + Send + 'static,
{
    type Response = http::Response<Tracked<R>>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let in_flight = match req.extensions_mut().remove::<ConnectionInfo>() {
            Some(info) => {
                req.extensions_mut().insert(info.tcp);
                info.activity.as_ref().map(Activity::begin)
            }
            None => None,
        };
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| Tracked { inner, in_flight }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request open on its connection until it ends or is
    /// dropped.
    pub struct Tracked<B> {
        #[pin]
        inner: B,
        in_flight: Option<InFlight>,
    }
}

impl<B: http_body::Body> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.in_flight.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expired(timer: &mut IdleTimer) -> bool {
        let waker = futures::task::noop_waker();
        timer
            .poll_expired(&mut Context::from_waker(&waker))
            .is_ready()
    }

    #[tokio::test]
    async fn a_connection_expires_only_once_idle_for_the_timeout() {
        // Not before the timeout.
        let activity = Activity::new();
        let mut patient = IdleTimer::new(activity.clone(), Duration::from_secs(3_600));
        assert!(!expired(&mut patient), "new");
        // Past it, only without an open request.
        let mut quick = IdleTimer::new(activity.clone(), Duration::from_millis(1));
        let request = activity.begin();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!expired(&mut quick), "a request is open");
        drop(request);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(expired(&mut quick), "idle past the timeout");
        assert!(!expired(&mut patient), "idle, but within its timeout");
    }

    #[tokio::test]
    async fn the_idle_clock_starts_when_the_last_request_ends() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(10);
        let a = activity.begin();
        let b = activity.begin();
        drop(a);
        assert_eq!(activity.idle_deadline(timeout), None, "one still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let before = Instant::now();
        drop(b);
        let deadline = activity.idle_deadline(timeout).expect("idle");
        assert!(
            deadline >= before + timeout && deadline <= Instant::now() + timeout,
            "the clock started when the last request ended"
        );
    }
}
