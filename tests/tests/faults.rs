//! Storage faults under load (issue 24): a full disk, a failed COMMIT, every connection killed.
//! Each test ends the same way: every acknowledged transaction is stored and nothing else is,
//! the board reaches the ledger head within 5 s of the fault clearing, `verify` passes, and no
//! pooled connection was ever found inside a transaction (the pools' check counts none).
//! (The database stopping and starting under load is `outage.rs`.)

use std::collections::BTreeSet;
use std::time::Duration;

use saleboard::client::Output;
use saleboard::loadgen::LoadgenArgs;
use saleboard_proto::v1::{Outcome, SubmitTransactionsRequest};
use saleboard_storage::Fault;
use saleboard_tests::data::sale;
use saleboard_tests::fault::{
    FaultApp, Load, Tmpfs, assert_ledger_is, assert_verify_passes, board_reaches_head, eventually,
    health, sites, sqlite_url,
};
use saleboard_tests::{Backend, TestApp, backend_tests};
use sqlx::Connection as _;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// The statements that make every COMMIT of a batch holding a `poison-` id fail: a deferred
/// check, run only at COMMIT (PostgreSQL: a constraint trigger; SQLite: a deferred foreign
/// key that a trigger breaks).
fn fail_at_commit(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Postgres => &[
            "CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.transaction_id LIKE 'poison-%' THEN \
             RAISE EXCEPTION 'injected: this commit fails'; END IF; RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON ledger \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_at_commit()",
        ],
        Backend::Sqlite => &[
            "CREATE TABLE poison_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE poison_child (parent INTEGER \
             REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED)",
            "CREATE TRIGGER fail_at_commit AFTER INSERT ON ledger \
             WHEN NEW.transaction_id LIKE 'poison-%' \
             BEGIN INSERT INTO poison_child VALUES (1); END",
        ],
    }
}

async fn a_failed_commit_leaves_no_pooled_connection_in_a_transaction(backend: Backend) {
    // Arrange
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let sites = sites(app.store.as_ref(), 1).await;
    let (site, secret) = &sites[0];
    let mut ingest = app.ingest(secret).await;
    let push = |ids: Vec<String>| SubmitTransactionsRequest {
        transactions: ids.iter().map(|id| sale(id, "IDR", 1_000)).collect(),
    };
    for statement in fail_at_commit(backend) {
        app.db.execute(statement).await;
    }

    // Act: commits that fail, each followed by pushes that reuse every pooled connection.
    let mut acknowledged = BTreeSet::new();
    for round in 0..3 {
        let err = ingest
            .submit_transactions(push(vec![format!("poison-{round}"), format!("ok-{round}")]))
            .await
            .expect_err("the commit fails");
        assert_eq!(err.code(), Code::Internal, "{err:?}");
        for i in 0..20 {
            let id = format!("after-{round}-{i}");
            let answer = ingest
                .submit_transactions(push(vec![id.clone()]))
                .await
                .unwrap_or_else(|s| panic!("{id}: {s:?}"))
                .into_inner();
            assert_eq!(answer.results[0].outcome(), Outcome::Accepted, "{id}");
            acknowledged.insert((site.clone(), id));
        }
    }

    // Assert
    let stats = app.store.connection_stats();
    assert_eq!(stats.refused_in_transaction, 0, "{stats:?}");
    assert!(
        stats.discarded >= 3,
        "each failed commit closes its connection: {stats:?}"
    );
    assert_ledger_is(app.store.as_ref(), &acknowledged).await;
    board_reaches_head(
        app.store.as_ref(),
        app.leaderboard_addr,
        Duration::from_secs(5),
    )
    .await;
    assert_verify_passes(&app.db.url).await;
}

backend_tests!(a_failed_commit_leaves_no_pooled_connection_in_a_transaction);

