//! Backup and restore (`saleboard backup`, `saleboard restore`): what cannot be rebuilt — the
//! sites, the API keys (their secrets' hashes), the events, their exchange rates, the named
//! organizers (their secrets' hashes), the audit log and the ledger — written as one point in time to a versioned, checksummed file ([`format`]) and
//! read back into an empty database of either kind. The totals are not in the file: they are
//! the ledger folded, and the aggregator folds a restored ledger from position 0 (`verify`
//! recomputes them the same way).
//!
//! Both directions stream: a backup reads every table in one read transaction (REPEATABLE
//! READ on PostgreSQL) and writes each row as it comes; a restore inserts batches of
//! [`RESTORE_BATCH`] rows in one write transaction that holds the writer lock, and commits
//! only once the trailer's checksum and counts are checked, so a damaged file restores
//! nothing. Memory stays at a batch whatever the ledger's length.
//!
//! The audit log is copied entry for entry, its hash chain checked on the way in both
//! directions: a break (an entry altered in the database before the backup, or in the file
//! with its checksum recomputed) is reported in the [`Summary`] and restored as it was, as
//! evidence; the restored `audit_head` is the last entry, so the next admin change chains on.
//! A restore is not itself an admin call and adds no entry.

pub mod format;

use async_trait::async_trait;
use futures::TryStreamExt as _;
use saleboard_domain::audit::{ChainBreak, ChainCheck, OrganizerName};
use saleboard_domain::{Currency, Rate, SiteId, UnixNanos};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Type};
use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::backend::{Accepted, Backend};
use crate::model::db_position;
use crate::rows::{
    AuditRow, EventRow, EventTuple, FlagRow, FullLedgerRow, LedgerTuple, RateRow, SiteRow,
};
use crate::{Candidate, LedgerRow, StorageError, sql};
pub use format::{FORMAT_VERSION, Header, Summary};
use format::{Item, Reader, Writer};

/// Ledger rows per insert statement of a restore (and the most held at once).
pub const RESTORE_BATCH: usize = 5_000;

/// Why a backup could not be written or read, or a restore was refused. A refused or failed
/// restore stored nothing (its transaction is rolled back).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Writing or reading the file failed.
    #[error("cannot {step}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a Saleboard backup at all.
    #[error("not a Saleboard backup: {0}")]
    NotABackup(String),
    /// Written in a format version this build does not read.
    #[error(
        "the backup is format version {found}, newer than this saleboard reads (up to {supported}): restore it with the release that wrote it, or a newer one"
    )]
    NewerFormat {
        /// The file's version.
        found: u64,
        /// The newest this build reads.
        supported: u64,
    },
    /// Taken from a database whose schema is newer than this build's.
    #[error(
        "the backup was taken from a newer schema ({backend} migration {found}) than this saleboard knows ({known}): restore it with the release that wrote it, or a newer one"
    )]
    NewerSchema {
        /// The source database's kind.
        backend: String,
        /// The source's last migration.
        found: i64,
        /// This build's last migration for that kind.
        known: i64,
    },
    /// A section this build does not know (a newer release's): restoring without it would
    /// lose data.
    #[error(
        "line {line}: the backup has a section {name:?} this saleboard does not know (written by a newer release?); restore it with the release that wrote it"
    )]
    UnknownSection {
        /// Where.
        line: u64,
        /// Its name.
        name: String,
    },
    /// A line that breaks the format.
    #[error("the backup is malformed at line {line}: {detail}")]
    Malformed {
        /// Where (the header is line 1).
        line: u64,
        /// What is wrong.
        detail: String,
    },
    /// The file ends before its trailer.
    #[error(
        "the backup is truncated: it ends at line {line}, {at}, without its trailer (cut short, or its writing never finished)"
    )]
    Truncated {
        /// The last line read.
        line: u64,
        /// Where in the file it ends.
        at: String,
    },
    /// The content does not match the trailer's checksum.
    #[error(
        "the backup's checksum does not match: the file was altered or damaged (its content hashes to SHA-256 {found}, its trailer says {expected})"
    )]
    Checksum {
        /// What the trailer says.
        expected: String,
        /// What the content hashes to.
        found: String,
    },
    /// Restore refuses a database that holds anything.
    #[error(
        "the database is not empty: it holds {}; restore only into a new database (it is migrated by restore)",
        present.join(", ")
    )]
    NotEmpty {
        /// What it holds (tables in words).
        present: Vec<&'static str>,
    },
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(e.into())
    }
}

/// Backup and restore of a whole database.
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Writes every site, key, event, rate, organizer, audit entry and ledger row, as of one
    /// point in time, to `out`
    /// (flushed, not closed); `written_by` names the program in the header.
    async fn backup(
        &self,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        written_by: &str,
    ) -> Result<Summary, BackupError>;

    /// Restores a backup into this database, which must be migrated and empty
    /// ([`BackupError::NotEmpty`] otherwise), in one transaction under the writer lock: all of
    /// it, or nothing when the file is refused. The totals are left to the aggregator, which
    /// folds the restored ledger from position 0.
    async fn restore(
        &self,
        input: &mut (dyn AsyncBufRead + Unpin + Send),
    ) -> Result<Summary, BackupError>;
}

