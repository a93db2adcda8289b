//! Many events on one deployment (issue 12), black-box over gRPC on both databases: windows
//! that never overlap, a sale counted in the event whose window holds it (edges included), a
//! refund counted in its sale's event until that event closes, no staleness after SetEvent,
//! narrowing refused while sales would fall outside, the events listed publicly, and the
//! migration of a database made by the previous release.

use saleboard_proto::Timestamp;
use saleboard_proto::v1::{
    Event, EventState, ExchangeRate, GetEventRequest, GetLeaderboardRequest,
    GetNationalTotalsRequest, GetSiteTotalsRequest, ListEventsRequest, ListExchangeRatesRequest,
    Outcome, SetExchangeRatesRequest, SubmitTransactionsRequest, Transaction, TransactionKind,
    WatchLeaderboardRequest,
};
use saleboard_tests::data::now_secs;
use saleboard_tests::db::TestDb;
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;

const DAY: i64 = 86_400;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn event(id: &str, starts: i64, ends: i64, closes: Option<i64>) -> Event {
    Event {
        event_id: id.into(),
        display_name: id.to_uppercase(),
        starts_at: ts(starts),
        ends_at: ts(ends),
        closes_at: closes.and_then(ts),
        reporting_currency: "IDR".into(),
        ..Event::default()
    }
}

fn sale_at(id: &str, at: i64) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        store_id: "s".into(),
        kind: TransactionKind::Sale.into(),
        currency: "IDR".into(),
        amount_minor: 1_000,
        occurred_at: ts(at),
        refund_of: String::new(),
        ..Transaction::default()
    }
}

fn refund_at(id: &str, sale: &str, at: i64) -> Transaction {
    Transaction {
        kind: TransactionKind::Refund.into(),
        refund_of: sale.into(),
        amount_minor: 100,
        ..sale_at(id, at)
    }
}

/// (outcome, reason, event_id) per transaction.
async fn push(
    app: &TestApp,
    secret: &str,
    txs: Vec<Transaction>,
) -> Vec<(Outcome, String, String)> {
    app.ingest(secret)
        .await
        .submit_transactions(SubmitTransactionsRequest { transactions: txs })
        .await
        .expect("push")
        .into_inner()
        .results
        .into_iter()
        .map(|r| (r.outcome(), r.reason, r.event_id))
        .collect()
}

fn ok(event: &str) -> (Outcome, String, String) {
    (Outcome::Accepted, String::new(), event.to_owned())
}

fn no(reason: &str) -> (Outcome, String, String) {
    (Outcome::Rejected, reason.to_owned(), String::new())
}

