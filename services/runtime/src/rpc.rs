//! Per-request telemetry, the outermost layer of every service: a server span following the RPC
//! semantic conventions (continuing the caller's W3C trace context) when tracing is on, the
//! `rpc.server.duration` histogram by method and status, and one debug log line per request.
//! The status is read where gRPC puts it: the response headers (an error answered at once) or
//! the trailers at the end of the body (a stream ends when its body does). A body dropped
//! before its trailers counts as CANCELLED.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;

use crate::auth::BoxFuture;
use crate::telemetry;

/// Layer adding [`RpcTelemetry`].
#[derive(Debug, Clone)]
pub struct RpcTelemetryLayer {
    duration: Histogram<f64>,
}

impl Default for RpcTelemetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcTelemetryLayer {
    /// Instruments from the global meter: create after telemetry is initialised.
    #[must_use]
    pub fn new() -> Self {
        Self {
            duration: telemetry::meter()
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description("Time from a request's arrival to the end of its response")
                .with_boundaries(vec![
                    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
                    5000.0, 10000.0, 30000.0,
                ])
                .build(),
        }
    }
}

impl<S> tower::Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTelemetry {
            inner,
            duration: self.duration.clone(),
        }
    }
}

/// The service wrapped by [`RpcTelemetryLayer`].
#[derive(Debug, Clone)]
pub struct RpcTelemetry<S> {
    inner: S,
    duration: Histogram<f64>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for RpcTelemetry<S> {
    const NAME: &'static str = S::NAME;
}

/// What is known of a request when its response ends.
struct Call {
    service: Arc<str>,
    method: Arc<str>,
    started: Instant,
    span: tracing::Span,
    duration: Histogram<f64>,
    code: Option<i32>,
}

impl Call {
    fn start(path: &str, headers: &http::HeaderMap, duration: Histogram<f64>) -> Self {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        let span = if telemetry::tracing_enabled() {
            let span = tracing::info_span!(
                target: "saleboard::rpc",
                "rpc",
                otel.name = format!("{service}/{method}"),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = service,
                rpc.method = method,
                rpc.grpc.status_code = tracing::field::Empty,
                // The organizer's name, recorded by AdminService and organizer-only reads
                // (never a secret).
                organizer = tracing::field::Empty,
            );
            telemetry::set_parent(&span, telemetry::extract(headers));
            span
        } else {
            tracing::Span::none()
        };
        Self {
            service: service.into(),
            method: method.into(),
            started: Instant::now(),
            span,
            duration,
            code: None,
        }
    }

    fn see(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            self.code = Some(code);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // No status before the body ended: the client went away (CANCELLED).
        let code = self.code.unwrap_or(tonic::Code::Cancelled as i32);
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1e3;
        self.duration.record(
            elapsed_ms,
            &[
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", self.service.clone()),
                KeyValue::new("rpc.method", self.method.clone()),
                KeyValue::new("rpc.grpc.status_code", i64::from(code)),
            ],
        );
        if !self.span.is_none() {
            self.span.record("rpc.grpc.status_code", code);
            // Server spans are errors for the codes that mean the server failed.
            if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
                self.span.record("otel.status_code", "ERROR");
            }
        }
        tracing::debug!(
            target: "saleboard::rpc",
            service = %self.service,
            method = %self.method,
            code = ?tonic::Code::from_i32(code),
            elapsed_ms,
            "request"
        );
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcTelemetry<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let mut call = Call::start(req.uri().path(), req.headers(), self.duration.clone());
        let span = call.span.clone();
        Box::pin(tracing::Instrument::instrument(
            async move {
                let response = inner.call(req).await?;
                call.see(response.headers());
                Ok(response.map(|body| tonic::body::Body::new(Observed { inner: body, call })))
            },
            span,
        ))
    }
}

pin_project_lite::pin_project! {
    /// A response body that reads the gRPC status from the trailers and finishes the call when
    /// it is dropped.
    struct Observed<B> {
        #[pin]
        inner: B,
        call: Call,
    }
}

impl<B: http_body::Body> http_body::Body for Observed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = {
            let _entered = this.call.span.enter();
            this.inner.poll_frame(cx)
        };
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
        {
            this.call.see(trailers);
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
