//! Connecting to the services and turning gRPC failures into sentences: which endpoint, what it
//! said, what to do.

use saleboard_proto::json::JsonMessage;
use saleboard_runtime::auth::BearerInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// A channel carrying a bearer secret and the command's trace context.
pub type Authed = InterceptedService<Channel, CliInterceptor>;

/// The trace every request of this command belongs to (set once, at start).
static TRACE: std::sync::OnceLock<opentelemetry::Context> = std::sync::OnceLock::new();

/// Sets the trace context every request of this process sends as W3C `traceparent`. Without a
/// call, a fresh random (sampled) context is used, so one command's requests share a trace id.
pub fn set_trace(context: opentelemetry::Context) {
    drop(TRACE.set(context));
}

/// The trace context the requests of this command carry.
pub fn trace() -> &'static opentelemetry::Context {
    TRACE.get_or_init(saleboard_runtime::telemetry::new_remote_context)
}

/// The trace id the requests of this command carry (to find them in Jaeger), if any.
#[must_use]
pub fn trace_id() -> Option<String> {
    saleboard_runtime::telemetry::trace_id(trace())
}

/// Adds `authorization` and `traceparent` to every request.
#[derive(Debug, Clone)]
pub struct CliInterceptor {
    bearer: BearerInterceptor,
}

impl tonic::service::Interceptor for CliInterceptor {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let mut req = self.bearer.call(req)?;
        saleboard_runtime::telemetry::inject(trace(), req.metadata_mut());
        Ok(req)
    }
}

/// How to print query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document, for scripts: the answer's message in the proto3 JSON mapping.
    Json,
}

/// An answer for a script: its message in the proto3 JSON mapping (`saleboard_proto::json`,
/// what the leaderboard's JSON API writes too), on one line.
///
/// # Errors
/// Only when the mapping cannot write the message (a broken build, a timestamp past 9999).
pub fn json(message: &impl JsonMessage) -> anyhow::Result<String> {
    Ok(saleboard_proto::json::to_string(message)?)
}

/// As [`json`], as a value to add to what the command says beside the message.
///
/// # Errors
/// As [`json`].
pub fn json_value(message: &impl JsonMessage) -> anyhow::Result<serde_json::Value> {
    Ok(saleboard_proto::json::to_value(message)?)
}

/// Connects to `endpoint` (`http://host:port`; a bare `host:port` gets `http://`).
///
/// # Errors
/// When the endpoint is malformed or does not answer, saying so and what to try.
pub async fn connect(endpoint: &str, secret: Option<&str>) -> anyhow::Result<Authed> {
    let uri = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    let channel = Endpoint::from_shared(uri.clone())
        .map_err(|e| anyhow::anyhow!("{endpoint:?} is not an endpoint URL such as http://127.0.0.1:50051: {e}"))?
        .connect()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach {uri}: {e}. Is the service running there? (`saleboard dev` runs one locally; --endpoint picks another)"
            )
        })?;
    let auth = BearerInterceptor::new(secret).map_err(|_| {
        anyhow::anyhow!("the key or token contains characters that cannot be sent as gRPC metadata")
    })?;
    Ok(InterceptedService::new(
        channel,
        CliInterceptor { bearer: auth },
    ))
}

/// A failed call as a sentence.
#[must_use]
pub fn explain(endpoint: &str, what: &str, status: &Status) -> anyhow::Error {
    let hint = match status.code() {
        Code::Unauthenticated => {
            " Check the key or token (--key / SALEBOARD_API_KEY, --token / SALEBOARD_ORGANIZER_TOKEN)."
        }
        Code::PermissionDenied => {
            " This call needs an organizer's secret or the organizer token (--token / \
             SALEBOARD_ORGANIZER_TOKEN) or, for a site's own detail, that site's key (--key / \
             SALEBOARD_API_KEY)."
        }
        Code::Unavailable => " Is the service running and reachable?",
        Code::ResourceExhausted => {
            " The server is busy or the site is over its rate; retry later or slow down."
        }
        Code::FailedPrecondition if status.message().contains("no event") => {
            " The organizer may need to set the event first (saleboard admin event set)."
        }
        Code::Unimplemented => {
            return anyhow::anyhow!(
                "{endpoint} does not serve {what}: is it the right service? By default ingest \
                 (push, loadgen --ingest) listens on port 50051, the leaderboard (leaderboard, \
                 totals, national) on 50052, its AdminService (admin, --admin-endpoint) on \
                 50054, the aggregator on 50053; `saleboard health {endpoint}` and grpcurl's \
                 `list` show what it serves."
            );
        }
        _ => "",
    };
    let message = match status.message() {
        "" => "no message".to_owned(),
        m => m.to_owned(),
    };
    anyhow::anyhow!(
        "{what} at {endpoint} failed: {}: {message}.{hint}",
        code_name(status.code())
    )
}

/// The canonical name of a gRPC status code (one spelling for the whole workspace).
pub use saleboard_runtime::status::code_name;

/// The ingest service and a site's API key: what a retailer's command needs.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestTarget {
    /// Ingest service endpoint.
    #[arg(
        long,
        env = "SALEBOARD_INGEST_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub endpoint: String,
    /// The site's API key.
    #[arg(long, env = "SALEBOARD_API_KEY", hide_env_values = true)]
    pub key: String,
}

impl IngestTarget {
    /// An ingest client carrying the key.
    ///
    /// # Errors
    /// When the endpoint is not a URL or cannot be reached.
    pub async fn connect(
        &self,
    ) -> anyhow::Result<saleboard_proto::v1::ingest_service_client::IngestServiceClient<Authed>>
    {
        Ok(
            saleboard_proto::v1::ingest_service_client::IngestServiceClient::new(
                connect(&self.endpoint, Some(&self.key)).await?,
            ),
        )
    }
}