async fn windows_edges_refunds_and_closing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = now_secs();
    let mut admin = app.admin().await;
    // "past": ended two days ago, refunds until tomorrow; "live": now; "done": closed.
    let past_start = now - 4 * DAY;
    let past_end = now - 2 * DAY;
    let live_start = past_end;
    let live_end = now + DAY;
    admin
        .set_event(event(
            "done",
            now - 30 * DAY,
            now - 20 * DAY,
            Some(now - 10 * DAY),
        ))
        .await
        .expect("a closed event");
    admin
        .set_event(event("past", past_start, past_end, Some(now + DAY)))
        .await
        .expect("a settling event");
    let live = admin
        .set_event(event("live", live_start, live_end, None))
        .await
        .expect("windows that touch do not overlap")
        .into_inner();
    assert_eq!(live.state(), EventState::Live);
    assert_eq!(
        live.closes_at,
        ts(live_end + 7 * DAY),
        "ends_at + 7 days by default"
    );
    let err = admin
        .set_event(event("clash", now - 3 * DAY, now - DAY, None))
        .await
        .expect_err("overlaps two events");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("would overlap event"),
        "{}",
        err.message()
    );

    let (_, secret) = app.site_with_key("alpha").await;
    let got = push(
        &app,
        &secret,
        vec![
            sale_at("P-first", past_start),
            sale_at("P-last", past_end - 1),
            sale_at("L-first", live_end - DAY - 60),
            sale_at("L-edge", live_start),
            sale_at("before", past_start - 1),
            sale_at("D1", now - 25 * DAY),
            // After the past event's window, before it closes: its sale's event.
            refund_at("R-past", "P-first", now),
            refund_at("R-early", "L-first", live_end - DAY - 120),
        ],
    )
    .await;
    assert_eq!(
        got,
        [
            ok("past"),
            ok("past"),
            ok("live"),
            ok("live"),
            no("OUTSIDE_EVENT_WINDOW"),
            no("EVENT_CLOSED"),
            ok("past"),
            no("REFUND_BEFORE_SALE"),
        ]
    );
    // A duplicate names the stored row's event.
    let again = push(&app, &secret, vec![sale_at("P-first", past_start)]).await;
    assert_eq!(
        again,
        [(Outcome::Duplicate, String::new(), "past".to_owned())]
    );

    // Each event has its own totals; the board shows the current (live) one only.
    app.settle().await;
    let board = app
        .leaderboard()
        .await
        .get_leaderboard(GetLeaderboardRequest {
            limit: 10,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("board")
        .into_inner();
    assert_eq!(board.event_id, "live");
    assert_eq!(
        board.national_net_reporting_minor, 2_000,
        "the live event's two sales, not the past event's"
    );
    let stored = app.store.load_totals().await.expect("totals");
    let of = |event: &str| {
        stored
            .book
            .totals()
            .iter()
            .filter(|((e, _, _), _)| e == event)
            .map(|(_, t)| {
                (
                    t.sale_count,
                    t.gross_minor,
                    t.refund_count,
                    t.refunded_minor,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(of("past"), [(2, 2_000, 1, 100)]);
    assert_eq!(of("live"), [(2, 2_000, 0, 0)]);
    assert!(of("done").is_empty());

    // The leaderboard of a past event while another is live, by every read.
    let mut reader = app.leaderboard().await;
    let past_board = reader
        .get_leaderboard(GetLeaderboardRequest {
            limit: 10,
            page_token: String::new(),
            event_id: "past".into(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("a past event's board")
        .into_inner();
    assert_eq!(past_board.event_id, "past");
    assert_eq!(past_board.national_net_reporting_minor, 1_900);
    let national = reader
        .get_national_totals(GetNationalTotalsRequest {
            event_id: "past".into(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("national")
        .into_inner();
    assert_eq!(
        (national.event_id.as_str(), national.net_reporting_minor),
        ("past", 1_900)
    );
    let site = reader
        .get_site_totals(GetSiteTotalsRequest {
            site_id: "alpha".into(),
            include_hourly: false,
            event_id: "past".into(),
        })
        .await
        .expect("site totals")
        .into_inner();
    assert_eq!(site.totals[0].net_minor, 1_900);
    let mut watch = reader
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 10,
            min_interval_ms: 0,
            event_id: "past".into(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("watch a past event")
        .into_inner();
    let first = watch.message().await.expect("a message").expect("open");
    assert_eq!(
        (first.event_id.as_str(), first.national_net_reporting_minor),
        ("past", 1_900)
    );
    drop(watch);
    for missing in [
        reader
            .get_leaderboard(GetLeaderboardRequest {
                limit: 10,
                page_token: String::new(),
                event_id: "nope".into(),
                baseline_event_id: String::new(),
            })
            .await
            .map(|_| ()),
        reader
            .get_national_totals(GetNationalTotalsRequest {
                event_id: "nope".into(),
                baseline_event_id: String::new(),
            })
            .await
            .map(|_| ()),
        reader
            .get_site_totals(GetSiteTotalsRequest {
                site_id: "alpha".into(),
                include_hourly: false,
                event_id: "nope".into(),
            })
            .await
            .map(|_| ()),
    ] {
        assert_eq!(missing.expect_err("unknown").code(), Code::NotFound);
    }

    // Rates belong to their event; a closed event's rates are frozen.
    let usd = |event: &str, rate: &str| SetExchangeRatesRequest {
        rates: vec![ExchangeRate {
            currency: "USD".into(),
            rate: rate.into(),
        }],
        event_id: event.into(),
    };
    admin
        .set_exchange_rates(usd("past", "15000"))
        .await
        .expect("a settling event's rates");
    admin
        .set_exchange_rates(usd("live", "16000"))
        .await
        .expect("the live event's rates");
    let listed = |event: &str| ListExchangeRatesRequest {
        event_id: event.into(),
    };
    for (id, want) in [("past", "15000"), ("live", "16000"), ("", "16000")] {
        let rates = admin
            .list_exchange_rates(listed(id))
            .await
            .expect("list rates")
            .into_inner()
            .rates;
        assert_eq!(
            rates
                .iter()
                .map(|r| (r.currency.as_str(), r.rate.as_str()))
                .collect::<Vec<_>>(),
            [("USD", want)],
            "rates of {id:?}"
        );
    }
    assert!(
        admin
            .list_exchange_rates(listed("done"))
            .await
            .expect("list rates")
            .into_inner()
            .rates
            .is_empty()
    );
    let err = admin
        .set_exchange_rates(usd("done", "1"))
        .await
        .expect_err("a closed event's rates are frozen");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("frozen"), "{}", err.message());
    assert_eq!(
        admin
            .set_exchange_rates(usd("nope", "1"))
            .await
            .expect_err("unknown event")
            .code(),
        Code::NotFound
    );

    // Close the past event now: its refunds are refused from then on.
    admin
        .set_event(event("past", past_start, past_end, Some(now - 1)))
        .await
        .expect("close now");
    let got = push(&app, &secret, vec![refund_at("R-late", "P-last", now)]).await;
    assert_eq!(
        got,
        [no("EVENT_CLOSED")],
        "no staleness: decided with the new closes_at"
    );
    let err = admin
        .set_event(event("past", past_start, past_end, Some(now + DAY)))
        .await
        .expect_err("a closed event cannot reopen");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Widen the live window and push at once into the new part: no reload to wait for.
    admin
        .set_event(event("live", live_start, live_end + DAY, None))
        .await
        .expect("widen");
    let got = push(&app, &secret, vec![sale_at("L-widened", now + 60)]).await;
    assert_eq!(got, [ok("live")]);
    // Narrowing that would strand accepted sales is refused, saying how many.
    let err = admin
        .set_event(event("live", live_start + 1, live_end + DAY, None))
        .await
        .expect_err("L-edge would fall outside");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("1 accepted sales"),
        "{}",
        err.message()
    );

    // The events, publicly and by id.
    let listed = app
        .leaderboard()
        .await
        .list_events(ListEventsRequest {})
        .await
        .expect("public list")
        .into_inner()
        .events;
    let ids: Vec<&str> = listed.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["live", "past", "done"], "newest first");
    let states: Vec<EventState> = listed.iter().map(Event::state).collect();
    assert_eq!(
        states,
        [EventState::Live, EventState::Closed, EventState::Closed]
    );
    let current = admin
        .get_event(GetEventRequest::default())
        .await
        .expect("current")
        .into_inner();
    assert_eq!(current.event_id, "live");
    let missing = admin
        .get_event(GetEventRequest {
            event_id: "nope".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);

    // `admin event close` on a live event: it closes when its window ends (never earlier).
    let out = std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
        .args([
            "admin", "event", "close", "--id", "live", "--output", "json",
        ])
        .args(["--endpoint", &format!("http://{}", app.admin_addr)])
        .env("SALEBOARD_ORGANIZER_TOKEN", &app.token)
        .output()
        .expect("saleboard runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let closed = admin
        .get_event(GetEventRequest {
            event_id: "live".into(),
        })
        .await
        .expect("live")
        .into_inner();
    assert_eq!(closed.closes_at, closed.ends_at);
    assert_eq!(closed.state(), EventState::Live);

    // verify recomputes every event's totals, and names the event of a difference.
    app.settle().await;
    let verify = || {
        std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
            .arg("verify")
            .env("SALEBOARD_DATABASE_URL", &app.db.url)
            .output()
            .expect("verify runs")
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.db
        .execute("UPDATE site_totals SET sale_count = sale_count + 1 WHERE event_id = 'past'")
        .await;
    let out = verify();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("event past totals alpha IDR"), "{said}");
    assert!(
        !said.contains("event live"),
        "the other events match: {said}"
    );
}

/// A database as the one-event release left it (its event, a sale and a refund), then the
/// events migration: the event becomes the first of many with a default settlement period,
/// every stored row belongs to it, and new pushes are counted in it.
async fn a_one_event_database_migrates(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let previous = match backend {
        Backend::Postgres => 5,
        Backend::Sqlite => 4,
    };
    let old = db.store_until(previous).await;
    let ns = |s: i64| s * 1_000_000_000;
    let now = now_secs();
    let (starts, ends) = (ns(now - DAY), ns(now + DAY));
    let at = ns(now - 60);
    db.execute(&format!(
        "INSERT INTO event (id, event_id, display_name, starts_at_ns, ends_at_ns, \
         reporting_currency) VALUES (1, 'harbolnas-2025', 'Harbolnas 2025', {starts}, {ends}, 'IDR')"
    ))
    .await;
    db.execute("INSERT INTO sites (site_id, display_name, created_at_ns) VALUES ('alpha', 'A', 0)")
        .await;
    db.execute(&format!(
        "INSERT INTO ledger (position, site_id, transaction_id, store_id, kind, currency, \
         amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns) VALUES \
         (1, 'alpha', 'S1', '', 1, 'IDR', 5000, {at}, '', 'key_old', {at}), \
         (2, 'alpha', 'R1', '', 2, 'IDR', 500, {at}, 'S1', 'key_old', {at})"
    ))
    .await;
    db.execute("UPDATE ledger_head SET head = 2 WHERE id = 1")
        .await;
    db.execute(
        "INSERT INTO site_totals (site_id, currency, sale_count, gross_minor, refund_count, \
         refunded_minor, net_minor) VALUES ('alpha', 'IDR', 1, '5000', 1, '500', '4500')",
    )
    .await;
    db.execute("UPDATE aggregator_state SET applied_position = 2 WHERE id = 1")
        .await;
    db.execute("INSERT INTO exchange_rates (currency, rate) VALUES ('USD', '15850.25')")
        .await;
    drop(old);

    let store = db.store().await;
    let events = store.events().await.expect("events");
    let migrated = events.get("harbolnas-2025").expect("the event moved");
    assert_eq!(events.as_slice().len(), 1);
    assert_eq!(migrated.display_name, "Harbolnas 2025");
    assert_eq!(
        migrated.closes_at.0,
        ends + ns(7 * DAY),
        "settlement defaults to 7 days"
    );
    let rows = store.read_ledger(0, 10).await.expect("ledger");
    let owners: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.tx.id.as_str(), r.event_id.as_str()))
        .collect();
    assert_eq!(owners, [("S1", "harbolnas-2025"), ("R1", "harbolnas-2025")]);
    let totals = store.load_totals().await.expect("totals");
    let book_totals = totals.book.totals();
    let keys: Vec<(&str, &str, &str)> = book_totals
        .keys()
        .map(|(e, s, c)| (e.as_str(), s.as_str(), c.code()))
        .collect();
    assert_eq!(
        keys,
        [("harbolnas-2025", "alpha", "IDR")],
        "the totals moved with it"
    );
    let rates = store
        .list_exchange_rates("harbolnas-2025")
        .await
        .expect("rates");
    assert_eq!(rates.len(), 1, "and its rates");
    // The stored sale still takes refunds, counted in its event.
    let refund = saleboard_storage::Candidate {
        site: saleboard_domain::SiteId::parse("alpha").expect("site"),
        key_id: "key_new".into(),
        received_at: saleboard_domain::UnixNanos::now(),
        tx: saleboard_domain::transaction::validate(
            &saleboard_domain::TransactionInput {
                transaction_id: "R2".into(),
                kind: saleboard_domain::PushedKind::Refund,
                currency: "IDR".into(),
                amount_minor: 4_500,
                occurred_at: Some(saleboard_domain::UnixNanos(at).to_parts()),
                refund_of: "S1".into(),
                ..saleboard_domain::TransactionInput::default()
            },
            saleboard_domain::UnixNanos::now(),
            &saleboard_domain::Limits::default(),
        )
        .expect("a valid refund"),
    };
    let decided = store.append(&[refund]).await.expect("append");
    assert_eq!(
        decided,
        [saleboard_domain::resolve::Decision::Accepted {
            position: 3,
            event_id: "harbolnas-2025".into()
        }]
    );
}

fn half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match (2 * r.abs()).cmp(&d) {
        std::cmp::Ordering::Greater => q + n.signum(),
        std::cmp::Ordering::Equal if q % 2 != 0 => q + n.signum(),
        _ => q,
    }
}

/// The comparison at the same elapsed time, against a model written here: a baseline reported in
/// USD with its own IDR rate, this event in IDR with its USD rate; full hours plus the hour in
/// progress pro rata.
async fn comparison_at_the_same_point(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut admin = app.admin().await;
    let now = now_secs();
    let hour = 3_600;
    let base = now - now % hour - 30 * DAY;
    let starts = now - 2 * hour - hour / 2;
    let mut baseline = event("b2025", base, base + 72 * hour, Some(now + DAY));
    baseline.reporting_currency = "USD".into();
    admin.set_event(baseline.clone()).await.expect("baseline");
    let mut this = event("e2026", starts, starts + 72 * hour, None);
    this.baseline_event_id = "b2025".into();
    admin.set_event(this).await.expect("event");
    let rate = |event: &str, currency: &str, rate: &str| SetExchangeRatesRequest {
        rates: vec![ExchangeRate {
            currency: currency.into(),
            rate: rate.into(),
        }],
        event_id: event.into(),
    };
    admin
        .set_exchange_rates(rate("b2025", "IDR", "0.0000631"))
        .await
        .expect("baseline rates");
    admin
        .set_exchange_rates(rate("e2026", "USD", "15850.25"))
        .await
        .expect("rates");
    let (_, alpha) = app.site_with_key("alpha").await;
    let (_, beta) = app.site_with_key("beta").await;
    app.site_with_key("gamma").await;
    let in_currency = |t: Transaction, currency: &str, amount: i64| Transaction {
        currency: currency.into(),
        amount_minor: amount,
        ..t
    };
    // Baseline: (site, currency, hour, amount) as the model sees them.
    let sales = [
        ("alpha", "IDR", 0, 1_000_000),
        ("alpha", "USD", 1, 3_600),
        ("alpha", "IDR", 2, 36_000_000),
        ("beta", "USD", 0, 500),
    ];
    for (i, (site, currency, h, amount)) in sales.iter().enumerate() {
        let secret = if *site == "alpha" { &alpha } else { &beta };
        let tx = in_currency(
            sale_at(&format!("B{i}"), base + h * hour + 60),
            currency,
            *amount,
        );
        assert_eq!(push(&app, secret, vec![tx]).await, [ok("b2025")]);
    }
    assert_eq!(
        push(
            &app,
            &alpha,
            vec![in_currency(sale_at("E1", now - 60), "IDR", 100)]
        )
        .await,
        [ok("e2026")]
    );
    let clock = || {
        i128::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos(),
        )
        .expect("fits")
    };
    // The comparison is computed when a snapshot is built (at the latest by this change's
    // refresh, or kept from an earlier one only when equal): no earlier than now. (Taken after
    // the settle, a busy machine's second between the build and the request moved the
    // baseline's pro-rata figure by a cent.)
    let before = clock();
    // The baseline closes: its figures are final.
    baseline.closes_at = ts(base + 72 * hour);
    admin.set_event(baseline).await.expect("close the baseline");
    app.settle().await;

    let ns = |s: i64| i128::from(s) * 1_000_000_000;
    // (alpha, beta) baseline figures in IDR minor units for a request answered at `at_ns`.
    let model = |at_ns: i128| -> (i128, i128) {
        let cutoff = ns(base) + (at_ns - ns(starts));
        let mut by_key = std::collections::BTreeMap::<(&str, &str), i128>::new();
        for (site, currency, h, amount) in sales {
            let into = cutoff - ns(base + h * hour);
            let counted = if into <= 0 {
                0
            } else if into >= ns(hour) {
                i128::from(amount)
            } else {
                half_even(i128::from(amount) * into, ns(hour))
            };
            *by_key.entry((site, currency)).or_default() += counted;
        }
        let mut usd = std::collections::BTreeMap::<&str, i128>::new();
        for ((site, currency), net) in by_key {
            // IDR minor (2 decimals) x 0.0000631 into USD minor (2 decimals), half to even.
            let in_usd = if currency == "IDR" {
                half_even(net * 631, 10_000_000)
            } else {
                net
            };
            *usd.entry(site).or_default() += in_usd;
        }
        // USD minor x 15850.25 into IDR minor, half to even, per site.
        (
            half_even(usd["alpha"] * 1_585_025, 100),
            half_even(usd["beta"] * 1_585_025, 100),
        )
    };
    let got = app
        .leaderboard()
        .await
        .get_leaderboard(GetLeaderboardRequest {
            limit: 10,
            page_token: String::new(),
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("board")
        .into_inner();
    let after = clock();
    assert_eq!(
        (got.event_id.as_str(), got.baseline_event_id.as_str()),
        ("e2026", "b2025")
    );
    assert_eq!(got.state(), EventState::Live);
    let entry = |site: &str| {
        got.entries
            .iter()
            .find(|e| e.site_id == site)
            .cloned()
            .expect("an entry")
    };
    let (low, high) = (model(before), model(after));
    let alpha_base = i128::from(entry("alpha").baseline_net_reporting_minor);
    assert!(
        low.0 <= alpha_base && alpha_base <= high.0,
        "alpha's baseline {alpha_base} within the model's {} to {}",
        low.0,
        high.0
    );
    assert!(
        low.0 > model(ns(starts) + ns(2 * hour)).0,
        "the hour in progress counts pro rata"
    );
    assert!(entry("alpha").in_baseline);
    assert_eq!(
        i128::from(entry("beta").baseline_net_reporting_minor),
        low.1,
        "beta's only hour ended in full"
    );
    assert!(!entry("gamma").in_baseline, "gamma did not take part");
    assert_eq!(
        i128::from(got.baseline_net_reporting_minor),
        alpha_base + low.1,
        "the national baseline is the sum of the sites'"
    );
    // The same through GetNationalTotals; an unknown baseline is NOT_FOUND.
    let national = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest {
            event_id: String::new(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("national")
        .into_inner();
    assert_eq!(national.baseline_event_id, "b2025");
    assert!(i128::from(national.baseline_net_reporting_minor) >= low.0 + low.1);
    let missing = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest {
            event_id: String::new(),
            baseline_event_id: "nope".into(),
        })
        .await
        .expect_err("unknown baseline");
    assert_eq!(missing.code(), Code::NotFound);

    // The command line: each site's net, its baseline and the growth.
    let board = format!("http://{}", app.leaderboard_addr);
    let cli = |args: &[&str]| {
        std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
            .args(args)
            .args(["--endpoint", &board])
            .env_remove("SALEBOARD_ORGANIZER_TOKEN")
            .output()
            .expect("saleboard runs")
    };
    let out = cli(&["compare", "e2026"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("e2026 against b2025 at the same point, in IDR"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("gamma") && l.contains("(not in it)") && l.ends_with("new")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("national") && l.ends_with('%')),
        "{text}"
    );
    let out = cli(&["compare", "b2025"]);
    assert!(!out.status.success(), "no baseline of its own");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no baseline; name one with --with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["compare", "b2025", "--with", "e2026", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["baseline_event_id"], "e2026");

    // The leaderboard table: the growth line, and times in the event's own time zone.
    let mut shown = event("e2026", starts, starts + 72 * hour, None);
    shown.baseline_event_id = "b2025".into();
    shown.time_zone = "Asia/Jakarta".into();
    admin.set_event(shown).await.expect("a display time zone");
    let out = cli(&["leaderboard"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("vs b2025") && l.ends_with('%')),
        "{text}"
    );
    assert!(
        text.contains("+07:00 Asia/Jakarta (ledger position"),
        "{text}"
    );
    let out = cli(&["leaderboard", "--tz", "UTC"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" UTC (ledger position"),
        "--tz wins over the event's zone"
    );
    // `leaderboard --watch` draws the same growth line, live.
    let dir = tempfile::tempdir().expect("tmp");
    let out_path = dir.path().join("watch.out");
    let mut watch = std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
        .args(["leaderboard", "--watch", "--endpoint", &board])
        .env_remove("SALEBOARD_ORGANIZER_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(std::fs::File::create(&out_path).expect("out"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch starts");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.trim_start().starts_with("vs b2025") && l.ends_with('%'))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch shows the growth against the baseline: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(watch.kill());
    drop(watch.wait());
}

backend_tests!(
    windows_edges_refunds_and_closing,
    a_one_event_database_migrates,
    comparison_at_the_same_point
);
