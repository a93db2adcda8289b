//! The official report's files as a reader checks them (issue 29): `saleboard report` run as
//! an organizer would, the PDF read back with pdftotext and page 1 rendered with pdftoppm (kept
//! as a test artefact), the manifest checked with `sha256sum -c`, and every CSV and JSON figure
//! set beside the gRPC answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use saleboard_proto::v1::{EventReport, ReportStatus};

use crate::proc::saleboard;

/// Whether poppler's `name` is installed: fails loudly under CI, where `.ci/run` installs it;
/// elsewhere says the PDF checks are skipped.
///
/// # Panics
/// Under CI, when it is missing.
#[must_use]
pub fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("-v").output().is_ok();
    if !found {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "{name} (poppler-utils) is missing: .ci/run installs it"
        );
        eprintln!("skipping the PDF checks: {name} (poppler-utils) is not installed");
    }
    found
}

/// Both poppler tools the checks use.
#[must_use]
pub fn pdf_tools() -> bool {
    tool("pdftotext") && tool("pdftoppm")
}

/// What a command printed on both streams, asserting it succeeded.
///
/// # Panics
/// When it failed.
pub fn run_ok(out: &Output) -> String {
    let text = said(out);
    assert!(out.status.success(), "{text}");
    text
}

/// What a command printed on both streams.
#[must_use]
pub fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `saleboard report EVENT --out DIR` against the admin port at `admin` with the organizer's
/// `token`.
#[must_use]
pub fn report_cli(admin: SocketAddr, token: &str, event: &str, dir: &Path) -> Output {
    saleboard(
        &[
            "report",
            event,
            "--admin-endpoint",
            &format!("http://{admin}"),
            "--out",
            &dir.display().to_string(),
        ],
        &[("SALEBOARD_ORGANIZER_TOKEN", token)],
    )
}

/// `saleboard report check DIR --database-url URL`.
#[must_use]
pub fn check_cli(dir: &Path, database_url: &str) -> Output {
    saleboard(
        &[
            "report",
            "check",
            &dir.display().to_string(),
            "--database-url",
            database_url,
        ],
        &[],
    )
}

/// The PDF's text, laid out as on the page.
///
/// # Panics
/// When pdftotext cannot read it.
#[must_use]
pub fn pdf_text(dir: &Path) -> String {
    let out = Command::new("pdftotext")
        .args([
            "-layout",
            &dir.join("report.pdf").display().to_string(),
            "-",
        ])
        .output()
        .expect("pdftotext runs");
    assert!(out.status.success(), "pdftotext: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Renders page 1 into the target directory's test artefacts and returns its path.
///
/// # Panics
/// When pdftoppm cannot render it, or renders an image too small to be a page.
#[must_use]
pub fn render_page_one(dir: &Path, name: &str) -> PathBuf {
    // target/tmp/report-artefacts, where Cargo keeps integration tests' own files.
    let artefacts = crate::proc::bin_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("tmp")
        .join("report-artefacts");
    std::fs::create_dir_all(&artefacts).expect("artefacts dir");
    let prefix = artefacts.join(name);
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(dir.join("report.pdf"))
        .arg(&prefix)
        .output()
        .expect("pdftoppm runs");
    assert!(out.status.success(), "pdftoppm: {out:?}");
    let png = prefix.with_extension("png");
    let bytes = std::fs::read(&png).expect("page 1 rendered");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000,
        "{}",
        png.display()
    );
    png
}

/// `sha256sum -c MANIFEST.sha256` in `dir`.
///
/// # Panics
/// When it fails.
pub fn sha256sum_check(dir: &Path) {
    let out = Command::new("sha256sum")
        .args(["-c", "MANIFEST.sha256"])
        .current_dir(dir)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success(), "sha256sum -c: {out:?}");
}

/// A CSV file's rows, each as its columns by name.
///
/// # Panics
/// When the file is not CSV with a header.
#[must_use]
pub fn csv_rows(dir: &Path, file: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(dir.join(file)).expect("csv");
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            headers
                .iter()
                .zip(r.expect("row").iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The sum of a column of integers (an empty cell counts nothing), over the rows `keep` takes.
///
/// # Panics
/// When a cell is not an integer.
#[must_use]
pub fn column_sum(
    rows: &[BTreeMap<String, String>],
    column: &str,
    keep: impl Fn(&BTreeMap<String, String>) -> bool,
) -> i128 {
    rows.iter()
        .filter(|r| keep(r))
        .map(|r| &r[column])
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<i128>().expect("integer"))
        .sum()
}

/// Each file's name and SHA-256.
///
/// # Panics
/// When the directory cannot be read.
#[must_use]
pub fn dir_hashes(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                saleboard_report::sha256_hex(&std::fs::read(e.path()).expect("read")),
            )
        })
        .collect();
    files.sort();
    files
}

