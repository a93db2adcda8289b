//! An OTLP/gRPC receiver inside the test: services export to it as they would to a collector,
//! and tests read the spans and metric points it got. The binary `otlp-receiver` runs the same
//! receiver in a container of the compose test, in the collector's place: it logs each span and
//! shows the metrics in Prometheus's text format, as the collector's prometheus exporter does.

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
struct Sink {
    received: Arc<Mutex<Received>>,
    /// Print one line per span received (the container's log is how the test reads them).
    echo: bool,
}

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
        let mut received = self.received.lock().expect("receiver lock");
        for rs in request.into_inner().resource_spans {
            let service = service_name(rs.resource.as_ref().map_or(&[], |r| &r.attributes));
            for ss in rs.scope_spans {
                for span in ss.spans {
                    if self.echo {
                        println!(
                            "span service={service} trace_id={} name={}",
                            hex(&span.trace_id),
                            span.name
                        );
                    }
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
        let mut received = self.received.lock().expect("receiver lock");
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
        Self::serve("127.0.0.1:0".parse().expect("address"), false).await
    }

    /// Starts a receiver on `addr`; with `echo`, it prints a line per span it receives:
    /// `span service=NAME trace_id=HEX name=SPAN`.
    ///
    /// # Panics
    /// When it cannot bind.
    pub async fn serve(addr: SocketAddr, echo: bool) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Received::default()));
        let sink = Sink {
            received: received.clone(),
            echo,
        };
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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A metric name or label name as Prometheus spells it (the collector's translation: every
/// character outside `[a-zA-Z0-9_:]` becomes `_`).
fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `{job="...",k="v",...}` of one data point: `job` is the service's name, as the collector's
/// prometheus exporter sets it.
fn prometheus_labels(service: &str, attrs: &[KeyValue], extra: Option<(&str, String)>) -> String {
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut labels = vec![format!("job=\"{}\"", escape(service))];
    for kv in attrs {
        if let Some(v) = kv.value.as_ref().and_then(string_of) {
            labels.push(format!("{}=\"{}\"", prometheus_name(&kv.key), escape(&v)));
        }
    }
    if let Some((k, v)) = extra {
        labels.push(format!("{k}=\"{v}\""));
    }
    format!("{{{}}}", labels.join(","))
}

impl OtlpReceiver {
    /// The latest value of every series received, in Prometheus's text exposition format
    /// (what a collector's prometheus exporter serves): a monotonic sum is a counter named
    /// `NAME_total`, any other sum or a gauge a gauge, a histogram `NAME_bucket` / `_sum` /
    /// `_count`; dots in names become underscores.
    #[must_use]
    pub fn prometheus_text(&self) -> String {
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
        use std::collections::BTreeMap;
        let number = |v: Option<Value>| match v {
            #[allow(clippy::cast_precision_loss)]
            Some(Value::AsInt(i)) => i as f64,
            Some(Value::AsDouble(d)) => d,
            None => 0.0,
        };
        // family name -> (type, series -> value); later exports replace earlier values.
        let mut families: BTreeMap<String, (&str, BTreeMap<String, f64>)> = BTreeMap::new();
        let received = self.received.lock().expect("receiver lock");
        for (service, m) in &received.metrics {
            let name = prometheus_name(&m.name);
            match &m.data {
                Some(metric::Data::Sum(sum)) => {
                    let (family, kind) = if sum.is_monotonic {
                        (format!("{name}_total"), "counter")
                    } else {
                        (name, "gauge")
                    };
                    let series = &mut families
                        .entry(family.clone())
                        .or_insert((kind, BTreeMap::new()))
                        .1;
                    for p in &sum.data_points {
                        series.insert(
                            format!(
                                "{family}{}",
                                prometheus_labels(service, &p.attributes, None)
                            ),
                            number(p.value),
                        );
                    }
                }
                Some(metric::Data::Gauge(g)) => {
                    let series = &mut families
                        .entry(name.clone())
                        .or_insert(("gauge", BTreeMap::new()))
                        .1;
                    for p in &g.data_points {
                        series.insert(
                            format!("{name}{}", prometheus_labels(service, &p.attributes, None)),
                            number(p.value),
                        );
                    }
                }
                Some(metric::Data::Histogram(h)) => {
                    let series = &mut families
                        .entry(name.clone())
                        .or_insert(("histogram", BTreeMap::new()))
                        .1;
                    for p in &h.data_points {
                        let mut cumulative = 0u64;
                        for (i, count) in p.bucket_counts.iter().enumerate() {
                            cumulative += count;
                            let le = p
                                .explicit_bounds
                                .get(i)
                                .map_or_else(|| "+Inf".to_owned(), f64::to_string);
                            #[allow(clippy::cast_precision_loss)]
                            series.insert(
                                format!(
                                    "{name}_bucket{}",
                                    prometheus_labels(service, &p.attributes, Some(("le", le)))
                                ),
                                cumulative as f64,
                            );
                        }
                        let labels = prometheus_labels(service, &p.attributes, None);
                        series.insert(format!("{name}_sum{labels}"), p.sum.unwrap_or(0.0));
                        #[allow(clippy::cast_precision_loss)]
                        series.insert(format!("{name}_count{labels}"), p.count as f64);
                    }
                }
                _ => {}
            }
        }
        let mut out = String::new();
        for (family, (kind, series)) in families {
            out.push_str(&format!("# TYPE {family} {kind}\n"));
            for (s, v) in series {
                out.push_str(&format!("{s} {v}\n"));
            }
        }
        out
    }
}
