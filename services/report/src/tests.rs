//! The files of a report made by hand: what each says, that they are the same bytes every
//! time, and that the manifest catches a changed file.

use saleboard_proto::v1::{
    Event, EventReport, ReportCurrency, ReportHeadline, ReportHour, ReportKey, ReportSite,
    ReportStatus, ReportVerification,
};

use super::*;

fn ts(seconds: i64) -> saleboard_proto::Timestamp {
    saleboard_proto::Timestamp { seconds, nanos: 0 }
}

fn sample(status: ReportStatus) -> EventReport {
    EventReport {
        status: status as i32,
        event: Some(Event {
            event_id: "harbolnas-2026".into(),
            display_name: "Harbolnas <2026>".into(),
            starts_at: Some(ts(1_797_033_600)),
            ends_at: Some(ts(1_797_120_000)),
            closes_at: Some(ts(1_797_724_800)),
            reporting_currency: "IDR".into(),
            time_zone: "Asia/Jakarta".into(),
            ..Event::default()
        }),
        watermark: 42,
        headline: Some(ReportHeadline {
            gross_minor: "3200000000000".into(),
            refunded_minor: "76543211000".into(),
            net_minor: "3123456789000".into(),
            ..ReportHeadline::default()
        }),
        sites: vec![
            ReportSite {
                rank: 1,
                site_id: "toko-a".into(),
                display_name: "Toko, \"A\"".into(),
                net_minor: "3000000000000".into(),
                rank_at_end: 2,
                currencies: vec![ReportCurrency {
                    currency: "IDR".into(),
                    sale_count: 3,
                    gross_minor: "3000000000000".into(),
                    net_minor: "3000000000000".into(),
                    ..ReportCurrency::default()
                }],
                ..ReportSite::default()
            },
            ReportSite {
                rank: 2,
                site_id: "toko-b".into(),
                display_name: "Toko B".into(),
                net_minor: "123456789000".into(),
                rank_at_end: 1,
                ..ReportSite::default()
            },
        ],
        brands: vec![ReportKey {
            rank: 1,
            key: "".into(),
            net_minor: "3123456789000".into(),
            ..ReportKey::default()
        }],
        hourly: vec![
            ReportHour {
                hour_start: Some(ts(1_797_033_600)),
                net_minor: "100".into(),
            },
            ReportHour {
                hour_start: Some(ts(1_797_037_200)),
                net_minor: "3123456788900".into(),
            },
        ],
        verification: Some(ReportVerification {
            first_position: 1,
            last_position: 42,
            rows: 40,
            totals_match_ledger: true,
            hourly_match_ledger: true,
            breakdowns_match_ledger: true,
            sites_add_up: true,
            audit_position: 7,
            audit_sha256: "ab".repeat(32),
            ..ReportVerification::default()
        }),
        ..EventReport::default()
    }
}

fn file<'a>(files: &'a [(&str, Vec<u8>)], name: &str) -> &'a str {
    std::str::from_utf8(&files.iter().find(|(n, _)| *n == name).expect("test data").1)
        .expect("test data")
}

#[test]
fn every_data_file_says_its_status_on_every_row_and_carries_exact_minor_units() {
    let files = data_files(&sample(ReportStatus::Provisional)).expect("test data");
    assert_eq!(
        files.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        DATA_FILES.to_vec()
    );
    let sites = file(&files, "sites.csv");
    let lines: Vec<_> = sites.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("status,event_id,watermark,as_of,rank,site_id"));
    assert_eq!(
        lines[1],
        "PROVISIONAL,harbolnas-2026,42,,1,toko-a,\"Toko, \"\"A\"\"\",false,false,3000000000000,3,0,2,,,"
    );
    let hourly = file(&files, "hourly.csv");
    assert!(hourly.contains("2026-12-12T00:00:00Z,12 Dec 2026 07:00 WIB,100,100"));
    assert!(hourly.contains(",3123456788900,3123456789000"));
    for (name, bytes) in &files {
        if name.ends_with(".csv") {
            let text = std::str::from_utf8(bytes).expect("test data");
            assert!(
                text.lines().skip(1).all(|l| l.starts_with("PROVISIONAL,")),
                "{name}"
            );
        }
    }
    let summary: EventReport =
        saleboard_proto::json::from_str(file(&files, "summary.json")).expect("test data");
    assert_eq!(summary, sample(ReportStatus::Provisional));
}

