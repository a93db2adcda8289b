//! The official report of an event as files (issue 29), from the figures of
//! `AdminService.GetEventReport` (an [`EventReport`]): `sites.csv`, `sites-currencies.csv`,
//! `breakdown-brand.csv`, `breakdown-category.csv`, `breakdown-origin.csv`, `hourly.csv`,
//! `summary.json` (the report itself in the proto3 JSON mapping), `report.html` (printable,
//! self-contained) and `MANIFEST.sha256` (`sha256sum -c` format). Every data file says
//! PROVISIONAL or FINAL on every row; a FINAL report's files depend only on its figures, so
//! two runs give the same bytes. The PDF is `saleboard-report-pdf`'s (kept apart so the
//! services, which serve the HTML page, never link a PDF library). No I/O but
//! [`write_dir`] and [`check_manifest`].

pub mod doc;
pub mod format;
pub mod html;

use std::path::Path;

use saleboard_proto::v1::{EventReport, ReportKey, ReportStatus};
use sha2::{Digest, Sha256};

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST.sha256";

/// The data files, in the order they are made (the report's pages name their hashes).
pub const DATA_FILES: [&str; 7] = [
    "sites.csv",
    "sites-currencies.csv",
    "breakdown-brand.csv",
    "breakdown-category.csv",
    "breakdown-origin.csv",
    "hourly.csv",
    "summary.json",
];

/// Why files cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportFilesError {
    /// Writing or reading a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The report could not be written as JSON or CSV.
    #[error("{0}")]
    Encode(String),
}

/// "PROVISIONAL" or "FINAL".
#[must_use]
pub fn status_word(report: &EventReport) -> &'static str {
    if report.status == ReportStatus::Final as i32 {
        "FINAL"
    } else {
        "PROVISIONAL"
    }
}

/// The reporting currency's code.
#[must_use]
pub fn currency(report: &EventReport) -> &str {
    report
        .event
        .as_ref()
        .map_or("", |e| e.reporting_currency.as_str())
}

fn event_id(report: &EventReport) -> &str {
    report.event.as_ref().map_or("", |e| e.event_id.as_str())
}

fn csv_file(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, ReportFilesError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let enc = |e: csv::Error| ReportFilesError::Encode(e.to_string());
    w.write_record(header).map_err(enc)?;
    for row in rows {
        w.write_record(&row).map_err(enc)?;
    }
    w.into_inner()
        .map_err(|e| ReportFilesError::Encode(e.to_string()))
}

/// The first columns of every data row: the status, the event, the watermark and (while
/// provisional) the time of the figures.
fn stamp(report: &EventReport) -> [String; 4] {
    [
        status_word(report).to_owned(),
        event_id(report).to_owned(),
        report.watermark.to_string(),
        report
            .as_of
            .as_ref()
            .map(|t| format::rfc3339(t.seconds))
            .unwrap_or_default(),
    ]
}

/// Free text for a CSV cell: one that a spreadsheet would take for a formula (starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, so opening the file
/// never runs anything. Only names, which organizers type, need it: ids and breakdown keys are
/// slugs (`a-z`, `0-9`, `-`), which cannot make a formula that runs anything, and are written
/// exactly so they join with the API's.
fn text_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// How a table's figures add up to the headline's national net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddsUp {
    /// The sum of the table's figures (in range).
    pub sum: i128,
    /// The national net less that sum: zero, or what [`AddsUp::reason`] explains.
    pub difference: i128,
    /// Why the difference is there.
    pub reason: Difference,
}

/// Why a table's figures can differ from the national net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// They add up exactly.
    None,
    /// Each converted total of the table is rounded half to even on its own (the contract's
    /// rule), so their sum can differ from the national net by a few minor units.
    HalfEvenRounding,
    /// The breakdowns are of an earlier ledger position than the headline.
    Trailing,
}

impl Difference {
    /// The reason as the data files state it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::HalfEvenRounding => "half-even rounding of each converted total",
            Self::Trailing => "breakdowns of an earlier ledger position",
        }
    }
}

