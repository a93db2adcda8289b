//! The tests' OTLP receiver as a program: it stands in for the OpenTelemetry collector (and
//! Jaeger) in the compose test, where no image can be pulled. OTLP/gRPC (traces, metrics) on
//! `0.0.0.0:4317`; one stdout line per span (`span service=... trace_id=... name=...`); the
//! latest metrics in Prometheus's text format at `GET /metrics` on `0.0.0.0:8889`, where the
//! collector's prometheus exporter listens, so the stack's Prometheus scrapes it unchanged.

use std::io::Write as _;

use anyhow::Context as _;
use saleboard_tests::otlp::OtlpReceiver;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::serve("0.0.0.0:4317".parse()?, true).await;
    println!(
        "otlp-receiver: OTLP/gRPC on {}, metrics on 0.0.0.0:8889/metrics",
        receiver.addr
    );
    std::io::stdout().flush()?;
    let metrics = tokio::net::TcpListener::bind("0.0.0.0:8889")
        .await
        .context("binding 0.0.0.0:8889")?;
    loop {
        let (mut conn, _) = metrics.accept().await.context("accepting a scrape")?;
        let receiver = receiver.clone();
        tokio::spawn(async move {
            // One request per connection: read its head, answer, close.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let (status, body) = if head.starts_with(b"GET /metrics ") {
                ("200 OK", receiver.prometheus_text())
            } else {
                ("404 Not Found", String::new())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}
