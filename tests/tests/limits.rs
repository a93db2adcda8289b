//! Resource limits seen from outside the process: memory read from `/proc` of a real
//! `saleboard-ingest`, sockets that never speak HTTP/2, floods of huge requests. SQLite only:
//! what is measured here is the server's memory and sockets, which do not depend on the
//! database.

use std::time::Duration;

use saleboard_proto::v1::{Outcome, SubmitTransactionsRequest};
use saleboard_tests::app::ingest_client;
use saleboard_tests::data::sale;
use saleboard_tests::proc::{ServiceProcess, free_addr};
use saleboard_tests::raw::{empty_transactions, raw_submit};
use saleboard_tests::{Backend, TestDb};
use tokio::io::AsyncReadExt as _;
use tonic::Code;

/// A database with an event and one site, and its key's secret.
async fn database() -> (TestDb, String) {
    let db = TestDb::create(Backend::Sqlite).await.expect("sqlite");
    let secret = db.seed_site("toko").await;
    (db, secret)
}

async fn ingest(db: &TestDb, args: &[&str]) -> ServiceProcess {
    let addr = free_addr();
    let listen = addr.to_string();
    let mut all = vec!["--ingest-listen", listen.as_str(), "--site-rate-limit", "0"];
    all.extend_from_slice(args);
    ServiceProcess::start(
        "saleboard-ingest",
        &all,
        &[("SALEBOARD_DATABASE_URL", db.url.as_str())],
        addr,
    )
    .await
}

/// Pushes `n` sales and checks they are accepted.
async fn push(service: &ServiceProcess, secret: &str, prefix: &str, n: usize) {
    let txs = (0..n)
        .map(|i| sale(&format!("{prefix}{i}"), "IDR", 1))
        .collect();
    let resp = ingest_client(service.addr, Some(secret))
        .await
        .submit_transactions(SubmitTransactionsRequest { transactions: txs })
        .await
        .expect("push")
        .into_inner();
    assert!(
        resp.results
            .iter()
            .all(|r| r.outcome == i32::from(Outcome::Accepted))
    );
}

/// Row 8: sockets that never send the HTTP/2 preface are closed, their number is bounded, and
/// the memory they took comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_connections_are_closed_and_bounded() {
    let (db, secret) = database().await;
    let service = ingest(
        &db,
        &[
            "--handshake-timeout-ms",
            "1000",
            "--max-connections",
            "500",
            // The process-wide cap is what this checks: one address may take all of it.
            "--max-connections-per-address",
            "4096",
        ],
    )
    .await;
    push(&service, &secret, "warm", 100).await;
    let baseline = service.memory_kib("VmRSS");

    let opened = tokio::time::Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..1_500 {
        sockets.push(
            tokio::net::TcpStream::connect(service.addr)
                .await
                .expect("connect"),
        );
    }
    let during = service.memory_kib("VmRSS");
    // Every socket is closed by the server: those past the limit at once, the others at the
    // handshake deadline.
    let mut closed_after = Vec::new();
    for mut s in sockets {
        // The server may send its own SETTINGS first; then it must hang up.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .expect("the server closes a silent connection");
        assert!(buf.len() < 1024, "{read:?}: {} bytes", buf.len());
        closed_after.push(opened.elapsed());
    }
    let last = closed_after.iter().max().copied().unwrap_or_default();
    assert!(
        last < Duration::from_secs(5),
        "the last silent socket was closed after {last:?}"
    );
    push(&service, &secret, "after", 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = service.memory_kib("VmRSS");
    eprintln!("RSS KiB: baseline {baseline}, 1,500 silent sockets {during}, after {after}");
    assert!(
        after < baseline + 32 * 1024,
        "memory came back: baseline {baseline} KiB, after the flood {after} KiB"
    );
}

/// Row 5: four requests of 8,000,000 empty transactions at once do not blow up the process,
/// and a legitimate push is answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_of_empty_transactions_take_no_memory() {
    let (db, secret) = database().await;
    let service = ingest(&db, &[]).await;
    push(&service, &secret, "warm", 100).await;
    let baseline = service.memory_kib("VmHWM");
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let (addr, secret) = (service.addr, secret.clone());
            tokio::spawn(
                async move { raw_submit(addr, &secret, empty_transactions(8_000_000)).await },
            )
        })
        .collect();
    push(&service, &secret, "during", 100).await;
    for f in floods {
        let err = f.await.expect("task").expect_err("refused");
        assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    }
    let peak = service.memory_kib("VmHWM");
    eprintln!("peak RSS KiB: before {baseline}, after four 16 MB floods {peak}");
    assert!(
        peak < baseline + 64 * 1024,
        "peak memory grew from {baseline} KiB to {peak} KiB"
    );
}