/// Reads a whole backup without a database: its structure, every row's values and the
/// checksum. What `saleboard restore --check` runs.
///
/// # Errors
/// As a restore would refuse the file.
pub async fn check(input: &mut (dyn AsyncBufRead + Unpin + Send)) -> Result<Summary, BackupError> {
    let mut buf = Vec::new();
    let mut reader = start(input, &mut buf).await?;
    let mut section = None;
    let mut next_position = 1;
    let mut chain = Chain::default();
    while format::read_line(input, &mut buf, reader.line()).await? {
        match reader.feed(&buf)? {
            Item::Begin(s) => section = Some(s.name),
            Item::Row(row) => {
                let line = reader.line();
                match section {
                    Some("sites") => drop(site_line(line, row)?),
                    Some("api_keys") => drop(key_line(line, row)?),
                    Some("events") => drop(event_line(line, row)?),
                    Some("exchange_rates") => drop(rate_line(line, row)?),
                    Some("organizers") => drop(organizer_line(line, row)?),
                    Some("audit_log") => chain.check(line, &audit_line(line, row)?)?,
                    Some("admin_actions") => drop(action_line(line, row)?),
                    Some("action_adjustments") => drop(adjustment_line(line, row)?),
                    Some("site_holds") => drop(hold_line(line, row)?),
                    Some("integrity_policies") => drop(policy_line(line, row)?),
                    Some("integrity_flags") => drop(flag_line(line, row)?),
                    Some("integrity_end_rankings") => drop(end_place_line(line, row)?),
                    _ => drop(ledger_line(line, row, &mut next_position)?),
                }
            }
            Item::End | Item::Trailer => {}
        }
    }
    let mut summary = reader.finish()?;
    summary.audit_break = chain.first_break;
    Ok(summary)
}

/// The audit log's chain, checked entry by entry as a backup is written or read: the first
/// break, if any (the entries after it are not checked: one break is enough to name).
#[derive(Default)]
struct Chain {
    check: ChainCheck,
    first_break: Option<(u64, ChainBreak)>,
    /// The last entry's position and `sha256`: the audit head a restore sets.
    last: Option<(u64, String)>,
}

impl Chain {
    /// Takes the next entry (of the file's `line`): positions only increase (a break in the
    /// chain is kept as evidence; entries out of order would leave the restored head behind
    /// an entry, and every later admin write would collide with it).
    fn check(&mut self, line: u64, entry: &crate::AuditEntry) -> Result<(), BackupError> {
        if let Some((last, _)) = &self.last
            && entry.position <= *last
        {
            return Err(bad_row(
                line,
                "audit_log",
                format!(
                    "position {} after {last}: positions only increase",
                    entry.position
                ),
            ));
        }
        if self.first_break.is_none()
            && let Err(why) = self.check.check(entry)
        {
            self.first_break = Some((entry.position, why));
        }
        self.last = Some((entry.position, entry.sha256.clone()));
        Ok(())
    }
}

/// What differs per database for backups: the name written in the header.
pub(crate) trait Dialect: Backend {
    /// `postgres` or `sqlite`.
    const NAME: &'static str;
}

impl Dialect for crate::postgres::PgStore {
    const NAME: &'static str = "postgres";
}

impl Dialect for crate::sqlite::SqliteStore {
    const NAME: &'static str = "sqlite";
}

/// Every API key, with its secret's hash.
const KEYS: &str = "SELECT key_id, site_id, secret_hash, created_at_ns, revoked_at_ns \
    FROM api_keys ORDER BY key_id";

/// Every event, by id.
const EVENTS: &str = "SELECT event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns, \
    reporting_currency, baseline_event_id, time_zone FROM events ORDER BY event_id";

/// Every exchange rate of every event.
const RATES: &str =
    "SELECT event_id, currency, rate FROM exchange_rates ORDER BY event_id, currency";

/// Every named organizer, with its secret's hash.
const ORGANIZERS: &str = "SELECT name, secret_hash, created_at_ns, created_by, revoked_at_ns \
    FROM organizers ORDER BY name";

/// Every audit entry, in order.
const AUDIT_LOG: &str = "SELECT position, at_ns, organizer, rpc, request_json, outcome, \
    prev_sha256, sha256 FROM audit_log ORDER BY position";

/// Every organizer's action, by id.
const ACTIONS: &str = "SELECT action_id, kind, state, event_id, site_id, reason, proposed_by, \
    proposed_at_ns, decided_by, decided_at_ns, decision_note FROM admin_actions \
    ORDER BY action_id";

/// Every adjustment's own columns, by action id.
const ADJUSTMENTS: &str = "SELECT action_id, transaction_ids, flag_id, voided_rows, \
    through_position FROM admin_actions WHERE kind = 'adjust' ORDER BY action_id";

