//! LeaderboardService end to end (in-process, both backends): pushes from several sites in
//! several currencies, with refunds, duplicates and rejects; then every figure is compared with a
//! model computed here, independently, from what ingest said was ACCEPTED.

use std::collections::BTreeMap;
use std::time::Duration;

use saleboard_proto::Timestamp;
use saleboard_proto::v1::GetAggregatorStatusRequest;
use saleboard_proto::v1::aggregator_service_client::AggregatorServiceClient;
use saleboard_proto::v1::{
    CurrencyTotals, ExchangeRate, GetLeaderboardRequest, GetNationalTotalsRequest,
    GetSiteTotalsRequest, Outcome, SetExchangeRatesRequest, SubmitTransactionsRequest, Transaction,
    WatchLeaderboardRequest,
};
use saleboard_tests::data::{now_secs, refund, sale};
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;

/// Minor-unit exponents, written out here so the model does not use the code under test.
fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" => 0,
        "KWD" => 3,
        _ => 2,
    }
}

/// `net_minor` of `currency` in IDR minor units at `rate`, half to even, by rational arithmetic.
fn model_convert(net_minor: i64, currency: &str, rate: &str) -> i128 {
    let (int, frac) = rate.split_once('.').unwrap_or((rate, ""));
    let num: i128 = format!("{int}{frac}").parse().expect("rate digits");
    let mut den: i128 = 10_i128.pow(u32::try_from(frac.len()).expect("short"));
    let mut num = i128::from(net_minor) * num * 100; // IDR has 2 decimals
    den *= 10_i128.pow(exponent(currency));
    let g = gcd(num.abs(), den);
    num /= g;
    den /= g;
    let (q, r) = (num / den, num % den);
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 1 => q + 1,
        _ => q,
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Model {
    /// (site, currency) -> [sales, gross, refunds, refunded]
    totals: BTreeMap<(String, String), [i64; 4]>,
    /// (site, hour start, currency) -> (sales, net)
    hourly: BTreeMap<(String, i64, String), (u64, i64)>,
}

impl Model {
    fn record(&mut self, site: &str, t: &Transaction) {
        let e = self
            .totals
            .entry((site.into(), t.currency.clone()))
            .or_default();
        let at = t.occurred_at.as_ref().expect("time").seconds;
        let h = self
            .hourly
            .entry((site.into(), at - at.rem_euclid(3_600), t.currency.clone()))
            .or_default();
        if t.refund_of.is_empty() {
            e[0] += 1;
            e[1] += t.amount_minor;
            h.0 += 1;
            h.1 += t.amount_minor;
        } else {
            e[2] += 1;
            e[3] += t.amount_minor;
            h.1 -= t.amount_minor;
        }
    }

    fn net_idr(&self, site: &str, rates: &BTreeMap<&str, &str>) -> (i64, Vec<String>) {
        let mut net = 0i128;
        let mut unconverted = Vec::new();
        for ((s, c), v) in &self.totals {
            if s != site {
                continue;
            }
            let n = v[1] - v[3];
            if c == "IDR" {
                net += i128::from(n);
            } else if let Some(rate) = rates.get(c.as_str()) {
                net += model_convert(n, c, rate);
            } else {
                unconverted.push(c.clone());
            }
        }
        (i64::try_from(net).expect("fits"), unconverted)
    }
}

fn at(hours_ago: i64, minute: i64) -> Option<Timestamp> {
    let now = now_secs();
    let base = now - now.rem_euclid(3_600) - hours_ago * 3_600;
    Some(Timestamp {
        seconds: base + minute * 60,
        nanos: 0,
    })
}

fn when(mut t: Transaction, hours_ago: i64, minute: i64) -> Transaction {
    t.occurred_at = at(hours_ago, minute);
    t
}

const SITES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

/// Pushes the scenario and returns the model of what was ACCEPTED.
async fn push_scenario(app: &TestApp) -> Model {
    let mut model = Model::default();
    let mut secrets = BTreeMap::new();
    for s in SITES {
        secrets.insert(s, app.site_with_key(s).await.1);
    }
    let batches: Vec<(&str, Vec<Transaction>)> = vec![
        (
            "alpha",
            vec![
                when(sale("a1", "IDR", 15_000_000), 3, 5),
                when(sale("a2", "IDR", 9_999_999), 2, 10),
                when(sale("a3", "USD", 12_34), 2, 20),
                when(sale("a4", "KWD", 1_234), 1, 0),
                when(refund("a5", "a1", "IDR", 5_000_000), 1, 30),
            ],
        ),
        (
            "alpha",
            vec![
                when(sale("a1", "IDR", 15_000_000), 3, 5), // duplicate
                when(refund("a6", "a1", "IDR", 10_000_001), 0, 1), // over the sale: rejected
                when(refund("a7", "a3", "USD", 34), 0, 2),
                when(sale("a8", "SGD", 10_00), 0, 3), // no rate: unconverted
            ],
        ),
        (
            "beta",
            vec![
                when(sale("b1", "JPY", 120_000), 4, 0),
                when(sale("b2", "JPY", 3), 4, 1),
                when(sale("b3", "USD", 99_99), 3, 0),
                when(refund("b4", "b1", "JPY", 20_000), 2, 0),
                when(sale("b5", "USD", 1), 0, 0),
            ],
        ),
        (
            "gamma",
            vec![
                when(sale("g1", "IDR", 1), 5, 0),
                when(sale("g2", "IDR", 2_00), 5, 59),
                when(refund("g3", "g2", "IDR", 2_00), 0, 0), // refunded in full
                when(sale("g4", "XXX", 1), 0, 0),            // invalid currency: rejected
            ],
        ),
    ];
    for (site, txs) in batches {
        let r = app
            .ingest(&secrets[site])
            .await
            .submit_transactions(SubmitTransactionsRequest {
                transactions: txs.clone(),
            })
            .await
            .expect("submit")
            .into_inner();
        for (t, result) in txs.iter().zip(&r.results) {
            if result.outcome() == Outcome::Accepted {
                model.record(site, t);
            }
        }
    }
    model
}

fn rates_map() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([("USD", "15850.25"), ("JPY", "105.75"), ("KWD", "51234.5")])
}

