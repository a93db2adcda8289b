//! What one participant (or a stranger) must not be able to do: freeze or blind the event for
//! everyone else. One test per row of issue 9's table, against the real services on port 0.

use std::time::Duration;

use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    ExchangeRate, GetLeaderboardRequest, GetNationalTotalsRequest, GetSiteTotalsRequest, Outcome,
    RevokeApiKeyRequest, SetExchangeRatesRequest, SubmitTransactionsRequest, Transaction,
    WatchLeaderboardRequest,
};
use saleboard_runtime::auth::BearerInterceptor;
use saleboard_tests::app::{admin_client, ingest_client};
use saleboard_tests::data::sale;
use saleboard_tests::raw::{empty_transactions, raw_submit};
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const PETA: i64 = 1_000_000_000_000_000;

fn req(transactions: Vec<Transaction>) -> SubmitTransactionsRequest {
    SubmitTransactionsRequest { transactions }
}

async fn ready(backend: Backend) -> Option<TestApp> {
    let app = TestApp::spawn(backend).await?;
    app.set_event().await;
    Some(app)
}

/// Pushes `n` sales of `amount` in `currency`, in requests of at most 1,000, all ACCEPTED.
async fn push(app: &TestApp, secret: &str, prefix: &str, n: usize, currency: &str, amount: i64) {
    let mut client = app.ingest(secret).await;
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    for chunk in ids.chunks(1_000) {
        let txs = chunk.iter().map(|id| sale(id, currency, amount)).collect();
        let resp = client
            .submit_transactions(req(txs))
            .await
            .expect("push")
            .into_inner();
        assert!(
            resp.results
                .iter()
                .all(|r| r.outcome == i32::from(Outcome::Accepted)),
            "{:?}",
            resp.results.first()
        );
    }
}

async fn set_rate(app: &TestApp, currency: &str, rate: &str) -> Result<(), tonic::Status> {
    app.admin()
        .await
        .set_exchange_rates(SetExchangeRatesRequest {
            rates: vec![ExchangeRate {
                currency: currency.into(),
                rate: rate.into(),
            }],
            event_id: String::new(),
        })
        .await
        .map(drop)
}

