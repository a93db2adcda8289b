//! Row 14 of issue 9: the database goes away during pushes. Ingest fails fast (UNAVAILABLE in
//! about 2 s, nothing ACCEPTED), health turns NOT_SERVING, the aggregator's GetStatus still
//! answers at once, the leaderboard keeps serving its last figures to every view (gRPC, JSON,
//! a new screen; issue 26: a database blip must not blank the screens), and everything recovers
//! by itself when the database returns. A test binary of its own: it stops and starts a
//! PostgreSQL cluster of its own.

use std::net::SocketAddr;
use std::time::Duration;

use saleboard_proto::v1::aggregator_service_client::AggregatorServiceClient;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    GetAggregatorStatusRequest, GetLeaderboardRequest, GetNationalTotalsRequest, Outcome,
    SubmitTransactionsRequest, SubmitTransactionsResponse,
};
use saleboard_tests::app::{channel, ingest_client};
use saleboard_tests::data::sale;
use saleboard_tests::db::seed_site;
use saleboard_tests::fault::eventually;
use saleboard_tests::http::{Sse, get};
use saleboard_tests::pg::own_cluster;
use saleboard_tests::proc::{ServiceProcess, free_addr};
use sqlx::Connection as _;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn push(
    addr: SocketAddr,
    secret: &str,
    ids: &[String],
) -> Result<SubmitTransactionsResponse, tonic::Status> {
    let txs = ids.iter().map(|id| sale(id, "IDR", 100)).collect();
    let mut request = tonic::Request::new(SubmitTransactionsRequest { transactions: txs });
    request.set_timeout(Duration::from_secs(10));
    ingest_client(addr, Some(secret))
        .await
        .submit_transactions(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn health(addr: SocketAddr) -> Option<ServingStatus> {
    let mut client = HealthClient::new(channel(addr).await);
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(Duration::from_secs(2));
    client
        .check(request)
        .await
        .ok()
        .map(|r| r.into_inner().status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outages_fail_fast_and_recover() {
    let Some(cluster) = own_cluster() else {
        return;
    };
    let mut admin = sqlx::PgConnection::connect(&cluster.url())
        .await
        .expect("connect");
    sqlx::query("CREATE DATABASE outage")
        .execute(&mut admin)
        .await
        .expect("create");
    drop(admin);
    let url = format!(
        "{}/outage",
        cluster.url().rsplit_once('/').expect("a path").0
    );
    let store = saleboard_storage::connect(&saleboard_storage::ConnectOptions {
        url: url.clone(),
        max_connections: 2,
        create_if_missing: true,
    })
    .await
    .expect("store");
    store.migrate().await.expect("migrate");
    let secret = seed_site(store.as_ref(), "toko").await;
    // The event is compared with last year's, as on a real screen.
    let now = saleboard_domain::UnixNanos::now();
    let last_year = saleboard_domain::Event::new(
        "last-year",
        "Last year",
        now.saturating_add_secs(-400 * 86_400),
        now.saturating_add_secs(-397 * 86_400),
        "IDR",
    )
    .expect("event");
    store
        .set_event(
            &last_year,
            now,
            saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("SetEvent")),
        )
        .await
        .expect("last year");
    let mut seeded = store
        .events()
        .await
        .expect("events")
        .get("seeded")
        .expect("the seeded event")
        .clone();
    seeded.baseline_event_id = "last-year".into();
    store
        .set_event(
            &seeded,
            now,
            saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("SetEvent")),
        )
        .await
        .expect("a baseline");
    drop(store);

    let env = [("SALEBOARD_DATABASE_URL", url.as_str())];
    let ingest_addr = free_addr();
    let ingest = ServiceProcess::start(
        "saleboard-ingest",
        &["--ingest-listen", &ingest_addr.to_string()],
        &env,
        ingest_addr,
    )
    .await;
    let aggregator_addr = free_addr();
    let aggregator = ServiceProcess::start(
        "saleboard-aggregator",
        &["--aggregator-listen", &aggregator_addr.to_string()],
        &env,
        aggregator_addr,
    )
    .await;
    let board_addr = free_addr();
    let _board = ServiceProcess::start(
        "saleboard-leaderboard",
        &[
            "--leaderboard-listen",
            &board_addr.to_string(),
            "--organizer-token",
            "organizer-outage-token",
        ],
        &env,
        board_addr,
    )
    .await;
    let ids = |prefix: &str| (0..20).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let before = push(ingest.addr, &secret, &ids("A")).await.expect("push");
    assert!(
        before
            .results
            .iter()
            .all(|r| r.outcome == i32::from(Outcome::Accepted))
    );

    eventually(Duration::from_secs(10), "the first rows folded", || async {
        AggregatorServiceClient::new(channel(aggregator.addr).await)
            .get_status(GetAggregatorStatusRequest {})
            .await
            .is_ok_and(|s| s.into_inner().applied_position == 20)
    })
    .await;
    // Past the monitor's next read, so its last view includes them.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Every view of the leaderboard shows them (and has compared them with last year).
    let board = || async { LeaderboardServiceClient::new(channel(board_addr).await) };
    eventually(Duration::from_secs(10), "the board at 20", || async {
        board()
            .await
            .get_leaderboard(GetLeaderboardRequest::default())
            .await
            .is_ok_and(|b| b.into_inner().watermark == 20)
    })
    .await;
    let mut screen = Sse::open(board_addr, "/events/leaderboard").await;
    let lit = screen
        .next_within(Duration::from_secs(5))
        .await
        .expect("a screen message");
    assert_eq!(lit["stale"], false, "{lit}");
    // The curve is part of the snapshot: one hour, the 20 sales, at the same watermark.
    let national = board()
        .await
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    assert!(!national.stale);
    let curve: Vec<_> = national
        .hourly
        .iter()
        .map(|h| h.net_reporting_minor)
        .collect();
    assert_eq!(curve, [20 * 100], "{:?}", national.hourly);
    assert_eq!(lit["hourly"][0]["net_reporting_minor"], "2000", "{lit}");

    // The outage.
    cluster.stop().expect("stop PostgreSQL");
    let started = tokio::time::Instant::now();
    let err = push(ingest.addr, &secret, &ids("B"))
        .await
        .expect_err("no database");
    let took = started.elapsed();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        took < Duration::from_secs(4),
        "the push failed after {took:?}"
    );
    let to_not_serving = eventually(Duration::from_secs(6), "ingest NOT_SERVING", || async {
        health(ingest.addr).await == Some(ServingStatus::NotServing)
    })
    .await;
    eventually(Duration::from_secs(6), "aggregator NOT_SERVING", || async {
        health(aggregator.addr).await == Some(ServingStatus::NotServing)
    })
    .await;
    // The screens stay lit: every view answers from the last figures, marked stale (the
    // board notices at its next refresh: a safety refresh within 5 s), and the open screen is
    // sent the mark.
    let paused = eventually(
        Duration::from_secs(8),
        "GetLeaderboard marked stale",
        || async {
            board()
                .await
                .get_leaderboard(GetLeaderboardRequest::default())
                .await
                .is_ok_and(|b| b.into_inner().stale)
        },
    )
    .await;
    let marked = loop {
        let message = screen
            .next_within(Duration::from_secs(8))
            .await
            .expect("the open screen is sent the stale mark");
        if message["stale"] == true {
            break message;
        }
    };
    assert_eq!(marked["watermark"], "20", "{marked}");
    assert_eq!(
        marked["hourly"][0]["net_reporting_minor"], "2000",
        "{marked}"
    );
    let shown = board()
        .await
        .get_leaderboard(GetLeaderboardRequest::default())
        .await
        .expect("GetLeaderboard without the database")
        .into_inner();
    assert_eq!(shown.watermark, 20);
    assert!(shown.stale);
    assert_eq!(shown.baseline_event_id, "last-year");
    let national = board()
        .await
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("GetNationalTotals without the database")
        .into_inner();
    assert_eq!(national.net_reporting_minor, 20 * 100);
    assert!(national.stale);
    let curve: Vec<_> = national
        .hourly
        .iter()
        .map(|h| h.net_reporting_minor)
        .collect();
    assert_eq!(curve, [20 * 100]);
    for path in [
        "/api/v1/leaderboard",
        "/api/v1/national",
        "/api/v1/breakdown/category",
    ] {
        let (status, _, body) = get(board_addr, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["stale"], true, "{path}: {json}");
        assert_eq!(json["watermark"], "20", "{path}: {json}");
    }
    // One site's totals are the snapshot's too: served, marked.
    let site = board()
        .await
        .get_site_totals(saleboard_proto::v1::GetSiteTotalsRequest {
            site_id: "toko".into(),
            include_hourly: false,
            event_id: String::new(),
        })
        .await
        .expect("one site's totals without the database")
        .into_inner();
    assert!(site.stale, "{site:?}");
    assert_eq!(site.watermark, 20, "{site:?}");
    let figures: Vec<_> = site
        .totals
        .iter()
        .map(|t| (t.sale_count, t.net_minor))
        .collect();
    assert_eq!(figures, [(20, 20 * 100)], "{site:?}");
    // A read that needs the database (one site's hourly series) fails, fast.
    let asked = tokio::time::Instant::now();
    let mut hourly = tonic::Request::new(saleboard_proto::v1::GetSiteTotalsRequest {
        site_id: "toko".into(),
        include_hourly: true,
        event_id: String::new(),
    });
    hourly.metadata_mut().insert(
        "authorization",
        "Bearer organizer-outage-token".parse().expect("header"),
    );
    let refused = board()
        .await
        .get_site_totals(hourly)
        .await
        .expect_err("one site's hourly series needs the database");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "GetSiteTotals failed after {:?}",
        asked.elapsed()
    );
    let mut late = Sse::open(board_addr, "/events/leaderboard").await;
    let first = late
        .next_within(Duration::from_secs(5))
        .await
        .expect("a screen opened during the outage gets the figures");
    assert_eq!(first["watermark"], "20", "{first}");
    assert_eq!(first["stale"], true, "{first}");
    drop(late);
    for _ in 0..3 {
        let asked = tokio::time::Instant::now();
        let status = AggregatorServiceClient::new(channel(aggregator.addr).await)
            .get_status(GetAggregatorStatusRequest {})
            .await
            .expect("GetStatus answers without the database")
            .into_inner();
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "GetStatus took {:?}",
            asked.elapsed()
        );
        assert!(!status.database_reachable);
        assert_eq!(status.applied_position, 20, "the last figures read");
    }

    // The database returns: everything recovers by itself.
    cluster.start().expect("start PostgreSQL");
    eventually(Duration::from_secs(20), "a push accepted again", || async {
        push(ingest.addr, &secret, &ids("C")).await.is_ok_and(|r| {
            r.results.iter().all(|r| {
                r.outcome == i32::from(Outcome::Accepted)
                    || r.outcome == i32::from(Outcome::Duplicate)
            })
        })
    })
    .await;
    eventually(Duration::from_secs(6), "ingest SERVING", || async {
        health(ingest.addr).await == Some(ServingStatus::Serving)
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "aggregator SERVING and caught up",
        || async { health(aggregator.addr).await == Some(ServingStatus::Serving) },
    )
    .await;
    // The screens move on by themselves: fresh figures, no mark, the new sales in the curve.
    let fresh = loop {
        let message = screen
            .next_within(Duration::from_secs(10))
            .await
            .expect("the open screen moves on when the database returns");
        if message["stale"] == false && message["watermark"] == "40" {
            break message;
        }
    };
    assert_eq!(fresh["hourly"][0]["net_reporting_minor"], "4000", "{fresh}");
    drop(screen);
    let back = board()
        .await
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    assert!(!back.stale);
    assert_eq!(back.watermark, 40);
    let store = saleboard_storage::connect(&saleboard_storage::ConnectOptions {
        url,
        max_connections: 1,
        create_if_missing: true,
    })
    .await
    .expect("store");
    assert_eq!(
        store.ledger_head().await.expect("head"),
        40,
        "the 20 before and the 20 after; nothing of the failed push"
    );
    eprintln!(
        "push failed in {took:?}; NOT_SERVING after {to_not_serving:?}; the board marked \
         stale after {paused:?}"
    );
}
