//! Telemetry seen from outside: an ingest process exporting OTLP to a receiver in the test.
//! A client's W3C trace context continues through the RPC span (semantic-convention
//! attributes, the status code of unary calls, of streams and of refusals) and the commit
//! span; counters and histograms move by exactly what was sent. Batch and export intervals are
//! a minute, so everything checked arrives only through the flush at SIGTERM (the provider must
//! be shut down at exit). The CLI's push carries one trace id, which it prints.

use std::process::Command;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use saleboard_proto::v1::{Outcome, SubmitTransactionsRequest, TransactionResult};
use saleboard_tests::app::ingest_client;
use saleboard_tests::data::sale;
use saleboard_tests::otlp::{OtlpReceiver, attr};
use saleboard_tests::proc::{ServiceProcess, bin_dir, free_addr};
use saleboard_tests::{Backend, TestDb};
use tonic::Request;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const SERVICE: &str = "saleboard-ingest";

async fn start_ingest(db: &TestDb, otlp: &OtlpReceiver) -> ServiceProcess {
    let addr = free_addr();
    let listen = addr.to_string();
    let endpoint = otlp.endpoint();
    ServiceProcess::start(
        SERVICE,
        &["--ingest-listen", &listen, "--log-format", "json"],
        &[
            ("SALEBOARD_DATABASE_URL", db.url.as_str()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "60000"),
            ("RUST_LOG", "info,saleboard::rpc=debug"),
        ],
        addr,
    )
    .await
}

