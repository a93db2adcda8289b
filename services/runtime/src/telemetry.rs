//! Logs, traces and metrics of a process.
//!
//! Logs go to stderr (human, compact or JSON lines, filtered by `RUST_LOG`). Traces and metrics
//! are exported by OTLP/gRPC when an endpoint is configured (`--otlp-endpoint` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`; the other standard `OTEL_*` variables are honoured by the
//! exporters and the SDK). Without one nothing is exported and no span is created on the hot
//! path: [`tracing_enabled`] is false and the metric instruments are no-ops.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, filter};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One compact line per event.
    Compact,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The telemetry settings every service binary takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TelemetryArgs {
    /// Log format (the level is set by RUST_LOG, default `info`; `debug` logs one line per
    /// request).
    #[arg(long, env = "SALEBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint that receives traces and metrics, such as
    /// http://otel-collector:4317. Unset: nothing is exported. The other standard OTEL_*
    /// variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS,
    /// OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL,
    /// OTEL_SDK_DISABLED) apply.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Telemetry could not be set up; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting has a value that cannot work.
    #[error("invalid setting {setting}: {why}")]
    Setting {
        /// The flag or environment variable.
        setting: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// An OTLP exporter (traces or metrics) could not be built.
    #[error("cannot build an OTLP exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (an OTLP endpoint is configured). Code on the hot path creates
/// spans only when this is true.
#[must_use]
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// The providers installed when exporting; [`Telemetry::shutdown`] flushes them.
#[derive(Debug, Default)]
#[must_use = "call shutdown() at exit, or the last spans and metrics are lost"]
pub struct Telemetry {
    providers: Option<Providers>,
}

#[derive(Debug)]
struct Providers {
    tracer: opentelemetry_sdk::trace::SdkTracerProvider,
    meter: opentelemetry_sdk::metrics::SdkMeterProvider,
}

impl Telemetry {
    /// Whether traces and metrics are exported.
    #[must_use]
    pub fn exporting(&self) -> bool {
        self.providers.is_some()
    }

    /// Runs a service's work to its end, logs a failure once with its cause chain, then
    /// flushes telemetry (also after a failure, so the spans that explain it are not lost).
    /// Returns the process's exit code.
    pub async fn run<E: std::fmt::Display>(
        self,
        service: &str,
        work: impl std::future::Future<Output = Result<(), E>>,
    ) -> std::process::ExitCode {
        let result = work.await;
        if let Err(e) = &result {
            tracing::error!(error = format!("{e:#}"), "{service} failed");
        }
        self.shutdown().await;
        if result.is_ok() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }

    /// Flushes and stops the exporters (the last batch of spans and a final metric export).
    /// Blocking work runs off the async workers, which the exporter's channel needs.
    pub async fn shutdown(self) {
        let Some(Providers { tracer, meter }) = self.providers else {
            return;
        };
        TRACING.store(false, Ordering::Relaxed);
        let flushed = tokio::task::spawn_blocking(move || {
            if let Err(e) = tracer.shutdown() {
                eprintln!("flushing traces failed: {e}");
            }
            if let Err(e) = meter.shutdown() {
                eprintln!("flushing metrics failed: {e}");
            }
        })
        .await;
        if let Err(e) = flushed {
            eprintln!("flushing telemetry failed: {e}");
        }
    }
}

fn setting(setting: &'static str, why: impl Into<String>) -> TelemetryError {
    TelemetryError::Setting {
        setting,
        why: why.into(),
    }
}

fn env_true(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The OTLP endpoint to export to, if any, after checking the settings that would make it fail
/// later.
fn endpoint(args: &TelemetryArgs) -> Result<Option<String>, TelemetryError> {
    if env_true("OTEL_SDK_DISABLED") {
        return Ok(None);
    }
    let Some(endpoint) = args.otlp_endpoint.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if endpoint.is_empty() {
        return Ok(None);
    }
    for name in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ] {
        if let Ok(protocol) = std::env::var(name)
            && protocol.trim() != "grpc"
        {
            return Err(setting(
                name,
                format!(
                    "{protocol:?} is not supported; Saleboard exports OTLP over gRPC (\"grpc\", port 4317)"
                ),
            ));
        }
    }
    match endpoint.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Ok(Some(endpoint.to_owned()))
        }
        _ => Err(setting(
            "--otlp-endpoint / OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{endpoint:?} is not a URL such as http://otel-collector:4317"),
        )),
    }
}