/// How `figures` (decimal minor units; empty for a figure that cannot be converted) add up to
/// the headline's national net; `None` when a figure or the net is not a number. `trailing`:
/// the figures are the breakdowns' and these trail the headline.
#[must_use]
pub fn adds_up<'a>(
    report: &EventReport,
    figures: impl IntoIterator<Item = &'a str>,
    trailing: bool,
) -> Option<AddsUp> {
    let net = report.headline.as_ref()?.net_minor.parse::<i128>().ok()?;
    let mut sum = 0_i128;
    for figure in figures.into_iter().filter(|f| !f.is_empty()) {
        sum = sum.checked_add(figure.parse::<i128>().ok()?)?;
    }
    let difference = net.checked_sub(sum)?;
    let reason = if difference == 0 {
        Difference::None
    } else if trailing {
        Difference::Trailing
    } else {
        Difference::HalfEvenRounding
    };
    Some(AddsUp {
        sum,
        difference,
        reason,
    })
}

/// Whether the breakdowns are of an earlier ledger position than the headline.
#[must_use]
pub fn breakdowns_trail(report: &EventReport) -> bool {
    report.breakdown_watermark < report.watermark
}

/// The columns that say, on every row of a table, how its figures add up to the national net.
const ADDS_UP_COLUMNS: [&str; 3] = [
    "national_net_minor",
    "difference_minor",
    "difference_reason",
];

fn adds_up_cells(report: &EventReport, adds: Option<AddsUp>) -> [String; 3] {
    let net = report
        .headline
        .as_ref()
        .map(|h| h.net_minor.clone())
        .unwrap_or_default();
    match adds {
        Some(a) => [net, a.difference.to_string(), a.reason.as_str().to_owned()],
        None => [net, String::new(), String::new()],
    }
}

/// A breakdown's keys; every row also states how the keys in range add up to the national net
/// (`net_minor`'s sum plus `difference_minor` is `national_net_minor`), as the document does.
fn breakdown(report: &EventReport, keys: &[ReportKey]) -> Result<Vec<u8>, ReportFilesError> {
    let adds = adds_up(
        report,
        keys.iter()
            .filter(|k| !k.out_of_range)
            .map(|k| k.net_minor.as_str()),
        breakdowns_trail(report),
    );
    let tail = adds_up_cells(report, adds);
    let mut header = vec![
        "status",
        "event_id",
        "watermark",
        "as_of",
        "rank",
        "key",
        "net_minor",
        "sale_count",
        "refund_count",
        "site_count",
        "out_of_range",
    ];
    header.extend(ADDS_UP_COLUMNS);
    csv_file(
        &header,
        keys.iter().map(|k| {
            let mut row = stamp(report).to_vec();
            row.extend([
                k.rank.to_string(),
                k.key.clone(),
                k.net_minor.clone(),
                k.sale_count.to_string(),
                k.refund_count.to_string(),
                k.site_count.to_string(),
                k.out_of_range.to_string(),
            ]);
            row.extend(tail.iter().cloned());
            row
        }),
    )
}

