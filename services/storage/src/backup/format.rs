//! The backup file, version 1: JSON Lines (one JSON value and `\n` per line), written and read
//! one line at a time so neither side ever holds more than a line (and a batch of rows).
//!
//! ```text
//! {"saleboard_backup":1,"source":{"backend":"postgres","migration":12},"written_at_ns":...,"written_by":"saleboard 0.1.0"}
//! {"columns":["site_id","display_name","created_at_ns","disabled_at_ns"],"section":"sites"}
//! ["toko-satu","Toko Satu",1765500000000000000,null]
//! {"end":"sites","rows":1}
//! ...                  (api_keys, events, exchange_rates, organizers, audit_log,
//!                       admin_actions, site_holds, integrity_policies, integrity_flags,
//!                       integrity_end_rankings, ledger)
//! {"trailer":{"rows":{"sites":1,...},"sha256":"<hex>"}}
//! ```
//!
//! The trailer's SHA-256 covers every byte before the trailer line; the trailer is the last
//! line. Each section names its columns, so a reader checks it reads what it expects; rows are
//! JSON arrays in that order. A reader refuses a section it does not know (restoring without
//! it would lose data silently); sections added later are new names, marked
//! [`Section::added_later`], and a later reader takes an older file without them as empty
//! (the organizers and the audit log came with issue 27, the actions and holds with issue 28,
//! then the adjustments: a file written before them has none). Only a change that an older reader would misread raises [`FORMAT_VERSION`].

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::BackupError;

/// The format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// The longest line a reader takes: far above any row (ids are at most 64 characters), so a
/// file without line breaks is refused instead of read into memory whole.
pub const MAX_LINE: usize = 1 << 20;

/// One section of the file: a table, and its columns in the order rows hold them.
#[derive(Debug, PartialEq, Eq)]
pub struct Section {
    /// Its name in the file.
    pub name: &'static str,
    /// Its columns, in row order.
    pub columns: &'static [&'static str],
    /// Added to the format after its first files were written: a file without it holds none
    /// of its rows (every other section must be present, perhaps empty).
    pub added_later: bool,
}

/// Registered sites.
pub const SITES: Section = Section {
    name: "sites",
    columns: &["site_id", "display_name", "created_at_ns", "disabled_at_ns"],
    added_later: false,
};

/// API keys, their secrets only as the SHA-256 the database holds.
pub const API_KEYS: Section = Section {
    name: "api_keys",
    columns: &[
        "key_id",
        "site_id",
        "secret_hash",
        "created_at_ns",
        "revoked_at_ns",
    ],
    added_later: false,
};

/// Events.
pub const EVENTS: Section = Section {
    name: "events",
    columns: &[
        "event_id",
        "display_name",
        "starts_at_ns",
        "ends_at_ns",
        "closes_at_ns",
        "reporting_currency",
        "baseline_event_id",
        "time_zone",
    ],
    added_later: false,
};

/// Exchange rates, per event.
pub const EXCHANGE_RATES: Section = Section {
    name: "exchange_rates",
    columns: &["event_id", "currency", "rate"],
    added_later: false,
};

/// Named organizers, their secrets only as the SHA-256 the database holds (`bootstrap`, the
/// configured token, has no row).
pub const ORGANIZERS: Section = Section {
    name: "organizers",
    columns: &[
        "name",
        "secret_hash",
        "created_at_ns",
        "created_by",
        "revoked_at_ns",
    ],
    added_later: true,
};

/// The audit log, in position order, every entry as stored (its chain is checked as it is
/// read, and a break is reported, not mended: the file keeps what the database held).
pub const AUDIT_LOG: Section = Section {
    name: "audit_log",
    columns: &[
        "position",
        "at_ns",
        "organizer",
        "rpc",
        "request_json",
        "outcome",
        "prev_sha256",
        "sha256",
    ],
    added_later: true,
};

/// Organizers' actions (holds and releases, four eyes), pending and decided, by id.
pub const ADMIN_ACTIONS: Section = Section {
    name: "admin_actions",
    columns: &[
        "action_id",
        "kind",
        "state",
        "event_id",
        "site_id",
        "reason",
        "proposed_by",
        "proposed_at_ns",
        "decided_by",
        "decided_at_ns",
        "decision_note",
    ],
    added_later: true,
};

/// What each adjustment names and did (the actions' columns that came with adjustments), by
/// action id: an action of the file without a row here is a hold or a release.
pub const ACTION_ADJUSTMENTS: Section = Section {
    name: "action_adjustments",
    columns: &[
        "action_id",
        "transaction_ids",
        "flag_id",
        "voided_rows",
        "through_position",
    ],
    added_later: true,
};

