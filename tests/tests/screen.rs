//! The big screen's HTTP side (issue 14), black-box on both databases: the leaderboard serves
//! HTTP/1.1 on its gRPC port; the JSON endpoints carry the gRPC answers' figures and watermark;
//! the page and its files are embedded and name no other host; the SSE stream sends at once and
//! after a push, outlives the gRPC request timeout and the load-shed limit, and ends at
//! shutdown.

use std::time::Duration;

use saleboard_proto::json as mapping;
use saleboard_proto::v1::{
    Breakdown, Dimension, GetBreakdownRequest, GetLeaderboardRequest, GetNationalTotalsRequest,
    Leaderboard, ListEventsRequest, ListEventsResponse, NationalTotals, Origin,
    SubmitTransactionsRequest,
};
use saleboard_tests::data::sale;
use saleboard_tests::http::{Sse, get};
use saleboard_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn seeded(
    backend: Backend,
    configure: impl FnOnce(&mut saleboard_leaderboard::LeaderboardConfig),
) -> Option<(TestApp, String)> {
    let app = TestApp::spawn_configured(backend, |_| {}, configure).await?;
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    app.site_with_key("beta").await;
    let mut t = sale("W1", "IDR", 12_345_678_900);
    t.category = "beauty".into();
    t.origin = Origin::Domestic.into();
    app.ingest(&secret)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![t, sale("W2", "USD", 1_234)],
        })
        .await
        .expect("push");
    app.settle().await;
    Some((app, secret))
}