/// `summary.json`, parsed.
///
/// # Panics
/// When it is missing or not the report's proto3 JSON.
#[must_use]
pub fn summary(dir: &Path) -> EventReport {
    saleboard_proto::json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json parses")
}

/// Checks the files `saleboard report` wrote into `dir` as a reader would, against `report`
/// (the figures `GetEventReport` gave for the same generation) and `national_net` (what
/// `GetNationalTotals` says):
/// - the manifest passes `sha256sum -c`, and names every file but itself;
/// - `summary.json` is `report`;
/// - `sites.csv` lists `report`'s sites in its order, with their ranks and nets, and its nets
///   sum to the national net;
/// - every breakdown file and `hourly.csv`: the keys in range sum to the national net less the
///   difference each row states, and a difference is explained;
/// - with `pdf` (poppler installed), the PDF states the status, the event's name, the headline
///   net as people read it and the verification statement, and page 1 renders (kept under
///   `artefact`).
///
/// # Panics
/// When any of these does not hold.
pub fn check_files(
    dir: &Path,
    report: &EventReport,
    national_net: i128,
    pdf: bool,
    artefact: &str,
) {
    sha256sum_check(dir);
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.sha256")).expect("manifest");
    let named: Vec<_> = manifest
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(_, f)| f.to_owned()))
        .collect();
    let mut present: Vec<_> = dir_hashes(dir)
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| f != "MANIFEST.sha256")
        .collect();
    present.sort();
    let mut sorted = named.clone();
    sorted.sort();
    assert_eq!(sorted, present, "the manifest names every file");

    assert_eq!(&summary(dir), report, "summary.json is the report");
    let head = report.headline.clone().expect("headline");
    assert_eq!(
        head.net_minor,
        national_net.to_string(),
        "GetNationalTotals"
    );
    let status = saleboard_report::status_word(report);

    let sites = csv_rows(dir, "sites.csv");
    let listed: Vec<_> = sites
        .iter()
        .map(|r| {
            (
                r["site_id"].clone(),
                r["rank"].clone(),
                r["net_minor"].clone(),
            )
        })
        .collect();
    let stated: Vec<_> = report
        .sites
        .iter()
        .map(|s| (s.site_id.clone(), s.rank.to_string(), s.net_minor.clone()))
        .collect();
    assert_eq!(listed, stated, "sites.csv");
    assert_eq!(
        column_sum(&sites, "net_minor", |r| r["out_of_range"] == "false"),
        national_net,
        "sites.csv sums to the national net"
    );
    for file in saleboard_report::DATA_FILES
        .into_iter()
        .filter(|f| f.ends_with(".csv"))
    {
        let rows = csv_rows(dir, file);
        assert!(
            rows.iter()
                .all(|r| r["status"] == status && r["watermark"] == report.watermark.to_string()),
            "{file}: every row states {status} and the watermark"
        );
        if file.starts_with("breakdown-") || file == "hourly.csv" {
            let keep =
                |r: &BTreeMap<String, String>| r.get("out_of_range").is_none_or(|o| o == "false");
            let sum = column_sum(&rows, "net_minor", keep);
            // Half-even rounding moves each converted total by at most half a minor unit: the
            // rows' (key or hour, currency) totals and the sites' (site, currency) ones. Without
            // a rate nothing is converted, and a FINAL report's breakdowns hold every row.
            let totals =
                i128::try_from((rows.len() + report.sites.len()) * (report.rates.len() + 1))
                    .expect("a small count");
            let exact = report.rates.is_empty() && report.status == ReportStatus::Final as i32;
            for row in &rows {
                let difference: i128 = row["difference_minor"].parse().expect("difference");
                assert_eq!(
                    row["national_net_minor"],
                    national_net.to_string(),
                    "{file}"
                );
                assert_eq!(sum + difference, national_net, "{file}: {row:?}");
                assert!(
                    difference.abs() <= totals && (!exact || difference == 0),
                    "{file}: a difference of {difference} is more than rounding"
                );
                assert_eq!(
                    row["difference_reason"].is_empty(),
                    difference == 0,
                    "{file}: a difference is explained: {row:?}"
                );
            }
        }
    }

    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let cur = saleboard_report::currency(report);
    let net_words = format!(
        "Net {}",
        saleboard_report::format::money(&head.net_minor, cur)
    );
    let name = report
        .event
        .as_ref()
        .map(|e| e.display_name.clone())
        .unwrap_or_default();
    assert!(
        html.contains(status) && html.contains(&net_words),
        "{net_words} in the page"
    );
    if pdf {
        let text = pdf_text(dir);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for wanted in [
            status,
            name.as_str(),
            net_words.as_str(),
            "8. Verification",
            "agree with the stored totals",
            "the national net per hour agrees with the stored hourly totals",
            "every breakdown key agrees with the stored breakdown totals",
            "Page 1 of",
        ] {
            assert!(flat.contains(wanted), "{wanted:?} not in the PDF:\n{text}");
        }
        let other = if report.status == ReportStatus::Final as i32 {
            "PROVISIONAL"
        } else {
            "FINAL"
        };
        assert!(!flat.contains(other), "{other} in the PDF:\n{text}");
        let png = render_page_one(dir, artefact);
        eprintln!("page 1: {}", png.display());
    }
}