/// The sites held in an event, each with the action that held it.
pub const SITE_HOLDS: Section = Section {
    name: "site_holds",
    columns: &["event_id", "site_id", "action_id", "held_at_ns"],
    added_later: true,
};

/// Each event's integrity thresholds as organizers set them (only the fields set, as JSON).
pub const INTEGRITY_POLICIES: Section = Section {
    name: "integrity_policies",
    columns: &["event_id", "overrides_json", "updated_at_ns", "updated_by"],
    added_later: true,
};

/// Integrity flags with their evaluations and the organizers' reviews (the evaluation raises
/// the flags again from the ledger; the reviews only a backup keeps).
pub const INTEGRITY_FLAGS: Section = Section {
    name: "integrity_flags",
    columns: &[
        "flag_id",
        "event_id",
        "site_id",
        "rule",
        "rule_version",
        "severity",
        "state",
        "statistic",
        "threshold",
        "national",
        "inputs_json",
        "watermark",
        "raised_at_ns",
        "cleared_at_watermark",
        "reviewed_by",
        "reviewed_at_ns",
        "note",
        "sample_seed",
    ],
    added_later: true,
};

/// Each ended event's places by gross at its end (place 0: the header, no site), as taken then:
/// not recomputable later.
pub const INTEGRITY_END_RANKINGS: Section = Section {
    name: "integrity_end_rankings",
    columns: &["event_id", "place", "site_id", "watermark", "taken_at_ns"],
    added_later: true,
};

/// The ledger, in position order from 1 without gaps (kind 1 sale, 2 refund; origin 0 none,
/// 1 domestic, 2 cross-border).
pub const LEDGER: Section = Section {
    name: "ledger",
    columns: &[
        "site_id",
        "transaction_id",
        "store_id",
        "kind",
        "currency",
        "amount_minor",
        "occurred_at_ns",
        "refund_of",
        "position",
        "event_id",
        "brand",
        "category",
        "origin",
        "key_id",
        "received_at_ns",
    ],
    added_later: false,
};

/// The sections of version 1, in the order they are written and read: every one is present
/// (perhaps with no rows), except that a file written before a section was
/// [`added_later`](Section::added_later) lacks it.
pub const SECTIONS: [&Section; 13] = [
    &SITES,
    &API_KEYS,
    &EVENTS,
    &EXCHANGE_RATES,
    &ORGANIZERS,
    &AUDIT_LOG,
    &ADMIN_ACTIONS,
    &ACTION_ADJUSTMENTS,
    &SITE_HOLDS,
    &INTEGRITY_POLICIES,
    &INTEGRITY_FLAGS,
    &INTEGRITY_END_RANKINGS,
    &LEDGER,
];

/// The first section from `next` on that a file must still hold (one not added later).
fn required_from(next: usize) -> Option<&'static Section> {
    SECTIONS.iter().skip(next).find(|s| !s.added_later).copied()
}

/// The header: what wrote the file, when, and from which schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version.
    pub format: u64,
    /// `saleboard` and its version.
    pub written_by: String,
    /// When the backup's read began (nanoseconds since the Unix epoch).
    pub written_at_ns: i64,
    /// The database it was taken from: `postgres` or `sqlite`.
    pub backend: String,
    /// The last migration applied to that database (per backend: the two number theirs
    /// apart). For the operator; the format version and the sections decide what reads it.
    pub migration: i64,
}

impl Header {
    fn to_line(&self) -> String {
        serde_json::json!({
            "saleboard_backup": self.format,
            "written_by": self.written_by,
            "written_at_ns": self.written_at_ns,
            "source": {"backend": self.backend, "migration": self.migration},
        })
        .to_string()
    }