async fn board(app: &TestApp) -> saleboard_proto::v1::Leaderboard {
    app.leaderboard()
        .await
        .get_leaderboard(GetLeaderboardRequest {
            limit: 10,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("GetLeaderboard")
        .into_inner()
}

/// Row 1: a site's converted net past int64 used to freeze the board for every site.
async fn a_site_out_of_range_leaves_every_other_site_live(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let (_, besar) = app.site_with_key("besar").await;
    let (_, kecil) = app.site_with_key("kecil").await;
    set_rate(&app, "USD", "15850.25").await.expect("rate");
    push(&app, &besar, "U", 59, "USD", PETA).await;
    push(&app, &kecil, "K", 1, "IDR", 500).await;
    app.settle().await;

    let b = board(&app).await;
    let got: Vec<_> = b
        .entries
        .iter()
        .map(|e| {
            (
                e.rank,
                e.site_id.as_str(),
                e.net_reporting_minor,
                e.out_of_range,
                e.out_of_range_currencies.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "kecil", 500, false, vec![]),
            (2, "besar", 0, true, vec!["USD".to_owned()])
        ]
    );
    assert_eq!(b.national_net_reporting_minor, 500);
    assert_eq!(b.out_of_range_sites, ["besar"]);
    assert!(!b.national_out_of_range);

    // Still live for everyone else.
    push(&app, &kecil, "K2", 1, "IDR", 700).await;
    app.settle().await;
    let national = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    assert_eq!(national.net_reporting_minor, 1_200);
    assert_eq!(national.out_of_range_sites, ["besar"]);
}

/// Row 2: a site's gross past int64 used to crash-loop the aggregator.
async fn a_gross_past_int64_keeps_the_aggregator_folding(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let (_, besar) = app.site_with_key("besar").await;
    let (_, kecil) = app.site_with_key("kecil").await;
    push(&app, &besar, "B", 9_224, "IDR", PETA).await;
    push(&app, &kecil, "K", 3, "IDR", 10).await;
    app.settle().await;

    let totals = app
        .leaderboard()
        .await
        .get_site_totals(GetSiteTotalsRequest {
            site_id: "besar".into(),
            include_hourly: false,
            event_id: String::new(),
        })
        .await
        .expect("site totals")
        .into_inner();
    let t = &totals.totals[0];
    assert!(t.out_of_range);
    assert_eq!((t.gross_minor, t.sale_count), (0, 9_224));
    assert_eq!(t.gross_decimal, "9224000000000000000");
    assert_eq!(t.net_decimal, "9224000000000000000");

    push(&app, &kecil, "K2", 2, "IDR", 10).await;
    app.settle().await;
    let b = board(&app).await;
    assert_eq!(b.national_net_reporting_minor, 50);
    assert_eq!(b.entries[0].site_id, "kecil");
}

/// Row 3: two sites each in range, whose sum is not.
async fn a_national_sum_past_int64_is_marked_not_frozen(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let (_, a) = app.site_with_key("satu").await;
    let (_, b) = app.site_with_key("dua").await;
    push(&app, &a, "A", 4_612, "IDR", PETA).await;
    push(&app, &b, "B", 4_612, "IDR", PETA).await;
    app.settle().await;
    let lb = board(&app).await;
    assert!(lb.national_out_of_range);
    assert_eq!(lb.national_net_reporting_minor, 0);
    assert_eq!(lb.national_net_reporting_decimal, "9224000000000000000");
    assert!(lb.out_of_range_sites.is_empty());
    assert_eq!(
        lb.entries
            .iter()
            .map(|e| (e.rank, e.net_reporting_minor))
            .collect::<Vec<_>>(),
        [(1, 4_612 * PETA), (1, 4_612 * PETA)]
    );
}

/// Row 4: an absurd rate is refused; the board stays as it was.
async fn absurd_rates_are_refused(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let err = set_rate(&app, "EUR", "999999999999999999")
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    let bad = details.bad_request().expect("field details");
    assert_eq!(bad.field_violations[0].field, "rates[0].rate");
    set_rate(&app, "EUR", "17000.5").await.expect("a real rate");
}

/// Row 5: a request of millions of empty transactions is refused before it is decoded.
async fn huge_requests_are_refused_before_decoding(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let (_, secret) = app.site_with_key("toko").await;
    // 16 MB on the wire, about a gigabyte once decoded: refused by its length prefix.
    let err = raw_submit(app.ingest_addr, &secret, empty_transactions(8_000_000))
        .await
        .expect_err("too large");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    // Within the size limit, but past the count the codec allows: refused on the wire.
    let err = raw_submit(app.ingest_addr, &secret, empty_transactions(100_000))
        .await
        .expect_err("too many");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("more than 10000"),
        "{}",
        err.message()
    );
    // The service is still there.
    push(&app, &secret, "ok", 1, "IDR", 1).await;
}

/// Rows 12 and 13: bytes that do not decode are INVALID_ARGUMENT; invalid ids are not echoed
/// whole.
async fn bad_bytes_and_long_ids(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.max_message_bytes = Some(32 << 20)).await
    else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("toko").await;
    // A transaction whose transaction_id is not UTF-8.
    let bad = vec![0x0a, 0x03, 0x0a, 0x01, 0xff];
    let err = raw_submit(app.ingest_addr, &secret, bad)
        .await
        .expect_err("bad bytes");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = raw_submit(app.ingest_addr, &secret, vec![0x0a, 0x7f, 0x01])
        .await
        .expect_err("truncated");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let long = "x".repeat(64 * 1024);
    let txs: Vec<_> = (0..250)
        .map(|i| sale(&format!("{i}{long}"), "IDR", 1))
        .collect();
    let resp = app
        .ingest(&secret)
        .await
        .submit_transactions(req(txs))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(resp.results.len(), 250);
    for r in &resp.results {
        assert_eq!(r.reason, "INVALID_TRANSACTION_ID");
        assert!(
            r.transaction_id.chars().count() <= 67,
            "{}",
            r.transaction_id.len()
        );
        assert!(r.message.len() < 300, "{}", r.message.len());
    }
}

