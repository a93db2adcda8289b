//! `saleboard health ENDPOINT`: asks a service's `grpc.health.v1.Health` whether it serves, so a
//! container's health check needs no other probe tool. Exit 0 when SERVING, 1 otherwise.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::client;

/// Arguments of `saleboard health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The service endpoint, e.g. http://127.0.0.1:50051.
    pub endpoint: String,
    /// A service name such as saleboard.v1.IngestService; empty asks about the server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
}

/// Runs the check; `Ok(true)` when SERVING.
///
/// # Errors
/// When the endpoint cannot be reached or does not answer the health protocol.
pub async fn run(args: &HealthArgs) -> anyhow::Result<bool> {
    let mut client = HealthClient::new(client::connect(&args.endpoint, None).await?);
    let status = client
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .map_err(|s| client::explain(&args.endpoint, "Health.Check", &s))?
        .into_inner()
        .status();
    let name = if args.service.is_empty() {
        "server"
    } else {
        args.service.as_str()
    };
    println!("{} {name}: {}", args.endpoint, status.as_str_name());
    Ok(status == ServingStatus::Serving)
}