async fn set_rates(app: &TestApp, rates: &BTreeMap<&str, &str>) {
    app.admin()
        .await
        .set_exchange_rates(SetExchangeRatesRequest {
            rates: rates
                .iter()
                .map(|(c, r)| ExchangeRate {
                    currency: (*c).into(),
                    rate: (*r).into(),
                })
                .collect(),
            event_id: String::new(),
        })
        .await
        .expect("rates");
}

/// (rank, site, net) expected, by the rules: net desc, site id asc, 1-2-2-4 ranks.
fn model_ranking(
    model: &Model,
    rates: &BTreeMap<&str, &str>,
) -> Vec<(u32, String, i64, Vec<String>)> {
    // Sites with a transaction by net (ties share a rank, the next skips), then those without
    // any, unranked (0), by id.
    let sold = |s: &str| model.totals.keys().any(|(site, _)| site == s);
    let mut rows: Vec<_> = SITES
        .iter()
        .map(|s| {
            let (net, unconverted) = model.net_idr(s, rates);
            (!sold(s), (*s).to_owned(), net, unconverted)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)).then(a.1.cmp(&b.1)));
    let mut out: Vec<(u32, String, i64, Vec<String>)> = Vec::new();
    for (i, (nothing, s, net, u)) in rows.into_iter().enumerate() {
        let rank = match out.last() {
            _ if nothing => 0,
            Some(prev) if prev.0 != 0 && prev.2 == net => prev.0,
            _ => u32::try_from(i + 1).expect("small"),
        };
        out.push((rank, s, net, u));
    }
    out
}

