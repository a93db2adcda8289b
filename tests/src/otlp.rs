//! An OTLP/gRPC receiver inside the test: services export to it as they would to a collector,
//! and tests read the spans and metric points it got.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
struct Received {
    /// (service.name, span)
    spans: Vec<(String, Span)>,
    /// (service.name, metric), in arrival order.
    metrics: Vec<(String, Metric)>,
}

/// The running receiver.
#[derive(Debug, Clone)]
pub struct OtlpReceiver {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Received>>,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Received>>);

fn service_name(attrs: &[KeyValue]) -> String {
    attrs
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .and_then(string_of)
        .unwrap_or_default()
}

fn string_of(v: &AnyValue) -> Option<String> {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        Some(any_value::Value::IntValue(i)) => Some(i.to_string()),
        Some(any_value::Value::BoolValue(b)) => Some(b.to_string()),
        _ => None,
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut received = self.0.lock().expect("receiver lock");
        for rs in request.into_inner().resource_spans {
            let service = service_name(rs.resource.as_ref().map_or(&[], |r| &r.attributes));
            for ss in rs.scope_spans {
                for span in ss.spans {
                    received.spans.push((service.clone(), span));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let mut received = self.0.lock().expect("receiver lock");
        for rm in request.into_inner().resource_metrics {
            let service = service_name(rm.resource.as_ref().map_or(&[], |r| &r.attributes));
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    received.metrics.push((service.clone(), m));
                }
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A span attribute as a string (ints and bools printed).
#[must_use]
pub fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(string_of)
}

fn point_matches(attrs: &[KeyValue], want: &[(&str, &str)]) -> bool {
    want.iter().all(|(k, v)| {
        attrs
            .iter()
            .find(|kv| kv.key == *k)
            .and_then(|kv| kv.value.as_ref())
            .and_then(string_of)
            .is_some_and(|s| s == *v)
    })
}

impl OtlpReceiver {
    /// Starts a receiver on 127.0.0.1, port 0.
    ///
    /// # Panics
    /// When it cannot bind.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Received::default()));
        let sink = Sink(received.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(sink.clone()))
                .add_service(MetricsServiceServer::new(sink))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Self { addr, received }
    }

    /// The endpoint to export to.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far from `service`.
    #[must_use]
    pub fn spans(&self, service: &str) -> Vec<Span> {
        self.received
            .lock()
            .expect("receiver lock")
            .spans
            .iter()
            .filter(|(s, _)| s == service)
            .map(|(_, span)| span.clone())
            .collect()
    }

    /// The latest cumulative value of counter `name` from `service` for the data point whose
    /// attributes include `attrs` (sums over matching points of one export), or `None` when
    /// never exported.
    #[must_use]
    pub fn counter(&self, service: &str, name: &str, attrs: &[(&str, &str)]) -> Option<i64> {
        let received = self.received.lock().expect("receiver lock");
        received
            .metrics
            .iter()
            .rev()
            .filter(|(s, m)| s == service && m.name == name)
            .find_map(|(_, m)| match &m.data {
                Some(metric::Data::Sum(sum)) => {
                    let matching: Vec<_> = sum
                        .data_points
                        .iter()
                        .filter(|p| point_matches(&p.attributes, attrs))
                        .collect();
                    (!matching.is_empty()).then(|| {
                        matching
                            .iter()
                            .map(|p| match p.value {
                                Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i)) => i,
                                #[allow(clippy::cast_possible_truncation)]
                                Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(d)) => d as i64,
                                None => 0,
                            })
                            .sum()
                    })
                }
                _ => None,
            })
    }

    /// The latest cumulative count of histogram `name` from `service` over the data points
    /// whose attributes include `attrs`.
    #[must_use]
    pub fn histogram_count(
        &self,
        service: &str,
        name: &str,
        attrs: &[(&str, &str)],
    ) -> Option<u64> {
        let received = self.received.lock().expect("receiver lock");
        received
            .metrics
            .iter()
            .rev()
            .filter(|(s, m)| s == service && m.name == name)
            .find_map(|(_, m)| match &m.data {
                Some(metric::Data::Histogram(h)) => {
                    let matching: Vec<_> = h
                        .data_points
                        .iter()
                        .filter(|p| point_matches(&p.attributes, attrs))
                        .collect();
                    (!matching.is_empty()).then(|| matching.iter().map(|p| p.count).sum())
                }
                _ => None,
            })
    }

    /// Every exported value of the sum or gauge `name` from `service` (first data point of
    /// each export), in arrival order.
    #[must_use]
    pub fn history(&self, service: &str, name: &str) -> Vec<f64> {
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
        let received = self.received.lock().expect("receiver lock");
        received
            .metrics
            .iter()
            .filter(|(s, m)| s == service && m.name == name)
            .filter_map(|(_, m)| {
                let points = match &m.data {
                    Some(metric::Data::Sum(sum)) => &sum.data_points,
                    Some(metric::Data::Gauge(g)) => &g.data_points,
                    _ => return None,
                };
                points.first().and_then(|p| match p.value {
                    Some(Value::AsInt(i)) => Some(i as f64),
                    Some(Value::AsDouble(d)) => Some(d),
                    None => None,
                })
            })
            .collect()
    }

    /// Whether any metric named `name` arrived from `service`.
    #[must_use]
    pub fn has_metric(&self, service: &str, name: &str) -> bool {
        self.received
            .lock()
            .expect("receiver lock")
            .metrics
            .iter()
            .any(|(s, m)| s == service && m.name == name)
    }
}