/// An adjustment's own columns as they were (its action is restored first).
const RESTORE_ADJUSTMENT: &str = "UPDATE admin_actions SET transaction_ids = $2, flag_id = $3, \
    voided_rows = $4, through_position = $5 WHERE action_id = $1 AND kind = 'adjust' \
    RETURNING action_id";

/// Every hold, by event and site.
const HOLDS: &str = "SELECT event_id, site_id, action_id, held_at_ns FROM site_holds \
    ORDER BY event_id, site_id";

/// Every event's integrity policy.
const POLICIES: &str = "SELECT event_id, overrides_json, updated_at_ns, updated_by \
    FROM integrity_policies ORDER BY event_id";

/// An action as it was.
const INSERT_ACTION: &str = "INSERT INTO admin_actions (action_id, kind, state, event_id, \
    site_id, reason, proposed_by, proposed_at_ns, decided_by, decided_at_ns, decision_note) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// A hold as it was.
const INSERT_HOLD: &str = "INSERT INTO site_holds (event_id, site_id, action_id, held_at_ns) \
    VALUES ($1, $2, $3, $4)";

/// An organizer as it was, revoked or not.
const INSERT_ORGANIZER: &str = "INSERT INTO organizers (name, secret_hash, created_at_ns, \
    created_by, revoked_at_ns) VALUES ($1, $2, $3, $4, $5)";

/// Every ledger row, in order.
const LEDGER: &str = "\
    SELECT site_id, transaction_id, store_id, kind, currency, amount_minor, occurred_at_ns, \
    refund_of, position, event_id, brand, category, origin, key_id, received_at_ns FROM ledger \
    WHERE position <= $1 ORDER BY position";

/// A site as it was, disabled or not.
const INSERT_SITE: &str = "INSERT INTO sites (site_id, display_name, created_at_ns, \
    disabled_at_ns) VALUES ($1, $2, $3, $4)";

/// A key as it was, revoked or not.
const INSERT_KEY: &str = "INSERT INTO api_keys (key_id, site_id, secret_hash, created_at_ns, \
    revoked_at_ns) VALUES ($1, $2, $3, $4, $5)";

/// Whether a table holds a row, per table a restore needs empty, with the words for it.
const EMPTY_CHECKS: [(&str, &str); 17] = [
    (
        "sites",
        "SELECT COUNT(*) FROM (SELECT 1 FROM sites LIMIT 1) AS t",
    ),
    (
        "API keys",
        "SELECT COUNT(*) FROM (SELECT 1 FROM api_keys LIMIT 1) AS t",
    ),
    (
        "events",
        "SELECT COUNT(*) FROM (SELECT 1 FROM events LIMIT 1) AS t",
    ),
    (
        "exchange rates",
        "SELECT COUNT(*) FROM (SELECT 1 FROM exchange_rates LIMIT 1) AS t",
    ),
    (
        "named organizers",
        "SELECT COUNT(*) FROM (SELECT 1 FROM organizers LIMIT 1) AS t",
    ),
    (
        "audit log entries",
        "SELECT COUNT(*) FROM (SELECT 1 FROM audit_log LIMIT 1) AS t",
    ),
    (
        "an audit head past 0",
        "SELECT COUNT(*) FROM audit_head WHERE position <> 0",
    ),
    (
        "organizers' actions",
        "SELECT COUNT(*) FROM (SELECT 1 FROM admin_actions LIMIT 1) AS t",
    ),
    (
        "site holds",
        "SELECT COUNT(*) FROM (SELECT 1 FROM site_holds LIMIT 1) AS t",
    ),
    (
        "integrity policies",
        "SELECT COUNT(*) FROM (SELECT 1 FROM integrity_policies LIMIT 1) AS t",
    ),
    (
        "integrity flags",
        "SELECT COUNT(*) FROM (SELECT 1 FROM integrity_flags LIMIT 1) AS t",
    ),
    (
        "end rankings",
        "SELECT COUNT(*) FROM (SELECT 1 FROM integrity_end_rankings LIMIT 1) AS t",
    ),
    (
        "ledger rows",
        "SELECT COUNT(*) FROM (SELECT 1 FROM ledger LIMIT 1) AS t",
    ),
    (
        "a ledger head past 0",
        "SELECT COUNT(*) FROM ledger_head WHERE head <> 0",
    ),
    (
        "totals",
        "SELECT COUNT(*) FROM (SELECT 1 FROM site_totals LIMIT 1) AS t",
    ),
    (
        "breakdown totals",
        "SELECT COUNT(*) FROM (SELECT 1 FROM segment_site_totals LIMIT 1) AS t",
    ),
    (
        "an aggregator position past 0",
        "SELECT COUNT(*) FROM aggregator_state WHERE applied_position <> 0",
    ),
];

/// `api_keys` with the secret's hash.
#[derive(sqlx::FromRow)]
struct KeyRow {
    key_id: String,
    site_id: String,
    secret_hash: String,
    created_at_ns: i64,
    revoked_at_ns: Option<i64>,
}

