//! The official report (issue 29) as an organizer publishes it and a journalist checks it:
//! `GetEventReport`'s figures equal the gRPC answers; `saleboard report` writes the PDF (read
//! back with pdftotext, page 1 rendered with pdftoppm and kept as a test artefact), the HTML,
//! the CSV and JSON files and a manifest `sha256sum -c` accepts; PROVISIONAL while settling,
//! FINAL once closed, when two runs give the same bytes; `report check` passes, then names a
//! changed CSV and a changed total in the database; an unknown event is a clear error; the
//! leaderboard serves the page at `/report/{event}`.

use std::path::Path;

use saleboard_proto::v1::{
    AdjustTransactionsRequest, ApproveActionRequest, EventReport, EventState,
    GetEventReportRequest, GetLeaderboardRequest, GetNationalTotalsRequest, Outcome, ReportStatus,
    SetExchangeRatesRequest, SetSiteEnabledRequest, SetSiteHoldRequest, SubmitTransactionsRequest,
    Transaction,
};
use saleboard_proto::{Timestamp, v1::ExchangeRate};
use saleboard_tests::data::{refund, sale};
use saleboard_tests::proc::start_dev;
use saleboard_tests::report::{
    check_cli, check_files, column_sum, csv_rows, dir_hashes, pdf_text, pdf_tools, run_ok,
    sha256sum_check, tool,
};
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;

backend_tests!(
    the_official_report_states_checks_and_finalizes_the_figures,
    the_report_of_devs_closed_demo_event_is_final_and_checks,
    a_report_states_the_baseline_holds_voids_and_what_it_leaves_out,
);

fn now_secs() -> i64 {
    saleboard_domain::UnixNanos::now().to_parts().0
}

async fn push(app: &TestApp, secret: &str, txs: Vec<Transaction>) {
    let answer = app
        .ingest(secret)
        .await
        .submit_transactions(SubmitTransactionsRequest { transactions: txs })
        .await
        .expect("submit")
        .into_inner();
    assert!(
        answer
            .results
            .iter()
            .all(|r| r.outcome == i32::from(Outcome::Accepted)),
        "{answer:?}"
    );
}

fn branded(id: &str, currency: &str, amount: i64, brand: &str) -> Transaction {
    Transaction {
        brand: brand.into(),
        ..sale(id, currency, amount)
    }
}

fn report_cli(app: &TestApp, event: &str, dir: &Path) -> std::process::Output {
    saleboard_tests::report::report_cli(app.admin_addr, &app.token, event, dir)
}

async fn report(app: &TestApp, event: &str) -> EventReport {
    app.admin()
        .await
        .get_event_report(GetEventReportRequest {
            event_id: event.into(),
            ..Default::default()
        })
        .await
        .expect("GetEventReport")
        .into_inner()
}

