//! What a newcomer tripped on (issue 25), through the `saleboard` binary as a person runs it:
//! an event edit keeps what it does not name; loadgen says which event it ran in and where to
//! see it, and when a just-started event can take its load; its event's figures leave its sites
//! once they are disabled; the public port answers 404 to a browser for an unknown path; `dev`
//! says where its binary is and what today's event already holds; its credentials file is
//! ignored by git.

use std::process::{Command, Output};

use saleboard_proto::v1::SubmitTransactionsRequest;
use saleboard_tests::data::sale;
use saleboard_tests::http::get;
use saleboard_tests::proc::{saleboard, start_dev};
use saleboard_tests::{Backend, TestApp};
use serde_json::Value;

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The organizer token and every endpoint of `app`, as the command line reads them.
fn organizer_env(app: &TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("SALEBOARD_ORGANIZER_TOKEN", app.token.clone()),
        (
            "SALEBOARD_ENDPOINT",
            format!("http://{}", app.leaderboard_addr),
        ),
        (
            "SALEBOARD_ADMIN_ENDPOINT",
            format!("http://{}", app.admin_addr),
        ),
        (
            "SALEBOARD_INGEST_ENDPOINT",
            format!("http://{}", app.ingest_addr),
        ),
    ]
}

fn as_pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Creates the closed event "last-year", a year and a month ago.
fn last_year(env: &[(&str, &str)]) {
    ok(&saleboard(
        &[
            "admin",
            "event",
            "set",
            "--id",
            "last-year",
            "--starts",
            "now-400d",
            "--ends",
            "now-397d",
        ],
        env,
    ));
}

