//! Connecting to the services and turning gRPC failures into sentences: which endpoint, what it
//! said, what to do.

use saleboard_runtime::auth::BearerInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// A channel carrying a bearer secret.
pub type Authed = InterceptedService<Channel, BearerInterceptor>;

/// How to print query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document, for scripts.
    Json,
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
    Ok(InterceptedService::new(channel, auth))
}

/// A failed call as a sentence.
#[must_use]
pub fn explain(endpoint: &str, what: &str, status: &Status) -> anyhow::Error {
    let hint = match status.code() {
        Code::Unauthenticated => {
            " Check the key or token (--key / SALEBOARD_API_KEY, --token / SALEBOARD_ORGANIZER_TOKEN)."
        }
        Code::PermissionDenied => {
            " This call needs the organizer token (--token / SALEBOARD_ORGANIZER_TOKEN)."
        }
        Code::Unavailable => " Is the service running and reachable?",
        Code::ResourceExhausted => {
            " The server is busy or the site is over its rate; retry later or slow down."
        }
        Code::FailedPrecondition => {
            " The organizer may need to set the event first (saleboard admin event set)."
        }
        _ => "",
    };
    anyhow::anyhow!(
        "{what} at {endpoint} failed: {:?}: {}.{hint}",
        status.code(),
        status.message()
    )
}