    fn parse(line: &[u8]) -> Result<Self, BackupError> {
        let not_a_backup = || {
            BackupError::NotABackup("its first line is not a Saleboard backup header".to_owned())
        };
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|_| not_a_backup())?;
        let format = value
            .get("saleboard_backup")
            .ok_or_else(not_a_backup)?
            .as_u64()
            .filter(|v| *v > 0)
            .ok_or_else(|| malformed(1, "saleboard_backup is not a format version"))?;
        if format > FORMAT_VERSION {
            return Err(BackupError::NewerFormat {
                found: format,
                supported: FORMAT_VERSION,
            });
        }
        let text = |v: Option<&serde_json::Value>, field: &str| {
            v.and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| malformed(1, format!("header: {field} is missing")))
        };
        let int = |v: Option<&serde_json::Value>, field: &str| {
            v.and_then(serde_json::Value::as_i64)
                .ok_or_else(|| malformed(1, format!("header: {field} is missing")))
        };
        let source = value.get("source");
        Ok(Self {
            format,
            written_by: text(value.get("written_by"), "written_by")?,
            written_at_ns: int(value.get("written_at_ns"), "written_at_ns")?,
            backend: text(source.and_then(|s| s.get("backend")), "source.backend")?,
            migration: int(source.and_then(|s| s.get("migration")), "source.migration")?,
        })
    }
}

/// What a backup holds: its header and the rows of each section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The file's header.
    pub header: Header,
    /// Rows per section, in file order.
    pub rows: Vec<(&'static str, u64)>,
    /// Where the audit log's hash chain breaks, as the file holds it (checked as it is
    /// written and read): the entry's position and how. A break is kept as the database held
    /// it, never mended, and `saleboard verify` names it again after a restore.
    pub audit_break: Option<(u64, saleboard_domain::audit::ChainBreak)>,
}

impl Summary {
    /// The rows of a section (0 when absent).
    #[must_use]
    pub fn rows_of(&self, section: &str) -> u64 {
        self.rows
            .iter()
            .find(|(name, _)| *name == section)
            .map_or(0, |(_, n)| *n)
    }
}

fn malformed(line: u64, detail: impl Into<String>) -> BackupError {
    BackupError::Malformed {
        line,
        detail: detail.into(),
    }
}

