//! SIGKILL of the ingest process in the middle of a stream: whatever was ACCEPTED before the
//! kill is in the ledger; after a restart, resending everything yields DUPLICATE for those and
//! only ACCEPTED or DUPLICATE for the rest, and the ledger ends with each transaction once.

use std::collections::BTreeSet;
use std::time::Duration;

use saleboard_domain::{Event, UnixNanos};
use saleboard_proto::v1::Outcome;
use saleboard_tests::app::ingest_client;
use saleboard_tests::data::now_secs;
use saleboard_tests::load::{batches, sale_of};
use saleboard_tests::proc::{ServiceProcess, free_addr};
use saleboard_tests::{Backend, TestDb, backend_tests};

const TOTAL: usize = 40_000;
const BATCH: usize = 200;

async fn start_ingest(db: &TestDb) -> ServiceProcess {
    let addr = free_addr();
    let listen = addr.to_string();
    ServiceProcess::start(
        "saleboard-ingest",
        &["--ingest-listen", &listen, "--site-rate-limit", "0"],
        &[
            ("SALEBOARD_DATABASE_URL", db.url.as_str()),
            ("RUST_LOG", "info"),
        ],
        addr,
    )
    .await
}

async fn sigkill_mid_stream_loses_nothing_accepted(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = db.store().await;
    let now = UnixNanos::now();
    let event = Event::new(
        "crash",
        "Crash",
        now.saturating_add_secs(-86_400),
        now.saturating_add_secs(86_400),
        "IDR",
    )
    .expect("event");
    store
        .set_event(
            &event,
            saleboard_domain::UnixNanos::now(),
            saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("SetEvent")),
        )
        .await
        .expect("event");
    let secret = saleboard_tests::db::register_site(store.as_ref(), "alpha", "Alpha").await;

    let occurred_at = now_secs() - 60;
    let txs: Vec<_> = (0..TOTAL)
        .map(|i| sale_of(&format!("K{i}"), occurred_at))
        .collect();
    let mut ingest = start_ingest(&db).await;

    // Stream everything; kill the process once some batches are acknowledged.
    let mut client = ingest_client(ingest.addr, Some(&secret)).await;
    let mut stream = client
        .stream_transactions(tokio_stream::iter(batches(txs.clone(), BATCH)))
        .await
        .expect("stream")
        .into_inner();
    let mut accepted_before = BTreeSet::new();
    let mut responses = 0;
    let killed = loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("progress")
        {
            Ok(Some(r)) => {
                responses += 1;
                for t in r.results {
                    assert_eq!(t.outcome(), Outcome::Accepted, "{t:?}");
                    accepted_before.insert(t.transaction_id);
                }
                if responses == 20 {
                    ingest.kill();
                    break true;
                }
            }
            Ok(None) => break false,
            Err(status) => panic!("stream failed before the kill: {status:?}"),
        }
    };
    assert!(killed, "the stream ended before the kill; make it longer");
    // After the kill the client sees an error (or a few already-buffered responses, which were
    // committed before being sent).
    while let Ok(Some(r)) = stream.message().await {
        for t in r.results {
            assert_eq!(t.outcome(), Outcome::Accepted, "{t:?}");
            accepted_before.insert(t.transaction_id);
        }
    }
    assert!(accepted_before.len() >= 20 * BATCH);
    assert!(accepted_before.len() < TOTAL, "the kill came mid-stream");

    let stored: BTreeSet<String> = store
        .read_ledger(0, u32::MAX)
        .await
        .expect("ledger")
        .into_iter()
        .map(|r| r.tx.id.to_string())
        .collect();
    let missing: Vec<_> = accepted_before.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "ACCEPTED before the kill but not in the ledger: {missing:?}"
    );

    // Restart and resend everything.
    let ingest = start_ingest(&db).await;
    let mut client = ingest_client(ingest.addr, Some(&secret)).await;
    let mut stream = client
        .stream_transactions(tokio_stream::iter(batches(txs, BATCH)))
        .await
        .expect("stream after restart")
        .into_inner();
    let (mut duplicates, mut accepted_after) = (0, 0);
    while let Some(r) = stream.message().await.expect("response after restart") {
        for t in r.results {
            match t.outcome() {
                Outcome::Duplicate => duplicates += 1,
                Outcome::Accepted => {
                    assert!(
                        !accepted_before.contains(&t.transaction_id),
                        "{} ACCEPTED twice",
                        t.transaction_id
                    );
                    accepted_after += 1;
                }
                other => panic!("{} got {other:?}: {}", t.transaction_id, t.message),
            }
        }
    }
    assert!(duplicates >= accepted_before.len());
    assert_eq!(duplicates + accepted_after, TOTAL);
    let rows = store.read_ledger(0, u32::MAX).await.expect("ledger");
    let ids: BTreeSet<_> = rows.iter().map(|r| r.tx.id.to_string()).collect();
    assert_eq!(
        (rows.len(), ids.len()),
        (TOTAL, TOTAL),
        "each transaction exactly once"
    );
}

backend_tests!(sigkill_mid_stream_loses_nothing_accepted);