/// Installs the global log subscriber and, when an OTLP endpoint is set, the trace and metric
/// exporters, the W3C trace-context propagator and the global meter provider. Must run inside
/// the tokio runtime (the OTLP/gRPC channel lives on it). A second call in one process (tests)
/// keeps the first subscriber.
///
/// # Errors
/// When a setting is invalid (the error names it) or an exporter cannot be built.
pub fn init(service: &'static str, args: &TelemetryArgs) -> Result<Telemetry, TelemetryError> {
    let endpoint = endpoint(args)?;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match args.log_format {
        LogFormat::Human => fmt.with_ansi(ansi).with_filter(filter()).boxed(),
        LogFormat::Compact => fmt.compact().with_ansi(false).with_filter(filter()).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .with_filter(filter())
            .boxed(),
    };

    let Some(endpoint) = endpoint else {
        // Err only means a subscriber is already installed (tests): keep it.
        drop(tracing_subscriber::registry().with(logs).try_init());
        return Ok(Telemetry::default());
    };

    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();

    use opentelemetry_otlp::WithExportConfig as _;
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()?;
    let tracer_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_periodic_exporter(metrics)
        .with_resource(resource)
        .build();
    // Our own extract/inject use W3C trace context directly (the CLI injects without exporting);
    // the global propagator is for library code that asks for it, and is a no-op until set.
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_meter_provider(meter_provider.clone());

    // Only Saleboard's own spans become OTLP spans (not every library's), at info and above.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer_provider.tracer(service))
        .with_filter(filter::filter_fn(|meta| {
            meta.target().starts_with("saleboard") && *meta.level() <= tracing::Level::INFO
        }));
    drop(
        tracing_subscriber::registry()
            .with(logs)
            .with(traces)
            .try_init(),
    );
    TRACING.store(true, Ordering::Relaxed);
    Ok(Telemetry {
        providers: Some(Providers {
            tracer: tracer_provider,
            meter: meter_provider,
        }),
    })
}

/// Reads W3C trace-context headers from an HTTP request.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The trace context a client sent (`traceparent` / `tracestate`), or an empty context.
#[must_use]
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes trace-context headers into gRPC metadata.
struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The `traceparent` / `tracestate` of `context`, put into `metadata`.
pub fn inject(context: &opentelemetry::Context, metadata: &mut tonic::metadata::MetadataMap) {
    TraceContextPropagator::new().inject_context(context, &mut MetadataInjector(metadata));
}

/// A new sampled trace context with random ids, for a client that starts a trace without
/// exporting spans of its own (so every request of one command shares one trace id).
#[must_use]
pub fn new_remote_context() -> opentelemetry::Context {
    let (mut trace, mut span) = ([0u8; 16], [0u8; 8]);
    if getrandom::fill(&mut trace).is_err() || getrandom::fill(&mut span).is_err() {
        // No randomness: send no trace context rather than a made-up one.
        return opentelemetry::Context::new();
    }
    let context = SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(span),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    opentelemetry::Context::new().with_remote_span_context(context)
}

/// The trace id of `context` as 32 hex digits, if it has a valid one.
#[must_use]
pub fn trace_id(context: &opentelemetry::Context) -> Option<String> {
    let span = context.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The context of a tracing span, for [`inject`] or links.
#[must_use]
pub fn span_context(span: &tracing::Span) -> opentelemetry::Context {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    span.context()
}

/// Makes `span` a child of `parent` (a remote context from [`extract`]); no-op when tracing is
/// off or `parent` has no valid span.
pub fn set_parent(span: &tracing::Span, parent: opentelemetry::Context) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if parent.span().span_context().is_valid() {
        drop(span.set_parent(parent));
    }
}

/// Links `span` to the span of `other` (a request served by a shared batch).
pub fn add_link(span: &tracing::Span, other: &tracing::Span) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = other.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}

/// The meter every Saleboard instrument is made from (a no-op until [`init`] installed an
/// exporting provider).
#[must_use]
pub fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter("saleboard")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_means_no_export() {
        assert_eq!(endpoint(&TelemetryArgs::default()).ok(), Some(None));
        let blank = TelemetryArgs {
            otlp_endpoint: Some("  ".into()),
            ..TelemetryArgs::default()
        };
        assert_eq!(endpoint(&blank).ok(), Some(None));
    }

    #[test]
    fn a_bad_endpoint_names_the_setting() {
        for bad in ["otel-collector:4317", "ftp://x:1", "http://"] {
            let args = TelemetryArgs {
                otlp_endpoint: Some(bad.into()),
                ..TelemetryArgs::default()
            };
            let err = endpoint(&args).expect_err(bad).to_string();
            assert!(err.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");
            assert!(err.contains(bad), "{err}");
        }
        let good = TelemetryArgs {
            otlp_endpoint: Some("http://otel-collector:4317".into()),
            ..TelemetryArgs::default()
        };
        assert_eq!(
            endpoint(&good).ok(),
            Some(Some("http://otel-collector:4317".to_owned()))
        );
    }

    #[test]
    fn trace_context_round_trips_through_metadata() {
        let context = new_remote_context();
        let id = trace_id(&context).expect("a valid trace id");
        assert_eq!(id.len(), 32);
        let mut metadata = tonic::metadata::MetadataMap::new();
        inject(&context, &mut metadata);
        let header = metadata
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .expect("traceparent set")
            .to_owned();
        assert!(header.starts_with(&format!("00-{id}-")), "{header}");
        assert!(header.ends_with("-01"), "sampled: {header}");
        let headers = metadata.into_headers();
        assert_eq!(trace_id(&extract(&headers)), Some(id));
    }

    #[test]
    fn no_traceparent_gives_no_parent() {
        assert_eq!(trace_id(&extract(&http::HeaderMap::new())), None);
    }
}