/// Row 6: idle streams of one site neither hold the global limit nor stay open forever, and
/// one site cannot open more than its share.
async fn idle_streams_are_bounded_and_closed(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.concurrency_limit = 2;
        c.site_max_streams = 3;
        c.stream_idle_timeout_ms = 500;
    })
    .await
    else {
        return;
    };
    app.set_event().await;
    let (_, hostile) = app.site_with_key("nakal").await;
    let (_, honest) = app.site_with_key("jujur").await;
    let mut senders = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let (tx, rx) = tokio::sync::mpsc::channel::<SubmitTransactionsRequest>(1);
        let s = app
            .ingest(&hostile)
            .await
            .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream opens")
            .into_inner();
        senders.push(tx);
        streams.push(s);
    }
    let (_tx, rx) = tokio::sync::mpsc::channel::<SubmitTransactionsRequest>(1);
    let err = app
        .ingest(&hostile)
        .await
        .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect_err("one stream too many");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("--site-max-streams"),
        "{}",
        err.message()
    );
    // Three idle streams, global limit 2: another site is served.
    push(&app, &honest, "J", 1, "IDR", 5).await;
    // The idle streams are closed by the server.
    for mut s in streams {
        let err = tokio::time::timeout(Duration::from_secs(5), s.message())
            .await
            .expect("closed within the idle timeout")
            .expect_err("idle");
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    }
    drop(senders);
    // Their slots are free again.
    let (_tx, rx) = tokio::sync::mpsc::channel::<SubmitTransactionsRequest>(1);
    app.ingest(&hostile)
        .await
        .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("a new stream opens");
}

/// Row 7: watchers that never read are limited per peer and never starve queries or the
/// organizer.
async fn watchers_cannot_starve_queries_or_the_organizer(backend: Backend) {
    let Some(app) = TestApp::spawn_configured(
        backend,
        |_| {},
        |b| {
            b.concurrency_limit = 2;
            b.max_watchers_per_peer = 4;
        },
    )
    .await
    else {
        return;
    };
    app.set_event().await;
    let (key_id, _) = app.site_with_key("toko").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = app
            .leaderboard()
            .await
            .watch_leaderboard(WatchLeaderboardRequest::default())
            .await
            .expect("watch opens")
            .into_inner();
        held.push(s);
    }
    let err = app
        .leaderboard()
        .await
        .watch_leaderboard(WatchLeaderboardRequest::default())
        .await
        .expect_err("one watcher too many");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("--max-watchers-per-peer"),
        "{}",
        err.message()
    );
    board(&app).await;
    app.admin()
        .await
        .revoke_api_key(RevokeApiKeyRequest { key_id })
        .await
        .expect("the organizer is served");
    drop(held);
}

/// Row 9: a stream opened before its key is revoked stops being served within 2 s.
async fn revocation_ends_open_streams(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let (key_id, secret) = app.site_with_key("toko").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<SubmitTransactionsRequest>(4);
    let mut responses = app
        .ingest(&secret)
        .await
        .stream_transactions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream opens")
        .into_inner();
    tx.send(req(vec![sale("S0", "IDR", 1)]))
        .await
        .expect("send");
    responses
        .message()
        .await
        .expect("first batch")
        .expect("one");
    app.admin()
        .await
        .revoke_api_key(RevokeApiKeyRequest { key_id })
        .await
        .expect("revoke");
    let revoked_at = tokio::time::Instant::now();
    let mut i = 1;
    let err = loop {
        // Keep sending: a batch may still be answered until the revocation is seen.
        drop(tx.try_send(req(vec![sale(&format!("S{i}"), "IDR", 1)])));
        i += 1;
        match tokio::time::timeout(Duration::from_millis(200), responses.message()).await {
            Ok(Ok(Some(_))) | Err(_) => {}
            Ok(Ok(None)) => panic!("the stream ended without a status"),
            Ok(Err(status)) => break status,
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(2),
            "still served 2 s after the revocation"
        );
    };
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("revoked"), "{}", err.message());
}

