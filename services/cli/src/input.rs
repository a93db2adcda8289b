//! Reading transactions from CSV (header row, columns named like the `Transaction` fields,
//! `occurred_at` in RFC 3339; `brand`, `category` and `origin` (`domestic`, `cross-border` or
//! empty) optional) or JSON Lines. A malformed row becomes an error naming its line,
//! never a reason to stop reading the others.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use saleboard_domain::Currency;
use saleboard_proto::Timestamp;
use saleboard_proto::v1::{Origin, Transaction, TransactionKind};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One row of input: where it starts, what it said, and the transaction or why it cannot be
/// one.
#[derive(Debug)]
pub struct Row {
    /// Physical line number (from 1) where the row starts.
    pub line: u64,
    /// The row as written, to give it back in the rejects file.
    pub original: Original,
    /// The transaction, or a sentence saying why the row is not one.
    pub parsed: Result<Transaction, String>,
}

/// A row as written in its file.
#[derive(Debug, Clone)]
pub enum Original {
    /// CSV values, with the file's header (column names in order).
    Csv {
        /// The header row.
        header: Arc<Vec<String>>,
        /// The values, in column order.
        values: Vec<String>,
    },
    /// A JSON object's members, values as their exact JSON text.
    Json(BTreeMap<String, Box<RawValue>>),
    /// A line that is not a JSON object, as read.
    Text(String),
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated with a header row.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    /// By extension: `.jsonl`, `.ndjson` and `.json` are JSON Lines; anything else CSV.
    #[must_use]
    pub fn of(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => Self::JsonLines,
            _ => Self::Csv,
        }
    }
}

fn field<'a>(fields: &'a HashMap<String, String>, name: &str) -> &'a str {
    fields.get(name).map_or("", String::as_str)
}

/// How the `amount` column groups thousands and marks decimals, when a shop's export writes its
/// numbers as people read them (`--number-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NumberFormat {
    /// Indonesian: `.` groups thousands, `,` marks decimals (`1.250.000` or `15,99`).
    Id,
    /// English: `,` groups thousands, `.` marks decimals (`1,250,000` or `15.99`).
    En,
}

impl NumberFormat {
    /// `text` with its grouping taken out and its decimal mark a point (`1.250.000,5` in `id`:
    /// `1250000.5`); `None` unless the groups are of three digits after the first.
    fn plain(self, text: &str) -> Option<String> {
        let (group, decimal) = match self {
            Self::Id => ('.', ','),
            Self::En => (',', '.'),
        };
        let (sign, unsigned) = match text.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", text),
        };
        let (int, frac) = match unsigned.split_once(decimal) {
            Some((int, frac)) => (int, Some(frac)),
            None => (unsigned, None),
        };
        let groups: Vec<&str> = int.split(group).collect();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let grouped_right =
            groups.len() == 1 || (groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3));
        if !groups.iter().all(|g| digits(g)) || !grouped_right || frac.is_some_and(|f| !digits(f)) {
            return None;
        }
        Some(format!(
            "{sign}{}{}",
            groups.concat(),
            frac.map_or(String::new(), |f| format!(".{f}"))
        ))
    }

    /// The format whose grouping `text` looks like (`150.000`, `1,250,000`), if any.
    fn looks_like(text: &str) -> Option<Self> {
        [Self::Id, Self::En].into_iter().find(|f| {
            let group = if *f == Self::Id { '.' } else { ',' };
            let int = text
                .split(if *f == Self::Id { ',' } else { '.' })
                .next()
                .unwrap_or("");
            int.contains(group) && f.plain(text).is_some()
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::En => "en",
        }
    }
}

/// A currency as files write it: the ISO 4217 code in any case, or a spelling that can only
/// mean one (`Rp` is the rupiah).
fn currency_code(text: &str) -> String {
    let upper = text.trim().to_ascii_uppercase();
    match upper.as_str() {
        "RP" | "RP." => "IDR".to_owned(),
        _ => upper,
    }
}

/// Builds a transaction from named text fields, amounts written plainly (`15.99`).
///
/// # Errors
/// Every problem of the row, each naming its field.
pub fn transaction(fields: &HashMap<String, String>) -> Result<Transaction, String> {
    transaction_with(fields, None)
}