#[allow(clippy::too_many_lines)]
async fn the_official_report_states_checks_and_finalizes_the_figures(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let pdf_tools = pdf_tools();
    let event_id = "harbolnas-test";
    app.set_event().await;
    app.admin()
        .await
        .set_exchange_rates(SetExchangeRatesRequest {
            event_id: event_id.into(),
            rates: vec![ExchangeRate {
                currency: "USD".into(),
                rate: "15000".into(),
            }],
        })
        .await
        .expect("rates");
    let (_, besar) = app.site_with_key("besar").await;
    let (_, kecil) = app.site_with_key("kecil").await;
    // besar: Rp 900.000 and US$10 (Rp 150.000); kecil: Rp 1.000.000 and Rp 200.000.
    push(
        &app,
        &besar,
        vec![
            branded("b-1", "IDR", 90_000_000, "nestle"),
            branded("b-2", "USD", 1_000, "wings"),
        ],
    )
    .await;
    push(
        &app,
        &kecil,
        vec![
            branded("k-1", "IDR", 100_000_000, "nestle"),
            sale("k-2", "IDR", 20_000_000),
        ],
    )
    .await;
    app.settle().await;

    // The window ends after every sale was received: kecil leads at the end.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let ends = now_secs();
    let mut event = saleboard_tests::data::event();
    event.time_zone = "Asia/Jakarta".into(); // local times in WIB from here on
    event.ends_at = Some(Timestamp {
        seconds: ends,
        nanos: 0,
    });
    event.closes_at = Some(Timestamp {
        seconds: ends + 3_600,
        nanos: 0,
    });
    app.admin()
        .await
        .set_event(event.clone())
        .await
        .expect("ends");
    // In settlement kecil refunds Rp 300.000 of k-1 and falls to second place.
    push(&app, &kecil, vec![refund("k-r1", "k-1", "IDR", 30_000_000)]).await;
    app.settle().await;

    // The figures equal the gRPC answers to the minor unit.
    let provisional = report(&app, event_id).await;
    assert_eq!(provisional.status, ReportStatus::Provisional as i32);
    assert!(provisional.as_of.is_some());
    let national = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest {
            event_id: event_id.into(),
            ..Default::default()
        })
        .await
        .expect("national")
        .into_inner();
    let head = provisional.headline.clone().expect("headline");
    assert_eq!(head.net_minor, national.net_reporting_minor.to_string());
    assert_eq!(head.net_minor, "195000000");
    assert_eq!(head.gross_minor, "225000000");
    assert_eq!(head.refunded_minor, "30000000");
    assert_eq!((head.sale_count, head.refund_count), (4, 1));
    assert_eq!((head.registered_sites, head.sending_sites), (2, 2));
    let board = app
        .leaderboard()
        .await
        .get_leaderboard(GetLeaderboardRequest {
            event_id: event_id.into(),
            ..Default::default()
        })
        .await
        .expect("board")
        .into_inner();
    let places: Vec<_> = provisional
        .sites
        .iter()
        .map(|s| {
            (
                s.site_id.as_str(),
                s.rank,
                s.rank_at_end,
                s.net_minor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        places,
        vec![("besar", 1, 2, "105000000"), ("kecil", 2, 1, "90000000")]
    );
    for (entry, site) in board.entries.iter().zip(&provisional.sites) {
        assert_eq!(
            (
                entry.site_id.as_str(),
                entry.rank,
                entry.net_reporting_minor.to_string()
            ),
            (site.site_id.as_str(), site.rank, site.net_minor.clone())
        );
    }
    let settlement = provisional.settlement.clone().expect("settlement");
    assert_eq!(
        (
            settlement.late_refunded_minor.as_str(),
            settlement.late_refund_count
        ),
        ("30000000", 1)
    );
    let verification = provisional.verification.clone().expect("verification");
    assert!(
        verification.totals_match_ledger
            && verification.hourly_match_ledger
            && verification.breakdowns_match_ledger,
        "{verification:?}"
    );
    assert!(verification.sites_add_up && verification.national_matches_ledger);
    assert!(verification.complete);
    assert_eq!(verification.rows, 5);
    assert_eq!(
        verification.last_position,
        app.store.ledger_head().await.expect("head")
    );
    assert_eq!(verification.audit_sha256.len(), 64);
    let peaks = provisional.peaks.clone().expect("peaks");
    assert!(peaks.peak_second_transactions >= 2, "{peaks:?}");
    assert!(!provisional.milestones.is_empty());
    let brands: Vec<_> = provisional
        .brands
        .iter()
        .map(|k| (k.key.as_str(), k.net_minor.as_str()))
        .collect();
    assert_eq!(
        brands,
        vec![
            ("nestle", "160000000"),
            ("", "20000000"),
            ("wings", "15000000")
        ]
    );

    // The files of a provisional report.
    let temp = tempfile::tempdir().expect("temp dir");
    let work = temp.path().to_path_buf();
    let dir = work.join("provisional");
    let said = run_ok(&report_cli(&app, event_id, &dir));
    assert!(
        said.contains("PROVISIONAL report of harbolnas-test: net Rp 1.950.000"),
        "{said}"
    );
    sha256sum_check(&dir);
    for file in [
        "sites.csv",
        "breakdown-brand.csv",
        "breakdown-category.csv",
        "breakdown-origin.csv",
        "hourly.csv",
    ] {
        let rows = csv_rows(&dir, file);
        assert_eq!(
            column_sum(&rows, "net_minor", |_| true),
            195_000_000,
            "{file}"
        );
    }
    let summary = saleboard_tests::report::summary(&dir);
    // (The integrity evaluation may have run in between: its undecided count can move.)
    let money = |r: &EventReport| {
        let h = r.headline.clone().expect("headline");
        (
            h.gross_minor,
            h.refunded_minor,
            h.net_minor,
            h.sale_count,
            h.refund_count,
        )
    };
    assert_eq!(money(&summary), money(&provisional));
    assert_eq!(summary.sites, provisional.sites);
    // (Its figures are the gRPC answer's above; the rest of what a reader checks, against the
    // report the files were made from.)
    check_files(
        &dir,
        &summary,
        195_000_000,
        pdf_tools,
        &format!("provisional-{backend:?}"),
    );

    // Closed: FINAL, and the same bytes on every run.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    event.closes_at = Some(Timestamp {
        seconds: now_secs(),
        nanos: 0,
    });
    let closed = app
        .admin()
        .await
        .set_event(event)
        .await
        .expect("close")
        .into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        report(&app, event_id).await.event.expect("event").state,
        EventState::Closed as i32
    );
    drop(closed);
    let (one, two) = (work.join("final-1"), work.join("final-2"));
    let said = run_ok(&report_cli(&app, event_id, &one));
    assert!(
        said.contains("FINAL report of harbolnas-test: net Rp 1.950.000"),
        "{said}"
    );
    // Whatever the organizers do after the close that does not touch the event (a new site,
    // audit entries) leaves the final report as it was, byte for byte.
    app.site_with_key("later").await;
    run_ok(&report_cli(&app, event_id, &two));
    assert_eq!(dir_hashes(&one), dir_hashes(&two), "FINAL runs differ");
    check_files(
        &one,
        &report(&app, event_id).await,
        195_000_000,
        pdf_tools,
        &format!("final-{backend:?}"),
    );

    // report check: the manifest and every figure against the database.
    let check = |dir: &Path| check_cli(dir, &app.db.url);
    let html = std::fs::read_to_string(one.join("report.html")).expect("report.html");
    assert!(html.contains(" WIB"), "local times in the event's zone");
    let said = run_ok(&check(&one));
    assert!(said.contains("every figure equals"), "{said}");
    let sites = one.join("sites.csv");
    let original = std::fs::read_to_string(&sites).expect("sites.csv");
    std::fs::write(&sites, original.replace(",105000000,", ",105000001,")).expect("tamper");
    let out = check(&one);
    let said = saleboard_tests::report::said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("DIFFERS: sites.csv: changed"), "{said}");
    assert!(said.contains("DIFFERS: sites.csv line 2"), "{said}");
    std::fs::write(&sites, original).expect("restore");
    run_ok(&check(&one));
    app.db
        .execute("UPDATE site_totals SET sale_count = sale_count + 1 WHERE site_id = 'kecil'")
        .await;
    let out = check(&one);
    let said = saleboard_tests::report::said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("stored totals differ from its ledger: site kecil IDR: stored 3 sales"),
        "{said}"
    );
    assert!(said.contains("DIFFERS: sites.csv line 3"), "{said}");

    // An unknown event is a clear error everywhere.
    let refused = app
        .admin()
        .await
        .get_event_report(GetEventReportRequest {
            event_id: "no-such-event".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown");
    assert_eq!(refused.code(), Code::NotFound);
    assert!(refused.message().contains("no-such-event"), "{refused:?}");
    let out = report_cli(&app, "no-such-event", &work.join("none"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("no-such-event"),
        "{said}"
    );
    assert!(!work.join("none").exists());

    // The page on the public port.
    let (status, content_type, body) =
        saleboard_tests::http::get(app.leaderboard_addr, "/report/harbolnas-test").await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with("text/html"));
    assert!(body.contains("FINAL") && body.contains("Net Rp 1.950.000"));
    let (status, _, body) =
        saleboard_tests::http::get(app.leaderboard_addr, "/report/no-such-event").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no-such-event"));
    app.stop().await;
}

/// A sale at `occurred` (Unix seconds).
fn sale_at(id: &str, currency: &str, amount: i64, occurred: i64) -> Transaction {
    Transaction {
        occurred_at: Some(Timestamp {
            seconds: occurred,
            nanos: 0,
        }),
        ..sale(id, currency, amount)
    }
}

/// The report against a baseline event, with a site held and one disabled by the organizers,
/// a sale voided by an adjustment and a currency without a rate: each is stated, and the
/// figures still equal the gRPC answers and the ledger.
#[allow(clippy::too_many_lines)]
async fn a_report_states_the_baseline_holds_voids_and_what_it_leaves_out(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = now_secs();
    let day = 86_400;
    let ts = |seconds| Some(Timestamp { seconds, nanos: 0 });
    // Last year's (a day, long ended, still settling) and this one's, compared with it.
    let mut baseline = saleboard_tests::data::event();
    baseline.event_id = "harbolnas-prev".into();
    baseline.display_name = "Harbolnas last time".into();
    baseline.starts_at = ts(now - 10 * day);
    baseline.ends_at = ts(now - 9 * day);
    baseline.closes_at = ts(now + day);
    let mut admin = app.admin().await;
    admin.set_event(baseline).await.expect("baseline");
    let mut event = saleboard_tests::data::event();
    event.baseline_event_id = "harbolnas-prev".into();
    admin.set_event(event.clone()).await.expect("event");
    let mut keys = std::collections::BTreeMap::new();
    for site in ["alpha", "beta", "gamma", "delta"] {
        keys.insert(site, app.site_with_key(site).await.1);
    }
    push(
        &app,
        &keys["alpha"],
        vec![sale_at("old-1", "IDR", 100_000_000, now - 9 * day - 3_600)],
    )
    .await;
    push(&app, &keys["alpha"], vec![sale("a-1", "IDR", 150_000_000)]).await;
    push(&app, &keys["beta"], vec![sale("b-1", "IDR", 50_000_000)]).await;
    push(
        &app,
        &keys["gamma"],
        vec![
            sale("g-1", "IDR", 30_000_000),
            sale("g-2", "IDR", 10_000_000),
            sale("g-3", "EUR", 1_000),
        ],
    )
    .await;
    push(&app, &keys["delta"], vec![sale("d-1", "IDR", 20_000_000)]).await;
    app.settle().await;

    // Two organizers hold beta and void gamma's g-1; delta is disabled.
    let ana = app.create_organizer("ana").await;
    let budi = app.create_organizer("budi").await;
    let mut ana = saleboard_tests::app::admin_client(app.admin_addr, Some(&ana)).await;
    let mut budi = saleboard_tests::app::admin_client(app.admin_addr, Some(&budi)).await;
    let held = ana
        .set_site_hold(SetSiteHoldRequest {
            event_id: String::new(),
            site_id: "beta".into(),
            held: true,
            reason: "figures under review".into(),
        })
        .await
        .expect("hold")
        .into_inner();
    let voided = ana
        .adjust_transactions(AdjustTransactionsRequest {
            event_id: String::new(),
            site_id: "gamma".into(),
            transaction_ids: vec!["g-1".into()],
            reason: "a test order".into(),
            flag_id: String::new(),
        })
        .await
        .expect("adjust")
        .into_inner();
    for action in [held.action_id, voided.action_id] {
        budi.approve_action(ApproveActionRequest { action_id: action })
            .await
            .expect("approve");
    }
    admin
        .set_site_enabled(SetSiteEnabledRequest {
            site_id: "delta".into(),
            enabled: false,
        })
        .await
        .expect("disable");
    app.settle().await;

    let report = report(&app, "harbolnas-test").await;
    let national = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest {
            event_id: "harbolnas-test".into(),
            ..Default::default()
        })
        .await
        .expect("national")
        .into_inner();
    let head = report.headline.clone().expect("headline");
    // alpha 150,000,000 + beta (held: in the national figure) 50,000,000 + gamma 10,000,000;
    // delta (disabled) and the EUR sale (no rate) left out.
    assert_eq!(head.net_minor, "210000000");
    assert_eq!(head.net_minor, national.net_reporting_minor.to_string());
    assert_eq!(
        (
            head.registered_sites,
            head.sending_sites,
            head.held_sites,
            head.disabled_sites
        ),
        (4, 3, 1, 1)
    );
    assert_eq!(report.unconverted_currencies, vec!["EUR".to_owned()]);
    let places: Vec<_> = report
        .sites
        .iter()
        .map(|s| (s.site_id.as_str(), s.rank, s.held, s.rank_at_end))
        .collect();
    assert_eq!(
        places,
        vec![
            ("alpha", 1, false, 1),
            ("gamma", 2, false, 2),
            ("beta", 0, true, 0)
        ]
    );
    let gamma = &report.sites[1];
    assert_eq!(gamma.unconverted_currencies, vec!["EUR".to_owned()]);
    let integrity = report.integrity.clone().expect("integrity");
    assert_eq!(integrity.held_sites, vec!["beta".to_owned()]);
    assert_eq!(
        (
            integrity.adjustments,
            integrity.voided_rows,
            integrity.voided_net_minor.as_str()
        ),
        (1, 1, "30000000")
    );
    // The baseline's whole day (this event is past its first day): 100,000,000; growth 110%.
    let comparison = report.comparison.clone().expect("comparison");
    assert_eq!(comparison.baseline_event_id, "harbolnas-prev");
    assert_eq!(comparison.baseline_net_minor, "100000000");
    assert_eq!(comparison.growth_percent, "110.00");
    assert!(
        comparison
            .windows
            .contains("lasts 96 hours, the baseline's 24 hours"),
        "{}",
        comparison.windows
    );
    let v = report.verification.clone().expect("verification");
    assert!(
        v.totals_match_ledger
            && v.hourly_match_ledger
            && v.breakdowns_match_ledger
            && v.national_matches_ledger
            && v.sites_add_up,
        "{v:?}"
    );
    // Every row of the event, the void included (delta's too: checked, not counted).
    assert_eq!(v.rows, 7);

    // The same in the files a reader gets.
    if tool("pdftotext") {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("r");
        run_ok(&report_cli(&app, "harbolnas-test", &dir));
        let text = pdf_text(&dir);
        for wanted in [
            "Growth: 110,00%",
            "Harbolnas last time",
            "Sites held: beta",
            "Adjustments approved: 1 (1 ledger rows voided, Rp 300.000 taken off the net)",
            "(no exchange rate): EUR",
        ] {
            assert!(
                text.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .contains(wanted),
                "{wanted:?} not in the PDF:\n{text}"
            );
        }
    }
    app.stop().await;
}