#[test]
fn the_page_states_the_figures_as_people_read_them() {
    let report = sample(ReportStatus::Final);
    let page = html::page(&report, &data_hashes(&report).expect("test data"));
    assert!(page.contains("Net Rp 31.234.567.890"));
    assert!(page.contains("FINAL"));
    assert!(!page.contains("PROVISIONAL"));
    // Escaped, never raw markup from a name.
    assert!(page.contains("Harbolnas &lt;2026&gt;"));
    assert!(!page.contains("<2026>"));
    // The ranking marks the sites whose place moved since the end.
    assert!(page.contains("2 → 1"));
    assert!(page.contains("1 → 2"));
    assert!(page.contains("positions 1 to 42"));
    for (name, hash) in data_hashes(&report).expect("test data") {
        assert!(page.contains(&name) && page.contains(&hash));
    }
    // Nothing fetched from anywhere.
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="));
}

#[test]
fn a_final_report_is_the_same_bytes_every_time_and_the_manifest_catches_a_change() {
    let dir = std::env::temp_dir().join(format!("saleboard-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let report = sample(ReportStatus::Final);
    let names = write_dir(&dir, &report, Some(b"%PDF-1.7 stand-in")).expect("test data");
    assert!(names.contains(&"report.pdf".to_owned()) && names.contains(&MANIFEST.to_owned()));
    let first: Vec<_> = names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).expect("test data"))
        .collect();
    write_dir(&dir, &report, Some(b"%PDF-1.7 stand-in")).expect("test data");
    let second: Vec<_> = names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).expect("test data"))
        .collect();
    assert_eq!(first, second);
    assert!(check_manifest(&dir).expect("test data").is_empty());
    assert!(compare_dir(&dir, &report).expect("test data").is_empty());

    let sites = dir.join("sites.csv");
    let text = std::fs::read_to_string(&sites).expect("test data");
    std::fs::write(
        &sites,
        text.replace("3000000000000,3,0", "3000000000001,3,0"),
    )
    .expect("test data");
    let problems = check_manifest(&dir).expect("test data");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("sites.csv: changed"));
    let differ = compare_dir(&dir, &report).expect("test data");
    assert_eq!(differ.len(), 1, "{differ:?}");
    assert!(differ[0].starts_with("sites.csv line 2"), "{differ:?}");

    std::fs::remove_file(dir.join("hourly.csv")).expect("test data");
    let manifest = std::fs::read_to_string(dir.join(MANIFEST)).expect("test data");
    std::fs::write(
        dir.join(MANIFEST),
        manifest.replace("  report.html\n", "  ../x\n"),
    )
    .expect("test data");
    let problems = check_manifest(&dir).expect("test data");
    assert!(
        problems.iter().any(|p| p.starts_with("hourly.csv")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("outside the report")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p == "report.html: not in MANIFEST.sha256"),
        "{problems:?}"
    );
    std::fs::remove_dir_all(&dir).expect("test data");
}

#[test]
fn the_manifest_is_sorted_and_in_sha256sum_form() {
    let m = manifest([("b.csv", b"b".as_slice()), ("a.csv", b"a".as_slice())]);
    assert_eq!(
        String::from_utf8(m).expect("test data"),
        format!("{}  a.csv\n{}  b.csv\n", sha256_hex(b"a"), sha256_hex(b"b"))
    );
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn a_name_a_spreadsheet_would_run_is_written_as_text() {
    assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    for bad in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
        assert!(text_cell(bad).starts_with('\''), "{bad:?}");
    }
    assert_eq!(text_cell("Toko Satu"), "Toko Satu");
    let mut report = sample(ReportStatus::Final);
    report.sites[0].display_name = "=cmd|' /C calc'!A0".into();
    let files = data_files(&report).expect("files");
    assert!(file(&files, "sites.csv").contains(",'=cmd|' /C calc'!A0,"));
}