/// Builds a transaction from named text fields, the `amount` column written in `number` (when
/// given).
///
/// # Errors
/// Every problem of the row, each naming its field, in one sentence.
pub fn transaction_with(
    fields: &HashMap<String, String>,
    number: Option<NumberFormat>,
) -> Result<Transaction, String> {
    let mut problems = Vec::new();
    let kind = match field(fields, "kind").trim().to_ascii_uppercase().as_str() {
        "SALE" | "TRANSACTION_KIND_SALE" | "1" => TransactionKind::Sale,
        "REFUND" | "TRANSACTION_KIND_REFUND" | "2" => TransactionKind::Refund,
        other => {
            problems.push(format!("kind {other:?} is not SALE or REFUND"));
            TransactionKind::Unspecified
        }
    };
    // Files often say "idr" or "Rp"; the wire rule stays strict (ISO 4217 upper case), the CLI
    // helps.
    let currency = currency_code(field(fields, "currency"));
    let amount_minor = amount(fields, &currency, number).unwrap_or_else(|e| {
        problems.push(e);
        0
    });
    let when = field(fields, "occurred_at").trim();
    let occurred = match OffsetDateTime::parse(when, &Rfc3339) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(
                if time::PrimitiveDateTime::parse(
                    when,
                    &time::format_description::well_known::Iso8601::DEFAULT,
                )
                .is_ok()
                {
                    format!(
                        "occurred_at {when:?} has no time zone; add one, e.g. {when}+07:00 (WIB) or {when}Z (UTC)"
                    )
                } else {
                    format!("occurred_at {when:?} is not an RFC 3339 time ({e})")
                },
            );
            None
        }
    };
    let origin = match field(fields, "origin").trim().to_ascii_lowercase().as_str() {
        "" | "origin_unspecified" | "0" => Origin::Unspecified,
        "domestic" | "origin_domestic" | "1" => Origin::Domestic,
        "cross-border" | "origin_cross_border" | "2" => Origin::CrossBorder,
        other => {
            problems.push(format!(
                "origin {other:?} is not domestic, cross-border or empty"
            ));
            Origin::Unspecified
        }
    };
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let occurred = occurred.ok_or_else(|| "occurred_at is missing".to_owned())?;
    let nanos = i32::try_from(occurred.nanosecond())
        .map_err(|_| "occurred_at nanoseconds out of range".to_owned())?;
    Ok(Transaction {
        transaction_id: field(fields, "transaction_id").trim().to_owned(),
        store_id: field(fields, "store_id").trim().to_owned(),
        kind: kind.into(),
        currency,
        amount_minor,
        occurred_at: Some(Timestamp {
            seconds: occurred.unix_timestamp(),
            nanos,
        }),
        refund_of: field(fields, "refund_of").trim().to_owned(),
        // Slugs are lower case on the wire; files often capitalise them ("Nestle").
        brand: field(fields, "brand").trim().to_ascii_lowercase(),
        category: field(fields, "category").trim().to_ascii_lowercase(),
        origin: origin.into(),
    })
}