/// Writes a backup line by line, hashing what it writes.
pub(crate) struct Writer<W> {
    out: W,
    hasher: Sha256,
    line: Vec<u8>,
    header: Header,
    rows: Vec<(&'static str, u64)>,
    /// The section being written and its rows so far.
    open: Option<(&'static str, u64)>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Writes the header.
    pub(crate) async fn start(out: W, header: Header) -> Result<Self, BackupError> {
        let mut writer = Self {
            out,
            hasher: Sha256::new(),
            line: Vec::with_capacity(512),
            header,
            rows: Vec::new(),
            open: None,
        };
        let line = writer.header.to_line();
        writer.line.extend_from_slice(line.as_bytes());
        writer.emit(true).await?;
        Ok(writer)
    }

    /// Begins a section.
    pub(crate) async fn begin(&mut self, section: &Section) -> Result<(), BackupError> {
        let line = serde_json::json!({"section": section.name, "columns": section.columns});
        self.line.extend_from_slice(line.to_string().as_bytes());
        self.open = Some((section.name, 0));
        self.emit(true).await
    }

    /// Writes one row of the open section (a tuple serializes as a JSON array).
    pub(crate) async fn row(&mut self, row: &impl serde::Serialize) -> Result<(), BackupError> {
        serde_json::to_writer(&mut self.line, row)
            .map_err(|e| BackupError::Storage(crate::StorageError::corrupt("backup", e)))?;
        if let Some((_, rows)) = &mut self.open {
            *rows += 1;
        }
        self.emit(true).await
    }

    /// Ends the open section with its row count.
    pub(crate) async fn end(&mut self) -> Result<(), BackupError> {
        let Some((name, rows)) = self.open.take() else {
            return Ok(());
        };
        let line = serde_json::json!({"end": name, "rows": rows});
        self.line.extend_from_slice(line.to_string().as_bytes());
        self.rows.push((name, rows));
        self.emit(true).await
    }

    /// Writes the trailer (row counts and the SHA-256 of everything before it) and flushes.
    pub(crate) async fn finish(mut self) -> Result<(W, Summary), BackupError> {
        let rows: serde_json::Map<String, serde_json::Value> = self
            .rows
            .iter()
            .map(|(name, n)| ((*name).to_owned(), serde_json::Value::from(*n)))
            .collect();
        let digest = format!("{:x}", self.hasher.clone().finalize());
        let line = serde_json::json!({"trailer": {"rows": rows, "sha256": digest}});
        self.line.extend_from_slice(line.to_string().as_bytes());
        self.emit(false).await?;
        self.out.flush().await.map_err(|source| BackupError::Io {
            step: "write the backup",
            source,
        })?;
        Ok((
            self.out,
            Summary {
                header: self.header,
                rows: self.rows,
                audit_break: None,
            },
        ))
    }

    /// Writes the line built in `self.line` and its `\n` (hashed unless it is the trailer).
    async fn emit(&mut self, hashed: bool) -> Result<(), BackupError> {
        self.line.push(b'\n');
        if hashed {
            self.hasher.update(&self.line);
        }
        let written = self.out.write_all(&self.line).await;
        self.line.clear();
        written.map_err(|source| BackupError::Io {
            step: "write the backup",
            source,
        })
    }
}

/// What a line of the file is.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    /// A section begins (its columns were checked).
    Begin(&'static Section),
    /// A row of the open section: a JSON array, not yet parsed.
    Row(&'a [u8]),
    /// The open section ended (its row count was checked).
    End,
    /// The trailer: the checksum and the counts were checked; nothing may follow.
    Trailer,
}

#[derive(Debug)]
enum State {
    /// Before the first section, or between two: the index of the next expected section.
    Between(usize),
    /// Inside a section: its index and the rows read.
    In(usize, u64),
    /// After the trailer.
    Done,
}

/// Reads a backup line by line: checks its structure, the sections and their columns, the row
/// counts and the checksum; hands each row to the caller unparsed.
#[derive(Debug)]
pub(crate) struct Reader {
    header: Header,
    hasher: Sha256,
    /// The number of the line last fed (the header is line 1).
    line: u64,
    state: State,
    rows: Vec<(&'static str, u64)>,
}

impl Reader {
    /// Reads the header (the first line).
    pub(crate) fn start(first: &[u8]) -> Result<Self, BackupError> {
        let header = Header::parse(first)?;
        let mut hasher = Sha256::new();
        hasher.update(first);
        hasher.update(b"\n");
        Ok(Self {
            header,
            hasher,
            line: 1,
            state: State::Between(0),
            rows: Vec::new(),
        })
    }

    /// The file's header.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The number of the line last fed.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// Takes the next line (without its `\n`).
    pub(crate) fn feed<'a>(&mut self, line: &'a [u8]) -> Result<Item<'a>, BackupError> {
        self.line += 1;
        let n = self.line;
        let item = match self.state {
            State::Done => return Err(malformed(n, "a line after the trailer")),
            State::In(index, rows) if line.first() == Some(&b'[') => {
                self.state = State::In(index, rows + 1);
                Item::Row(line)
            }
            State::In(index, rows) => {
                let section = SECTIONS[index];
                let value = object(n, line)?;
                let (Some(name), Some(count)) = (
                    value.get("end").and_then(serde_json::Value::as_str),
                    value.get("rows").and_then(serde_json::Value::as_u64),
                ) else {
                    return Err(malformed(
                        n,
                        format!("expected a row or the end of section {}", section.name),
                    ));
                };
                if name != section.name {
                    return Err(malformed(
                        n,
                        format!("section {} ends as {name:?}", section.name),
                    ));
                }
                if count != rows {
                    return Err(malformed(
                        n,
                        format!(
                            "section {} says {count} rows, the file holds {rows}",
                            section.name
                        ),
                    ));
                }
                self.rows.push((section.name, rows));
                self.state = State::Between(index + 1);
                Item::End
            }
            State::Between(next) => {
                let value = object(n, line)?;
                if let Some(trailer) = value.get("trailer") {
                    if let Some(missing) = required_from(next) {
                        return Err(malformed(n, format!("section {} is missing", missing.name)));
                    }
                    self.check_trailer(trailer)?;
                    self.state = State::Done;
                    return Ok(Item::Trailer);
                }
                let Some(name) = value.get("section").and_then(serde_json::Value::as_str) else {
                    return Err(malformed(n, "expected a section or the trailer"));
                };
                let Some(index) = SECTIONS.iter().position(|s| s.name == name) else {
                    return Err(BackupError::UnknownSection {
                        line: n,
                        name: name.to_owned(),
                    });
                };
                // Sections added later may be absent (a file written before them).
                let skipped_only_later =
                    index > next && SECTIONS[next..index].iter().all(|s| s.added_later);
                if index != next && !skipped_only_later {
                    let expected = SECTIONS.get(next).map_or("the trailer", |s| s.name);
                    return Err(malformed(
                        n,
                        format!("section {name} where {expected} belongs"),
                    ));
                }
                let section = SECTIONS[index];
                let columns: Option<Vec<&str>> = value
                    .get("columns")
                    .and_then(serde_json::Value::as_array)
                    .and_then(|c| c.iter().map(serde_json::Value::as_str).collect());
                if columns.as_deref() != Some(section.columns) {
                    return Err(malformed(
                        n,
                        format!(
                            "section {name} has columns {columns:?}; this saleboard reads {:?}",
                            section.columns
                        ),
                    ));
                }
                self.state = State::In(index, 0);
                Item::Begin(section)
            }
        };
        self.hasher.update(line);
        self.hasher.update(b"\n");
        Ok(item)
    }

    /// The end of the file: an error unless the trailer was read.
    pub(crate) fn finish(self) -> Result<Summary, BackupError> {
        let at = match self.state {
            State::Done => {
                return Ok(Summary {
                    header: self.header,
                    rows: self.rows,
                    audit_break: None,
                });
            }
            State::In(index, rows) => {
                format!("in section {} after {rows} rows", SECTIONS[index].name)
            }
            State::Between(next) => match required_from(next) {
                Some(section) => format!("before section {}", section.name),
                None => "before the trailer".to_owned(),
            },
        };
        Err(BackupError::Truncated {
            line: self.line,
            at,
        })
    }

    fn check_trailer(&self, trailer: &serde_json::Value) -> Result<(), BackupError> {
        let n = self.line;
        let expected = trailer
            .get("sha256")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| malformed(n, "the trailer has no sha256"))?;
        let found = format!("{:x}", self.hasher.clone().finalize());
        if expected != found {
            return Err(BackupError::Checksum {
                expected: expected.to_owned(),
                found,
            });
        }
        let counts = trailer.get("rows").and_then(serde_json::Value::as_object);
        for (name, rows) in &self.rows {
            let said = counts
                .and_then(|c| c.get(*name))
                .and_then(serde_json::Value::as_u64);
            if said != Some(*rows) {
                return Err(malformed(
                    n,
                    format!("the trailer says {said:?} rows of {name}, the file holds {rows}"),
                ));
            }
        }
        Ok(())
    }
}

fn object(line: u64, bytes: &[u8]) -> Result<serde_json::Value, BackupError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) if value.is_object() => Ok(value),
        Ok(_) => Err(malformed(line, "expected a JSON object")),
        Err(e) => Err(malformed(line, format!("not JSON: {e}"))),
    }
}