/// Every data file of `report`, by name, in [`DATA_FILES`] order.
///
/// # Errors
/// When the report cannot be encoded (never for a report the service made).
pub fn data_files(report: &EventReport) -> Result<Vec<(&'static str, Vec<u8>)>, ReportFilesError> {
    let sites = csv_file(
        &[
            "status",
            "event_id",
            "watermark",
            "as_of",
            "rank",
            "site_id",
            "display_name",
            "held",
            "out_of_range",
            "net_minor",
            "sale_count",
            "refund_count",
            "rank_at_end",
            "net_at_end_minor",
            "late_refunded_minor",
            "unconverted_currencies",
        ],
        report.sites.iter().map(|s| {
            let (sales, refunds) = s.currencies.iter().fold((0u64, 0u64), |(a, b), c| {
                (
                    a.saturating_add(c.sale_count),
                    b.saturating_add(c.refund_count),
                )
            });
            let mut row = stamp(report).to_vec();
            row.extend([
                s.rank.to_string(),
                s.site_id.clone(),
                text_cell(&s.display_name),
                s.held.to_string(),
                s.out_of_range.to_string(),
                s.net_minor.clone(),
                sales.to_string(),
                refunds.to_string(),
                s.rank_at_end.to_string(),
                s.net_at_end_minor.clone(),
                s.late_refunded_minor.clone(),
                s.unconverted_currencies.join(" "),
            ]);
            row
        }),
    )?;
    let currencies = csv_file(
        &[
            "status",
            "event_id",
            "watermark",
            "as_of",
            "site_id",
            "currency",
            "sale_count",
            "gross_minor",
            "refund_count",
            "refunded_minor",
            "net_minor",
        ],
        report.sites.iter().flat_map(|s| {
            s.currencies.iter().map(|c| {
                let mut row = stamp(report).to_vec();
                row.extend([
                    s.site_id.clone(),
                    c.currency.clone(),
                    c.sale_count.to_string(),
                    c.gross_minor.clone(),
                    c.refund_count.to_string(),
                    c.refunded_minor.clone(),
                    c.net_minor.clone(),
                ]);
                row
            })
        }),
    )?;
    let zone = report.event.as_ref().map_or("", |e| e.time_zone.as_str());
    let mut running: Option<i128> = Some(0);
    let hourly_tail = adds_up_cells(
        report,
        adds_up(
            report,
            report.hourly.iter().map(|h| h.net_minor.as_str()),
            false,
        ),
    );
    let mut hourly_header = vec![
        "status",
        "event_id",
        "watermark",
        "as_of",
        "hour_start_utc",
        "hour_start_local",
        "net_minor",
        "cumulative_net_minor",
    ];
    hourly_header.extend(ADDS_UP_COLUMNS);
    let hourly = csv_file(
        &hourly_header,
        report.hourly.iter().map(|h| {
            let seconds = h.hour_start.as_ref().map_or(0, |t| t.seconds);
            running = running
                .zip(h.net_minor.parse::<i128>().ok())
                .and_then(|(a, b)| a.checked_add(b));
            let mut row = stamp(report).to_vec();
            row.extend([
                format::rfc3339(seconds),
                format::time(seconds, zone),
                h.net_minor.clone(),
                running.map(|v| v.to_string()).unwrap_or_default(),
            ]);
            row.extend(hourly_tail.iter().cloned());
            row
        }),
    )?;
    let mut summary = saleboard_proto::json::to_string(report)
        .map_err(|e| ReportFilesError::Encode(e.to_string()))?
        .into_bytes();
    summary.push(b'\n');
    Ok(vec![
        ("sites.csv", sites),
        ("sites-currencies.csv", currencies),
        ("breakdown-brand.csv", breakdown(report, &report.brands)?),
        (
            "breakdown-category.csv",
            breakdown(report, &report.categories)?,
        ),
        ("breakdown-origin.csv", breakdown(report, &report.origins)?),
        ("hourly.csv", hourly),
        ("summary.json", summary),
    ])
}

/// The SHA-256 of `bytes`, in lower-case hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The manifest of `files`: one `<sha256>  <name>` line each, by name (`sha256sum -c`
/// reads it).
#[must_use]
pub fn manifest<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut lines: Vec<(String, String)> = files
        .into_iter()
        .map(|(name, bytes)| (name.to_owned(), sha256_hex(bytes)))
        .collect();
    lines.sort();
    lines
        .into_iter()
        .map(|(name, hash)| format!("{hash}  {name}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Every file of the report but the PDF (whose bytes `pdf` gives, when there is one) and the
/// manifest over all of them, written into `dir` (made if missing). Returns the names written.
///
/// # Errors
/// When a file cannot be written.
pub fn write_dir(
    dir: &Path,
    report: &EventReport,
    pdf: Option<&[u8]>,
) -> Result<Vec<String>, ReportFilesError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportFilesError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut files: Vec<(&str, Vec<u8>)> = data_files(report)?;
    let hashes: Vec<(String, String)> = files
        .iter()
        .map(|(n, b)| ((*n).to_owned(), sha256_hex(b)))
        .collect();
    files.push(("report.html", html::page(report, &hashes).into_bytes()));
    if let Some(pdf) = pdf {
        files.push(("report.pdf", pdf.to_vec()));
    }
    let manifest = manifest(files.iter().map(|(n, b)| (*n, b.as_slice())));
    files.push((MANIFEST, manifest));
    let mut names = Vec::new();
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        names.push((*name).to_owned());
    }
    Ok(names)
}