/// The amount in minor units: `amount_minor` as given, or `amount` (major units, as a shop
/// shows a price, grouped as `number` says when given) converted exactly by the currency's ISO
/// 4217 exponent. A number that looks grouped is refused with what to do about it.
fn amount(
    fields: &HashMap<String, String>,
    currency: &str,
    number: Option<NumberFormat>,
) -> Result<i64, String> {
    let minor = fields.get("amount_minor").map(|s| s.trim());
    let major = fields.get("amount").map(|s| s.trim());
    let grouped_hint = |text: &str| {
        NumberFormat::looks_like(text).map_or(String::new(), |f| {
            format!(
                "; it looks like thousands separators: write {}, or push with --number-format {}",
                f.plain(text).unwrap_or_default(),
                f.name()
            )
        })
    };
    match (minor, major) {
        (Some(_), Some(_)) => Err(BOTH_AMOUNTS.to_owned()),
        (Some(minor), None) => minor.parse::<i64>().map_err(|_| {
            format!(
                "amount_minor {minor:?} is not a whole number of minor units (for a price as \
                 the shop shows it, name the column amount){}",
                grouped_hint(minor)
            )
        }),
        (None, Some(major)) => {
            let currency = Currency::parse(currency).map_err(|e| {
                format!(
                    "currency {currency:?} is not an ISO 4217 code such as IDR or USD ({e}), so \
                     amount {major:?} cannot be converted to minor units"
                )
            })?;
            let plain = match number {
                Some(f) => f.plain(major).ok_or_else(|| {
                    format!(
                        "amount {major:?} is not a number written with --number-format {}",
                        f.name()
                    )
                })?,
                None => major.to_owned(),
            };
            currency.parse_major(&plain).map_err(|e| {
                format!(
                    "amount {e}{}",
                    if number.is_none() {
                        grouped_hint(major)
                    } else {
                        String::new()
                    }
                )
            })
        }
        (None, None) => Err("no amount_minor (or amount) given".to_owned()),
    }
}

/// Why a row or file with both amount columns is refused.
const BOTH_AMOUNTS: &str = "both amount_minor and amount are given; keep one: amount_minor in \
                            minor units (15.99 USD is 1599) or amount as the shop shows it (15.99)";

/// Reads every row of `path`, calling `each` per row (blocking I/O: run it off the runtime).
///
/// # Errors
/// When the file cannot be opened or its CSV header is unreadable.
pub fn read(
    path: &Path,
    number: Option<NumberFormat>,
    each: impl FnMut(Row) -> bool,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    read_from_with(
        Format::of(path),
        number,
        file,
        &path.display().to_string(),
        each,
    )
}

/// Reads every row of `input` in `format` (`name` says where from, in errors), calling `each`
/// per row until it returns false.
///
/// # Errors
/// When the CSV header is unreadable or lacks a required column.
pub fn read_from(
    format: Format,
    input: impl std::io::Read,
    name: &str,
    each: impl FnMut(Row) -> bool,
) -> anyhow::Result<()> {
    read_from_with(format, None, input, name, each)
}

