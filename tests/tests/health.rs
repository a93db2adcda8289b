//! Every service answers gRPC health (SERVING, per service name) and server reflection (v1 and
//! v1alpha) without authentication, and `saleboard health` turns that into an exit code.

use std::net::SocketAddr;
use std::process::Command;

use saleboard_tests::app::channel;
use saleboard_tests::proc::{bin_dir, free_addr};
use saleboard_tests::{Backend, TestApp};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn status(addr: SocketAddr, service: &str) -> ServingStatus {
    HealthClient::new(channel(addr).await)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status()
}

async fn listed_services(addr: SocketAddr) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel(addr).await)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.expect("answer").expect("one");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_reflection_on_every_service() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    for (addr, service) in [
        (app.ingest_addr, "saleboard.v1.IngestService"),
        (app.leaderboard_addr, "saleboard.v1.LeaderboardService"),
        (app.admin_addr, "saleboard.v1.AdminService"),
        (app.aggregator_addr, "saleboard.v1.AggregatorService"),
    ] {
        assert_eq!(
            status(addr, "").await,
            ServingStatus::Serving,
            "{service} server"
        );
        assert_eq!(
            status(addr, service).await,
            ServingStatus::Serving,
            "{service}"
        );
        let listed = listed_services(addr).await;
        assert!(
            listed.iter().any(|s| s == service),
            "{service} not in {listed:?}"
        );
        assert!(
            listed.iter().any(|s| s == "grpc.health.v1.Health"),
            "{listed:?}"
        );
    }
    let err = HealthClient::new(channel(app.ingest_addr).await)
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(err.code(), tonic::Code::NotFound);

    let probe = |endpoint: String| {
        Command::new(bin_dir().join("saleboard"))
            .args(["health", &endpoint])
            .output()
            .expect("saleboard health runs")
    };
    let ok = probe(format!("http://{}", app.ingest_addr));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("SERVING"));
    let down = probe(format!("http://{}", free_addr()));
    assert_eq!(down.status.code(), Some(2), "nothing listens there");
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach"));
}