/// SQLite on a 4 MiB tmpfs fills up under load, then the filesystem grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_disk_fills_under_load_then_grows() {
    // Arrange
    let Some(fs) = Tmpfs::mount(4 * 1024) else {
        return;
    };
    let url = sqlite_url(&fs.path().join("saleboard.db"));
    let app = FaultApp::spawn(&url).await;
    let sites = sites(app.store.as_ref(), 5).await;
    let (lone_site, lone_secret) = sites[4].clone();
    let mut load = Load::start(app.ingest_addr, &sites[..4], 200);

    // Act: the disk fills.
    eventually(
        Duration::from_secs(60),
        "writes failing on a full disk",
        || async { app.store.write_fault().map(|w| w.fault) == Some(Fault::DiskFull) },
    )
    .await;
    eventually(Duration::from_secs(5), "ingest NOT_SERVING", || async {
        health(app.ingest_addr).await == Some(ServingStatus::NotServing)
    })
    .await;
    // A batch pushed once while the disk is full, never resent: not stored.
    let mut lone = saleboard_tests::app::ingest_client(app.ingest_addr, Some(&lone_secret)).await;
    let lone_ids = ["lone-1", "lone-2"];
    let lone_answer = lone
        .submit_transactions(SubmitTransactionsRequest {
            transactions: lone_ids.iter().map(|id| sale(id, "IDR", 5)).collect(),
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The space comes back.
    fs.resize(64 * 1024);
    let cleared = tokio::time::Instant::now();
    load.advance(4, Duration::from_secs(5)).await;
    eventually(Duration::from_secs(5), "ingest SERVING again", || async {
        health(app.ingest_addr).await == Some(ServingStatus::Serving)
    })
    .await;
    let seen = load.finish().await;

    // Assert
    let mut acknowledged = seen.acknowledged.clone();
    match lone_answer {
        Ok(r) => {
            // The commit found room after all: acknowledged, so stored.
            for (id, result) in lone_ids.iter().zip(&r.into_inner().results) {
                assert_eq!(result.outcome(), Outcome::Accepted, "{id}");
                acknowledged.insert((lone_site.clone(), (*id).to_owned()));
            }
        }
        Err(s) => {
            assert_eq!(s.code(), Code::Unavailable, "{s:?}");
            assert_eq!(s.message(), "the database's disk is full; retry later");
        }
    }
    assert!(
        seen.retried.contains_key(&(
            Code::Unavailable,
            "the database's disk is full; retry later".into()
        )),
        "clients were told the disk is full: {:?}",
        seen.retried
    );
    assert_ledger_is(app.store.as_ref(), &acknowledged).await;
    let took = board_reaches_head(
        app.store.as_ref(),
        app.leaderboard_addr,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        cleared.elapsed() < Duration::from_secs(8),
        "the board reached the head {took:?} after the load stopped, {:?} after the disk grew",
        cleared.elapsed()
    );
    assert_eq!(app.store.write_fault(), None, "the episode ended");
    let stats = app.store.connection_stats();
    assert_eq!(stats.refused_in_transaction, 0, "{stats:?}");
    assert!(
        stats.discarded > 0,
        "failed commits closed their connections: {stats:?}"
    );
    assert_verify_passes(&url).await;
    app.stop().await;
}

/// PostgreSQL with its data directory on a tmpfs left 4 MiB of room fills under load (it may
/// stop: a server that cannot write its WAL shuts down), then the filesystem grows and the
/// server is started again if it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_disk_fills_under_load_then_grows() {
    // Arrange
    let Some(fs) = Tmpfs::mount(160 * 1024) else {
        return;
    };
    fs.chown("postgres");
    let Some(cluster) = saleboard_tests::pg::own_cluster_in(fs.path()) else {
        return;
    };
    let mut admin = sqlx::PgConnection::connect(&cluster.url())
        .await
        .expect("connect");
    sqlx::query("CREATE DATABASE faults")
        .execute(&mut admin)
        .await
        .expect("create");
    drop(admin);
    let url = format!(
        "{}/faults",
        cluster.url().rsplit_once('/').expect("a path").0
    );
    let app = FaultApp::spawn(&url).await;
    let sites = sites(app.store.as_ref(), 4).await;
    fs.resize(fs.used_kib() + 4 * 1024);
    let mut load = Load::start(app.ingest_addr, &sites, 200);

    // Act: the disk fills.
    eventually(
        Duration::from_secs(60),
        "writes failing on a full disk",
        || async { app.store.write_fault().is_some() },
    )
    .await;
    eventually(Duration::from_secs(5), "ingest NOT_SERVING", || async {
        health(app.ingest_addr).await == Some(ServingStatus::NotServing)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The space comes back; the server is started again if it stopped.
    fs.resize(512 * 1024);
    let restarted = !cluster.is_running();
    if restarted {
        cluster.start().expect("start PostgreSQL again");
    }
    let cleared = tokio::time::Instant::now();
    load.advance(4, Duration::from_secs(5)).await;
    eventually(Duration::from_secs(5), "ingest SERVING again", || async {
        health(app.ingest_addr).await == Some(ServingStatus::Serving)
    })
    .await;
    let seen = load.finish().await;

    // Assert
    let told: Vec<&String> = seen.retried.keys().map(|(_, m)| m).collect();
    // Which way this run went (the server may or may not have stopped).
    eprintln!("PostgreSQL stopped and was started again: {restarted}; clients were told {told:?}");
    assert!(
        told.iter()
            .any(|m| m.as_str() == "the database's disk is full; retry later"
                || (restarted && m.as_str() == "the database is unreachable; retry later")),
        "clients were told why (restarted: {restarted}): {told:?}"
    );
    assert_ledger_is(app.store.as_ref(), &seen.acknowledged).await;
    let took = board_reaches_head(
        app.store.as_ref(),
        app.leaderboard_addr,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        cleared.elapsed() < Duration::from_secs(8),
        "the board reached the head {took:?} after the load stopped, {:?} after the disk grew",
        cleared.elapsed()
    );
    assert_eq!(app.store.connection_stats().refused_in_transaction, 0);
    assert_verify_passes(&url).await;
    app.stop().await;
    drop(cluster.stop());
}

/// `saleboard push` of a file bigger than the room left: the disk fills half way, the stream
/// fails with UNAVAILABLE, push waits and sends again what was not answered, the filesystem
/// grows, and the file ends up stored whole, exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_rides_out_a_full_disk() {
    // Arrange
    let Some(fs) = Tmpfs::mount(4 * 1024) else {
        return;
    };
    let url = sqlite_url(&fs.path().join("saleboard.db"));
    let app = FaultApp::spawn(&url).await;
    let sites = sites(app.store.as_ref(), 1).await;
    let (site, key) = sites[0].clone();
    let dir = tempfile::tempdir().expect("a directory for the file");
    let file = dir.path().join("orders.csv");
    let occurred = time::OffsetDateTime::now_utc() - time::Duration::seconds(60);
    let occurred = occurred
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let rows = 60_000;
    let mut csv =
        String::from("transaction_id,store_id,kind,currency,amount_minor,occurred_at,refund_of\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "order-{i},jkt,SALE,IDR,{},{occurred},\n",
            1_000 + i
        ));
    }
    std::fs::write(&file, csv).expect("write the file");
    let args = saleboard::push::PushArgs {
        files: vec![file],
        ingest: saleboard::client::IngestTarget {
            endpoint: format!("http://{}", app.ingest_addr),
            key,
        },
        batch_size: 500,
        output: Output::Json,
        number_format: None,
    };
    let push = tokio::spawn(async move { saleboard::push::run(&args).await });

    // Act: once the disk is full, give it room a second later.
    eventually(
        Duration::from_secs(60),
        "writes failing on a full disk",
        || async { app.store.write_fault().map(|w| w.fault) == Some(Fault::DiskFull) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    fs.resize(64 * 1024);
    let code = push.await.expect("push").expect("push completes");

    // Assert
    assert_eq!(
        code, 0,
        "every row accepted (or a duplicate of its stored first attempt)"
    );
    let all: BTreeSet<(String, String)> = (0..rows)
        .map(|i| (site.clone(), format!("order-{i}")))
        .collect();
    assert_ledger_is(app.store.as_ref(), &all).await;
    board_reaches_head(
        app.store.as_ref(),
        app.leaderboard_addr,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(app.store.connection_stats().refused_in_transaction, 0);
    assert_verify_passes(&url).await;
    app.stop().await;
}

/// Terminates every other backend of the database at `url`; returns how many.
async fn kill_connections(url: &str) -> i64 {
    let mut admin = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_every_connection_killed_three_times_under_load() {
    // Arrange
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |c| c.site_rate_limit = 0).await else {
        return;
    };
    app.set_event().await;
    let sites = sites(app.store.as_ref(), 4).await;
    let mut load = Load::start(app.ingest_addr, &sites, 100);
    load.advance(10, Duration::from_secs(10)).await;

    // Act
    for _ in 0..3 {
        let killed = kill_connections(&app.db.url).await;
        assert!(killed > 0, "the services had connections");
        // Ingest answers again within 5 s of each kill.
        load.advance(5, Duration::from_secs(5)).await;
    }
    let seen = load.finish().await;

    // Assert
    board_reaches_head(
        app.store.as_ref(),
        app.leaderboard_addr,
        Duration::from_secs(5),
    )
    .await;
    assert_ledger_is(app.store.as_ref(), &seen.acknowledged).await;
    let stats = app.store.connection_stats();
    assert_eq!(stats.refused_in_transaction, 0, "{stats:?}");
    assert_verify_passes(&app.db.url).await;
    for (code, message) in seen.retried.keys() {
        assert!(
            !message.contains("terminat") && !message.contains("57P01"),
            "no internals in a status: {code:?} {message}"
        );
    }
}

/// `saleboard loadgen` through three rounds of killed connections: it retries, and its
/// reconciliation (counting a resent transaction whose first attempt was stored once) and the
/// ledger agree with what it was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loadgen_retries_through_killed_connections_and_reconciles() {
    // Arrange
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |c| c.site_rate_limit = 0).await else {
        return;
    };
    let args = LoadgenArgs {
        sites: 6,
        count: 30_000,
        batch: 100,
        brands: 50,
        output: Output::Json,
        ..app.loadgen_args()
    };
    let run = tokio::spawn(async move { saleboard::loadgen::run(&args).await });

    // Act: once the load is pushing, kill every connection three times.
    eventually(Duration::from_secs(30), "the load pushing", || async {
        app.store.ledger_head().await.is_ok_and(|h| h > 0)
    })
    .await;
    for _ in 0..3 {
        kill_connections(&app.db.url).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let report = run.await.expect("the run").expect("the run completes");

    // Assert
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(report.sent, 30_000);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.reopened > 0, "the kills cost streams: {report:?}");
    let rows = app.store.read_ledger(0, u32::MAX).await.expect("ledger");
    assert_eq!(
        u64::try_from(rows.len()).expect("fits"),
        report.accepted,
        "the ledger holds exactly what was accepted ({} recovered)",
        report.recovered
    );
    assert_eq!(app.store.connection_stats().refused_in_transaction, 0);
    assert_verify_passes(&app.db.url).await;
}