/// [`read_from`], the `amount` column written in `number` when given.
///
/// # Errors
/// When the CSV header is unreadable or lacks a required column.
pub fn read_from_with(
    format: Format,
    number: Option<NumberFormat>,
    input: impl std::io::Read,
    name: &str,
    mut each: impl FnMut(Row) -> bool,
) -> anyhow::Result<()> {
    match format {
        Format::Csv => {
            // The reader's own line count skips blank lines; rows are reported by the physical
            // line they start on, found from their byte offset.
            let newlines = std::rc::Rc::new(std::cell::RefCell::new(LineEnds::default()));
            let line_of = |byte: u64| newlines.borrow().line_of(byte);
            // Excel in an Indonesian (or any comma-decimal) locale writes `;`: a header row
            // with semicolons and no comma is read that way.
            let mut input = std::io::BufReader::new(input);
            let head = std::io::BufRead::fill_buf(&mut input)
                .map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
            let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
            let delimiter = if first_line.contains(&b';') && !first_line.contains(&b',') {
                b';'
            } else {
                b','
            };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .delimiter(delimiter)
                .trim(csv::Trim::All)
                .from_reader(Newlines {
                    inner: input,
                    offset: 0,
                    previous: 0,
                    seen: newlines.clone(),
                });
            let headers = reader
                .headers()
                .map_err(|e| anyhow::anyhow!("{name}: cannot read the header row: {e}"))?
                .clone();
            let has = |column: &str| headers.iter().any(|h| h == column);
            for required in REQUIRED {
                if !has(required) {
                    anyhow::bail!("{name}: the header row has no {required:?} column");
                }
            }
            match (has("amount_minor"), has("amount")) {
                (true, true) => anyhow::bail!("{name}: the header row has {BOTH_AMOUNTS}"),
                (false, false) => anyhow::bail!(
                    "{name}: the header row has no \"amount_minor\" (minor units) or \"amount\" \
                     (as the shop shows it) column"
                ),
                _ => {}
            }
            let header: Arc<Vec<String>> = Arc::new(headers.iter().map(str::to_owned).collect());
            for record in reader.records() {
                let row = match record {
                    Ok(r) => {
                        let fields = headers
                            .iter()
                            .zip(r.iter())
                            .map(|(h, v)| (h.to_owned(), v.to_owned()))
                            .collect();
                        Row {
                            line: r.position().map_or(0, |p| line_of(p.byte())),
                            original: Original::Csv {
                                header: header.clone(),
                                values: r.iter().map(str::to_owned).collect(),
                            },
                            parsed: transaction_with(&fields, number),
                        }
                    }
                    Err(e) => Row {
                        line: e.position().map_or(0, |p| line_of(p.byte())),
                        original: Original::Csv {
                            header: header.clone(),
                            values: Vec::new(),
                        },
                        parsed: Err(format!("unreadable CSV: {e}")),
                    },
                };
                if !each(row) {
                    break;
                }
            }
        }
        Format::JsonLines => {
            for (i, line) in std::io::BufReader::new(input).lines().enumerate() {
                let line_number = i as u64 + 1;
                let row = match line {
                    Err(e) => Row {
                        line: line_number,
                        original: Original::Text(String::new()),
                        parsed: Err(format!("unreadable line: {e}")),
                    },
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => {
                        let (original, parsed) = json_line(text, number);
                        Row {
                            line: line_number,
                            original,
                            parsed,
                        }
                    }
                };
                if !each(row) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Byte offsets of the line ends read so far.
#[derive(Debug, Default)]
struct LineEnds {
    /// Offsets of every `\n`.
    newlines: Vec<u64>,
    /// Offsets of every `\r` directly before a `\n`.
    returns: std::collections::HashSet<u64>,
}

impl LineEnds {
    /// The physical line (from 1) of the record whose parse began at `byte`: past the blank
    /// lines ("\n" or "\r\n") the parse skipped before its first field.
    fn line_of(&self, byte: u64) -> u64 {
        let mut index = self.newlines.partition_point(|&n| n < byte);
        let mut at = byte;
        while let Some(&n) = self.newlines.get(index) {
            let blank = n == at || (n == at + 1 && self.returns.contains(&at));
            if !blank {
                break;
            }
            at = n + 1;
            index += 1;
        }
        1 + index as u64
    }
}

/// A reader that notes the line ends that pass through it.
struct Newlines<R> {
    inner: R,
    offset: u64,
    previous: u8,
    seen: std::rc::Rc<std::cell::RefCell<LineEnds>>,
}

impl<R: std::io::Read> std::io::Read for Newlines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut seen = self.seen.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            if *b == b'\n' {
                seen.newlines.push(at);
                if self.previous == b'\r' {
                    seen.returns.insert(at - 1);
                }
            }
            self.previous = *b;
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// One JSON Lines line: its members (or its text when it is not an object) and the
/// transaction.
fn json_line(
    text: String,
    number: Option<NumberFormat>,
) -> (Original, Result<Transaction, String>) {
    match serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(&text) {
        Ok(members) => {
            let parsed = json_row(&members, number);
            (Original::Json(members), parsed)
        }
        Err(e) => {
            let why = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(_) => "not a JSON object".to_owned(),
                Err(_) => format!("not JSON: {e}"),
            };
            (Original::Text(text), Err(why))
        }
    }
}

/// A transaction from a JSON object's members. Strings are read as their text, numbers as
/// written (exactly: never through a float), `null` as absent.
fn json_row(
    members: &BTreeMap<String, Box<RawValue>>,
    number: Option<NumberFormat>,
) -> Result<Transaction, String> {
    let fields = members
        .iter()
        .filter(|(_, v)| v.get() != "null")
        .map(|(k, v)| {
            let raw = v.get();
            let text = if raw.starts_with('"') {
                serde_json::from_str::<String>(raw).unwrap_or_default()
            } else {
                raw.to_owned()
            };
            (k.clone(), text)
        })
        .collect::<HashMap<String, String>>();
    let missing = REQUIRED
        .iter()
        .copied()
        .find(|k| !fields.contains_key(*k))
        .or_else(|| {
            (!fields.contains_key("amount_minor") && !fields.contains_key("amount"))
                .then_some("amount_minor")
        });
    if let Some(missing) = missing {
        let mut unknown: Vec<&str> = fields
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN.contains(k))
            .collect();
        unknown.sort_unstable();
        return Err(format!(
            "no {missing:?} key{}; keys are snake_case: {}",
            if unknown.is_empty() {
                String::new()
            } else {
                format!(" (unknown keys: {})", unknown.join(", "))
            },
            KNOWN.join(", ")
        ));
    }
    transaction_with(&fields, number)
}

/// Keys a row must have (and one of `amount_minor` or `amount`).
const REQUIRED: [&str; 4] = ["transaction_id", "kind", "currency", "occurred_at"];

/// Every key a row may have.
const KNOWN: [&str; 11] = [
    "transaction_id",
    "store_id",
    "kind",
    "currency",
    "amount_minor",
    "amount",
    "occurred_at",
    "refund_of",
    "brand",
    "category",
    "origin",
];

/// Counts data rows (for a progress bar): lines minus the CSV header.
#[must_use]
pub fn count_rows(path: &Path) -> u64 {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    let lines = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    match Format::of(path) {
        Format::Csv => lines.saturating_sub(1),
        Format::JsonLines => lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn json_text(text: &str) -> Result<Transaction, String> {
        json_line(text.to_owned(), None).1
    }

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_a_row() {
        let t = transaction(&fields(&[
            ("transaction_id", "T-1"),
            ("kind", "refund"),
            ("currency", "IDR"),
            ("amount_minor", "150000"),
            ("occurred_at", "2026-12-12T01:02:03.5+07:00"),
            ("refund_of", "S-1"),
        ]))
        .expect("parses");
        assert_eq!(t.kind(), TransactionKind::Refund);
        assert_eq!(t.amount_minor, 150_000);
        assert_eq!(
            t.occurred_at,
            Some(Timestamp {
                seconds: 1_797_012_123,
                nanos: 500_000_000
            })
        );
        assert_eq!(t.refund_of, "S-1");
        assert_eq!((t.brand.as_str(), t.category.as_str()), ("", ""));
        assert_eq!(t.origin(), Origin::Unspecified);
    }

    #[test]
    fn segments_are_optional_columns() {
        let base = [
            ("transaction_id", "T"),
            ("kind", "SALE"),
            ("currency", "IDR"),
            ("amount_minor", "1"),
            ("occurred_at", "2026-12-12T00:00:00Z"),
        ];
        for (origin, want) in [
            ("domestic", Origin::Domestic),
            ("Cross-Border", Origin::CrossBorder),
            ("ORIGIN_CROSS_BORDER", Origin::CrossBorder),
            ("", Origin::Unspecified),
        ] {
            let mut f = fields(&base);
            f.insert("brand".into(), " Nestle ".into());
            f.insert("category".into(), "food-drink".into());
            f.insert("origin".into(), origin.into());
            let t = transaction(&f).expect("parses");
            assert_eq!(
                (t.brand.as_str(), t.category.as_str()),
                ("nestle", "food-drink")
            );
            assert_eq!(t.origin(), want, "{origin}");
        }
        let t = json_text(
            r#"{"transaction_id":"T","kind":"SALE","currency":"IDR","amount_minor":1,"occurred_at":"2026-12-12T00:00:00Z","brand":"wardah","origin":"domestic"}"#,
        )
        .expect("json");
        assert_eq!((t.brand.as_str(), t.origin()), ("wardah", Origin::Domestic));
    }

    #[test]
    fn names_the_bad_field() {
        let base = [
            ("transaction_id", "T"),
            ("kind", "SALE"),
            ("currency", "IDR"),
            ("amount_minor", "1"),
            ("occurred_at", "2026-12-12T00:00:00Z"),
        ];
        for (name, value, says) in [
            ("kind", "BUY", "kind"),
            ("amount_minor", "1.5", "amount_minor"),
            ("occurred_at", "yesterday", "occurred_at"),
            ("origin", "import", "origin"),
        ] {
            let mut f = fields(&base);
            f.insert(name.into(), value.into());
            let err = transaction(&f).expect_err(name);
            assert!(err.starts_with(says), "{err}");
        }
        assert!(
            json_text("{not json")
                .expect_err("bad")
                .starts_with("not JSON")
        );
        assert!(json_text("[1]").is_err());
        let ok = json_text(r#"{"transaction_id":"T","kind":"SALE","currency":"USD","amount_minor":125,"occurred_at":"2026-12-12T00:00:00Z"}"#).expect("json");
        assert_eq!(ok.amount_minor, 125);
    }

    #[test]
    fn every_problem_of_a_row_is_named_at_once() {
        let f = fields(&[
            ("transaction_id", "T"),
            ("kind", "BUY"),
            ("currency", "IDR"),
            ("amount", "150.000"),
            ("occurred_at", "yesterday"),
        ]);
        let err = transaction(&f).expect_err("three problems");
        for says in [
            "kind \"BUY\"",
            "amount \"150.000\"",
            "occurred_at \"yesterday\"",
        ] {
            assert!(err.contains(says), "{says} in {err}");
        }
    }

    #[test]
    fn grouped_amounts_get_a_hint_or_are_read_with_a_number_format() {
        let row = |amount: &str, currency: &str| {
            fields(&[
                ("transaction_id", "T"),
                ("kind", "SALE"),
                ("currency", currency),
                ("amount", amount),
                ("occurred_at", "2026-12-12T00:00:00Z"),
            ])
        };
        for (amount, plain, format) in [
            ("150.000", "150000", "id"),
            ("1.250.000", "1250000", "id"),
            ("1,250,000", "1250000", "en"),
        ] {
            let err = transaction(&row(amount, "IDR")).expect_err(amount);
            assert!(
                err.contains(&format!(
                    "looks like thousands separators: write {plain}, or push with --number-format {format}"
                )),
                "{err}"
            );
        }
        let read = |amount: &str, format| {
            transaction_with(&row(amount, "IDR"), Some(format)).map(|t| t.amount_minor)
        };
        assert_eq!(read("1.250.000", NumberFormat::Id), Ok(125_000_000));
        assert_eq!(read("1.250.000,5", NumberFormat::Id), Ok(125_000_050));
        assert_eq!(read("1,250,000.50", NumberFormat::En), Ok(125_000_050));
        assert_eq!(read("150000", NumberFormat::Id), Ok(15_000_000));
        assert!(
            read("1.25.000", NumberFormat::Id).is_err(),
            "groups of three"
        );
        assert_eq!(read("1,25", NumberFormat::Id), Ok(125), "a decimal comma");
        assert!(read("12,5,0", NumberFormat::Id).is_err());
        // Rp is the rupiah; a currency nobody knows is blamed, not the amount.
        let t = transaction(&row("15000", "Rp")).expect("Rp");
        assert_eq!((t.currency.as_str(), t.amount_minor), ("IDR", 1_500_000));
        let err = transaction(&row("15000", "Dollar")).expect_err("unknown currency");
        assert!(
            err.starts_with("currency \"DOLLAR\" is not an ISO 4217 code"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const HEADER: &str =
        "transaction_id,store_id,kind,currency,amount_minor,occurred_at,refund_of\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever a shop's export holds, every row becomes a transaction or an error naming
        /// its line; reading never panics or stops early.
        #[test]
        fn any_file_reads_row_by_row(
            body in "([A-Za-z0-9,\"{}:.\\ -]{0,60}\n){0,8}",
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            for format in [Format::Csv, Format::JsonLines] {
                let mut input = HEADER.as_bytes().to_vec();
                input.extend_from_slice(body.as_bytes());
                input.extend_from_slice(&garbage);
                let mut rows = 0;
                drop(read_from(format, input.as_slice(), "fuzz", |Row { line, parsed: row, .. }| {
                    rows += 1;
                    if let Err(why) = row {
                        assert!(!why.is_empty(), "line {line}");
                    }
                    true
                }));
                let lines = input.iter().filter(|b| **b == b'\n' || **b == b'\r').count();
                prop_assert!(rows <= lines + 1, "{rows} rows from {lines} line ends");
            }
        }
    }
}

#[cfg(test)]
mod fields {
    use super::tests::json_text;
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn lower_case_currencies_are_upper_cased() {
        let t = transaction(&row(&[
            ("transaction_id", "T1"),
            ("kind", "SALE"),
            ("currency", "idr"),
            ("amount_minor", "100"),
            ("occurred_at", "2026-12-12T10:00:00+07:00"),
        ]))
        .expect("valid");
        assert_eq!(t.currency, "IDR");
    }

    #[test]
    fn camel_case_json_keys_are_named() {
        let err = json_text(
            r#"{"transactionId":"J1","kind":"SALE","currency":"IDR","amountMinor":1,"occurred_at":"2026-12-12T10:00:00Z"}"#,
        )
        .expect_err("camelCase");
        assert!(
            err.contains("no \"transaction_id\" key")
                && err.contains("transactionId")
                && err.contains("amountMinor"),
            "{err}"
        );
    }

    #[test]
    fn semicolon_separated_files_are_read() {
        let csv = "transaction_id;kind;currency;amount_minor;occurred_at\n\
                   T1;SALE;IDR;1500000;2026-12-12T10:00:00+07:00\n";
        let mut rows = Vec::new();
        read_from(
            Format::Csv,
            csv.as_bytes(),
            "t",
            |Row {
                 line, parsed: row, ..
             }| {
                rows.push((line, row.map(|t| (t.transaction_id, t.amount_minor))));
                true
            },
        )
        .expect("read");
        assert_eq!(rows, [(2, Ok(("T1".to_owned(), 1_500_000)))]);
    }

    #[test]
    fn a_time_without_a_zone_gets_a_hint() {
        let err = transaction(&row(&[
            ("transaction_id", "T1"),
            ("kind", "SALE"),
            ("currency", "IDR"),
            ("amount_minor", "100"),
            ("occurred_at", "2026-12-12T10:00:00"),
        ]))
        .expect_err("no zone");
        assert!(
            err.contains("no time zone") && err.contains("2026-12-12T10:00:00+07:00"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod line_numbers {
    use super::*;

    #[test]
    fn rows_are_numbered_by_physical_line() {
        let csv = "transaction_id,kind,currency,amount_minor,occurred_at\n\
                   T1,SALE,IDR,100,2026-12-12T10:00:00Z\n\
                   \n\
                   T2,SALE,IDR,oops,2026-12-12T10:00:00Z\n";
        let mut lines = Vec::new();
        read_from(
            Format::Csv,
            csv.as_bytes(),
            "t",
            |Row {
                 line, parsed: row, ..
             }| {
                lines.push((line, row.is_ok()));
                true
            },
        )
        .expect("read");
        assert_eq!(lines, [(2, true), (4, false)]);
        let crlf = "transaction_id,kind,currency,amount_minor,occurred_at\r\n\r\n\
                    x\r\n\
                    T2,SALE,IDR,1,2026-12-12T10:00:00Z\r\n";
        let mut lines = Vec::new();
        read_from(
            Format::Csv,
            crlf.as_bytes(),
            "t",
            |Row {
                 line, parsed: row, ..
             }| {
                lines.push((line, row.is_ok()));
                true
            },
        )
        .expect("read");
        assert_eq!(
            lines,
            [(3, false), (4, true)],
            "CRLF, a blank line, a one-character row"
        );
        let jsonl = "{\"transaction_id\":\"J1\",\"kind\":\"SALE\",\"currency\":\"IDR\",\"amount_minor\":1,\"occurred_at\":\"2026-12-12T10:00:00Z\"}\n\
                     \n\
                     {broken\n";
        let mut lines = Vec::new();
        read_from(
            Format::JsonLines,
            jsonl.as_bytes(),
            "t",
            |Row {
                 line, parsed: row, ..
             }| {
                lines.push((line, row.is_ok()));
                true
            },
        )
        .expect("read");
        assert_eq!(lines, [(1, true), (3, false)]);
    }
}