/// Reads the next line into `buf` (without its `\n`): `false` at the end of the file. A last
/// line without its `\n` was cut short: [`BackupError::Truncated`]; a line longer than
/// [`MAX_LINE`] is refused.
pub(crate) async fn read_line(
    input: &mut (impl AsyncBufRead + Unpin + ?Sized),
    buf: &mut Vec<u8>,
    line: u64,
) -> Result<bool, BackupError> {
    buf.clear();
    loop {
        let available = input.fill_buf().await.map_err(|source| BackupError::Io {
            step: "read the backup",
            source,
        })?;
        if available.is_empty() {
            if buf.is_empty() {
                return Ok(false);
            }
            return Err(BackupError::Truncated {
                line: line + 1,
                at: "in the middle of a line".to_owned(),
            });
        }
        let (taken, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let end = if done { taken - 1 } else { taken };
        if buf.len() + end > MAX_LINE {
            return Err(malformed(
                line + 1,
                format!("a line longer than {MAX_LINE} bytes"),
            ));
        }
        buf.extend_from_slice(&available[..end]);
        input.consume(taken);
        if done {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT_VERSION,
            written_by: "saleboard test".into(),
            written_at_ns: 7,
            backend: "sqlite".into(),
            migration: 11,
        }
    }

    /// A small valid file: one site, the other sections empty.
    async fn file() -> Vec<u8> {
        file_of(&SECTIONS).await
    }

    /// Reads every line of `bytes`; the rows seen, or the first error.
    async fn read(bytes: &[u8]) -> Result<(Summary, Vec<Vec<u8>>), BackupError> {
        let mut input = bytes;
        let mut buf = Vec::new();
        if !read_line(&mut input, &mut buf, 0).await? {
            return Err(BackupError::NotABackup("empty".into()));
        }
        let mut reader = Reader::start(&buf)?;
        let mut rows = Vec::new();
        while read_line(&mut input, &mut buf, reader.line()).await? {
            if let Item::Row(row) = reader.feed(&buf)? {
                rows.push(row.to_vec());
            }
        }
        Ok((reader.finish()?, rows))
    }

    #[tokio::test]
    async fn a_file_reads_back_with_its_counts() {
        let bytes = file().await;
        let (summary, rows) = read(&bytes).await.expect("reads");
        assert_eq!(summary.header, header());
        assert_eq!(summary.rows_of("sites"), 1);
        assert_eq!(summary.rows_of("ledger"), 0);
        assert_eq!(rows, vec![br#"["toko","Toko",1,null]"#.to_vec()]);
    }

    #[tokio::test]
    async fn every_cut_is_refused() {
        let bytes = file().await;
        for cut in 0..bytes.len() {
            let got = read(&bytes[..cut]).await;
            assert!(
                got.is_err(),
                "a file cut at byte {cut} of {} read",
                bytes.len()
            );
        }
    }

    #[tokio::test]
    async fn an_altered_byte_is_refused() {
        let bytes = file().await;
        let at = bytes
            .windows(4)
            .position(|w| w == b"Toko")
            .expect("the site's name");
        let mut altered = bytes.clone();
        altered[at] = b'X';
        assert!(matches!(
            read(&altered).await,
            Err(BackupError::Checksum { .. })
        ));
    }

    #[tokio::test]
    async fn a_newer_format_and_an_unknown_section_are_refused() {
        let mut newer = header();
        newer.format = FORMAT_VERSION + 1;
        let line = format!("{}\n", newer.to_line());
        assert!(matches!(
            read(line.as_bytes()).await,
            Err(BackupError::NewerFormat { found, .. }) if found == FORMAT_VERSION + 1
        ));
        let text = String::from_utf8(file().await).expect("utf-8");
        let unknown = text.replacen(r#""section":"sites""#, r#""section":"sellers""#, 1);
        assert!(matches!(
            read(unknown.as_bytes()).await,
            Err(BackupError::UnknownSection { name, .. }) if name == "sellers"
        ));
        assert!(matches!(
            read(b"position,site\n1,a\n").await,
            Err(BackupError::NotABackup(_))
        ));
    }

    /// A file of the given sections only (one site row), as a writer of that set would write.
    async fn file_of(sections: &[&Section]) -> Vec<u8> {
        let mut w = Writer::start(Vec::new(), header()).await.expect("header");
        for section in sections {
            w.begin(section).await.expect("begin");
            if section.name == "sites" {
                w.row(&("toko", "Toko", 1_i64, None::<i64>))
                    .await
                    .expect("row");
            }
            w.end().await.expect("end");
        }
        w.finish().await.expect("trailer").0
    }

    #[tokio::test]
    async fn a_file_written_before_the_later_sections_reads_without_them() {
        let before: Vec<&Section> = SECTIONS.into_iter().filter(|s| !s.added_later).collect();
        let (summary, rows) = read(&file_of(&before).await).await.expect("reads");
        assert_eq!(rows.len(), 1);
        assert_eq!(summary.rows_of("organizers"), 0);
        assert_eq!(summary.rows_of("audit_log"), 0);
        assert!(summary.rows.iter().all(|(name, _)| *name != "audit_log"));

        // Only a later section may be left out: a file without events (or without the
        // ledger) is refused, whether the gap is inside the file or at its end.
        for dropped in ["events", "ledger"] {
            let without: Vec<&Section> =
                SECTIONS.into_iter().filter(|s| s.name != dropped).collect();
            let got = read(&file_of(&without).await).await;
            assert!(
                matches!(got, Err(BackupError::Malformed { ref detail, .. }) if detail.contains(dropped)),
                "{dropped}: {got:?}"
            );
        }
        // Nor do the later sections come out of order.
        let mut swapped: Vec<&Section> = SECTIONS.to_vec();
        swapped.swap(4, 5);
        assert!(read(&file_of(&swapped).await).await.is_err());
    }

    #[tokio::test]
    async fn a_line_past_the_limit_is_refused_without_reading_it_whole() {
        let mut bytes = vec![b'['; MAX_LINE + 10];
        bytes.push(b'\n');
        assert!(matches!(
            read(&bytes).await,
            Err(BackupError::Malformed { line: 1, .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever the bytes, reading ends in a summary or an error, never a panic; and a
        /// valid file with any byte changed is never read as valid with different rows.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            drop(runtime.block_on(read(&bytes)));
        }

        #[test]
        fn a_changed_byte_never_reads_as_valid(at in 0_usize..10_000, to in proptest::num::u8::ANY) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let bytes = runtime.block_on(file());
            let at = at % bytes.len();
            proptest::prop_assume!(bytes[at] != to);
            let mut changed = bytes.clone();
            changed[at] = to;
            proptest::prop_assert!(runtime.block_on(read(&changed)).is_err());
        }
    }
}