async fn json_endpoints_answer_what_grpc_answers(backend: Backend) {
    let Some((app, _)) = seeded(backend, |_| {}).await else {
        return;
    };
    let addr = app.leaderboard_addr;
    let mut board = app.leaderboard().await;

    let (status, kind, body) = get(addr, "/api/v1/leaderboard?limit=5").await;
    assert_eq!((status, kind.as_str()), (200, "application/json"), "{body}");
    let j = json(&body);
    let g = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 5,
            ..GetLeaderboardRequest::default()
        })
        .await
        .expect("grpc")
        .into_inner();
    assert_eq!(j["watermark"], g.watermark.to_string());
    assert_eq!(j["event_id"], g.event_id);
    assert_eq!(
        j["national_net_reporting_minor"],
        g.national_net_reporting_minor.to_string(),
        "64-bit figures are strings, exact"
    );
    let sites: Vec<(&str, &str)> = j["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["site_id"].as_str().unwrap_or(""),
                e["net_reporting_minor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let want: Vec<(String, String)> = g
        .entries
        .iter()
        .map(|e| (e.site_id.clone(), e.net_reporting_minor.to_string()))
        .collect();
    assert_eq!(
        sites,
        want.iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>()
    );
    assert_eq!(j["state"], "EVENT_STATE_LIVE");

    let (status, _, body) = get(addr, "/api/v1/national").await;
    assert_eq!(status, 200, "{body}");
    let j = json(&body);
    let n = board
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("grpc")
        .into_inner();
    assert_eq!(j["net_reporting_minor"], n.net_reporting_minor.to_string());
    assert_eq!(j["watermark"], n.watermark.to_string());
    assert_eq!(j["totals"].as_array().map(Vec::len), Some(n.totals.len()));

    let (status, _, body) = get(addr, "/api/v1/events").await;
    assert_eq!(status, 200, "{body}");
    let events = board
        .list_events(ListEventsRequest {})
        .await
        .expect("grpc")
        .into_inner()
        .events;
    assert_eq!(json(&body)["events"][0]["event_id"], events[0].event_id);

    let (status, _, body) = get(addr, "/api/v1/breakdown/category").await;
    assert_eq!(status, 200, "{body}");
    let j = json(&body);
    let b = board
        .get_breakdown(GetBreakdownRequest {
            dimension: Dimension::Category.into(),
            ..GetBreakdownRequest::default()
        })
        .await
        .expect("grpc")
        .into_inner();
    assert_eq!(j["entries"][0]["key"], b.entries[0].key);
    assert_eq!(
        j["total_net_reporting_minor"],
        b.total_net_reporting_minor.to_string()
    );
    assert_eq!(j["watermark"], b.watermark.to_string());

    // Errors as the gRPC statuses say them.
    let (status, _, body) = get(addr, "/api/v1/leaderboard?event=nope").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(json(&body)["code"], "NotFound");
    let (status, _, _) = get(addr, "/api/v1/breakdown/colour").await;
    assert_eq!(status, 400);
    let (status, _, _) = get(addr, "/api/v1/leaderboard?limit=5000").await;
    assert_eq!(status, 400);
}

async fn the_page_is_embedded_and_local(backend: Backend) {
    let Some((app, _)) = seeded(backend, |_| {}).await else {
        return;
    };
    let (status, kind, page) = get(app.leaderboard_addr, "/").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(page.contains("<script src=\"/screen.js\">"), "{page}");
    for (path, kind_starts) in [
        ("/screen.js", "text/javascript"),
        ("/screen.css", "text/css"),
    ] {
        let (status, kind, body) = get(app.leaderboard_addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(kind.starts_with(kind_starts), "{path}: {kind}");
        // The SVG namespace is a name, not a request.
        let body = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} names another host"
        );
        assert!(
            !body.contains("//cdn") && !body.contains("@import"),
            "{path}"
        );
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
}

async fn the_stream_lives_through_timeouts_and_ends_at_shutdown(backend: Backend) {
    // A one-second request timeout and a work-in-progress limit of one: neither cuts a stream.
    let Some((app, secret)) = seeded(backend, |c| {
        c.request_timeout_ms = 1_000;
        c.concurrency_limit = 1;
    })
    .await
    else {
        return;
    };
    let mut stream = Sse::open(app.leaderboard_addr, "/events/leaderboard?limit=3").await;
    // The organizer's auth layer guards AdminService only: a wrong credential on the public
    // stream changes nothing.
    let mut with_wrong_token = Sse::open_with(
        app.leaderboard_addr,
        "/events/leaderboard?limit=3",
        "Authorization: Bearer not-the-organizer-token\r\n",
    )
    .await;
    assert!(
        with_wrong_token
            .next_within(Duration::from_secs(5))
            .await
            .is_some(),
        "a wrong credential does not cut the public stream"
    );
    let first = stream
        .next_within(Duration::from_secs(5))
        .await
        .expect("a first message");
    let national = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("grpc")
        .into_inner();
    assert_eq!(
        first["national_net_reporting_minor"],
        national.net_reporting_minor.to_string()
    );
    assert_eq!(first["event"]["display_name"], "Harbolnas test");
    assert_eq!(first["categories"]["entries"][0]["key"], "beauty");
    assert!(
        first["hourly"].as_array().is_some_and(|h| !h.is_empty()),
        "{first}"
    );
    // Past the request timeout, a push still reaches the open stream within 2 s.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    app.ingest(&secret)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![sale("W3", "IDR", 1_000)],
        })
        .await
        .expect("push");
    let want = (national.net_reporting_minor + 1_000).to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = stream
            .next_within(left)
            .await
            .expect("the new figure within 2 s");
        if m["national_net_reporting_minor"] == want {
            break;
        }
    }
    // Shutdown ends the stream (the server does not wait for it).
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited on an SSE stream");
    assert!(
        matches!(
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await,
            Ok(None)
        ),
        "the stream ends at shutdown, not merely goes quiet"
    );
}