fn traced<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-{PARENT}-01").parse().expect("ASCII"),
    );
    request
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clients_trace_continues_through_ingest_and_counters_move() {
    let otlp = OtlpReceiver::start().await;
    let db = TestDb::create(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let secret = db.seed_site("alpha").await;
    let mut ingest = start_ingest(&db, &otlp).await;
    let mut client = ingest_client(ingest.addr, Some(&secret)).await;

    // Unary: 4 accepted, 1 rejected; then 2 of them again (duplicates).
    let first = SubmitTransactionsRequest {
        transactions: vec![
            sale("T1", "IDR", 1000),
            sale("T2", "IDR", 2000),
            sale("T3", "USD", 300),
            sale("T4", "IDR", 4000),
            sale("T5", "XXX", 10),
        ],
    };
    let r = client
        .submit_transactions(traced(first))
        .await
        .expect("submit")
        .into_inner();
    let outcomes: Vec<_> = r.results.iter().map(TransactionResult::outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Accepted,
            Outcome::Accepted,
            Outcome::Accepted,
            Outcome::Accepted,
            Outcome::Rejected
        ]
    );
    let again = SubmitTransactionsRequest {
        transactions: vec![sale("T1", "IDR", 1000), sale("T2", "IDR", 2000)],
    };
    let r = client
        .submit_transactions(traced(again))
        .await
        .expect("resubmit")
        .into_inner();
    assert!(r.results.iter().all(|t| t.outcome() == Outcome::Duplicate));

    // A stream of two messages, each answered before the next is sent (two commits).
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut responses = client
        .stream_transactions(traced(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .expect("stream")
        .into_inner();
    for id in ["S1", "S2"] {
        tx.send(SubmitTransactionsRequest {
            transactions: vec![sale(id, "IDR", 500)],
        })
        .await
        .expect("send");
        let r = responses.message().await.expect("answer").expect("one");
        assert_eq!(r.results[0].outcome(), Outcome::Accepted);
    }
    drop(tx);
    assert!(responses.message().await.expect("clean end").is_none());

    // A refused call (bad key) is traced and timed too.
    let mut stranger = ingest_client(ingest.addr, Some("sb_nope_nope")).await;
    let refused = stranger
        .submit_transactions(traced(SubmitTransactionsRequest {
            transactions: vec![sale("X1", "IDR", 1)],
        }))
        .await
        .expect_err("unknown key");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    assert!(
        ingest.terminate(Duration::from_secs(20)).await,
        "ingest exits 0 on SIGTERM"
    );
    // The flush at exit has delivered everything (the export is synchronous with shutdown).
    let spans = otlp.spans(SERVICE);
    let ours: Vec<_> = spans.iter().filter(|s| hex(&s.trace_id) == TRACE).collect();
    let rpc = |method: &str| -> Vec<_> {
        ours.iter()
            .filter(|s| s.name == format!("saleboard.v1.IngestService/{method}"))
            .copied()
            .collect()
    };
    let unary = rpc("SubmitTransactions");
    assert_eq!(unary.len(), 3, "three unary calls traced: {ours:#?}");
    for span in &unary {
        assert_eq!(
            hex(&span.parent_span_id),
            PARENT,
            "child of the caller's span"
        );
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(attr(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attr(span, "rpc.service").as_deref(),
            Some("saleboard.v1.IngestService")
        );
        assert_eq!(
            attr(span, "rpc.method").as_deref(),
            Some("SubmitTransactions")
        );
    }
    let mut codes: Vec<_> = unary
        .iter()
        .map(|s| attr(s, "rpc.grpc.status_code").unwrap_or_default())
        .collect();
    codes.sort();
    assert_eq!(codes, ["0", "0", "16"], "status codes of the unary calls");
    let stream = rpc("StreamTransactions");
    assert_eq!(stream.len(), 1, "{ours:#?}");
    assert_eq!(
        attr(stream[0], "rpc.grpc.status_code").as_deref(),
        Some("0"),
        "a stream's status comes from its trailers"
    );
    assert_eq!(hex(&stream[0].parent_span_id), PARENT);

    let commits: Vec<_> = ours.iter().filter(|s| s.name == "ingest.commit").collect();
    assert_eq!(commits.len(), 4, "one commit span per commit: {ours:#?}");
    let rpc_ids: Vec<_> = unary
        .iter()
        .chain(stream.iter())
        .map(|s| s.span_id.clone())
        .collect();
    for commit in &commits {
        assert!(
            rpc_ids.contains(&commit.parent_span_id),
            "a commit span is a child of the request it stored: {commit:#?}"
        );
    }
    let rows: Vec<_> = commits
        .iter()
        .map(|s| attr(s, "rows").unwrap_or_default())
        .collect();
    assert_eq!(rows, ["4", "2", "1", "1"]);

    let counter =
        |attrs: &[(&str, &str)]| otlp.counter(SERVICE, "saleboard.ingest.transactions", attrs);
    assert_eq!(counter(&[("outcome", "accepted")]), Some(6));
    assert_eq!(counter(&[("outcome", "duplicate")]), Some(2));
    assert_eq!(
        counter(&[("outcome", "rejected"), ("reason", "INVALID_CURRENCY")]),
        Some(1)
    );
    assert_eq!(
        otlp.histogram_count(SERVICE, "saleboard.ingest.batch.rows", &[]),
        Some(4)
    );
    // The pool's check: no connection was ever found inside a transaction.
    assert_eq!(
        otlp.counter(
            SERVICE,
            "saleboard.storage.connections.refused_in_transaction",
            &[]
        ),
        Some(0)
    );
    assert_eq!(
        otlp.histogram_count(SERVICE, "saleboard.ingest.commit.duration", &[]),
        Some(4)
    );
    let calls = |method: &str, code: &str| {
        otlp.histogram_count(
            SERVICE,
            "rpc.server.duration",
            &[
                ("rpc.service", "saleboard.v1.IngestService"),
                ("rpc.method", method),
                ("rpc.grpc.status_code", code),
            ],
        )
    };
    assert_eq!(calls("SubmitTransactions", "0"), Some(2));
    assert_eq!(calls("SubmitTransactions", "16"), Some(1));
    assert_eq!(calls("StreamTransactions", "0"), Some(1));

    // One JSON log line per request at debug.
    let log = std::fs::read_to_string(&ingest.log).expect("log");
    let requests: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 4, "{log}");
    assert!(
        requests
            .iter()
            .all(|v| v["service"] == "saleboard.v1.IngestService"),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_sends_one_trace_for_a_push_and_prints_it() {
    let otlp = OtlpReceiver::start().await;
    let db = TestDb::create(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let secret = db.seed_site("alpha").await;
    let mut ingest = start_ingest(&db, &otlp).await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("orders.jsonl");
    let occurred = time::OffsetDateTime::now_utc() - time::Duration::seconds(60);
    let occurred = occurred
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let lines: String = (0..5)
        .map(|i| {
            format!(
                "{{\"transaction_id\":\"C{i}\",\"store_id\":\"s\",\"kind\":\"SALE\",\"currency\":\"IDR\",\"amount_minor\":100,\"occurred_at\":\"{occurred}\"}}\n"
            )
        })
        .collect();
    std::fs::write(&file, lines).expect("write");
    let out = Command::new(bin_dir().join("saleboard"))
        .args([
            "push",
            file.to_str().expect("utf-8"),
            "--endpoint",
            &format!("http://{}", ingest.addr),
            "--batch-size",
            "2",
        ])
        .env("SALEBOARD_API_KEY", &secret)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("saleboard runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let trace = text
        .lines()
        .find_map(|l| l.strip_prefix("trace "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("push prints its trace id: {text}"))
        .to_owned();
    assert_eq!(trace.len(), 32, "{trace}");

    assert!(ingest.terminate(Duration::from_secs(20)).await);
    let spans = otlp.spans(SERVICE);
    let rpc: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("saleboard.v1.IngestService/"))
        .collect();
    assert!(!rpc.is_empty(), "ingest exported its spans");
    assert!(
        rpc.iter().all(|s| hex(&s.trace_id) == trace),
        "every request of the push is in the printed trace: {rpc:#?}"
    );
    let commits = spans
        .iter()
        .filter(|s| s.name == "ingest.commit" && hex(&s.trace_id) == trace)
        .count();
    // 5 rows in messages of 2 on one stream: three batches, which the group commit may merge.
    assert!(
        (1..=3).contains(&commits),
        "the commits of the push are in its trace: {commits}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aggregator_and_leaderboard_export_their_metrics() {
    let otlp = OtlpReceiver::start().await;
    let db = TestDb::create(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let secret = db.seed_site("alpha").await;
    let endpoint = otlp.endpoint();
    let env = [
        ("SALEBOARD_DATABASE_URL", db.url.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
    ];
    let mut ingest = start_ingest(&db, &otlp).await;
    let addr = free_addr();
    let mut aggregator = ServiceProcess::start(
        "saleboard-aggregator",
        &["--aggregator-listen", &addr.to_string()],
        &env,
        addr,
    )
    .await;
    let addr = free_addr();
    let mut board = ServiceProcess::start(
        "saleboard-leaderboard",
        &[
            "--leaderboard-listen",
            &addr.to_string(),
            "--organizer-token",
            "organizer-test-token",
        ],
        &env,
        addr,
    )
    .await;

    let mut client = ingest_client(ingest.addr, Some(&secret)).await;
    let batch = SubmitTransactionsRequest {
        transactions: (0..7).map(|i| sale(&format!("A{i}"), "IDR", 100)).collect(),
    };
    client.submit_transactions(batch).await.expect("submit");

    // A watcher is counted while its stream is open.
    let mut watch = saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient::new(
        saleboard_tests::app::channel(board.addr).await,
    )
    .watch_leaderboard(saleboard_proto::v1::WatchLeaderboardRequest {
        limit: 10,
        min_interval_ms: 0,
        event_id: String::new(),
        baseline_event_id: String::new(),
    })
    .await
    .expect("watch")
    .into_inner();
    watch.message().await.expect("first board").expect("one");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !otlp
        .history("saleboard-leaderboard", "saleboard.leaderboard.watchers")
        .contains(&1.0)
        || otlp.counter("saleboard-aggregator", "saleboard.aggregator.applied", &[]) != Some(7)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics arrive within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(watch);
    assert!(aggregator.terminate(Duration::from_secs(20)).await);
    assert!(board.terminate(Duration::from_secs(20)).await);
    assert!(ingest.terminate(Duration::from_secs(20)).await);

    let lag = otlp.history("saleboard-aggregator", "saleboard.aggregator.lag");
    assert_eq!(lag.last(), Some(&0.0), "caught up: {lag:?}");
    let watchers = otlp.history("saleboard-leaderboard", "saleboard.leaderboard.watchers");
    assert_eq!(
        watchers.last(),
        Some(&0.0),
        "the closed watch is counted out: {watchers:?}"
    );
    let age = otlp.history(
        "saleboard-leaderboard",
        "saleboard.leaderboard.snapshot.age",
    );
    assert!(
        !age.is_empty() && age.iter().all(|a| (0.0..10.0).contains(a)),
        "the board is re-read at least every 5 s: {age:?}"
    );
}
