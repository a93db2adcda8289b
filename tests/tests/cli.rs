//! The `saleboard` command line against a running suite: push of CSV and JSON Lines files with
//! good and bad rows (outcomes, the rejects file, exit codes), a second push giving duplicates,
//! malformed lines reported by number, `--output json` parsed back, admin commands.

use std::path::Path;
use std::process::{Command, Output};

use saleboard_tests::proc::{bin_dir, free_addr, saleboard, start_dev};
use saleboard_tests::{Backend, TestApp};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rfc3339(seconds_ago: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(seconds_ago);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

async fn app() -> (TestApp, String) {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    app.set_event().await;
    let (_, key) = app.site_with_key("alpha").await;
    (app, key)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write input");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_csv_with_good_and_bad_rows() {
    let (app, key) = app().await;
    let dir = tempfile::tempdir().expect("tmp");
    let t = rfc3339(60);
    let csv = write(
        dir.path(),
        "orders.csv",
        &format!(
            "transaction_id,store_id,kind,currency,amount_minor,occurred_at,refund_of\n\
             S1,jkt,SALE,IDR,150000,{t},\n\
             S2,jkt,SALE,USD,1250,{t},\n\
             R1,jkt,REFUND,IDR,50000,{t},S1\n\
             BAD1,jkt,SALE,XXX,10,{t},\n\
             BAD2,jkt,SALE,IDR,twelve,{t},\n\
             R2,jkt,REFUND,IDR,999999,{t},S1\n"
        ),
    );
    let endpoint = format!("http://{}", app.ingest_addr);
    let out = saleboard(
        &[
            "push",
            csv.to_str().expect("utf-8"),
            "--endpoint",
            &endpoint,
        ],
        &[("SALEBOARD_API_KEY", &key)],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "rejected rows make the exit code 1: {}",
        stdout(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("6 rows: 3 accepted, 0 duplicate, 2 rejected, 1 malformed"),
        "{text}"
    );
    assert!(
        !text.contains("Jaeger"),
        "no trace to look up without an OTLP endpoint: {text}"
    );
    assert!(
        text.contains("rejected INVALID_CURRENCY: 1")
            && text.contains("rejected REFUND_EXCEEDS_SALE: 1"),
        "{text}"
    );
    assert!(
        text.contains("line 6: amount_minor \"twelve\""),
        "malformed line named by number: {text}"
    );

    let rejects =
        std::fs::read_to_string(dir.path().join("orders.csv.rejects.csv")).expect("rejects file");
    let lines: Vec<_> = rejects.lines().collect();
    assert_eq!(
        lines[0],
        "line,reason,message,transaction_id,store_id,kind,currency,amount_minor,occurred_at,refund_of",
        "the reasons, then every original column"
    );
    assert_eq!(lines.len(), 4, "{rejects}");
    let has = |start: &str, end: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(start) && l.ends_with(end))
    };
    assert!(
        has(
            "5,INVALID_CURRENCY,",
            &format!(",BAD1,jkt,SALE,XXX,10,{t},")
        ),
        "{rejects}"
    );
    assert!(
        has("6,MALFORMED,", &format!(",BAD2,jkt,SALE,IDR,twelve,{t},")),
        "a malformed row keeps its transaction id and every value: {rejects}"
    );
    assert!(
        has(
            "7,REFUND_EXCEEDS_SALE,",
            &format!(",R2,jkt,REFUND,IDR,999999,{t},S1")
        ),
        "{rejects}"
    );

    // Again: what was accepted comes back as duplicates, and is counted once.
    let again = saleboard(
        &[
            "push",
            csv.to_str().expect("utf-8"),
            "--endpoint",
            &endpoint,
            "--key",
            &key,
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(again.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON summary");
    assert_eq!(report[0]["accepted"], 0);
    assert_eq!(report[0]["duplicate"], 3);
    assert_eq!(report[0]["rejected"]["INVALID_CURRENCY"], 1);
    assert_eq!(report[0]["malformed"][0]["line"], 6);
    assert_eq!(app.store.ledger_head().await.expect("head"), 3);

    // The retailer fixes the rejects file in place and pushes it as it is.
    let fixed = rejects
        .replace(",XXX,", ",USD,")
        .replace(",twelve,", ",12,")
        .replace(",999999,", ",100,");
    let fixed_path = write(dir.path(), "fixed.csv", &fixed);
    let out = saleboard(
        &[
            "push",
            fixed_path.to_str().expect("utf-8"),
            "--endpoint",
            &endpoint,
            "--key",
            &key,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("3 rows: 3 accepted, 0 duplicate, 0 rejected, 0 malformed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(app.store.ledger_head().await.expect("head"), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn amounts_as_the_shop_shows_them() {
    let (app, key) = app().await;
    let dir = tempfile::tempdir().expect("tmp");
    let t = rfc3339(60);
    let endpoint = format!("http://{}", app.ingest_addr);
    let push = |path: &Path| {
        saleboard(
            &[
                "push",
                path.to_str().expect("utf-8"),
                "--endpoint",
                &endpoint,
                "--key",
                &key,
            ],
            &[],
        )
    };
    let csv = write(
        dir.path(),
        "export.csv",
        &format!(
            "transaction_id,kind,currency,amount,occurred_at\n\
             A1,SALE,IDR,656015900,{t}\n\
             A2,SALE,USD,15.99,{t}\n\
             A3,SALE,USD,\"15,99\",{t}\n\
             A4,SALE,USD,15.999,{t}\n\
             A5,SALE,jpy,1500,{t}\n\
             A6,SALE,KWD,1.5,{t}\n"
        ),
    );
    let out = push(&csv);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("6 rows: 4 accepted, 0 duplicate, 0 rejected, 2 malformed"),
        "{text}"
    );
    assert!(
        text.contains("line 4: amount \"15,99\" has a comma"),
        "a decimal comma is refused with a hint: {text}"
    );
    assert!(
        text.contains("line 5: amount \"15.999\" has 3 decimals; USD has 2"),
        "more decimals than the currency has is a reject naming the row: {text}"
    );
    let rows = app.store.read_ledger(0, 100).await.expect("ledger");
    let amounts: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| (r.tx.id.as_str(), r.tx.currency.code(), r.tx.amount_minor))
        .collect();
    assert_eq!(
        amounts,
        [
            ("A1", "IDR", 65_601_590_000),
            ("A2", "USD", 1_599),
            ("A5", "JPY", 1_500),
            ("A6", "KWD", 1_500),
        ],
        "converted exactly by each currency's exponent"
    );

    // JSON numbers are read as written, never through a float.
    let jsonl = write(
        dir.path(),
        "export.jsonl",
        &format!(
            "{{\"transaction_id\":\"J1\",\"kind\":\"SALE\",\"currency\":\"IDR\",\"amount\":92233720368547758.07,\"occurred_at\":\"{t}\"}}\n\
             {{\"transaction_id\":\"J2\",\"kind\":\"SALE\",\"currency\":\"USD\",\"amount\":\"0.10\",\"occurred_at\":\"{t}\"}}\n\
             {{\"transaction_id\":\"J3\",\"kind\":\"SALE\",\"currency\":\"USD\",\"amount\":1,\"amount_minor\":100,\"occurred_at\":\"{t}\"}}\n"
        ),
    );
    let out = push(&jsonl);
    let text = stdout(&out);
    assert!(
        text.contains("3 rows: 1 accepted, 0 duplicate, 1 rejected, 1 malformed"),
        "{text}"
    );
    assert!(
        text.contains("line 3: both amount_minor and amount are given"),
        "{text}"
    );
    let rows = app.store.read_ledger(4, 100).await.expect("ledger");
    assert_eq!(
        rows.len(),
        1,
        "J2 only: J1 is valid but over the per-transaction maximum"
    );
    assert_eq!(
        (rows[0].tx.id.as_str(), rows[0].tx.amount_minor),
        ("J2", 10)
    );
    let rejects = std::fs::read_to_string(dir.path().join("export.jsonl.rejects.jsonl"))
        .expect("JSON Lines rejects beside a JSON Lines file");
    let rejected: Vec<serde_json::Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejects}");
    let j1 = rejected
        .iter()
        .find(|r| r["transaction_id"] == "J1")
        .expect("J1 kept with its members");
    assert_eq!(j1["line"], 1);
    assert!(
        rejects.contains("\"amount\":92233720368547758.07"),
        "numbers are given back exactly as written: {rejects}"
    );
    assert!(j1["reason"].as_str().is_some_and(|r| !r.is_empty()), "{j1}");
    let j3 = rejected
        .iter()
        .find(|r| r["transaction_id"] == "J3")
        .expect("J3 kept with its members");
    assert_eq!(
        (j3["line"].as_u64(), j3["reason"].as_str()),
        (Some(3), Some("MALFORMED"))
    );

    // A file with both columns is refused as a whole.
    let both = write(
        dir.path(),
        "both.csv",
        &format!(
            "transaction_id,kind,currency,amount_minor,amount,occurred_at\nB1,SALE,USD,100,1,{t}\n"
        ),
    );
    let out = push(&both);
    assert_ne!(out.status.code(), Some(0));
    let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("both amount_minor and amount"), "{said}");
    assert_eq!(app.store.ledger_head().await.expect("head"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_jsonl_then_query_as_json() {
    let (app, key) = app().await;
    let dir = tempfile::tempdir().expect("tmp");
    let t = rfc3339(30);
    let jsonl = write(
        dir.path(),
        "orders.jsonl",
        &format!(
            "{{\"transaction_id\":\"J1\",\"kind\":\"SALE\",\"currency\":\"IDR\",\"amount_minor\":1000,\"occurred_at\":\"{t}\"}}\n\
             \n\
             {{\"transaction_id\":\"J2\",\"kind\":\"SALE\",\"currency\":\"JPY\",\"amount_minor\":\"500\",\"occurred_at\":\"{t}\"}}\n\
             {{broken\n"
        ),
    );
    let ingest = format!("http://{}", app.ingest_addr);
    let out = saleboard(
        &[
            "push",
            jsonl.to_str().expect("utf-8"),
            "--endpoint",
            &ingest,
            "--key",
            &key,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("3 rows: 2 accepted, 0 duplicate, 0 rejected, 1 malformed"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("line 4: not JSON"),
        "{}",
        stdout(&out)
    );

    let clean = write(
        dir.path(),
        "clean.jsonl",
        &format!(
            "{{\"transaction_id\":\"J3\",\"kind\":\"SALE\",\"currency\":\"IDR\",\"amount_minor\":1,\"occurred_at\":\"{t}\"}}\n"
        ),
    );
    let out = saleboard(
        &[
            "push",
            clean.to_str().expect("utf-8"),
            "--endpoint",
            &ingest,
            "--key",
            &key,
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "all accepted: exit 0: {}",
        stdout(&out)
    );
    assert!(!dir.path().join("clean.jsonl.rejects.jsonl").exists());
    assert!(!dir.path().join("clean.jsonl.rejects.csv").exists());

    app.settle().await;
    let board = format!("http://{}", app.leaderboard_addr);
    let out = saleboard(
        &["leaderboard", "--endpoint", &board, "--output", "json"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON leaderboard");
    assert_eq!(b["entries"][0]["site_id"], "alpha");
    assert_eq!(b["entries"][0]["sale_count"], "3");
    assert_eq!(b["entries"][0]["unconverted_currencies"][0], "JPY");
    assert_eq!(b["entries"][0]["net_reporting_minor"], "1001");

    // Paging from the command line: a second site, one entry per page.
    app.site_with_key("beta").await;
    app.settle().await;
    let page = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "leaderboard",
            "--endpoint",
            &board,
            "--output",
            "json",
            "--limit",
            "1",
        ];
        args.extend_from_slice(extra);
        let out = saleboard(&args, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON page")
    };
    let first = page(&[]);
    let token = first["next_page_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert!(!token.is_empty(), "{first}");
    let second = page(&["--page-token", &token]);
    assert_eq!(
        (
            first["entries"][0]["site_id"].as_str(),
            second["entries"][0]["site_id"].as_str()
        ),
        (Some("alpha"), Some("beta"))
    );
    assert_eq!(second["next_page_token"], "");

    let hourly = [
        "totals",
        "alpha",
        "--hourly",
        "--endpoint",
        &board,
        "--output",
        "json",
    ];
    let out = saleboard(&hourly, &[]);
    assert!(
        !out.status.success(),
        "a site's hourly series is not public"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SALEBOARD_API_KEY"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(&hourly, &[("SALEBOARD_API_KEY", key.as_str())]);
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON totals");
    assert_eq!(t["totals"].as_array().map(Vec::len), Some(2));
    assert_eq!(t["totals"][0]["currency"], "IDR");
    assert_eq!(t["totals"][0]["gross_minor"], "1001");
    assert!(!t["hourly"].as_array().expect("hourly").is_empty());

    let out = saleboard(&["national", "--endpoint", &board, "--output", "json"], &[]);
    let n: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON national");
    assert_eq!(
        n["site_count"], 2,
        "alpha, and beta registered for the paging check"
    );
    assert_eq!(
        (n["event_id"].as_str(), n["reporting_currency"].as_str()),
        (Some("harbolnas-test"), Some("IDR"))
    );
    assert_eq!(n["net_reporting_minor"], "1001");

    let out = saleboard(&["totals", "nobody", "--endpoint", &board], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GetSiteTotals")
            && err.contains(&board)
            && err.contains("NOT_FOUND")
            && !err.contains("NotFound"),
        "errors read like sentences: {err}"
    );
    assert!(
        err.contains("site \"nobody\" is not registered") && !err.contains("SiteId("),
        "no Rust debug formatting: {err}"
    );

    // Pushing to the leaderboard's port says so, instead of "Unimplemented: .".
    let out = saleboard(
        &[
            "push",
            jsonl.to_str().expect("utf-8"),
            "--endpoint",
            &board,
            "--key",
            &key,
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("does not serve StreamTransactions") && err.contains("50051"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_commands() {
    let (app, _) = app().await;
    let dir = tempfile::tempdir().expect("tmp");
    let board = format!("http://{}", app.leaderboard_addr);
    let organizer = format!("http://{}", app.admin_addr);
    let env = [
        ("SALEBOARD_ORGANIZER_TOKEN", app.token.as_str()),
        ("SALEBOARD_ENDPOINT", board.as_str()),
        ("SALEBOARD_ADMIN_ENDPOINT", organizer.as_str()),
    ];
    let out = saleboard(
        &["admin", "sites", "create", "beta", "--name", "Beta Store"],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(&["admin", "sites", "list", "--output", "json"], &env);
    let sites: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(sites["sites"].as_array().map(Vec::len), Some(2), "{sites}");
    let out = saleboard(&["admin", "sites", "disable", "beta"], &env);
    assert!(
        stdout(&out).contains("disabled site beta: its keys are refused"),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(&["admin", "sites", "list"], &env);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("beta") && l.ends_with("(disabled)")),
        "{}",
        stdout(&out)
    );
    let out = saleboard(
        &["admin", "sites", "enable", "beta", "--output", "json"],
        &env,
    );
    let site: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(site["disabled"], false, "{site}");
    let out = saleboard(&["admin", "sites", "disable", "nobody"], &env);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nobody"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(
        &["admin", "keys", "create", "beta", "--output", "json"],
        &env,
    );
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        key["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("sbk_"))
    );
    let rates = write(
        dir.path(),
        "rates.csv",
        "currency,rate\nUSD,15850.25\nJPY,105.75\n",
    );
    let out = saleboard(
        &[
            "admin",
            "rates",
            "set",
            rates.to_str().expect("utf-8"),
            "--output",
            "json",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        all,
        serde_json::json!({
            "rates": [{"currency": "JPY", "rate": "105.75"}, {"currency": "USD", "rate": "15850.25"}],
            "currencies_without_rate": [],
        })
    );
    let out = saleboard(
        &["admin", "sites", "list"],
        &[("SALEBOARD_ENDPOINT", board.as_str())],
    );
    assert_eq!(out.status.code(), Some(2), "no token");
    let out = saleboard(
        &[
            "admin",
            "sites",
            "list",
            "--token",
            "wrong",
            "--admin-endpoint",
            &organizer,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PERMISSION_DENIED"));
    // The public port does not serve AdminService: the error says where it is.
    let out = saleboard(
        &[
            "admin",
            "sites",
            "list",
            "--token",
            &app.token,
            "--admin-endpoint",
            &board,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not serve") && err.contains("50054"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_stops_cleanly_and_says_how_far() {
    let (app, key) = app().await;
    let dir = tempfile::tempdir().expect("tmp");
    let t = rfc3339(10);
    let mut text = String::from("transaction_id,kind,currency,amount_minor,occurred_at\n");
    for i in 0..100_000 {
        text.push_str(&format!("C{i},SALE,IDR,{},{t}\n", 1_000 + i));
    }
    let csv = write(dir.path(), "big.csv", &text);
    let endpoint = format!("http://{}", app.ingest_addr);
    let child = Command::new(bin_dir().join("saleboard"))
        .args([
            "push",
            csv.to_str().expect("utf-8"),
            "--endpoint",
            &endpoint,
            "--key",
            &key,
            "--batch-size",
            "200",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("push starts");
    // Interrupt once it is under way.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.store.ledger_head().await.expect("head") < 2_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "push never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().expect("push ends");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("interrupted by Ctrl-C after"), "{text}");
    // Everything it was told is in the ledger, nothing half-sent is lost: a second run finishes.
    let head = app.store.ledger_head().await.expect("head");
    assert!(head < 100_000, "it stopped early");
    let again = saleboard(
        &[
            "push",
            csv.to_str().expect("utf-8"),
            "--endpoint",
            &endpoint,
            "--key",
            &key,
        ],
        &[],
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&again),
        String::from_utf8_lossy(&again.stderr)
    );
    let report = stdout(&again);
    assert!(
        report.contains(&format!("{head} duplicate")),
        "what was sent before comes back as duplicates: {report}"
    );
    assert_eq!(app.store.ledger_head().await.expect("head"), 100_000);
}

/// `verify` reads an existing database: pointed at a file that does not exist it fails naming
/// the path and creates nothing (it used to create an empty one and say "verified"); on an
/// empty ledger it says there is nothing to verify.
#[test]
fn verify_never_creates_a_database() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("elsewhere.db");
    let url = format!("sqlite:{}", missing.display());
    let out = saleboard(&["verify"], &[("SALEBOARD_DATABASE_URL", url.as_str())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("saleboard migrate"),
        "{stderr}"
    );
    assert!(!stdout(&out).contains("verified"), "{}", stdout(&out));
    assert!(!missing.exists(), "verify created {}", missing.display());

    let out = saleboard(&["migrate"], &[("SALEBOARD_DATABASE_URL", url.as_str())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(&["verify"], &[("SALEBOARD_DATABASE_URL", url.as_str())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("is empty"), "{}", stdout(&out));
}

/// `saleboard dev` starts the suite, prints its endpoints, token and keys, and says plainly
/// that it adds no transactions and how to push some.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_says_what_it_made() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("dev.db").display());
    let (ingest, text) = run_dev(&db, dir.path(), "dev.out").await;
    assert!(
        text.contains(&format!("ingest:       http://{ingest}")),
        "{text}"
    );
    assert!(text.contains("API key of toko-satu: sbk_"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("big screen:   http://")
                && l.contains("/  (open it in a browser")),
        "dev prints the screen's URL: {text}"
    );
    assert!(
        text.contains("No transactions yet") && text.contains("saleboard push"),
        "{text}"
    );
}

/// Starts `saleboard dev` on `db`, waits for its banner, stops it; returns its ingest address
/// and what it printed.
async fn run_dev(db: &str, dir: &Path, out: &str) -> (std::net::SocketAddr, String) {
    let dev = start_dev(db, dir, out).await;
    (dev.ingest, dev.banner.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_keeps_its_token_and_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("dev.db");
    let db = format!("sqlite:{}", file.display());
    let secrets = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("organizer token:") || l.contains("API key of"))
            .map(str::to_owned)
            .collect()
    };
    let (_, first) = run_dev(&db, dir.path(), "first.out").await;
    let (_, second) = run_dev(&db, dir.path(), "second.out").await;
    assert_eq!(secrets(&first).len(), 4, "{first}");
    assert_eq!(
        secrets(&first),
        secrets(&second),
        "a restart prints the same token and keys"
    );
    let kept = dir.path().join("dev.db-dev-credentials.json");
    assert!(
        second.contains(&format!("kept in {}", kept.display())),
        "{second}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&kept).expect("kept").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secrets readable by their owner only");
    }

    // The printed key still pushes after the restart, and only three keys exist.
    let running = start_dev(&db, dir.path(), "third.out").await;
    let (ingest, third) = (running.ingest, running.banner.clone());
    let secret = third
        .lines()
        .find_map(|l| l.split("API key of toko-satu: ").nth(1))
        .expect("a key")
        .trim()
        .to_owned();
    assert!(secrets(&first).iter().any(|l| l.contains(&secret)));
    let out = saleboard(
        &[
            "whoami",
            "--endpoint",
            &format!("http://{ingest}"),
            "--key",
            &secret,
        ],
        &[],
    );
    drop(running);
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("toko-satu"), "{}", stdout(&out));
    let store = saleboard_storage::connect(&saleboard_storage::ConnectOptions {
        url: db.clone(),
        max_connections: 1,
        create_if_missing: false,
    })
    .await
    .expect("open");
    assert_eq!(
        store.active_keys().await.expect("keys").len(),
        3,
        "no new key per start"
    );

    // A key revoked meanwhile is replaced (and the new one kept).
    let revoked = &store.active_keys().await.expect("keys")[0];
    store
        .revoke_api_key(
            &revoked.key_id,
            saleboard_domain::UnixNanos::now(),
            saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("RevokeApiKey")),
        )
        .await
        .expect("revoke");
    let (_, fourth) = run_dev(&db, dir.path(), "fourth.out").await;
    let (_, fifth) = run_dev(&db, dir.path(), "fifth.out").await;
    assert_ne!(secrets(&fourth), secrets(&first), "{fourth}");
    assert_eq!(secrets(&fourth), secrets(&fifth));
    assert_eq!(store.active_keys().await.expect("keys").len(), 3);
}

/// `leaderboard --watch` survives a leaderboard restart: it says it is reconnecting and carries
/// on drawing once the service is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_survives_a_restart() {
    let db = saleboard_tests::TestDb::create(Backend::Sqlite)
        .await
        .expect("sqlite");
    db.seed_site("toko").await;
    let addr = free_addr();
    let listen = addr.to_string();
    let env = [("SALEBOARD_DATABASE_URL", db.url.as_str())];
    let board_args = [
        "--leaderboard-listen",
        listen.as_str(),
        "--organizer-token",
        "a-test-organizer-token",
    ];
    let mut board = saleboard_tests::proc::ServiceProcess::start(
        "saleboard-leaderboard",
        &board_args,
        &env,
        addr,
    )
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let (out_path, err_path) = (dir.path().join("watch.out"), dir.path().join("watch.err"));
    let endpoint = format!("http://{addr}");
    let mut watch = Command::new(bin_dir().join("saleboard"))
        .args([
            "leaderboard",
            "--watch",
            "--output",
            "json",
            "--endpoint",
            &endpoint,
        ])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(std::fs::File::create(&out_path).expect("out"))
        .stderr(std::fs::File::create(&err_path).expect("err"))
        .spawn()
        .expect("watch starts");
    let lines = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let wait_for = |what: &'static str, cond: Box<dyn Fn() -> bool + Send>| async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while !cond() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let first = out_path.clone();
    wait_for("a first board", Box::new(move || lines(&first) >= 1)).await;

    board.kill();
    let err = err_path.clone();
    wait_for(
        "says it is reconnecting",
        Box::new(move || {
            std::fs::read_to_string(&err)
                .unwrap_or_default()
                .contains("reconnecting")
        }),
    )
    .await;
    let before = lines(&out_path);
    let _board = saleboard_tests::proc::ServiceProcess::start(
        "saleboard-leaderboard",
        &board_args,
        &env,
        addr,
    )
    .await;
    let again = out_path.clone();
    wait_for(
        "draws again after the restart",
        Box::new(move || lines(&again) > before),
    )
    .await;
    assert!(
        watch.try_wait().expect("status").is_none(),
        "the watch is still running"
    );
    drop(watch.kill());
    drop(watch.wait());
}

/// A second `dev` on busy ports says so before it creates or changes anything.
#[test]
fn dev_on_busy_ports_touches_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("dev.db");
    let db = format!("sqlite:{}", file.display());
    let (board, aggregator) = (free_addr().to_string(), free_addr().to_string());
    let out = saleboard(
        &[
            "dev",
            "--ingest-listen",
            &busy,
            "--leaderboard-listen",
            &board,
            "--aggregator-listen",
            &aggregator,
        ],
        &[("SALEBOARD_DATABASE_URL", db.as_str())],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("already running") && err.contains("--ingest-listen") && err.contains(&busy),
        "{err}"
    );
    assert!(!file.exists(), "the database was not touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn money_times_and_missing_rates_as_people_read_them() {
    use saleboard_proto::v1::SubmitTransactionsRequest;
    use saleboard_tests::data::sale;

    let (app, key) = app().await;
    let dir = tempfile::tempdir().expect("tmp");
    app.ingest(&key)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![
                sale("M1", "IDR", 655_778_600),
                sale("M2", "EUR", 1_000),
                sale("M3", "USD", 250),
            ],
        })
        .await
        .expect("push");
    app.settle().await;
    let board = format!("http://{}", app.leaderboard_addr);
    let organizer = format!("http://{}", app.admin_addr);
    let env = [
        ("SALEBOARD_ORGANIZER_TOKEN", app.token.as_str()),
        ("SALEBOARD_ENDPOINT", board.as_str()),
        ("SALEBOARD_ADMIN_ENDPOINT", organizer.as_str()),
    ];
    let rates = write(dir.path(), "rates.csv", "currency,rate\nUSD,15850.25\n");
    let out = saleboard(
        &["admin", "rates", "set", rates.to_str().expect("utf-8")],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("EUR  (no rate: its sales are left out of the national figure)"),
        "admin rates lists the currencies sold in without a rate: {text}"
    );
    let warned = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        warned.contains("warning: sales in EUR have no exchange rate"),
        "{warned}"
    );
    app.settle().await;

    // 655,778,600 IDR minor + 2.50 USD x 15850.25 = 3,962,562.5 -> 3,962,562 (half-even) minor.
    let out = saleboard(&["leaderboard"], &env);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("IDR 6,597,411.62"),
        "the site's net with separators and the currency: {text}"
    );
    assert!(
        text.contains(
            "warning: sales in EUR have no exchange rate and are left out of the national figure"
        ),
        "{text}"
    );
    assert!(
        text.contains(" UTC (ledger position"),
        "times are labelled: {text}"
    );

    let out = saleboard(&["national"], &env);
    let text = stdout(&out);
    assert!(
        text.contains("harbolnas-test: national net IDR 6,597,411.62 (1 sites"),
        "national prints money as the leaderboard does, not raw minor units: {text}"
    );
    assert!(
        text.contains("USD 2.50") && text.contains("EUR 10.00"),
        "{text}"
    );
    assert!(text.contains("warning: sales in EUR"), "{text}");
    let out = saleboard(&["national", "--output", "json"], &env);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        json["net_reporting_minor"], "659741162",
        "JSON stays in minor units"
    );
    assert_eq!(json["unconverted_currencies"], serde_json::json!(["EUR"]));

    let out = saleboard(
        &["totals", "alpha", "--hourly", "--tz", "Asia/Jakarta"],
        &env,
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("hour (Asia/Jakarta)"), "{text}");
    assert!(text.contains(":00:00 +07:00 Asia/Jakarta"), "{text}");
    assert!(text.contains("IDR 6,557,786.00"), "{text}");
    let out = saleboard(&["totals", "alpha", "--hourly", "--tz", "+05:30"], &env);
    assert!(
        stdout(&out).contains(":00 +05:30 +05:30"),
        "{}",
        stdout(&out)
    );

    let out = saleboard(&["leaderboard", "--tz", "Mars/Olympus"], &env);
    assert_eq!(out.status.code(), Some(2), "a bad zone is a usage error");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("time zone \"Mars/Olympus\""), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whoami_with_the_key_alone() {
    let (app, key) = app().await;
    let endpoint = format!("http://{}", app.ingest_addr);
    let out = saleboard(
        &["whoami", "--endpoint", &endpoint, "--tz", "Asia/Jakarta"],
        &[("SALEBOARD_API_KEY", &key)],
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" pushes for site alpha"), "{text}");
    assert!(
        text.contains("event harbolnas-test (Harbolnas test): sales from ")
            && text.contains("+07:00 Asia/Jakarta until ")
            && text.contains("reported in IDR"),
        "{text}"
    );
    assert!(text.contains("limits: up to "), "{text}");
    let out = saleboard(
        &["whoami", "--endpoint", &endpoint, "--output", "json"],
        &[("SALEBOARD_API_KEY", &key)],
    );
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(me["site_id"], "alpha");
    assert_eq!(me["event"]["event_id"], "harbolnas-test");
    let out = saleboard(
        &["whoami", "--endpoint", &endpoint, "--key", "sbk_not_a_key"],
        &[],
    );
    assert_ne!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.to_lowercase().contains("key"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_as_shops_export_them() {
    let (app, key) = app().await;
    let dir = tempfile::tempdir().expect("tmp");
    let t = rfc3339(60);
    let endpoint = format!("http://{}", app.ingest_addr);
    let push = |path: &Path| {
        let out = saleboard(
            &[
                "push",
                path.to_str().expect("utf-8"),
                "--endpoint",
                &endpoint,
                "--key",
                &key,
            ],
            &[],
        );
        (out.status.code(), stdout(&out))
    };
    // Excel in an Indonesian locale writes semicolons.
    let semicolons = write(
        dir.path(),
        "excel.csv",
        &format!(
            "transaction_id;store_id;kind;currency;amount_minor;occurred_at;refund_of\n\
             E1;jkt;SALE;IDR;150000;{t};\n"
        ),
    );
    let (code, text) = push(&semicolons);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 rows: 1 accepted"), "{text}");

    // A local time without its zone gets a hint; camelCase JSON keys are named.
    let local = t
        .trim_end_matches('Z')
        .split('+')
        .next()
        .unwrap_or_default()
        .to_owned();
    let zoneless = write(
        dir.path(),
        "local.csv",
        &format!(
            "transaction_id,kind,currency,amount_minor,occurred_at\nZ1,SALE,IDR,100,{local}\n"
        ),
    );
    let (code, text) = push(&zoneless);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("has no time zone; add one, e.g.") && text.contains("+07:00 (WIB)"),
        "{text}"
    );
    let camel = write(
        dir.path(),
        "camel.jsonl",
        &format!(
            "{{\"transactionId\":\"C1\",\"kind\":\"SALE\",\"currency\":\"IDR\",\"amountMinor\":1,\"occurredAt\":\"{t}\"}}\n"
        ),
    );
    let (code, text) = push(&camel);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("keys are snake_case")
            && text.contains("unknown keys: amountMinor, occurredAt, transactionId"),
        "{text}"
    );
    assert_eq!(app.store.ledger_head().await.expect("head"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_shows_a_comparison_at_once() {
    use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
    use saleboard_proto::v1::{EventState, GetLeaderboardRequest, ListEventsRequest};

    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("dev.db").display());
    let dev = start_dev(&db, dir.path(), "dev.out").await;
    assert!(
        dev.banner.contains("harbolnas-demo-last-year"),
        "{}",
        dev.banner
    );
    let mut board =
        LeaderboardServiceClient::new(saleboard_tests::app::channel(dev.leaderboard).await);
    let events = board
        .list_events(ListEventsRequest {})
        .await
        .expect("events")
        .into_inner()
        .events;
    let summary: Vec<(&str, EventState, &str)> = events
        .iter()
        .map(|e| (e.event_id.as_str(), e.state(), e.baseline_event_id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "harbolnas-demo",
                EventState::Live,
                "harbolnas-demo-last-year"
            ),
            ("harbolnas-demo-last-year", EventState::Closed, ""),
        ]
    );
    // The aggregator folds last year's history; the live board then compares with it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let b = board
            .get_leaderboard(GetLeaderboardRequest {
                limit: 10,
                ..GetLeaderboardRequest::default()
            })
            .await
            .expect("board")
            .into_inner();
        assert_eq!(b.baseline_event_id, "harbolnas-demo-last-year");
        if b.baseline_net_reporting_minor > 0 {
            assert!(b.entries.iter().all(|e| e.in_baseline), "{:?}", b.entries);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no baseline figure after 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Last year's history carries segments: its breakdowns have brands, local and imported.
    let origin = board
        .get_breakdown(saleboard_proto::v1::GetBreakdownRequest {
            event_id: "harbolnas-demo-last-year".into(),
            dimension: saleboard_proto::v1::Dimension::Origin.into(),
            ..saleboard_proto::v1::GetBreakdownRequest::default()
        })
        .await
        .expect("breakdown")
        .into_inner();
    let keys: Vec<&str> = origin.entries.iter().map(|e| e.key.as_str()).collect();
    assert!(
        keys.contains(&"domestic") && keys.contains(&"cross-border") && !keys.contains(&""),
        "{keys:?}"
    );
}

/// The command line's environment for the organizer token (`bootstrap`) and for a named
/// organizer, dewi, created with it: (the token's, dewi's).
type Env = Vec<(&'static str, String)>;

fn two_organizers(app: &TestApp) -> (Env, Env) {
    let with = |secret: &str| -> Env {
        vec![
            ("SALEBOARD_ORGANIZER_TOKEN", secret.to_owned()),
            (
                "SALEBOARD_ENDPOINT",
                format!("http://{}", app.leaderboard_addr),
            ),
            (
                "SALEBOARD_ADMIN_ENDPOINT",
                format!("http://{}", app.admin_addr),
            ),
        ]
    };
    let bootstrap = with(&app.token);
    let out = saleboard(
        &["admin", "organizers", "create", "dewi", "--output", "json"],
        &env(&bootstrap),
    );
    let dewi: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let dewi = with(dewi["secret"].as_str().expect("a secret"));
    (bootstrap, dewi)
}

/// A proposal's output: it succeeded, says `what`, and how another organizer applies it;
/// the action's id.
fn proposed(out: &std::process::Output, what: &str) -> String {
    let text = stdout(out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(what), "{text}");
    let action_id = text
        .split_whitespace()
        .find(|w| w.starts_with("act-"))
        .expect("the action's id")
        .to_owned();
    assert!(
        text.contains(&format!("saleboard admin approve {action_id}")),
        "{text}"
    );
    action_id
}

/// `pairs` as `saleboard` takes them.
fn env(pairs: &Env) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A hold through the command line, as two organizers would: `admin sites hold` proposes it
/// (and says who applies it), the proposer's own `admin approve` is refused, a second
/// organizer's applies it, `leaderboard` names the held site and leaves it out of the table,
/// `admin actions` lists it, `admin sites release` and `admin reject` leave it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_through_the_command_line() {
    let (app, alpha_key) = app().await;
    app.site_with_key("beta").await;
    let (bootstrap_env, dewi_env) = two_organizers(&app);
    let as_bootstrap = env(&bootstrap_env);
    let as_dewi = env(&dewi_env);

    let out = saleboard(
        &[
            "admin",
            "sites",
            "hold",
            "beta",
            "--reason",
            "refunds after the window",
        ],
        &as_dewi,
    );
    let action_id = proposed(&out, "hold beta in harbolnas-test: PENDING");
    // No reason: clap refuses before any call.
    let out = saleboard(&["admin", "sites", "hold", "alpha"], &as_dewi);
    assert_eq!(out.status.code(), Some(2));

    let out = saleboard(&["admin", "approve", &action_id], &as_dewi);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another organizer"), "{err}");

    let out = saleboard(
        &["admin", "approve", &action_id, "--output", "json"],
        &as_bootstrap,
    );
    let applied: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(applied["state"], "ACTION_STATE_APPLIED", "{applied}");
    assert_eq!(applied["approved_by"], "bootstrap", "{applied}");

    let out = saleboard(&["leaderboard"], &as_bootstrap);
    let table = stdout(&out);
    assert!(
        table.contains("held by the organizers (in the national figure, not ranked): beta"),
        "{table}"
    );
    assert!(!table.lines().any(|l| l.contains(" beta ")), "{table}");

    let out = saleboard(
        &["admin", "sites", "release", "beta", "--reason", "explained"],
        &as_bootstrap,
    );
    let release_id = stdout(&out)
        .split_whitespace()
        .find(|w| w.starts_with("act-"))
        .expect("the release's id")
        .to_owned();
    let out = saleboard(
        &["admin", "reject", &release_id, "--reason", "not yet"],
        &as_dewi,
    );
    assert!(
        stdout(&out).contains("REJECTED by dewi: not yet"),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(&["admin", "actions"], &as_dewi);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with(&release_id) && lines[0].contains("REJECTED"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with(&action_id) && lines[1].contains("APPLIED, approved by bootstrap"),
        "{lines:#?}"
    );
    let out = saleboard(&["admin", "actions", "--pending"], &as_dewi);
    assert!(stdout(&out).trim().is_empty(), "{}", stdout(&out));
    let out = saleboard(&["leaderboard", "--output", "json"], &as_bootstrap);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["held_sites"], serde_json::json!(["beta"]), "{json}");

    // The event's thresholds: shown with the defaults marked, two set, one put back.
    let out = saleboard(&["admin", "integrity", "policy"], &as_dewi);
    let table = stdout(&out);
    assert!(table.contains("(the defaults: never set)"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("min_sales") && l.ends_with("500  *")),
        "{table}"
    );
    let out = saleboard(
        &[
            "admin",
            "integrity",
            "policy",
            "--set",
            "min_sales=200",
            "--set",
            "late_sales_floor_decimal=0.075",
        ],
        &as_dewi,
    );
    let table = stdout(&out);
    assert!(
        table.contains("set by dewi"),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("min_sales") && l.ends_with(" 200")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("late_sales_floor_decimal") && l.ends_with(" 0.075")),
        "{table}"
    );
    let out = saleboard(
        &[
            "admin",
            "integrity",
            "policy",
            "--default",
            "min_sales",
            "--output",
            "json",
        ],
        &as_dewi,
    );
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(policy["min_sales"], "500", "{policy}");
    assert_eq!(policy["late_sales_floor_decimal"], "0.075", "{policy}");
    let out = saleboard(
        &["admin", "integrity", "policy", "--set", "sample_size=0"],
        &as_dewi,
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sample_size"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A flag: under a policy that decides every site and raises the refund rate at the
    // nation's own (alpha sells alone: its 10% against a nation without it of 0), listed,
    // shown with its figures, put under review, marked on the leaderboard.
    let out = saleboard(
        &[
            "admin",
            "integrity",
            "policy",
            "--set",
            "min_sales=1",
            "--set",
            "min_share_decimal=0",
            "--set",
            "refund_rate_times=1",
            "--set",
            "refund_rate_points=0",
        ],
        &as_dewi,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = app
        .ingest(&alpha_key)
        .await
        .submit_transactions(saleboard_proto::v1::SubmitTransactionsRequest {
            transactions: vec![
                saleboard_tests::data::sale("cli-flag-1", "IDR", 10_000),
                saleboard_tests::data::refund("cli-flag-r1", "cli-flag-1", "IDR", 1_000),
            ],
        })
        .await
        .expect("push")
        .into_inner();
    assert_eq!(answer.results.len(), 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let listed = loop {
        let out = saleboard(&["admin", "integrity", "list"], &as_dewi);
        let text = stdout(&out);
        if text.contains("flg-") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no flag listed: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(
        listed.contains(" alpha REFUND_RATE MEDIUM OPEN: 0.1 against 0 (nation 0)"),
        "{listed}"
    );
    assert!(
        listed.contains("1 flag(s); 0 site(s) without enough sales"),
        "{listed}"
    );
    let flag_id = listed
        .split_whitespace()
        .find(|w| w.starts_with("flg-"))
        .expect("a flag id")
        .to_owned();
    let out = saleboard(&["admin", "integrity", "show", &flag_id], &as_dewi);
    let shown = stdout(&out);
    assert!(shown.contains("site_refunded_minor"), "{shown}");
    assert!(shown.contains("1000"), "{shown}");
    let out = saleboard(
        &["admin", "integrity", "sample", &flag_id, "--size", "5"],
        &as_dewi,
    );
    let drawn = stdout(&out);
    assert!(
        drawn.starts_with("1 of 1 sales of alpha in harbolnas-test"),
        "{drawn}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(drawn.lines().any(|l| l == "cli-flag-1"), "{drawn}");
    let out = saleboard(
        &[
            "admin",
            "integrity",
            "review",
            &flag_id,
            "--state",
            "under-review",
            "--note",
            "asked alpha for its refunds",
        ],
        &as_dewi,
    );
    assert!(
        stdout(&out).contains("UNDER_REVIEW"),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(&["leaderboard"], &as_bootstrap);
    assert!(
        stdout(&out).contains("alpha (under review)"),
        "{}",
        stdout(&out)
    );
    app.stop().await;
}

/// An adjustment through the command line: `admin adjust` proposes to void a sale (and says
/// who applies it), another organizer's `admin approve` appends the voids (the sale and its
/// refund), `admin actions` shows what it did, `totals` no longer counts them, and `verify`
/// agrees; an unknown id is refused naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_adjustment_through_the_command_line() {
    use saleboard_proto::v1::SubmitTransactionsRequest;
    let (app, alpha_key) = app().await;
    app.ingest(&alpha_key)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![
                saleboard_tests::data::sale("A-1", "IDR", 90_000),
                saleboard_tests::data::sale("A-2", "IDR", 10_000),
                saleboard_tests::data::refund("A-1-R", "A-1", "IDR", 5_000),
            ],
        })
        .await
        .expect("push");
    let (bootstrap_env, dewi_env) = two_organizers(&app);
    let as_bootstrap = env(&bootstrap_env);
    let as_dewi = env(&dewi_env);

    let out = saleboard(
        &[
            "admin", "adjust", "--site", "alpha", "A-1", "NOPE", "--reason", "brushing",
        ],
        &as_dewi,
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("transaction_ids[1] \"NOPE\""), "{err}");

    let out = saleboard(
        &[
            "admin", "adjust", "--site", "alpha", "A-1", "--reason", "brushing",
        ],
        &as_dewi,
    );
    let action_id = proposed(
        &out,
        "adjust (1 transaction) alpha in harbolnas-test: PENDING",
    );
    let out = saleboard(&["admin", "approve", &action_id], &as_bootstrap);
    let text = stdout(&out);
    assert!(
        text.contains("adjust (1 transaction, 2 voids through ledger position 5)")
            && text.contains("APPLIED, approved by bootstrap"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.settle().await;
    let out = saleboard(&["totals", "alpha", "--output", "json"], &as_bootstrap);
    let totals: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(totals["totals"][0]["net_minor"], "10000", "{totals}");
    assert_eq!(totals["totals"][0]["sale_count"], "1", "{totals}");
    let out = saleboard(
        &["verify"],
        &[("SALEBOARD_DATABASE_URL", app.db.url.as_str())],
    );
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
}