/// `organizers` with the secret's hash.
#[derive(sqlx::FromRow)]
struct OrganizerRow {
    name: String,
    secret_hash: String,
    created_at_ns: i64,
    created_by: String,
    revoked_at_ns: Option<i64>,
}

/// `exchange_rates` with its event.
#[derive(sqlx::FromRow)]
struct EventRateRow {
    event_id: String,
    #[sqlx(flatten)]
    rate: RateRow,
}

#[async_trait]
impl<B> BackupStore for B
where
    B: Dialect,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<String>: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'r> SiteRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> KeyRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> EventRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> EventRateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> OrganizerRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> AuditRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> FullLedgerRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> FlagRow: FromRow<'r, <B::Db as Database>::Row>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn backup(
        &self,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        written_by: &str,
    ) -> Result<Summary, BackupError> {
        let written_at = UnixNanos::now();
        // One snapshot of every table: the ledger up to the head it saw, and the sites, keys,
        // events and rates as they were at that moment.
        let mut tx = self.begin(B::BEGIN_READ).await?;
        let migration: i64 = sqlx::query_scalar(sql::LAST_MIGRATION)
            .fetch_one(&mut *tx)
            .await?;
        let head: i64 = sqlx::query_scalar(sql::HEAD).fetch_one(&mut *tx).await?;
        let mut w = Writer::start(
            out,
            Header {
                format: FORMAT_VERSION,
                written_by: written_by.to_owned(),
                written_at_ns: written_at.0,
                backend: B::NAME.to_owned(),
                migration,
            },
        )
        .await?;

        w.begin(&format::SITES).await?;
        let mut rows = sqlx::query_as::<_, SiteRow>(sql::SITES).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let s = row.into_record()?;
            w.row(&(
                s.site_id.as_str(),
                &s.display_name,
                s.created_at.0,
                s.disabled_at.map(|t| t.0),
            ))
            .await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::API_KEYS).await?;
        let mut rows = sqlx::query_as::<_, KeyRow>(KEYS).fetch(&mut *tx);
        while let Some(k) = rows.try_next().await? {
            w.row(&(
                &k.key_id,
                &k.site_id,
                &k.secret_hash,
                k.created_at_ns,
                k.revoked_at_ns,
            ))
            .await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::EVENTS).await?;
        let mut rows = sqlx::query_as::<_, EventRow>(EVENTS).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let e = row.into_event()?;
            w.row(&(
                &e.event_id,
                &e.display_name,
                e.starts_at.0,
                e.ends_at.0,
                e.closes_at.0,
                e.reporting_currency.code(),
                &e.baseline_event_id,
                &e.time_zone,
            ))
            .await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::EXCHANGE_RATES).await?;
        let mut rows = sqlx::query_as::<_, EventRateRow>(RATES).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let (currency, rate) = row.rate.into_pair()?;
            w.row(&(&row.event_id, currency.code(), rate.to_string()))
                .await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::ORGANIZERS).await?;
        let mut rows = sqlx::query_as::<_, OrganizerRow>(ORGANIZERS).fetch(&mut *tx);
        while let Some(o) = rows.try_next().await? {
            w.row(&(
                &o.name,
                &o.secret_hash,
                o.created_at_ns,
                &o.created_by,
                o.revoked_at_ns,
            ))
            .await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::AUDIT_LOG).await?;
        let mut chain = Chain::default();
        let mut rows = sqlx::query_as::<_, AuditRow>(AUDIT_LOG).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let e = row.into_entry()?;
            chain.check(0, &e)?;
            w.row(&(
                e.position,
                e.at.0,
                &e.organizer,
                &e.rpc,
                &e.request_json,
                &e.outcome,
                &e.prev_sha256,
                &e.sha256,
            ))
            .await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::ADMIN_ACTIONS).await?;
        let mut rows = sqlx::query_as::<_, ActionTuple>(ACTIONS).fetch(&mut *tx);
        while let Some(a) = rows.try_next().await? {
            w.row(&a).await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::ACTION_ADJUSTMENTS).await?;
        let mut rows = sqlx::query_as::<_, AdjustmentTuple>(ADJUSTMENTS).fetch(&mut *tx);
        while let Some(a) = rows.try_next().await? {
            w.row(&a).await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::SITE_HOLDS).await?;
        let mut rows = sqlx::query_as::<_, HoldTuple>(HOLDS).fetch(&mut *tx);
        while let Some(h) = rows.try_next().await? {
            w.row(&h).await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::INTEGRITY_POLICIES).await?;
        let mut rows = sqlx::query_as::<_, PolicyTuple>(POLICIES).fetch(&mut *tx);
        while let Some(p) = rows.try_next().await? {
            w.row(&p).await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::INTEGRITY_FLAGS).await?;
        let mut rows = sqlx::query_as::<_, FlagRow>(sql::ALL_FLAGS).fetch(&mut *tx);
        while let Some(f) = rows.try_next().await? {
            w.row(&f.into_values()).await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::INTEGRITY_END_RANKINGS).await?;
        let mut rows = sqlx::query_as::<_, EndPlaceTuple>(sql::ALL_END_RANKINGS).fetch(&mut *tx);
        while let Some(p) = rows.try_next().await? {
            w.row(&p).await?;
        }
        drop(rows);
        w.end().await?;

        w.begin(&format::LEDGER).await?;
        let mut rows = sqlx::query_as::<_, FullLedgerRow>(LEDGER)
            .bind(head)
            .fetch(&mut *tx);
        let mut expected = 1;
        while let Some(row) = rows.try_next().await? {
            let row = row.into_row()?;
            if row.position != expected {
                return Err(StorageError::corrupt(
                    "ledger",
                    format!("position {} where {expected} belongs", row.position),
                )
                .into());
            }
            expected += 1;
            w.row(&ledger_tuple(&row)).await?;
        }
        drop(rows);
        w.end().await?;
        tx.rollback().await?;
        let (_, mut summary) = w.finish().await?;
        summary.audit_break = chain.first_break;
        Ok(summary)
    }

    async fn restore(
        &self,
        input: &mut (dyn AsyncBufRead + Unpin + Send),
    ) -> Result<Summary, BackupError> {
        let mut buf = Vec::new();
        let mut reader = start(input, &mut buf).await?;
        // Other writers (in any process) wait until this commits or rolls back.
        let mut write = self.begin_write().await?;
        let result = async {
            sqlx::query_scalar::<_, i64>(B::LOCK_HEAD)
                .fetch_one(&mut *write.tx)
                .await?;
            let known: i64 = sqlx::query_scalar(sql::LAST_MIGRATION)
                .fetch_one(&mut *write.tx)
                .await?;
            let header = reader.header();
            if header.backend == B::NAME && header.migration > known {
                return Err(BackupError::NewerSchema {
                    backend: header.backend.clone(),
                    found: header.migration,
                    known,
                });
            }
            let mut present = Vec::new();
            for (what, query) in EMPTY_CHECKS {
                let rows: i64 = sqlx::query_scalar(query).fetch_one(&mut *write.tx).await?;
                if rows > 0 {
                    present.push(what);
                }
            }
            if !present.is_empty() {
                return Err(BackupError::NotEmpty { present });
            }
            let mut ledger = Vec::with_capacity(RESTORE_BATCH);
            let mut section = None;
            let mut next_position = 1;
            let mut chain = Chain::default();
            while format::read_line(input, &mut buf, reader.line()).await? {
                let line = reader.line() + 1;
                match reader.feed(&buf)? {
                    Item::Begin(s) => section = Some(s.name),
                    Item::Row(row) => match section {
                        Some("sites") => {
                            let (site, name, created, disabled) = site_line(line, row)?;
                            sqlx::query(INSERT_SITE)
                                .bind(site.as_str())
                                .bind(name)
                                .bind(created)
                                .bind(disabled)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("api_keys") => {
                            let (key_id, site, hash, created, revoked) = key_line(line, row)?;
                            sqlx::query(INSERT_KEY)
                                .bind(key_id)
                                .bind(site.as_str())
                                .bind(hash)
                                .bind(created)
                                .bind(revoked)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("events") => {
                            let e = event_line(line, row)?;
                            sqlx::query(sql::UPSERT_EVENT)
                                .bind(e.event_id.as_str())
                                .bind(e.display_name.as_str())
                                .bind(e.starts_at.0)
                                .bind(e.ends_at.0)
                                .bind(e.closes_at.0)
                                .bind(e.reporting_currency.code())
                                .bind(e.baseline_event_id.as_str())
                                .bind(e.time_zone.as_str())
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("exchange_rates") => {
                            let (event_id, currency, rate) = rate_line(line, row)?;
                            sqlx::query(sql::UPSERT_RATE)
                                .bind(event_id)
                                .bind(currency.code())
                                .bind(rate.to_string())
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("organizers") => {
                            let o = organizer_line(line, row)?;
                            sqlx::query(INSERT_ORGANIZER)
                                .bind(o.name.as_str())
                                .bind(o.secret_hash)
                                .bind(o.created_at_ns)
                                .bind(o.created_by)
                                .bind(o.revoked_at_ns)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("audit_log") => {
                            let e = audit_line(line, row)?;
                            chain.check(line, &e)?;
                            sqlx::query(sql::INSERT_AUDIT)
                                .bind(db_position(e.position)?)
                                .bind(e.at.0)
                                .bind(e.organizer)
                                .bind(e.rpc)
                                .bind(e.request_json)
                                .bind(e.outcome)
                                .bind(e.prev_sha256)
                                .bind(e.sha256)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("admin_actions") => {
                            let a = action_line(line, row)?;
                            sqlx::query(INSERT_ACTION)
                                .bind(a.0)
                                .bind(a.1)
                                .bind(a.2)
                                .bind(a.3)
                                .bind(a.4)
                                .bind(a.5)
                                .bind(a.6)
                                .bind(a.7)
                                .bind(a.8)
                                .bind(a.9)
                                .bind(a.10)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("action_adjustments") => {
                            let a = adjustment_line(line, row)?;
                            let updated = sqlx::query_scalar::<_, String>(RESTORE_ADJUSTMENT)
                                .bind(a.0)
                                .bind(a.1)
                                .bind(a.2)
                                .bind(a.3)
                                .bind(a.4)
                                .fetch_optional(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                            if updated.is_none() {
                                return Err(bad_row(
                                    line,
                                    "action_adjustments",
                                    "names no adjustment of the file's admin_actions",
                                ));
                            }
                        }
                        Some("site_holds") => {
                            let (event_id, site_id, action_id, held_at_ns) = hold_line(line, row)?;
                            sqlx::query(INSERT_HOLD)
                                .bind(event_id)
                                .bind(site_id)
                                .bind(action_id)
                                .bind(held_at_ns)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("integrity_policies") => {
                            let (event_id, overrides, at, by) = policy_line(line, row)?;
                            sqlx::query(sql::UPSERT_POLICY)
                                .bind(event_id)
                                .bind(overrides)
                                .bind(at)
                                .bind(by)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("integrity_flags") => {
                            flag_line(line, row)?
                                .bind_all(sqlx::query(sql::INSERT_FLAG_AS_WAS))
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        Some("integrity_end_rankings") => {
                            let (event_id, place, site_id, watermark, taken_at_ns) =
                                end_place_line(line, row)?;
                            sqlx::query(sql::INSERT_END_PLACE)
                                .bind(event_id)
                                .bind(place)
                                .bind(site_id)
                                .bind(watermark)
                                .bind(taken_at_ns)
                                .execute(&mut *write.tx)
                                .await
                                .map_err(|e| refused(line, e))?;
                        }
                        _ => {
                            ledger.push(ledger_line(line, row, &mut next_position)?);
                            if ledger.len() == RESTORE_BATCH {
                                insert_ledger::<B>(&mut write.tx, &mut ledger, line).await?;
                            }
                        }
                    },
                    Item::End => {
                        insert_ledger::<B>(&mut write.tx, &mut ledger, reader.line()).await?;
                    }
                    Item::Trailer => {}
                }
            }
            let head = next_position - 1;
            sqlx::query(sql::MOVE_HEAD)
                .bind(db_position(head)?)
                .execute(&mut *write.tx)
                .await?;
            // A leaderboard already running on this database reads the sites again.
            sqlx::query(sql::BUMP_SITES_VERSION)
                .execute(&mut *write.tx)
                .await?;
            // The audit head last, as every admin write takes it: no two writers lock the
            // same rows in opposite orders. (An admin change committed during the restore
            // takes audit position 1 first, and the restore then fails on it, restoring
            // nothing.)
            if let Some((position, sha256)) = &chain.last {
                sqlx::query(sql::MOVE_AUDIT_HEAD)
                    .bind(db_position(*position)?)
                    .bind(sha256.as_str())
                    .execute(&mut *write.tx)
                    .await?;
            }
            // Only a file read to its checked trailer commits.
            let mut summary = reader.finish()?;
            summary.audit_break = chain.first_break;
            Ok(summary)
        }
        .await;
        match result {
            Ok(summary) => {
                write.tx.commit().await?;
                Ok(summary)
            }
            Err(e) => {
                drop(write.tx.rollback().await);
                Err(e)
            }
        }
    }
}

/// Reads the header line.
async fn start(
    input: &mut (dyn AsyncBufRead + Unpin + Send),
    buf: &mut Vec<u8>,
) -> Result<Reader, BackupError> {
    if !format::read_line(input, buf, 0).await? {
        return Err(BackupError::NotABackup("the file is empty".to_owned()));
    }
    Reader::start(buf)
}

/// Inserts the ledger rows held (if any) and empties the batch.
async fn insert_ledger<B: Backend>(
    conn: &mut <B::Db as Database>::Connection,
    rows: &mut Vec<Restored>,
    line: u64,
) -> Result<(), BackupError> {
    if rows.is_empty() {
        return Ok(());
    }
    let accepted: Vec<Accepted<'_>> = rows
        .iter()
        .map(|row| Accepted {
            candidate: &row.candidate,
            position: row.position,
            event_id: &row.event_id,
            segments: &row.candidate.tx.segments,
        })
        .collect();
    B::insert_accepted(conn, &accepted)
        .await
        .map_err(|e| match e {
            StorageError::Database(cause) => BackupError::Malformed {
                line,
                detail: format!("the database refused the ledger rows up to here: {cause}"),
            },
            other => other.into(),
        })?;
    drop(accepted);
    rows.clear();
    Ok(())
}

/// A row the database refused: a constraint of the schema (a key of an unknown site, a
/// reversed window...), said with its line.
fn refused(line: u64, e: sqlx::Error) -> BackupError {
    match StorageError::from(e) {
        StorageError::Database(cause) => BackupError::Malformed {
            line,
            detail: format!("the database refused the row: {cause}"),
        },
        other => other.into(),
    }
}

fn bad_row(line: u64, section: &str, detail: impl std::fmt::Display) -> BackupError {
    BackupError::Malformed {
        line,
        detail: format!("a row of {section}: {detail}"),
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(
    line: u64,
    section: &str,
    row: &'a [u8],
) -> Result<T, BackupError> {
    serde_json::from_slice(row).map_err(|e| bad_row(line, section, e))
}

fn site_line(line: u64, row: &[u8]) -> Result<(SiteId, String, i64, Option<i64>), BackupError> {
    let (site, name, created, disabled): (String, String, i64, Option<i64>) =
        parse(line, "sites", row)?;
    let site = SiteId::parse(&site).map_err(|e| bad_row(line, "sites", e))?;
    Ok((site, name, created, disabled))
}

type KeyLine = (String, SiteId, String, i64, Option<i64>);

fn key_line(line: u64, row: &[u8]) -> Result<KeyLine, BackupError> {
    let (key_id, site, hash, created, revoked): (String, String, String, i64, Option<i64>) =
        parse(line, "api_keys", row)?;
    let site = SiteId::parse(&site).map_err(|e| bad_row(line, "api_keys", e))?;
    if !is_sha256_hex(&hash) {
        return Err(bad_row(
            line,
            "api_keys",
            "secret_hash is not a SHA-256 in hex",
        ));
    }
    Ok((key_id, site, hash, created, revoked))
}

fn event_line(line: u64, row: &[u8]) -> Result<saleboard_domain::Event, BackupError> {
    let tuple: EventTuple = parse(line, "events", row)?;
    EventRow::from(tuple)
        .into_event()
        .map_err(|e| bad_row(line, "events", e))
}

/// An organizer's action as stored and written: the columns of [`format::ADMIN_ACTIONS`].
type ActionTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    String,
);

/// An adjustment's own columns as stored and written: the columns of
/// [`format::ACTION_ADJUSTMENTS`].
type AdjustmentTuple = (String, String, String, i64, i64);

/// An adjustment of the file: the ids it names must make an adjustment (1 to 1,000 valid
/// transaction ids, none twice), its counts never negative.
fn adjustment_line(line: u64, row: &[u8]) -> Result<AdjustmentTuple, BackupError> {
    let a: AdjustmentTuple = parse(line, "action_adjustments", row)?;
    let ids: Vec<&str> = a.1.split(',').collect();
    saleboard_domain::adjust::parse_ids(&ids)
        .map_err(|e| bad_row(line, "action_adjustments", format!("transaction_ids: {e}")))?;
    if a.3 < 0 || a.4 < 0 {
        return Err(bad_row(
            line,
            "action_adjustments",
            "voided_rows and through_position are never negative",
        ));
    }
    Ok(a)
}

/// A hold as stored and written: the columns of [`format::SITE_HOLDS`].
type HoldTuple = (String, String, String, i64);

/// An action of the file: its kind, state and site as the store takes them (the database's
/// own checks refuse the rest: a decision by its proposer, a decided action without a
/// decider).
fn action_line(line: u64, row: &[u8]) -> Result<ActionTuple, BackupError> {
    let a: ActionTuple = parse(line, "admin_actions", row)?;
    if saleboard_domain::action::ActionKind::parse(&a.1).is_none() {
        return Err(bad_row(
            line,
            "admin_actions",
            format!("unknown kind {:?}", a.1),
        ));
    }
    if saleboard_domain::action::ActionState::parse(&a.2).is_none() {
        return Err(bad_row(
            line,
            "admin_actions",
            format!("unknown state {:?}", a.2),
        ));
    }
    SiteId::parse(&a.4).map_err(|e| bad_row(line, "admin_actions", e))?;
    Ok(a)
}

/// An integrity policy as stored and written: the columns of [`format::INTEGRITY_POLICIES`].
type PolicyTuple = (String, String, i64, String);

/// A policy of the file: its overrides must be a JSON object (the services check each field
/// when they read it).
fn policy_line(line: u64, row: &[u8]) -> Result<PolicyTuple, BackupError> {
    let p: PolicyTuple = parse(line, "integrity_policies", row)?;
    match serde_json::from_str::<serde_json::Value>(&p.1) {
        Ok(serde_json::Value::Object(_)) => Ok(p),
        _ => Err(bad_row(
            line,
            "integrity_policies",
            "overrides_json is not a JSON object",
        )),
    }
}

/// A place of an end ranking as stored and written: the columns of
/// [`format::INTEGRITY_END_RANKINGS`].
type EndPlaceTuple = (String, i64, Option<String>, i64, i64);

/// A place of an end ranking of the file (the database checks the header has no site and a
/// place a site).
fn end_place_line(line: u64, row: &[u8]) -> Result<EndPlaceTuple, BackupError> {
    let p: EndPlaceTuple = parse(line, "integrity_end_rankings", row)?;
    if let Some(site) = &p.2 {
        SiteId::parse(site).map_err(|e| bad_row(line, "integrity_end_rankings", e))?;
    }
    Ok(p)
}

/// A flag of the file, checked as a stored one is read.
fn flag_line(line: u64, row: &[u8]) -> Result<FlagRow, BackupError> {
    let values: Vec<serde_json::Value> = parse(line, "integrity_flags", row)?;
    FlagRow::from_values(values).map_err(|e| bad_row(line, "integrity_flags", e))
}

/// A hold of the file.
fn hold_line(line: u64, row: &[u8]) -> Result<HoldTuple, BackupError> {
    let h: HoldTuple = parse(line, "site_holds", row)?;
    SiteId::parse(&h.1).map_err(|e| bad_row(line, "site_holds", e))?;
    Ok(h)
}

/// An organizer of the file.
struct OrganizerLine {
    name: OrganizerName,
    secret_hash: String,
    created_at_ns: i64,
    created_by: String,
    revoked_at_ns: Option<i64>,
}

fn organizer_line(line: u64, row: &[u8]) -> Result<OrganizerLine, BackupError> {
    let (name, secret_hash, created_at_ns, created_by, revoked_at_ns): (
        String,
        String,
        i64,
        String,
        Option<i64>,
    ) = parse(line, "organizers", row)?;
    let name = OrganizerName::parse(&name).map_err(|e| bad_row(line, "organizers", e))?;
    if name.is_bootstrap() {
        return Err(bad_row(
            line,
            "organizers",
            "bootstrap is the configured token and has no row",
        ));
    }
    if !is_sha256_hex(&secret_hash) {
        return Err(bad_row(
            line,
            "organizers",
            "secret_hash is not a SHA-256 in hex",
        ));
    }
    Ok(OrganizerLine {
        name,
        secret_hash,
        created_at_ns,
        created_by,
        revoked_at_ns,
    })
}

/// An audit entry of the file, as stored (its chain is checked by [`Chain`]).
fn audit_line(line: u64, row: &[u8]) -> Result<crate::AuditEntry, BackupError> {
    type AuditTuple = (u64, i64, String, String, String, String, String, String);
    let (position, at_ns, organizer, rpc, request_json, outcome, prev_sha256, sha256): AuditTuple =
        parse(line, "audit_log", row)?;
    if position == 0 {
        return Err(bad_row(line, "audit_log", "positions start at 1"));
    }
    if !is_sha256_hex(&prev_sha256) || !is_sha256_hex(&sha256) {
        return Err(bad_row(
            line,
            "audit_log",
            "prev_sha256 and sha256 are SHA-256s in hex",
        ));
    }
    Ok(crate::AuditEntry {
        position,
        at: UnixNanos(at_ns),
        organizer,
        rpc,
        request_json,
        outcome,
        prev_sha256,
        sha256,
    })
}

/// 64 hex digits.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn rate_line(line: u64, row: &[u8]) -> Result<(String, Currency, Rate), BackupError> {
    let (event_id, currency, rate): (String, String, String) = parse(line, "exchange_rates", row)?;
    let currency = Currency::parse(&currency).map_err(|e| bad_row(line, "exchange_rates", e))?;
    let rate = Rate::parse(&rate).map_err(|e| bad_row(line, "exchange_rates", e))?;
    Ok((event_id, currency, rate))
}

/// A ledger row read from a backup, as an append inserts it.
struct Restored {
    position: u64,
    event_id: String,
    candidate: Candidate,
}

/// A ledger row of the file, checked by the domain's parsers as the aggregator reads it, and
/// at the position that comes next.
fn ledger_line(line: u64, row: &[u8], next_position: &mut u64) -> Result<Restored, BackupError> {
    let tuple: LedgerTuple = parse(line, "ledger", row)?;
    let row = FullLedgerRow::from(tuple)
        .into_row()
        .map_err(|e| bad_row(line, "ledger", e))?;
    if row.position != *next_position {
        return Err(bad_row(
            line,
            "ledger",
            format!("position {} where {next_position} belongs", row.position),
        ));
    }
    *next_position += 1;
    Ok(Restored {
        position: row.position,
        event_id: row.event_id,
        candidate: Candidate {
            site: row.site,
            key_id: row.key_id,
            received_at: row.received_at,
            tx: row.tx,
        },
    })
}

/// A ledger row as the file holds it, borrowed: [`LedgerTuple`]'s order.
type LedgerLine<'a> = (
    &'a str,
    &'a str,
    &'a str,
    i16,
    &'a str,
    i64,
    i64,
    &'a str,
    u64,
    &'a str,
    &'a str,
    &'a str,
    i16,
    &'a str,
    i64,
);

/// A ledger row as the file holds it.
fn ledger_tuple(row: &LedgerRow) -> LedgerLine<'_> {
    use saleboard_domain::Dimension;
    let tx = &row.tx;
    (
        row.site.as_str(),
        tx.id.as_str(),
        tx.store_id.as_str(),
        tx.kind().code(),
        tx.currency.code(),
        tx.amount_minor,
        tx.occurred_at.0,
        tx.nature
            .names()
            .map_or("", saleboard_domain::TransactionId::as_str),
        row.position,
        &row.event_id,
        tx.segments.key(Dimension::Brand),
        tx.segments.key(Dimension::Category),
        tx.segments.origin.code(),
        &row.key_id,
        row.received_at.0,
    )
}