/// The data files' names and hashes, as the report's pages state them.
///
/// # Errors
/// As [`data_files`].
pub fn data_hashes(report: &EventReport) -> Result<Vec<(String, String)>, ReportFilesError> {
    Ok(data_files(report)?
        .iter()
        .map(|(n, b)| ((*n).to_owned(), sha256_hex(b)))
        .collect())
}

/// Checks `dir` against its manifest: every file named there has its hash, and nothing the
/// report writes is missing from it. Returns one line per problem (empty: it holds).
///
/// # Errors
/// When the manifest cannot be read.
pub fn check_manifest(dir: &Path) -> Result<Vec<String>, ReportFilesError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|source| ReportFilesError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut problems = Vec::new();
    let mut named = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let Some((hash, name)) = line.split_once("  ") else {
            problems.push(format!(
                "{MANIFEST} line {}: not \"<sha256>  <file>\"",
                i + 1
            ));
            continue;
        };
        if name.contains('/') || name.contains("..") {
            problems.push(format!(
                "{MANIFEST} line {}: {name:?} is outside the report",
                i + 1
            ));
            continue;
        }
        named.insert(name.to_owned());
        match hash_file(&dir.join(name)) {
            Ok(actual) if actual == hash => {}
            Ok(_) => problems.push(format!("{name}: changed since the report was made (its SHA-256 differs from the manifest's)")),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    // Every file the report writes is named: one left out of the manifest is not checked.
    let pdf = dir.join("report.pdf").exists().then_some("report.pdf");
    for name in DATA_FILES.iter().copied().chain(["report.html"]).chain(pdf) {
        if !named.contains(name) {
            problems.push(format!("{name}: not in {MANIFEST}"));
        }
    }
    Ok(problems)
}

/// Files larger than this are not read by a check (a report's files are far smaller).
const MAX_FILE: u64 = 1 << 30;

/// The SHA-256 of a regular file, read in pieces (never a link, a pipe or a device: a copy
/// of a report from anywhere cannot make the check hang or read the machine's files).
fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other("larger than any report file"));
    }
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// A regular file's bytes (see [`hash_file`]).
///
/// # Errors
/// When it is not a regular file, is larger than any report file, or cannot be read.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other("larger than any report file"));
    }
    std::fs::read(path)
}

/// Compares the data files and the page in `dir` with those `fresh` (the report made again
/// from the database) gives: one line per file that differs, naming its first differing
/// line.
///
/// # Errors
/// As [`data_files`].
pub fn compare_dir(dir: &Path, fresh: &EventReport) -> Result<Vec<String>, ReportFilesError> {
    let mut out = Vec::new();
    let mut files = data_files(fresh)?;
    let hashes: Vec<(String, String)> = files
        .iter()
        .map(|(n, b)| ((*n).to_owned(), sha256_hex(b)))
        .collect();
    files.push(("report.html", html::page(fresh, &hashes).into_bytes()));
    for (name, bytes) in files {
        let held = match read_regular(&dir.join(name)) {
            Ok(b) => b,
            Err(e) => {
                out.push(format!("{name}: {e}"));
                continue;
            }
        };
        if held == bytes {
            continue;
        }
        let (held, now) = (
            String::from_utf8_lossy(&held),
            String::from_utf8_lossy(&bytes),
        );
        let (mut h, mut n) = (held.lines(), now.lines());
        let mut line = 0;
        loop {
            line += 1;
            match (h.next(), n.next()) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => {
                    out.push(format!(
                        "{name} line {line}: the file says {:?}, the database gives {:?}",
                        a.unwrap_or("(nothing)"),
                        b.unwrap_or("(nothing)")
                    ));
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
