//! The load generator: a short run against the in-process suite reconciles to the minor unit.
//! (That its reconciliation can fail is unit-tested beside `loadgen::reconcile`.)

use saleboard::client::Output;
use saleboard::loadgen::{LoadgenArgs, run};
use saleboard_proto::v1::GetLeaderboardRequest;
use saleboard_tests::{Backend, TestApp, backend_tests};

async fn a_short_run_reconciles(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.site_rate_limit = 0).await else {
        return;
    };
    let args = LoadgenArgs {
        sites: 12,
        count: 6_000,
        batch: 200,
        output: Output::Json,
        ..app.loadgen_args()
    };
    let report = run(&args).await.expect("the run completes");
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(report.sent, 6_000);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(
        report.duplicate > 0 && report.duplicate < 400,
        "about 2% resubmitted: {}",
        report.duplicate
    );
    assert_eq!(report.accepted + report.duplicate, 6_000);
    assert!(!report.fresh_us.is_empty() && !report.ack_us.is_empty());
    let rows = app.store.read_ledger(0, u32::MAX).await.expect("ledger");
    // Sales carry realistic segments (the breakdowns reconciled above): a Zipf over brands,
    // about a fifth cross-border; refunds carry their sale's.
    let brand = |b: &str| {
        rows.iter()
            .filter(|r| r.tx.segments.key(saleboard_domain::Dimension::Brand) == b)
            .count()
    };
    assert!(
        brand("brand-1") > 5 * brand("brand-50").max(1),
        "Zipf brands: {} vs {}",
        brand("brand-1"),
        brand("brand-50")
    );
    let cross = rows
        .iter()
        .filter(|r| r.tx.segments.origin == saleboard_domain::Origin::CrossBorder)
        .count();
    assert!(
        (rows.len() / 10..rows.len() * 3 / 10).contains(&cross),
        "about 20% cross-border: {cross} of {}",
        rows.len()
    );
    for refund in rows.iter().filter(|r| r.tx.refund_of().is_some()) {
        let sale = rows
            .iter()
            .find(|s| s.site == refund.site && Some(&s.tx.id) == refund.tx.refund_of())
            .expect("its sale");
        assert_eq!(
            refund.tx.segments, sale.tx.segments,
            "a refund takes its sale's"
        );
    }
    // The biggest site got the biggest share.
    let count = |s: &str| rows.iter().filter(|r| r.site.as_str() == s).count();
    assert!(
        count("lg-001") > 3 * count("lg-012"),
        "Zipf volumes: {} vs {}",
        count("lg-001"),
        count("lg-012")
    );
    // It cleaned up after itself: its sites are off the board and its keys revoked.
    let board = || async {
        app.settle().await;
        app.leaderboard()
            .await
            .get_leaderboard(GetLeaderboardRequest {
                limit: 100,
                page_token: String::new(),
                event_id: String::new(),
                baseline_event_id: String::new(),
            })
            .await
            .expect("board")
            .into_inner()
            .entries
            .len()
    };
    assert_eq!(board().await, 0, "no load site stays on the leaderboard");
    assert!(
        app.store.active_keys().await.expect("keys").is_empty(),
        "no load key stays active"
    );
    // It ran in an event of its own, now closed: every row is there, none in a real event.
    let events = app
        .leaderboard()
        .await
        .list_events(saleboard_proto::v1::ListEventsRequest {})
        .await
        .expect("events")
        .into_inner()
        .events;
    assert_eq!(events.len(), 1, "{events:?}");
    let own = &events[0];
    assert!(own.event_id.starts_with("loadgen-"), "{}", own.event_id);
    assert_eq!(own.state(), saleboard_proto::v1::EventState::Closed);
    assert!(rows.iter().all(|r| r.event_id == own.event_id));
    // A second run, in a live event named with --event, on the same sites: it reconciles
    // against the new baseline; --keep-sites leaves them on the board.
    app.set_event().await;
    let again = run(&LoadgenArgs {
        count: 1_000,
        keep_sites: true,
        event: "harbolnas-test".into(),
        ..args
    })
    .await
    .expect("second run");
    assert!(again.mismatches.is_empty(), "{:?}", again.mismatches);
    assert_eq!(board().await, 12);
    assert_eq!(app.store.active_keys().await.expect("keys").len(), 12);

    // The official report of each (issue 29). The first event's: FINAL, every row covered and
    // agreeing with the stored totals, its twelve sites sending (the second run enabled them
    // again).
    let report = |event: String| async {
        app.admin()
            .await
            .get_event_report(saleboard_proto::v1::GetEventReportRequest {
                event_id: event,
                baseline_event_id: String::new(),
            })
            .await
            .expect("GetEventReport")
            .into_inner()
    };
    let first = report(own.event_id.clone()).await;
    assert_eq!(
        first.status,
        saleboard_proto::v1::ReportStatus::Final as i32
    );
    let check = first.verification.clone().expect("verification");
    assert!(
        check.totals_match_ledger && check.hourly_match_ledger && check.breakdowns_match_ledger,
        "{check:?}"
    );
    assert_eq!(check.rows, rows.len() as u64);
    let head = first.headline.clone().expect("headline");
    assert_eq!((head.disabled_sites, head.sending_sites), (0, 12));
    assert!(
        first
            .verification
            .clone()
            .expect("verification")
            .sites_add_up
    );
    // Its files, as a reader checks them, and `report check` catching a change.
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("report");
    saleboard_tests::report::run_ok(&saleboard_tests::report::report_cli(
        app.admin_addr,
        &app.token,
        &own.event_id,
        &dir,
    ));
    let again = temp.path().join("again");
    saleboard_tests::report::run_ok(&saleboard_tests::report::report_cli(
        app.admin_addr,
        &app.token,
        &own.event_id,
        &again,
    ));
    assert_eq!(
        saleboard_tests::report::dir_hashes(&dir),
        saleboard_tests::report::dir_hashes(&again),
        "FINAL runs differ"
    );
    let national = app
        .leaderboard()
        .await
        .get_national_totals(saleboard_proto::v1::GetNationalTotalsRequest {
            event_id: own.event_id.clone(),
            ..Default::default()
        })
        .await
        .expect("national")
        .into_inner();
    saleboard_tests::report::check_files(
        &dir,
        &first,
        i128::from(national.net_reporting_minor),
        saleboard_tests::report::pdf_tools(),
        &format!("loadgen-{backend:?}"),
    );
    saleboard_tests::report::check_catches_tampering(
        &dir,
        &app.db,
        "breakdown-category.csv",
        &own.event_id,
        "lg-001",
    )
    .await;
    // The live one's: PROVISIONAL, its national net GetNationalTotals', every site listed.
    let live = report("harbolnas-test".into()).await;
    assert_eq!(
        live.status,
        saleboard_proto::v1::ReportStatus::Provisional as i32
    );
    let national = app
        .leaderboard()
        .await
        .get_national_totals(saleboard_proto::v1::GetNationalTotalsRequest {
            event_id: "harbolnas-test".into(),
            ..Default::default()
        })
        .await
        .expect("national")
        .into_inner();
    let head = live.headline.clone().expect("headline");
    assert_eq!(head.net_minor, national.net_reporting_minor.to_string());
    // (How many of the twelve sites have figures in this second, short run varies from run to
    // run: 3 in one, none in another; the report must agree with the board either way.)
    let ranked = live.sites.iter().filter(|s| s.rank > 0).count();
    let on_board = app
        .leaderboard()
        .await
        .get_leaderboard(GetLeaderboardRequest {
            limit: 100,
            page_token: String::new(),
            event_id: "harbolnas-test".into(),
            baseline_event_id: String::new(),
        })
        .await
        .expect("board")
        .into_inner()
        .entries;
    assert_eq!(ranked, on_board.iter().filter(|e| e.rank > 0).count());
    assert_eq!(head.sending_sites as usize, ranked, "{:#?}", live.sites);
    assert_eq!(live.sites.len(), 12, "every registered site is listed");
    let check = live.verification.clone().expect("verification");
    assert!(
        check.totals_match_ledger
            && check.hourly_match_ledger
            && check.breakdowns_match_ledger
            && check.sites_add_up,
        "{check:?}"
    );
    assert_eq!(head.sale_count + head.refund_count, check.rows);
}

