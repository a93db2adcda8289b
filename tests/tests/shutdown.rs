//! SIGTERM in the middle of streaming ingest: the process stops taking messages, answers every
//! batch it took, ends each open stream (busy or idle) with UNAVAILABLE, and exits 0 well
//! within its shutdown deadline. Everything a client saw ACCEPTED is in the ledger; nothing
//! else of the stream is. And when work cannot finish (a commit stuck behind a lock), the
//! process still exits at its deadline, and what it never acknowledged is not stored.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use saleboard_proto::v1::{Outcome, SubmitTransactionsRequest};
use saleboard_tests::app::ingest_client;
use saleboard_tests::data::sale;
use saleboard_tests::proc::{ServiceProcess, free_addr};
use saleboard_tests::{Backend, TestDb, backend_tests};

const BATCH: usize = 100;
const BATCHES: usize = 2_000;
const DEADLINE_MS: u64 = 8_000;

/// An ingest process on `db` with no per-site rate limit and the given shutdown deadline.
async fn start_ingest(db: &TestDb, deadline: Duration) -> ServiceProcess {
    let addr = free_addr();
    ServiceProcess::start(
        "saleboard-ingest",
        &[
            "--ingest-listen",
            &addr.to_string(),
            "--site-rate-limit",
            "0",
            "--shutdown-deadline-ms",
            &deadline.as_millis().to_string(),
        ],
        &[("SALEBOARD_DATABASE_URL", db.url.as_str())],
        addr,
    )
    .await
}

async fn sigterm_mid_stream_answers_what_it_took(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let secret = db.seed_site("alpha").await;
    let mut ingest = start_ingest(&db, Duration::from_millis(DEADLINE_MS)).await;
    let mut client = ingest_client(ingest.addr, Some(&secret)).await;

    // An idle stream: open, nothing sent. It must end too, or shutdown would wait on it.
    let (_idle_tx, idle_rx) = tokio::sync::mpsc::channel::<SubmitTransactionsRequest>(1);
    let mut idle = client
        .clone()
        .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(idle_rx))
        .await
        .expect("idle stream")
        .into_inner();

    // A busy stream fed as fast as the server takes it.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let producer = tokio::spawn(async move {
        let mut sent = 0usize;
        for b in 0..BATCHES {
            let batch = SubmitTransactionsRequest {
                transactions: (0..BATCH)
                    .map(|i| sale(&format!("B{b}-{i}"), "IDR", 100))
                    .collect(),
            };
            if tx.send(batch).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let mut busy = client
        .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("busy stream")
        .into_inner();

    let mut accepted = BTreeSet::new();
    let mut answered = 0usize;
    let mut signalled = None;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(30), busy.message())
            .await
            .expect("the stream makes progress or ends")
        {
            Ok(Some(r)) => {
                answered += 1;
                for t in r.results {
                    assert_eq!(t.outcome(), Outcome::Accepted, "{t:?}");
                    accepted.insert(t.transaction_id);
                }
                if answered == 20 {
                    ingest.send_term();
                    signalled = Some(Instant::now());
                }
            }
            Ok(None) => panic!("the stream ended without a status after {answered} answers"),
            Err(status) => break status,
        }
    };
    let signalled = signalled.expect("SIGTERM sent before the stream ended");
    assert_eq!(end.code(), tonic::Code::Unavailable, "{end:?}");
    assert!(end.message().contains("shutting down"), "{end:?}");
    assert!(
        answered < BATCHES,
        "the stream was cut mid-way ({answered} of {BATCHES} answered)"
    );
    assert_eq!(accepted.len(), answered * BATCH, "whole batches answered");

    let idle_end = tokio::time::timeout(Duration::from_secs(10), idle.message())
        .await
        .expect("the idle stream ends")
        .expect_err("with a status");
    assert_eq!(idle_end.code(), tonic::Code::Unavailable, "{idle_end:?}");

    assert!(
        ingest
            .wait_exit(Duration::from_millis(DEADLINE_MS + 5_000))
            .await,
        "exit code 0"
    );
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_millis(DEADLINE_MS),
        "drained within the deadline, not cut by it: {took:?}"
    );
    let sent = producer.await.expect("producer");
    assert!(sent >= answered, "{sent} sent, {answered} answered");

    let stored: BTreeSet<String> = db
        .store()
        .await
        .read_ledger(0, u32::MAX)
        .await
        .expect("ledger")
        .into_iter()
        .map(|r| r.tx.id.to_string())
        .collect();
    let missing: Vec<_> = accepted.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "ACCEPTED but not in the ledger: {missing:?}"
    );
    assert_eq!(
        stored.len(),
        accepted.len(),
        "nothing beyond what was answered was stored (every batch taken was answered)"
    );
}

backend_tests!(sigterm_mid_stream_answers_what_it_took);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_commit_is_cut_at_the_deadline() {
    use sqlx::Connection as _;
    const DEADLINE: Duration = Duration::from_millis(1_500);
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let secret = db.seed_site("alpha").await;
    let mut ingest = start_ingest(&db, DEADLINE).await;
    // Hold the writer lock, as a stalled writer elsewhere would: ingest's commit waits on it.
    let mut blocker = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut blocker)
        .await
        .expect("begin");
    sqlx::query("SELECT head FROM ledger_head WHERE id = 1 FOR UPDATE")
        .execute(&mut blocker)
        .await
        .expect("lock the ledger head");

    let mut client = ingest_client(ingest.addr, Some(&secret)).await;
    let submit = tokio::spawn(async move {
        client
            .submit_transactions(SubmitTransactionsRequest {
                transactions: vec![sale("STUCK", "IDR", 100)],
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!submit.is_finished(), "the commit waits on the lock");

    ingest.send_term();
    let signalled = Instant::now();
    assert!(
        ingest.wait_exit(DEADLINE + Duration::from_secs(5)).await,
        "exit code 0 at the deadline"
    );
    let took = signalled.elapsed();
    assert!(
        took >= DEADLINE,
        "it waited for the deadline before giving up: {took:?}"
    );
    let answer = submit.await.expect("client task");
    assert!(
        answer.is_err(),
        "the stuck request is never acknowledged: {answer:?}"
    );

    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("release");
    // The abandoned transaction dies with its connection: nothing of it is stored.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store = db.store().await;
    assert_eq!(store.ledger_head().await.expect("head"), 0);
    assert!(
        store.read_ledger(0, 10).await.expect("ledger").is_empty(),
        "what was never acknowledged is not in the ledger"
    );
}