/// Rows 10 and 11: guessed secrets are limited per peer address, for API keys and the organizer
/// token, and do not slow down a legitimate site on another address.
async fn guessing_secrets_is_limited_per_peer(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let (_, secret) = app.site_with_key("toko").await;
    let attacker = Channel::from_shared(format!("http://{}", app.ingest_addr))
        .expect("uri")
        .local_address(Some("127.0.0.2".parse().expect("ip")))
        .connect()
        .await
        .expect("connect from 127.0.0.2");
    let mut codes = Vec::new();
    for i in 0..30 {
        let mut guess =
            saleboard_proto::v1::ingest_service_client::IngestServiceClient::with_interceptor(
                attacker.clone(),
                BearerInterceptor::new(Some(&format!("sbk_guess{i}"))).expect("ascii"),
            );
        let err = guess
            .submit_transactions(req(vec![sale("G", "IDR", 1)]))
            .await
            .expect_err("guess");
        codes.push(err.code());
    }
    assert_eq!(codes[0], Code::Unauthenticated);
    assert_eq!(codes[29], Code::ResourceExhausted, "{codes:?}");
    // The legitimate site, on its own address, is not slowed down.
    push(&app, &secret, "L", 10, "IDR", 1).await;

    let organizer = Channel::from_shared(format!("http://{}", app.admin_addr))
        .expect("uri")
        .local_address(Some("127.0.0.3".parse().expect("ip")))
        .connect()
        .await
        .expect("connect from 127.0.0.3");
    let mut codes = Vec::new();
    for i in 0..30 {
        let mut guess =
            saleboard_proto::v1::admin_service_client::AdminServiceClient::with_interceptor(
                organizer.clone(),
                BearerInterceptor::new(Some(&format!("guess-{i:012}"))).expect("ascii"),
            );
        codes.push(
            guess
                .list_sites(saleboard_proto::v1::ListSitesRequest {})
                .await
                .expect_err("guess")
                .code(),
        );
    }
    assert_eq!(codes[0], Code::PermissionDenied);
    assert_eq!(codes[29], Code::ResourceExhausted, "{codes:?}");
    // Guessing through a site's hourly series spends the same budget.
    let reader = Channel::from_shared(format!("http://{}", app.leaderboard_addr))
        .expect("uri")
        .local_address(Some("127.0.0.4".parse().expect("ip")))
        .connect()
        .await
        .expect("connect from 127.0.0.4");
    let mut codes = Vec::new();
    for i in 0..30 {
        let mut guess = LeaderboardServiceClient::with_interceptor(
            reader.clone(),
            BearerInterceptor::new(Some(&format!("guess-{i:012}"))).expect("ascii"),
        );
        codes.push(
            guess
                .get_site_totals(GetSiteTotalsRequest {
                    site_id: "toko".into(),
                    include_hourly: true,
                    event_id: String::new(),
                })
                .await
                .expect_err("guess")
                .code(),
        );
    }
    assert_eq!(codes[0], Code::Unauthenticated);
    assert_eq!(codes[29], Code::ResourceExhausted, "{codes:?}");
    // The organizer on its own address still gets in.
    admin_client(app.admin_addr, Some(&app.token))
        .await
        .list_sites(saleboard_proto::v1::ListSitesRequest {})
        .await
        .expect("organizer");
}

/// Who may read a site's hourly series: the organizer or that site, not anyone.
async fn site_detail_needs_the_site_or_the_organizer(backend: Backend) {
    let Some(app) = ready(backend).await else {
        return;
    };
    let (_, own) = app.site_with_key("toko").await;
    let (_, other) = app.site_with_key("lain").await;
    push(&app, &own, "T", 1, "IDR", 5).await;
    let ask = |secret: Option<String>, hourly: bool| {
        let addr = app.leaderboard_addr;
        async move {
            let channel = saleboard_tests::app::channel(addr).await;
            LeaderboardServiceClient::with_interceptor(
                channel,
                BearerInterceptor::new(secret.as_deref()).expect("ascii"),
            )
            .get_site_totals(GetSiteTotalsRequest {
                site_id: "toko".into(),
                include_hourly: hourly,
                event_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().hourly.len())
            .map_err(|s| s.code())
        }
    };
    app.settle().await;
    assert_eq!(ask(None, false).await, Ok(0), "totals are public");
    assert_eq!(ask(None, true).await, Err(Code::Unauthenticated));
    assert_eq!(ask(Some(other), true).await, Err(Code::PermissionDenied));
    assert_eq!(ask(Some(own), true).await, Ok(1));
    assert_eq!(ask(Some(app.token.clone()), true).await, Ok(1));
    let _ = ingest_client;
}

backend_tests!(
    a_site_out_of_range_leaves_every_other_site_live,
    a_gross_past_int64_keeps_the_aggregator_folding,
    a_national_sum_past_int64_is_marked_not_frozen,
    absurd_rates_are_refused,
    huge_requests_are_refused_before_decoding,
    bad_bytes_and_long_ids,
    idle_streams_are_bounded_and_closed,
    watchers_cannot_starve_queries_or_the_organizer,
    revocation_ends_open_streams,
    guessing_secrets_is_limited_per_peer,
    site_detail_needs_the_site_or_the_organizer,
);