/// `saleboard dev`'s closed demo event, reported as an organizer trying the product would: the
/// report is FINAL at once, its figures are the leaderboard's, two runs give the same bytes,
/// the files and the PDF say what a reader checks, and `report check` passes, then names a
/// changed breakdown file and a changed total in the database.
async fn the_report_of_devs_closed_demo_event_is_final_and_checks(backend: Backend) {
    let Some(db) = saleboard_tests::TestDb::create(backend).await else {
        return;
    };
    let pdf = pdf_tools();
    let temp = tempfile::tempdir().expect("temp dir");
    let dev = start_dev(&db.url, temp.path(), "dev.out").await;
    let token = dev.organizer_token();
    let event = "harbolnas-demo-last-year";
    let mut admin = saleboard_tests::app::admin_client(dev.admin, Some(&token)).await;
    // dev folds its demo history as it starts: the report is FINAL once every row is in.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let report = loop {
        let report = admin
            .get_event_report(GetEventReportRequest {
                event_id: event.into(),
                ..Default::default()
            })
            .await;
        let last = match report {
            Ok(r) if r.get_ref().status == ReportStatus::Final as i32 => break r.into_inner(),
            Ok(r) => format!(
                "{:?} {:?} watermark {} breakdowns {}",
                r.get_ref().event,
                r.get_ref().verification,
                r.get_ref().watermark,
                r.get_ref().breakdown_watermark
            ),
            Err(e) if e.code() == Code::Unavailable => e.to_string(), // being made
            Err(e) => panic!("GetEventReport: {e:?}"),
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo event's report is not FINAL within 30 s; the last answer: {last}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let mut board = saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient::new(
        saleboard_tests::app::channel(dev.leaderboard).await,
    );
    let national = board
        .get_national_totals(GetNationalTotalsRequest {
            event_id: event.into(),
            ..Default::default()
        })
        .await
        .expect("national")
        .into_inner();
    let ranked = board
        .get_leaderboard(GetLeaderboardRequest {
            event_id: event.into(),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("board")
        .into_inner()
        .entries;
    // Three demo sites, 4, 3 and 2 sales an hour over two days.
    let head = report.headline.clone().expect("headline");
    assert_eq!((head.sale_count, head.sending_sites), (432, 3), "{head:?}");
    assert_eq!(report.verification.clone().expect("verification").rows, 432);
    let places: Vec<_> = report
        .sites
        .iter()
        .map(|s| (s.site_id.clone(), s.rank, s.net_minor.clone()))
        .collect();
    let on_board: Vec<_> = ranked
        .iter()
        .map(|e| (e.site_id.clone(), e.rank, e.net_reporting_minor.to_string()))
        .collect();
    assert_eq!(places, on_board);
    assert_eq!(places[0].0, "toko-satu");

    let (one, two) = (temp.path().join("one"), temp.path().join("two"));
    let text = run_ok(&saleboard_tests::report::report_cli(
        dev.admin, &token, event, &one,
    ));
    assert!(
        text.contains("FINAL report of harbolnas-demo-last-year"),
        "{text}"
    );
    run_ok(&saleboard_tests::report::report_cli(
        dev.admin, &token, event, &two,
    ));
    assert_eq!(dir_hashes(&one), dir_hashes(&two), "FINAL runs differ");
    check_files(
        &one,
        &report,
        i128::from(national.net_reporting_minor),
        pdf,
        &format!("dev-demo-{backend:?}"),
    );
    saleboard_tests::report::check_catches_tampering(
        &one,
        &db,
        "breakdown-brand.csv",
        event,
        "toko-dua",
    )
    .await;
}