#[cfg(unix)]
#[test]
fn the_check_reads_regular_files_only() {
    let dir = std::env::temp_dir().join(format!("saleboard-report-link-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let report = sample(ReportStatus::Final);
    write_dir(&dir, &report, None).expect("written");
    std::fs::remove_file(dir.join("hourly.csv")).expect("remove");
    std::os::unix::fs::symlink("/dev/zero", dir.join("hourly.csv")).expect("link");
    let problems = check_manifest(&dir).expect("checked");
    assert!(
        problems
            .iter()
            .any(|p| p == "hourly.csv: not a regular file"),
        "{problems:?}"
    );
    let differ = compare_dir(&dir, &report).expect("compared");
    assert!(
        differ
            .iter()
            .any(|p| p.starts_with("hourly.csv: not a regular file")),
        "{differ:?}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn every_breakdown_and_the_hours_state_how_they_add_up_to_the_national_net() {
    let mut report = sample(ReportStatus::Final);
    report.breakdown_watermark = 42; // the breakdowns are as of the headline
    // The keys in range fall 2 short of the net (half-even rounding); one out of range is
    // left out of the sum.
    report.categories = vec![
        ReportKey {
            rank: 1,
            key: "fashion".into(),
            net_minor: "3123456788998".into(),
            ..ReportKey::default()
        },
        ReportKey {
            rank: 0,
            key: "huge".into(),
            net_minor: "9".into(),
            out_of_range: true,
            ..ReportKey::default()
        },
    ];
    let files = data_files(&report).expect("files");
    let brand = file(&files, "breakdown-brand.csv");
    assert!(
        brand
            .lines()
            .next()
            .expect("header")
            .ends_with(",national_net_minor,difference_minor,difference_reason")
    );
    assert!(
        brand
            .lines()
            .nth(1)
            .expect("row")
            .ends_with(",3123456789000,0,"),
        "{brand}"
    );
    let category = file(&files, "breakdown-category.csv");
    for row in category.lines().skip(1) {
        assert!(
            row.ends_with(",3123456789000,2,half-even rounding of each converted total"),
            "{row}"
        );
    }
    assert!(
        category.contains(",fashion,"),
        "keys are written exactly: {category}"
    );
    let hourly = file(&files, "hourly.csv");
    assert!(
        hourly
            .lines()
            .skip(1)
            .all(|l| l.ends_with(",3123456789000,0,")),
        "{hourly}"
    );

    // Breakdowns behind the headline say so instead; the page states both.
    report.breakdown_watermark = 40;
    let adds = adds_up(
        &report,
        report
            .categories
            .iter()
            .filter(|k| !k.out_of_range)
            .map(|k| k.net_minor.as_str()),
        breakdowns_trail(&report),
    );
    assert_eq!(
        adds,
        Some(AddsUp {
            sum: 3_123_456_788_998,
            difference: 2,
            reason: Difference::Trailing
        })
    );
    report.breakdown_watermark = 42;
    report.hourly[0].net_minor = "99".into();
    let text: String = doc::document(&report, &[])
        .blocks
        .iter()
        .filter_map(|b| match b {
            doc::Block::Para(p) => Some(format!("{p}\n")),
            _ => None,
        })
        .collect();
    assert!(
        text.contains("Every key adds up to Rp 31.234.567.889,98: Rp 0,02 from the national net, the half-to-even rounding"),
        "{text}"
    );
    assert!(
        text.contains("The hours add up to Rp 31.234.567.889,99: Rp 0,01 from the national net"),
        "{text}"
    );
}