async fn figures_match_an_independent_model(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let rates = rates_map();
    set_rates(&app, &rates).await;
    let model = push_scenario(&app).await;
    let watermark = app.settle().await;
    let mut board = app.leaderboard().await;

    // The ranking, read in pages of 3 from one snapshot.
    let first = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 3,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.entries.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let second = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 3,
            page_token: first.next_page_token.clone(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("page 2")
        .into_inner();
    assert!(second.next_page_token.is_empty());
    assert_eq!(
        (first.watermark, second.watermark, first.as_of),
        (watermark, watermark, second.as_of),
        "one snapshot"
    );
    let got: Vec<_> = first
        .entries
        .iter()
        .chain(&second.entries)
        .map(|e| {
            (
                e.rank,
                e.site_id.clone(),
                e.net_reporting_minor,
                e.unconverted_currencies.clone(),
            )
        })
        .collect();
    let want = model_ranking(&model, &rates);
    assert_eq!(got, want);
    assert_eq!(first.reporting_currency, "IDR");
    let national_idr: i64 = want.iter().map(|w| w.2).sum();
    assert_eq!(first.national_net_reporting_minor, national_idr);
    assert_eq!(
        first
            .entries
            .iter()
            .find(|e| e.site_id == "alpha")
            .map(|e| (e.sale_count, e.refund_count)),
        Some((5, 2))
    );

    // Per-site totals and the hourly series (the organizer may read every site's).
    let mut organizer = app.leaderboard_as(&app.token).await;
    for site in SITES {
        let t = organizer
            .get_site_totals(GetSiteTotalsRequest {
                site_id: site.into(),
                include_hourly: true,
                event_id: String::new(),
            })
            .await
            .expect("site totals")
            .into_inner();
        assert_eq!(t.watermark, watermark);
        let got: Vec<_> = t
            .totals
            .iter()
            .map(|c| {
                (
                    (site.to_owned(), c.currency.clone()),
                    [
                        i64::try_from(c.sale_count).expect("count"),
                        c.gross_minor,
                        i64::try_from(c.refund_count).expect("count"),
                        c.refunded_minor,
                    ],
                    c.net_minor,
                )
            })
            .collect();
        let want: Vec<_> = model
            .totals
            .iter()
            .filter(|((s, _), _)| s == site)
            .map(|(k, v)| (k.clone(), *v, v[1] - v[3]))
            .collect();
        assert_eq!(got, want, "{site}");
        let got: Vec<_> = t
            .hourly
            .iter()
            .map(|h| {
                (
                    (
                        site.to_owned(),
                        h.hour_start.as_ref().expect("hour").seconds,
                        h.currency.clone(),
                    ),
                    (h.sale_count, h.net_minor),
                )
            })
            .collect();
        let want: Vec<_> = model
            .hourly
            .iter()
            .filter(|((s, _, _), _)| s == site)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(got, want, "{site} hourly");
    }

    // National totals per currency.
    let national = board
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    let mut per_currency: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for ((_, c), v) in &model.totals {
        let e = per_currency.entry(c.clone()).or_default();
        for i in 0..4 {
            e[i] += v[i];
        }
    }
    let want: Vec<CurrencyTotals> = per_currency
        .into_iter()
        .map(|(c, v)| CurrencyTotals {
            currency: c,
            sale_count: u64::try_from(v[0]).expect("count"),
            gross_minor: v[1],
            refund_count: u64::try_from(v[2]).expect("count"),
            refunded_minor: v[3],
            net_minor: v[1] - v[3],
            out_of_range: false,
            gross_decimal: v[1].to_string(),
            refunded_decimal: v[3].to_string(),
            net_decimal: (v[1] - v[3]).to_string(),
        })
        .collect();
    assert_eq!(national.totals, want);
    assert_eq!(
        (
            national.net_reporting_minor,
            national.site_count,
            national.watermark
        ),
        (national_idr, 4, watermark)
    );

    // A new rate re-ranks at once, without touching the totals.
    let mut richer = rates.clone();
    richer.insert("JPY", "10000000");
    set_rates(&app, &richer).await;
    let want = model_ranking(&model, &richer);
    assert_eq!(
        want[0].1, "beta",
        "the scenario must make the rate change matter"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let b = board
            .get_leaderboard(GetLeaderboardRequest {
                limit: 10,
                page_token: String::new(),
                event_id: String::new(),
                baseline_event_id: String::new(),
            })
            .await
            .expect("board")
            .into_inner();
        let got: Vec<_> = b
            .entries
            .iter()
            .map(|e| {
                (
                    e.rank,
                    e.site_id.clone(),
                    e.net_reporting_minor,
                    e.unconverted_currencies.clone(),
                )
            })
            .collect();
        if got == want {
            assert_eq!(b.watermark, watermark, "the ledger did not move");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rates did not re-rank within 2 s: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn requests_are_checked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut board = app.leaderboard().await;
    let err = board
        .get_leaderboard(GetLeaderboardRequest::default())
        .await
        .expect_err("no event");
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.set_event().await;
    for s in ["a", "b", "c"] {
        app.site_with_key(s).await;
    }
    app.settle().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let page = loop {
        let page = board
            .get_leaderboard(GetLeaderboardRequest::default())
            .await;
        match page {
            Ok(p) if p.get_ref().entries.len() == 3 => break p.into_inner(),
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "sites never appeared: {page:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        page.entries
            .iter()
            .all(|e| e.rank == 0 && e.net_reporting_minor == 0),
        "every site appears, unranked: none has a transaction yet"
    );
    assert!(page.next_page_token.is_empty());

    let err = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 1_001,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect_err("limit");
    assert_eq!(err.code(), Code::InvalidArgument);
    board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 1_000,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("1,000 is allowed");
    let err = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 1,
            page_token: "garbage".into(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = board
        .get_leaderboard(GetLeaderboardRequest {
            limit: 1,
            page_token: "999999.1".into(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect_err("expired");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = board
        .get_site_totals(GetSiteTotalsRequest {
            site_id: "nobody".into(),
            include_hourly: false,
            event_id: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = board
        .get_site_totals(GetSiteTotalsRequest {
            site_id: "Bad Id".into(),
            include_hourly: false,
            event_id: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = board
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 0,
            min_interval_ms: 49,
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect_err("too fast");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = board
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 5_000,
            min_interval_ms: 0,
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect_err("limit");
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn watchers_get_updates_at_their_pace(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.site_rate_limit = 0).await else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let mut board = app.leaderboard().await;

    // A watcher that never reads, opened first.
    let _stalled = board
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 1_000,
            min_interval_ms: 50,
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("stalled watcher");

    let started = tokio::time::Instant::now();
    let mut watch = board
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 10,
            min_interval_ms: 200,
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("first").expect("a message");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the current state comes at once"
    );
    assert_eq!(first.watermark, 0);

    // Push in bursts while reading.
    let mut ingest = app.ingest(&secret).await;
    let pusher = tokio::spawn(async move {
        for burst in 0..15 {
            let txs = (0..50)
                .map(|i| sale(&format!("w{burst}-{i}"), "IDR", 1_000))
                .collect();
            ingest
                .submit_transactions(SubmitTransactionsRequest { transactions: txs })
                .await
                .expect("push");
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    });
    let mut arrivals = vec![tokio::time::Instant::now()];
    let mut last = first;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while last.watermark < 750 {
        let m = tokio::time::timeout_at(deadline, watch.message())
            .await
            .expect("updates keep coming")
            .expect("ok")
            .expect("open");
        arrivals.push(tokio::time::Instant::now());
        assert!(m.watermark > last.watermark, "each message is a change");
        last = m;
    }
    pusher.await.expect("pusher");
    assert!(
        arrivals.len() >= 3,
        "several updates arrived: {}",
        arrivals.len()
    );
    // The server spaces the messages it sends; what the client sees also carries delivery
    // jitter (tens of ms on a loaded 2-core machine). So: no two arrivals closer than 150 ms
    // (a broken pacing sends them back to back), and over the whole run no more than one
    // message per 200 ms on average (jitter does not accumulate over many gaps).
    let paced = &arrivals[1..];
    for pair in paced.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(150),
            "messages at most one per 200 ms, got a gap of {gap:?}"
        );
    }
    let gaps = u32::try_from(paced.len() - 1).expect("few messages");
    let span = paced[paced.len() - 1] - paced[0];
    assert!(
        span >= Duration::from_millis(200) * gaps - Duration::from_millis(20),
        "{gaps} gaps in {span:?}: more than one message per 200 ms"
    );
    assert_eq!(last.entries[0].net_reporting_minor, 750 * 1_000);
}

async fn aggregator_status_shows_lag(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let txs = (0..25).map(|i| sale(&format!("L{i}"), "IDR", 10)).collect();
    app.ingest(&secret)
        .await
        .submit_transactions(SubmitTransactionsRequest { transactions: txs })
        .await
        .expect("push");
    app.settle().await;
    let mut status_client =
        AggregatorServiceClient::new(saleboard_tests::app::channel(app.aggregator_addr).await);
    let status = status_client
        .get_status(GetAggregatorStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (status.applied_position, status.ledger_head, status.lag),
        (25, 25, 0)
    );
    assert!(status.active, "the only aggregator holds the lease");
    assert_eq!(status.holder, status.instance_id);
    assert!(status.updated_at.is_some());
}

/// A site's figures leave the national figure the moment the call that disables it returns,
/// and come back the moment it is enabled; a site created is on the board at once. The board
/// reads the sites only when they changed and only the totals changed since its last read, so
/// this is also the check that those reads merge into exact figures.
async fn site_changes_reach_the_national_figure_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, alpha) = app.site_with_key("alpha").await;
    let (_, beta) = app.site_with_key("beta").await;
    let push = |secret: String, txs: Vec<Transaction>| {
        let app = &app;
        async move {
            app.ingest(&secret)
                .await
                .submit_transactions(SubmitTransactionsRequest { transactions: txs })
                .await
                .expect("push");
        }
    };
    push(alpha.clone(), vec![sale("A1", "IDR", 1_000)]).await;
    push(beta.clone(), vec![sale("B1", "IDR", 500)]).await;
    app.settle().await;
    // Only alpha's totals move: the board merges them into beta's as held.
    push(alpha.clone(), vec![sale("A2", "IDR", 700)]).await;
    app.settle().await;
    let mut board = app.leaderboard().await;
    let national =
        |board: &mut saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient<
            tonic::transport::Channel,
        >| {
            let mut board = board.clone();
            async move {
                let n = board
                    .get_national_totals(GetNationalTotalsRequest::default())
                    .await
                    .expect("national")
                    .into_inner();
                let entries: Vec<(String, i64)> = board
                    .get_leaderboard(GetLeaderboardRequest {
                        limit: 100,
                        ..GetLeaderboardRequest::default()
                    })
                    .await
                    .expect("board")
                    .into_inner()
                    .entries
                    .into_iter()
                    .map(|e| (e.site_id, e.net_reporting_minor))
                    .collect();
                (n.site_count, n.net_reporting_minor, entries)
            }
        };
    let owned = |rows: &[(&str, i64)]| -> Vec<(String, i64)> {
        rows.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    };
    assert_eq!(
        national(&mut board).await,
        (2, 2_200, owned(&[("alpha", 1_700), ("beta", 500)]))
    );

    let mut admin = app.admin().await;
    admin
        .set_site_enabled(saleboard_proto::v1::SetSiteEnabledRequest {
            site_id: "beta".into(),
            enabled: false,
        })
        .await
        .expect("disable");
    assert_eq!(
        national(&mut board).await,
        (1, 1_700, owned(&[("alpha", 1_700)])),
        "beta left when the call returned"
    );
    admin
        .create_site(saleboard_proto::v1::CreateSiteRequest {
            site_id: "gamma".into(),
            display_name: "Gamma".into(),
        })
        .await
        .expect("create");
    assert_eq!(
        national(&mut board).await,
        (2, 1_700, owned(&[("alpha", 1_700), ("gamma", 0)])),
        "gamma is on the board when the call returned"
    );
    admin
        .set_site_enabled(saleboard_proto::v1::SetSiteEnabledRequest {
            site_id: "beta".into(),
            enabled: true,
        })
        .await
        .expect("enable");
    assert_eq!(
        national(&mut board).await,
        (
            3,
            2_200,
            owned(&[("alpha", 1_700), ("beta", 500), ("gamma", 0)])
        ),
        "beta back when the call returned"
    );
    // Enabling it again changes nothing and answers as stored (the board, which shows it so,
    // is not rebuilt for it).
    let again = admin
        .set_site_enabled(saleboard_proto::v1::SetSiteEnabledRequest {
            site_id: "beta".into(),
            enabled: true,
        })
        .await
        .expect("enable again")
        .into_inner();
    assert!(again.disabled_at.is_none(), "{again:?}");
    assert_eq!(
        national(&mut board).await,
        (
            3,
            2_200,
            owned(&[("alpha", 1_700), ("beta", 500), ("gamma", 0)])
        )
    );
    // Disabled by another writer (another leaderboard process's admin service) behind this
    // board's back: a disable through this one changes nothing stored, yet its board showed
    // beta enabled, so it reads the sites again before it answers.
    app.store
        .set_site_enabled(
            &saleboard_domain::SiteId::parse("beta").expect("site id"),
            false,
            saleboard_domain::UnixNanos::now(),
            saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("SetSiteEnabled")),
        )
        .await
        .expect("disable in storage");
    admin
        .set_site_enabled(saleboard_proto::v1::SetSiteEnabledRequest {
            site_id: "beta".into(),
            enabled: false,
        })
        .await
        .expect("disable, already so in storage");
    assert_eq!(
        national(&mut board).await,
        (2, 1_700, owned(&[("alpha", 1_700), ("gamma", 0)])),
        "beta gone when the call returned"
    );
    admin
        .set_site_enabled(saleboard_proto::v1::SetSiteEnabledRequest {
            site_id: "beta".into(),
            enabled: true,
        })
        .await
        .expect("enable");
    // And the next apply's totals merge into the figures as they are now.
    push(beta, vec![sale("B2", "IDR", 300)]).await;
    app.settle().await;
    assert_eq!(
        national(&mut board).await,
        (
            3,
            2_500,
            owned(&[("alpha", 1_700), ("beta", 800), ("gamma", 0)])
        )
    );
}

backend_tests!(
    aggregator_status_shows_lag,
    figures_match_an_independent_model,
    requests_are_checked,
    site_changes_reach_the_national_figure_at_once,
    watchers_get_updates_at_their_pace,
    a_watch_sends_each_page_once
);

/// A new generation of the board that moves nothing a watcher's page shows (a rate set for a
/// currency nobody sold in; under load, the breakdowns written apart from the headline
/// figures) is not sent again, and so does not hold the next real change back by the
/// interval a repeat would start: a watcher gets each page once.
async fn a_watch_sends_each_page_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let mut watch = app
        .leaderboard()
        .await
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 10,
            min_interval_ms: 50,
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("first").expect("a message");
    assert_eq!(first.watermark, 0);
    let mut ingest = app.ingest(&secret).await;
    let mut seen = Vec::new();
    for round in 0..3_u64 {
        // A generation with nothing new on the page: the event's rates move (JPY, unsold).
        app.admin()
            .await
            .set_exchange_rates(saleboard_proto::v1::SetExchangeRatesRequest {
                event_id: "harbolnas-test".into(),
                rates: vec![saleboard_proto::v1::ExchangeRate {
                    currency: "JPY".into(),
                    rate: format!("{}", 100 + round),
                }],
            })
            .await
            .expect("rates");
        let txs = (0..5)
            .map(|i| sale(&format!("once{round}-{i}"), "IDR", 1_000))
            .collect();
        ingest
            .submit_transactions(SubmitTransactionsRequest { transactions: txs })
            .await
            .expect("push");
        app.settle().await;
        // Whatever the board publishes for these within a second.
        let until = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(m) = tokio::time::timeout_at(until, watch.message()).await {
            seen.push(m.expect("ok").expect("open").watermark);
        }
    }
    assert_eq!(seen, vec![5, 10, 15], "each page once");
}
