//! Server settings every service shares.

use std::time::Duration;

/// Largest gRPC message accepted or sent, by default: 16 MiB holds a full request of 1,000
/// transactions many times over, and bounds what one message can make the server allocate.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// A `tonic` server builder with keep-alive and timeouts set.
#[must_use]
pub fn server_builder(request_timeout: Duration) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
}

/// The accepted connections of `listener`, with `TCP_NODELAY` set. (A server given its own
/// listener does not apply the builder's `tcp_nodelay`; without it small responses wait for
/// delayed ACKs, some 40 ms each.)
#[must_use]
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

/// Adds `grpc.health.v1.Health` (statuses from `reporter`) and server reflection, v1 and
/// v1alpha, describing the whole `saleboard.v1` contract, so generic clients (grpcurl, health
/// probes) work without the .proto files. These sit outside every auth layer.
///
/// # Errors
/// When the embedded descriptor sets cannot be decoded (a build defect).
pub fn add_standard_services<L>(
    router: tonic::transport::server::Router<L>,
    reporter: &tonic_health::server::HealthReporter,
) -> Result<tonic::transport::server::Router<L>, tonic_reflection::server::Error> {
    let health = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(reporter.clone()),
    );
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(saleboard_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok(router
        .add_service(health)
        .add_service(builder().build_v1()?)
        .add_service(builder().build_v1alpha()?))
}