/// `report check DIR --database-url` as a journalist runs it: it passes; then it names a CSV
/// file whose first figure was changed by one minor unit; then, the file restored, it names
/// each total changed in the database (one more sale of `site` in `event` than its ledger
/// holds; one more sale in every category; Rp 1 more in every hour of the national curve),
/// passing again each time the database is restored.
///
/// # Panics
/// When the check does not pass, or does not name what was changed.
pub async fn check_catches_tampering(
    dir: &Path,
    db: &crate::TestDb,
    file: &str,
    event: &str,
    site: &str,
) {
    let text = run_ok(&check_cli(dir, &db.url));
    assert!(text.contains("every figure equals"), "{text}");

    let path = dir.join(file);
    let original = std::fs::read_to_string(&path).expect("the file");
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let at = header
        .iter()
        .position(|h| *h == "net_minor")
        .expect("a net_minor column");
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    let figure: i128 = cells[at]
        .parse()
        .expect("a figure without commas before it");
    cells[at] = (figure + 1).to_string();
    lines[1] = cells.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").expect("tamper");
    let out = check_cli(dir, &db.url);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("DIFFERS: {file}: changed")),
        "{text}"
    );
    assert!(text.contains(&format!("DIFFERS: {file} line 2")), "{text}");
    std::fs::write(&path, original).expect("restore");
    run_ok(&check_cli(dir, &db.url));

    let change = |by: i32| {
        format!(
            "UPDATE site_totals SET sale_count = sale_count + ({by}) \
             WHERE event_id = '{event}' AND site_id = '{site}'"
        )
    };
    db.execute(&change(1)).await;
    let out = check_cli(dir, &db.url);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "stored totals differ from its ledger: site {site} "
        )),
        "{text}"
    );
    db.execute(&change(-1)).await;
    run_ok(&check_cli(dir, &db.url));

    let numeric = |by: i32| match db.backend {
        crate::Backend::Postgres => format!("net_minor + ({by})"),
        crate::Backend::Sqlite => format!("CAST(CAST(net_minor AS INTEGER) + ({by}) AS TEXT)"),
    };
    for (change, says) in [
        (
            format!(
                "UPDATE segment_totals SET sale_count = sale_count + (BY) \
                 WHERE event_id = '{event}' AND dimension = 2"
            ),
            "stored totals differ from its ledger: category ",
        ),
        (
            format!(
                "UPDATE national_hourly_totals SET net_minor = NUMERIC \
                 WHERE event_id = '{event}'"
            ),
            "stored totals differ from its ledger: national net in the hour starting ",
        ),
    ] {
        let sql = |by: i32| {
            change
                .replace("(BY)", &format!("({by})"))
                .replace("NUMERIC", &numeric(by))
        };
        db.execute(&sql(1)).await;
        let out = check_cli(dir, &db.url);
        let text = said(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains(says), "{says:?} not said:\n{text}");
        db.execute(&sql(-1)).await;
        run_ok(&check_cli(dir, &db.url));
    }
}