/// `?event=` shows another event: a closed one is its final result, sent once; an unknown one
/// is a 404 before any stream opens.
async fn another_event_on_the_screen(backend: Backend) {
    let Some((app, _)) = seeded(backend, |_| {}).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    let at = |s: i64| {
        Some(saleboard_proto::Timestamp {
            seconds: s,
            nanos: 0,
        })
    };
    app.admin()
        .await
        .set_event(saleboard_proto::v1::Event {
            event_id: "last-year".into(),
            display_name: "Harbolnas 2025".into(),
            starts_at: at(now - 400 * 86_400),
            ends_at: at(now - 397 * 86_400),
            closes_at: at(now - 390 * 86_400),
            reporting_currency: "IDR".into(),
            ..saleboard_proto::v1::Event::default()
        })
        .await
        .expect("a closed event");
    let mut stream = Sse::open(app.leaderboard_addr, "/events/leaderboard?event=last-year").await;
    let first = stream
        .next_within(Duration::from_secs(5))
        .await
        .expect("its result");
    assert_eq!(first["event_id"], "last-year");
    assert_eq!(first["state"], "EVENT_STATE_CLOSED");
    assert_eq!(first["event"]["display_name"], "Harbolnas 2025");
    assert_eq!(first["national_net_reporting_minor"], "0");
    // The live event moves; the closed one's result does not, so nothing more is sent.
    let (_, secret) = app.site_with_key("gamma").await;
    app.ingest(&secret)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![sale("G1", "IDR", 5_000)],
        })
        .await
        .expect("push");
    assert!(
        tokio::time::timeout(Duration::from_millis(1_500), stream.next())
            .await
            .is_err(),
        "a final result is sent once, and the stream stays open"
    );
    // A site registered after the event closed answers, with nothing in it.
    let gamma = app
        .leaderboard()
        .await
        .get_site_totals(saleboard_proto::v1::GetSiteTotalsRequest {
            site_id: "gamma".into(),
            include_hourly: false,
            event_id: "last-year".into(),
        })
        .await
        .expect("a site registered since")
        .into_inner();
    assert!(gamma.totals.is_empty(), "{gamma:?}");
    let (status, _, body) = get(app.leaderboard_addr, "/events/leaderboard?event=nope").await;
    assert_eq!(status, 404, "{body}");

    // With a baseline, the screen's message carries its figure and display name (the page
    // computes the growth from the two integers).
    let mut live = saleboard_tests::data::event();
    live.baseline_event_id = "last-year".into();
    app.admin().await.set_event(live).await.expect("a baseline");
    let mut stream = Sse::open(app.leaderboard_addr, "/events/leaderboard").await;
    let m = stream
        .next_within(Duration::from_secs(5))
        .await
        .expect("a message");
    assert_eq!(m["baseline_event_id"], "last-year");
    assert_eq!(m["baseline_net_reporting_minor"], "0");
    assert_eq!(m["event"]["baseline_display_name"], "Harbolnas 2025");
}