async fn app() -> TestApp {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.site_rate_limit = 0)
        .await
        .expect("sqlite always runs");
    app.set_event().await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_edit_keeps_what_it_does_not_name() {
    let app = app().await;
    let organizer = format!("http://{}", app.admin_addr);
    let env = [
        ("SALEBOARD_ORGANIZER_TOKEN", app.token.as_str()),
        ("SALEBOARD_ADMIN_ENDPOINT", organizer.as_str()),
    ];
    // Arrange: last year's event, and this year's with a name, a baseline and a time zone.
    last_year(&env);
    ok(&saleboard(
        &[
            "admin",
            "event",
            "set",
            "--id",
            "harbolnas-test",
            "--name",
            "Harbolnas 12.12",
            "--baseline",
            "last-year",
            "--time-zone",
            "Asia/Jakarta",
        ],
        &env,
    ));

    // Act: end it now, naming nothing else.
    let text = ok(&saleboard(
        &[
            "admin",
            "event",
            "set",
            "--id",
            "harbolnas-test",
            "--ends",
            "now",
            "--output",
            "json",
        ],
        &env,
    ));

    // Assert: only the end (and with it the state) changed, and the command said so.
    let e = json(&text);
    assert_eq!(e["display_name"], "Harbolnas 12.12");
    assert_eq!(e["baseline_event_id"], "last-year");
    assert_eq!(e["time_zone"], "Asia/Jakarta");
    let changed: Vec<&str> = e["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert_eq!(changed, ["ends_at", "state"], "{e}");
    let table = ok(&saleboard(
        &[
            "admin",
            "event",
            "set",
            "--id",
            "harbolnas-test",
            "--name",
            "Harbolnas 12.12 (final)",
        ],
        &env,
    ));
    assert!(
        table.contains("display_name: \"Harbolnas 12.12\" -> \"Harbolnas 12.12 (final)\""),
        "{table}"
    );
    // A new event needs its window.
    let out = saleboard(
        &[
            "admin", "event", "set", "--id", "new-one", "--ends", "now+1d",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a new event needs --starts and --ends"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loadgen_says_where_it_ran_and_its_sites_leave_the_board() {
    let app = app().await;
    let board = format!("http://{}", app.leaderboard_addr);
    let env = organizer_env(&app);
    let env = as_pairs(&env);
    // Act: a short run in its own event; it disables its sites at the end.
    let report = json(&ok(&saleboard(
        &[
            "loadgen", "--count", "600", "--sites", "4", "--batch", "50", "--output", "json",
        ],
        &env,
    )));
    let event = report["event_id"]
        .as_str()
        .expect("the run names its event");
    assert!(!event.is_empty());
    assert_eq!(report["page"], format!("{board}/?event={event}"));
    // Assert: its event's figures no longer count its disabled sites.
    let national = json(&ok(&saleboard(
        &["national", "--event", event, "--output", "json"],
        &env,
    )));
    assert_eq!(national["site_count"], 0, "{national}");
    let ranking = json(&ok(&saleboard(
        &["leaderboard", "--event", event, "--output", "json"],
        &env,
    )));
    assert_eq!(ranking["entries"], serde_json::json!([]), "{ranking}");

    // An event that started seconds ago (the test's own event ended first: windows never
    // overlap): when it can take loadgen's load.
    for args in [
        ["--id", "harbolnas-test", "--ends", "now-1h"],
        ["--id", "just-now", "--starts", "now-10s"],
    ] {
        let mut all = vec!["admin", "event", "set"];
        all.extend(args);
        if args[1] == "just-now" {
            all.extend(["--ends", "now+1d"]);
        }
        ok(&saleboard(&all, &env));
    }
    let out = saleboard(&["loadgen", "--event", "just-now", "--count", "10"], &env);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("started") && err.contains("retry in"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_path_is_a_404_for_a_browser() {
    let app = app().await;
    let (status, kind, body) = get(app.leaderboard_addr, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert!(
        body.contains("not found: /no/such/page") && body.contains("/events/leaderboard"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_says_where_it_is_and_what_today_holds() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("saleboard.db").display());
    let dev = start_dev(&db, dir.path(), "first.out").await;
    assert!(
        dev.banner.contains("No transactions yet in today's"),
        "{}",
        dev.banner
    );
    let binary = dev
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("this command:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("dev prints its binary: {}", dev.banner));
    assert!(std::path::Path::new(binary).exists(), "{binary}");
    let key = dev
        .banner
        .lines()
        .find_map(|l| l.split("API key of toko-satu: ").nth(1))
        .expect("a key")
        .trim()
        .to_owned();
    let pushed = saleboard_tests::app::ingest_client(dev.ingest, Some(&key))
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![sale("D1", "IDR", 1_000), sale("D2", "IDR", 2_000)],
        })
        .await
        .expect("push")
        .into_inner();
    assert_eq!(pushed.results.len(), 2);
    // The totals hold them before dev stops (what a restart reports).
    let mut board = saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient::new(
        saleboard_tests::app::channel(dev.leaderboard).await,
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let national = board
            .get_national_totals(saleboard_proto::v1::GetNationalTotalsRequest::default())
            .await
            .expect("national")
            .into_inner();
        if national.totals.iter().map(|t| t.sale_count).sum::<u64>() == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{national:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(dev);

    // Restarted on the same database: it says what is there.
    let dev = start_dev(&db, dir.path(), "second.out").await;
    assert!(
        dev.banner.contains("Today's holds 2 transactions so far"),
        "{}",
        dev.banner
    );
    drop(dev);
    // Its secrets beside the database are never committed by `git add .` in a checkout.
    let ignored = Command::new("git")
        .args([
            "check-ignore",
            "--no-index",
            "-q",
            "saleboard.db-dev-credentials.json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("git runs");
    assert!(ignored.success(), "the credentials file is not ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_names_every_problem_and_reads_a_shops_numbers() {
    let app = app().await;
    let (_, key) = app.site_with_key("toko-rp").await;
    let ingest = format!("http://{}", app.ingest_addr);
    let env = [
        ("SALEBOARD_API_KEY", key.as_str()),
        ("SALEBOARD_INGEST_ENDPOINT", ingest.as_str()),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let at = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    // As a shop's export writes rupiah: thousands separators, "Rp", a date without a zone.
    let file = dir.path().join("orders.csv");
    std::fs::write(
        &file,
        format!(
            "transaction_id,kind,currency,amount,occurred_at\n\
             A1,SALE,Rp,150.000,{at}\n\
             A2,SALE,IDR,1.250.000,2026-12-12T10:00:00\n"
        ),
    )
    .expect("write");
    let file_arg = file.to_str().expect("utf-8");

    // Act: pushed as is, every problem of a row is named, with what to do.
    let out = saleboard(&["push", file_arg], &env);
    assert_eq!(out.status.code(), Some(1), "rows were rejected");
    let rejects =
        std::fs::read_to_string(dir.path().join("orders.csv.rejects.csv")).expect("a rejects file");
    assert!(
        rejects.contains(
            "looks like thousands separators: write 150000, or push with --number-format id"
        ),
        "{rejects}"
    );
    let second = rejects
        .lines()
        .find(|l| l.contains(",A2,"))
        .unwrap_or_else(|| panic!("A2 rejected: {rejects}"));
    assert!(
        second.contains("amount \"\"1.250.000\"\"") && second.contains("has no time zone"),
        "both of A2's problems: {second}"
    );

    // Fixed (the zone added) and pushed with the shop's number format: accepted, and the old
    // rejects file is said to be gone.
    std::fs::write(
        &file,
        format!(
            "transaction_id,kind,currency,amount,occurred_at\n\
             A1,SALE,Rp,150.000,{at}\n\
             A2,SALE,IDR,\"1.250.000,50\",{at}\n"
        ),
    )
    .expect("write");
    let out = saleboard(
        &[
            "push",
            file_arg,
            "--number-format",
            "id",
            "--output",
            "json",
        ],
        &env,
    );
    let report = json(&ok(&out));
    assert_eq!(report[0]["accepted"], 2, "{report}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("removed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("orders.csv.rejects.csv").exists());
    app.settle().await;
    let totals = json(&ok(&saleboard(
        &[
            "totals",
            "toko-rp",
            "--endpoint",
            &format!("http://{}", app.leaderboard_addr),
            "--output",
            "json",
        ],
        &[],
    )));
    assert_eq!(
        totals["totals"][0]["gross_minor"],
        (15_000_000 + 125_000_050).to_string(),
        "Rp 150.000 and Rp 1.250.000,50 exactly: {totals}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_query_follows_one_convention() {
    let app = app().await;
    let (_, key) = app.site_with_key("toko-q").await;
    app.ingest(&key)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![sale("Q1", "IDR", 5_000)],
        })
        .await
        .expect("push");
    app.settle().await;
    let env = organizer_env(&app);
    let env = as_pairs(&env);
    // totals: the key says whose.
    let mine = json(&ok(&saleboard(
        &["totals", "--key", &key, "--output", "json"],
        &env,
    )));
    assert_eq!(mine["site_id"], "toko-q", "{mine}");
    // compare takes --event and --baseline like every query.
    last_year(&env);
    let compared = json(&ok(&saleboard(
        &[
            "compare",
            "--event",
            "harbolnas-test",
            "--baseline",
            "last-year",
            "--output",
            "json",
        ],
        &env,
    )));
    assert_eq!(compared["baseline_event_id"], "last-year", "{compared}");
    // A flag that would do nothing is refused.
    let out = saleboard(&["breakdown", "category", "--baseline", "last-year"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("breakdown has no comparison"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // keys list SITE, as people type it.
    let keys = json(&ok(&saleboard(
        &["admin", "keys", "list", "toko-q", "--output", "json"],
        &env,
    )));
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1), "{keys}");
    // rates set says which event it changes; event list shows each event's time zone.
    let rates = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(rates.path(), "currency,rate\nUSD,15850\n").expect("write");
    let out = saleboard(
        &[
            "admin",
            "rates",
            "set",
            rates.path().to_str().expect("utf-8"),
        ],
        &env,
    );
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("setting the exchange rates of event harbolnas-test (live)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = ok(&saleboard(&["admin", "event", "list"], &env));
    assert!(
        events
            .lines()
            .any(|l| l.starts_with("harbolnas-test") && l.ends_with("shown in UTC")),
        "{events}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_generators_sites_and_keys_are_summed_in_the_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("saleboard.db").display());
    let dev = start_dev(&db, dir.path(), "dev.out").await;
    let token = dev.organizer_token();
    let (board, organizer, ingest) = (
        format!("http://{}", dev.leaderboard),
        format!("http://{}", dev.admin),
        format!("http://{}", dev.ingest),
    );
    // Act: twelve sites registered, keyed, revoked and disabled.
    ok(&saleboard(
        &[
            "loadgen", "--count", "300", "--sites", "12", "--output", "json",
        ],
        &[
            ("SALEBOARD_ORGANIZER_TOKEN", token.as_str()),
            ("SALEBOARD_ENDPOINT", board.as_str()),
            ("SALEBOARD_ADMIN_ENDPOINT", organizer.as_str()),
            ("SALEBOARD_INGEST_ENDPOINT", ingest.as_str()),
        ],
    ));
    // Assert: each kind is one line and one summary, once the burst has been quiet.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let log = std::fs::read_to_string(dir.path().join("dev.out.err")).expect("dev's log");
    for kind in [
        "site created",
        "site disabled",
        "API key created",
        "API key revoked",
    ] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(kind)).collect();
        // One line and one summary; a loaded machine may split a burst in two, never in twelve.
        assert!((2..=4).contains(&lines.len()), "{kind}: {lines:#?}");
        let summed: u64 = lines
            .iter()
            .filter_map(|l| {
                l.split("and ")
                    .nth(1)?
                    .split(" more")
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        let single = lines
            .iter()
            .filter(|l| !l.contains(" more within "))
            .count();
        assert_eq!(
            summed + u64::try_from(single).expect("small"),
            12,
            "every change counted once: {lines:#?}"
        );
    }
    drop(dev);
}