backend_tests!(a_short_run_reconciles);

/// `saleboard bench-transport`, the floor `bench/run` sets beside ingest's cost per message:
/// the do-nothing ingest answers every batch with one ACCEPTED result per transaction, and the
/// client sends exactly the transactions asked for, in batches of the size asked for (the last
/// one what is left), flat out and paced.
#[test]
fn the_transport_floor_answers_every_batch() {
    let addr = saleboard_tests::proc::free_addr();
    let mut server = std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
        .args(["bench-transport", "--serve", &addr.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the floor starts");
    let port = {
        use std::io::BufRead as _;
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the floor prints its port");
        line.trim().to_owned()
    };
    assert_eq!(port, addr.port().to_string());
    let endpoint = format!("http://{addr}");
    for rate in ["0", "400"] {
        let out = saleboard_tests::proc::saleboard(
            &[
                "bench-transport",
                "--endpoint",
                &endpoint,
                "--streams",
                "3",
                "--batch",
                "4",
                "--count",
                "50",
                "--rate",
                rate,
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert_eq!(report["rows"], 50, "{report}");
        assert_eq!(
            report["messages"], 13,
            "12 batches of 4 and one of 2: {report}"
        );
        assert_eq!(report["streams"], 3);
    }
    server.kill().expect("stop the floor");
    drop(server.wait());
}