/// Issue 26: the screen is a view of the read model. Every figure of a screen message is what
/// the gRPC methods answer at the same watermark: the ranking and the national figure
/// (GetLeaderboard), the category and origin breakdowns (GetBreakdown) and the hourly curve
/// (GetNationalTotals), and the page's JSON is the same snapshot's.
async fn the_screen_shows_what_grpc_answers_at_its_watermark(backend: Backend) {
    let Some((app, secret)) = seeded(backend, |_| {}).await else {
        return;
    };
    // A rate for USD, and a second hour, so the curve converts and has more than one bar.
    app.admin()
        .await
        .set_exchange_rates(saleboard_proto::v1::SetExchangeRatesRequest {
            rates: vec![saleboard_proto::v1::ExchangeRate {
                currency: "USD".into(),
                rate: "15850.25".into(),
            }],
            event_id: String::new(),
        })
        .await
        .expect("rate");
    let mut earlier = sale("W3", "USD", 999);
    if let Some(at) = earlier.occurred_at.as_mut() {
        at.seconds -= 3_600;
    }
    earlier.category = "food".into();
    app.ingest(&secret)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![earlier],
        })
        .await
        .expect("push");
    app.settle().await;
    let mut stream = Sse::open(app.leaderboard_addr, "/events/leaderboard?limit=10").await;
    let m = stream
        .next_within(Duration::from_secs(5))
        .await
        .expect("a message");
    let mut board = app.leaderboard().await;
    let g = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 10,
            ..GetLeaderboardRequest::default()
        })
        .await
        .expect("leaderboard")
        .into_inner();
    let n = board
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    assert_eq!(m["watermark"], g.watermark.to_string(), "{m}");
    assert_eq!(n.watermark, g.watermark);
    assert_eq!(m["stale"], false);
    let shown: Vec<(String, u64, String, String)> = m["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["site_id"].as_str().unwrap_or_default().to_owned(),
                e["rank"].as_u64().unwrap_or(99),
                e["net_reporting_minor"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["sale_count"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let answered: Vec<(String, u64, String, String)> = g
        .entries
        .iter()
        .map(|e| {
            (
                e.site_id.clone(),
                u64::from(e.rank),
                e.net_reporting_minor.to_string(),
                e.sale_count.to_string(),
            )
        })
        .collect();
    assert_eq!(shown, answered);
    assert_eq!(
        m["national_net_reporting_decimal"],
        g.national_net_reporting_decimal
    );
    assert_eq!(g.national_net_reporting_decimal, n.net_reporting_decimal);
    assert_eq!(m["state"], "EVENT_STATE_LIVE");
    // The curve: two hours, converted, adding up to the national figure.
    let curve: Vec<(String, String)> = m["hourly"]
        .as_array()
        .expect("hourly")
        .iter()
        .map(|h| {
            (
                h["hour_start"].as_str().unwrap_or_default().to_owned(),
                h["net_reporting_minor"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let hours: Vec<(String, String)> = n
        .hourly
        .iter()
        .map(|h| {
            let at = h.hour_start.as_ref().expect("hour_start");
            (
                saleboard_domain::UnixNanos::from_parts(at.seconds, at.nanos)
                    .expect("a time")
                    .to_rfc3339(),
                h.net_reporting_decimal.clone(),
            )
        })
        .collect();
    assert_eq!(curve, hours);
    assert_eq!(hours.len(), 2, "{hours:?}");
    let summed: i128 = n
        .hourly
        .iter()
        .map(|h| h.net_reporting_decimal.parse::<i128>().expect("decimal"))
        .sum();
    assert_eq!(summed.to_string(), n.net_reporting_decimal);
    // The breakdowns on the screen are GetBreakdown's first pages.
    for (field, dimension, limit) in [
        ("categories", Dimension::Category, 5),
        ("origin", Dimension::Origin, 10),
    ] {
        let b = board
            .get_breakdown(GetBreakdownRequest {
                dimension: dimension.into(),
                limit,
                ..GetBreakdownRequest::default()
            })
            .await
            .expect("breakdown")
            .into_inner();
        assert_eq!(m[field]["watermark"], b.watermark.to_string());
        let shown: Vec<(String, String)> = m[field]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                (
                    e["key"].as_str().unwrap_or_default().to_owned(),
                    e["net_reporting_minor"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        let answered: Vec<(String, String)> = b
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.net_reporting_minor.to_string()))
            .collect();
        assert_eq!(shown, answered, "{field}");
    }
    // The JSON API answers from the same snapshot.
    let (_, _, body) = get(app.leaderboard_addr, "/api/v1/national").await;
    let j = json(&body);
    assert_eq!(j["watermark"], n.watermark.to_string());
    assert_eq!(j["hourly"].as_array().map(Vec::len), Some(2), "{j}");
}

/// One JSON mapping (issue 26): the JSON API and the command line's `--output json` write the
/// same answer as the same text, which reads back, by the contract's own mapping, as the same
/// message; every field is there (`state`, `out_of_range_currencies`...), 64-bit integers as
/// strings.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_json_api_and_the_command_line_write_one_mapping() {
    let Some((app, _)) = seeded(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let board = format!("http://{}", app.leaderboard_addr);
    let organizer = format!("http://{}", app.admin_addr);
    let cli = |args: &[&str]| -> String {
        let out = saleboard_tests::proc::saleboard(
            &[args, &["--output", "json"]].concat(),
            &[
                ("SALEBOARD_ENDPOINT", board.as_str()),
                ("SALEBOARD_ADMIN_ENDPOINT", organizer.as_str()),
                ("SALEBOARD_ORGANIZER_TOKEN", app.token.as_str()),
            ],
        );
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim_end()
            .to_owned()
    };
    let api = |path: &'static str| async move {
        let (status, _, body) = get(app.leaderboard_addr, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    };

    // Act: the same answers over HTTP and from the command line.
    let web_board = api("/api/v1/leaderboard?limit=5").await;
    let cli_board = cli(&["leaderboard", "--limit", "5"]);
    let web_national = api("/api/v1/national").await;
    let cli_national = cli(&["national"]);
    let web_breakdown = api("/api/v1/breakdown/category?limit=3").await;
    let cli_breakdown = cli(&["breakdown", "category", "--limit", "3"]);
    let web_events = api("/api/v1/events").await;
    let cli_events = cli(&["admin", "event", "list"]);

    // Assert: one mapping, read back by the contract's own mapping.
    let read_board = mapping::from_str::<Leaderboard>(&cli_board).expect("the CLI's leaderboard");
    assert_eq!(
        mapping::from_str::<Leaderboard>(&web_board).expect("the API's leaderboard"),
        read_board
    );
    assert_eq!(cli_board, web_board, "the same text");
    assert_eq!(read_board.entries.len(), 2, "{cli_board}");
    assert_eq!(
        mapping::from_str::<NationalTotals>(&cli_national).expect("the CLI's national"),
        mapping::from_str::<NationalTotals>(&web_national).expect("the API's national")
    );
    assert_eq!(cli_national, web_national);
    let read_breakdown = mapping::from_str::<Breakdown>(&cli_breakdown).expect("the CLI's");
    assert_eq!(
        mapping::from_str::<Breakdown>(&web_breakdown).expect("the API's breakdown"),
        read_breakdown
    );
    assert_eq!(read_breakdown.entries[0].key, "beauty", "{cli_breakdown}");
    assert_eq!(cli_breakdown, web_breakdown);
    assert_eq!(
        mapping::from_str::<ListEventsResponse>(&cli_events).expect("the CLI's events"),
        mapping::from_str::<ListEventsResponse>(&web_events).expect("the API's events")
    );
    assert_eq!(cli_events, web_events);
    // What the command line used to leave out or write as numbers.
    let b = json(&cli_board);
    assert_eq!(b["state"], "EVENT_STATE_LIVE", "{b}");
    assert_eq!(b["watermark"], read_board.watermark.to_string());
    let alpha = &b["entries"][0];
    assert_eq!(alpha["site_id"], "alpha", "{b}");
    assert_eq!(alpha["out_of_range_currencies"], serde_json::json!([]));
    assert_eq!(alpha["sale_count"], "2");
    assert_eq!(
        alpha["net_reporting_minor"],
        read_board.entries[0].net_reporting_minor.to_string()
    );
    assert_eq!(json(&cli_events)["events"][0]["state"], "EVENT_STATE_LIVE");
}

/// `saleboard-leaderboard --help` says where the screen is.
#[test]
fn the_help_names_the_screen() {
    let out =
        std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard-leaderboard"))
            .arg("--help")
            .output()
            .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("big screen")
            && text.contains("/api/v1/leaderboard")
            && text.contains("/events/leaderboard"),
        "{text}"
    );
}

backend_tests!(
    another_event_on_the_screen,
    the_screen_shows_what_grpc_answers_at_its_watermark,
    json_endpoints_answer_what_grpc_answers,
    the_page_is_embedded_and_local,
    the_stream_lives_through_timeouts_and_ends_at_shutdown
);
