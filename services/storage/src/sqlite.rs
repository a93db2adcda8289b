//! The SQLite store: the embedded default. WAL mode, so readers never block the writer and
//! several processes can share one file; every append runs under `BEGIN IMMEDIATE`, SQLite's
//! write lock, from reading the head to commit. Batches travel as one JSON array read with
//! `json_each`, so a group commit needs no per-row statement and no bind-parameter limit.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use saleboard_domain::totals::{Changes, CurrencyTotals};
use saleboard_domain::{Dimension, TransactionId};
use serde_json::json;
use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};

use crate::backend::{Accepted, Backend, Writing};
use crate::model::{db_position, to_i64};
use crate::rows::{RefundedRow, StoredRow};
use crate::tx::{ConnectionCounters, ConnectionStats};
use crate::writes::WriteHealth;
use crate::{Result, StorageError, Store};

/// Ledger and admin data in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Sidecar file whose lock queues writers (see [`SqliteStore::write_queue`]).
    gate: Option<std::path::PathBuf>,
    /// What this store knows of the ledger's keys.
    known: std::sync::Arc<crate::known::KnownKeys>,
    counters: std::sync::Arc<ConnectionCounters>,
    writes: std::sync::Arc<WriteHealth>,
}

impl SqliteStore {
    /// The applied position and the breakdown watermark (one row by primary key).
    async fn watermarks(&self) -> Result<(u64, u64)> {
        crate::watermarks(
            sqlx::query_as(crate::sql::APPLIED_BOTH)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Opens (creating if needed) the database file of a `sqlite:` URL.
    ///
    /// # Errors
    /// When the file cannot be opened or created ([`StorageError::MissingFile`] when it does
    /// not exist and `create_if_missing` is false).
    pub async fn connect(url: &str, max_connections: u32, create_if_missing: bool) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged commit survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            // Other processes (or this one's other connections) may hold the write lock for
            // the length of a group commit.
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let file = options.get_filename();
        let in_memory = file.as_os_str().is_empty() || file == std::path::Path::new(":memory:");
        if !create_if_missing && !in_memory && !file.exists() {
            return Err(StorageError::MissingFile {
                path: file.to_path_buf(),
            });
        }
        let gate =
            (!file.as_os_str().is_empty() && file != std::path::Path::new(":memory:")).then(|| {
                let mut name = file.as_os_str().to_owned();
                name.push("-writer.lock");
                std::path::PathBuf::from(name)
            });
        let counters = std::sync::Arc::default();
        let pool = crate::tx::guarded(SqlitePoolOptions::new(), &counters)
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            gate,
            known: std::sync::Arc::default(),
            counters,
            writes: std::sync::Arc::default(),
        })
    }

    /// Queues this writer behind the others (every process on the file) with a blocking lock
    /// on a sidecar file, held until the returned guard is dropped. SQLite's own busy handler
    /// retries on a timer, so a writer committing back to back (ingest) could starve another
    /// (the aggregator) for seconds; a kernel lock wakes the waiter as soon as it is released.
    async fn write_queue(&self) -> Result<Option<std::fs::File>> {
        let Some(path) = self.gate.clone() else {
            return Ok(None);
        };
        let lock_error = |path: &std::path::Path, error| StorageError::LockFile {
            path: path.to_path_buf(),
            error,
        };
        let opened = path.clone();
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(opened)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| lock_error(&path, std::io::Error::other(e)))?
        .map_err(|e| lock_error(&path, e))?;
        Ok(Some(file))
    }

    /// The pool, for tests that inspect tables directly.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn migrator() -> Migrator {
        Self::migrator_until(i64::MAX)
    }

    /// The migrations up to `version`.
    fn migrator_until(version: i64) -> Migrator {
        let all = vec![
            Migration::new(
                1,
                "init".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0001_init.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                2,
                "totals".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0002_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                3,
                "wide totals".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0003_wide_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                4,
                "site disabled".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0004_site_disabled.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                5,
                "events".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0005_events.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                6,
                "event totals".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0006_event_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                7,
                "segments".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0007_segments.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                8,
                "hot path".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0008_hot_path.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                9,
                "national hourly".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0009_national_hourly.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                10,
                "breakdown watermark".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0010_breakdown_watermark.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                11,
                "incremental board".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0011_incremental_board.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                12,
                "organizers and the audit log".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0012_organizers_audit.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                13,
                "actions, holds and integrity policies".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0013_actions_holds.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                14,
                "late figures".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0014_late_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                15,
                "organizers' voids".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0015_voids.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                16,
                "late figures' denominators".into(),
                MigrationType::Simple,
                include_str!("../migrations/sqlite/0016_late_denominators.sql").into_sql_str(),
                false,
            ),
        ];
        Migrator::with_migrations(all.into_iter().filter(|m| m.version <= version).collect())
    }
}

impl Backend for SqliteStore {
    type Db = Sqlite;
    const BEGIN_READ: &'static str = "BEGIN";
    // The write lock is already held: `begin_write` starts with BEGIN IMMEDIATE.
    const LOCK_HEAD: &'static str = "SELECT head FROM ledger_head WHERE id = 1";
    const LOCK_AUDIT: &'static str = "SELECT position, sha256 FROM audit_head WHERE id = 1";
    // Every write holds SQLite's write lock (BEGIN IMMEDIATE) already.
    const LOCK_SITE: &'static str = "SELECT site_id FROM sites WHERE site_id = $1";
    const LOCK_STATE: &'static str = "SELECT applied_position FROM aggregator_state WHERE id = 1";
    const NOTIFY_APPLIED: Option<&'static str> = None;
    const MIGRATED: &'static str = "SELECT EXISTS (SELECT 1 FROM sqlite_master \
        WHERE type = 'table' AND name = '_sqlx_migrations')";
    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn known(&self) -> &std::sync::Arc<crate::known::KnownKeys> {
        &self.known
    }

    fn counters(&self) -> &std::sync::Arc<ConnectionCounters> {
        &self.counters
    }

    fn writes(&self) -> &std::sync::Arc<WriteHealth> {
        &self.writes
    }

    /// Queues behind the other writers of the file, then takes SQLite's write lock at once
    /// (IMMEDIATE), before anything is read.
    async fn begin_write(&self) -> Result<Writing<Sqlite>> {
        let queue = self.write_queue().await?;
        Ok(Writing {
            tx: self.begin("BEGIN IMMEDIATE").await?,
            _queue: queue,
        })
    }

    /// The rows travel as one JSON array in one result row: sqlx hands each result row from
    /// SQLite's thread to the caller's task on its own, which cost more than reading the row.
    async fn ledger_after(&self, after: u64, limit: u32) -> Result<Vec<crate::LedgerRow>> {
        let json: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(site_id, transaction_id, store_id, kind, \
             currency, amount_minor, occurred_at_ns, refund_of, position, event_id, brand, \
             category, origin, key_id, received_at_ns) ORDER BY position) FROM ledger \
             WHERE position > $1 AND position <= $1 + $2",
        )
        .bind(db_position(after)?)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<crate::rows::LedgerTuple> =
            serde_json::from_str(json.as_deref().unwrap_or("[]"))
                .map_err(|e| StorageError::corrupt("ledger", e))?;
        rows.into_iter()
            .map(|t| crate::rows::FullLedgerRow::from(t).into_row())
            .collect()
    }

    async fn stored_rows(
        conn: &mut SqliteConnection,
        keys: &[(String, String)],
    ) -> Result<Vec<StoredRow>> {
        Ok(sqlx::query_as(
            "SELECT l.site_id, l.transaction_id, l.store_id, l.kind, l.currency, l.amount_minor, \
             l.occurred_at_ns, l.refund_of, l.position, l.event_id, l.brand, l.category, \
             l.origin FROM json_each($1) AS k \
             JOIN ledger l ON l.site_id = k.value ->> 0 AND l.transaction_id = k.value ->> 1",
        )
        .bind(pairs_json(keys))
        .fetch_all(conn)
        .await?)
    }

    async fn refunded_sums(
        conn: &mut SqliteConnection,
        sales: &[(String, String)],
    ) -> Result<Vec<RefundedRow>> {
        // Refunds only: a sale's void also names it, and is decided by its own row.
        Ok(sqlx::query_as(
            "SELECT l.site_id, l.refund_of AS sale_id, SUM(l.amount_minor) AS refunded \
             FROM json_each($1) AS k \
             JOIN ledger l ON l.site_id = k.value ->> 0 AND l.refund_of = k.value ->> 1 \
             AND l.refund_of <> '' AND l.kind = 2 \
             GROUP BY l.site_id, l.refund_of",
        )
        .bind(pairs_json(sales))
        .fetch_all(conn)
        .await?)
    }

    /// Bound values, in statements of up to [`INSERT_CHUNK`] rows: a JSON array read with
    /// `json_each` and `->>` re-parsed every row once per column (a sixth of ingest's CPU).
    async fn insert_accepted(conn: &mut SqliteConnection, accepted: &[Accepted<'_>]) -> Result<()> {
        for chunk in accepted.chunks(INSERT_CHUNK) {
            let mut query = insert_ledger_query(chunk.len());
            for a in chunk {
                let c = a.candidate;
                query = query
                    .bind(db_position(a.position)?)
                    .bind(c.site.as_str())
                    .bind(c.tx.id.as_str())
                    .bind(c.tx.store_id.as_str())
                    .bind(c.tx.kind().code())
                    .bind(c.tx.currency.code())
                    .bind(c.tx.amount_minor)
                    .bind(c.tx.occurred_at.0)
                    .bind(c.tx.nature.names().map_or("", TransactionId::as_str))
                    .bind(c.key_id.as_str())
                    .bind(c.received_at.0)
                    .bind(a.event_id)
                    .bind(a.segments.key(Dimension::Brand))
                    .bind(a.segments.key(Dimension::Category))
                    .bind(a.segments.origin.code());
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// One prepared statement per key, in process (no round trip to batch away).
    async fn upsert_late(
        conn: &mut SqliteConnection,
        figures: &[(
            saleboard_domain::totals::TotalsKey,
            saleboard_domain::late::LateTotals,
        )],
    ) -> Result<()> {
        for ((event, site, currency), f) in figures {
            sqlx::query(UPSERT_LATE)
                .bind(event.as_str())
                .bind(site.as_str())
                .bind(currency.code())
                .bind(f.late_refunded_minor.to_string())
                .bind(f.late_sales_minor.to_string())
                .bind(to_i64("late_totals", f.sale_count)?)
                .bind(f.gross_minor.to_string())
                .bind(to_i64("late_totals", f.round_count)?)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Money sums travel as JSON strings (decimal text, wider than SQLite's integers).
    async fn upsert_totals(
        conn: &mut SqliteConnection,
        changes: &Changes,
        position: u64,
    ) -> Result<()> {
        upsert_segments(&mut *conn, changes, position).await?;
        if !changes.totals.is_empty() {
            let rows: Vec<serde_json::Value> = changes
                .totals
                .iter()
                .map(|((event, site, currency), t)| {
                    json!([
                        event.as_str(),
                        site.as_str(),
                        currency.code(),
                        t.sale_count,
                        t.gross_minor.to_string(),
                        t.refund_count,
                        t.refunded_minor.to_string(),
                        t.net_minor().to_string()
                    ])
                })
                .collect();
            sqlx::query(
                "INSERT INTO site_totals (event_id, site_id, currency, sale_count, gross_minor, \
                 refund_count, refunded_minor, net_minor, changed_at_position) \
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                 value ->> 5, value ->> 6, value ->> 7, $2 FROM json_each($1) WHERE true \
                 ON CONFLICT (event_id, site_id, currency) DO UPDATE SET sale_count = excluded.sale_count, \
                 gross_minor = excluded.gross_minor, refund_count = excluded.refund_count, \
                 refunded_minor = excluded.refunded_minor, net_minor = excluded.net_minor, \
                 changed_at_position = excluded.changed_at_position",
            )
            .bind(serde_json::Value::Array(rows).to_string())
            .bind(db_position(position)?)
            .execute(&mut *conn)
            .await?;
        }
        if !changes.hourly.is_empty() {
            let rows: Vec<serde_json::Value> = changes
                .hourly
                .iter()
                .map(|((event, site, currency, hour), h)| {
                    json!([
                        event.as_str(),
                        site.as_str(),
                        currency.code(),
                        hour.0,
                        h.sale_count,
                        h.net_minor.to_string()
                    ])
                })
                .collect();
            sqlx::query(
                "INSERT INTO hourly_totals (event_id, site_id, currency, hour_start_ns, \
                 sale_count, net_minor) \
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                 value ->> 5 FROM json_each($1) WHERE true \
                 ON CONFLICT (event_id, site_id, currency, hour_start_ns) DO UPDATE SET \
                 sale_count = excluded.sale_count, net_minor = excluded.net_minor",
            )
            .bind(serde_json::Value::Array(rows).to_string())
            .execute(&mut *conn)
            .await?;
        }
        if !changes.national_hourly.is_empty() {
            let rows: Vec<serde_json::Value> = changes
                .national_hourly
                .iter()
                .map(|((event, currency, hour), h)| {
                    json!([
                        event.as_str(),
                        currency.code(),
                        hour.0,
                        h.sale_count,
                        h.net_minor.to_string()
                    ])
                })
                .collect();
            sqlx::query(
                "INSERT INTO national_hourly_totals (event_id, currency, hour_start_ns, \
                 sale_count, net_minor, changed_at_position) \
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, $2 \
                 FROM json_each($1) WHERE true \
                 ON CONFLICT (event_id, currency, hour_start_ns) DO UPDATE SET \
                 sale_count = excluded.sale_count, net_minor = excluded.net_minor, \
                 changed_at_position = excluded.changed_at_position",
            )
            .bind(serde_json::Value::Array(rows).to_string())
            .bind(db_position(position)?)
            .execute(conn)
            .await?;
        }
        Ok(())
    }
}

/// (a, b) pairs as one JSON array of two-element arrays, for `json_each`.
fn pairs_json(pairs: &[(String, String)]) -> String {
    serde_json::Value::Array(pairs.iter().map(|(a, b)| json!([a, b])).collect()).to_string()
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        crate::shared::refuse_newer_schema(self, "sqlite", &Self::migrator()).await?;
        // Several processes may start at once on one file and race to apply the same
        // migration; the loser sees it applied on its next try.
        let mut attempt = 0;
        loop {
            match Self::migrator().run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "SQLite migration raced, retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn migrate_until(&self, version: i64) -> Result<()> {
        Self::migrator_until(version).run(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn write_fault(&self) -> Option<crate::WriteFault> {
        self.writes.fault()
    }

    fn connection_stats(&self) -> ConnectionStats {
        self.counters.stats()
    }

    async fn applied_feed(&self) -> Result<tokio::sync::watch::Receiver<(u64, u64)>> {
        let (tx, rx) = tokio::sync::watch::channel(self.watermarks().await?);
        let store = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(crate::SQLITE_FEED_POLL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Logged when reads start failing and when they work again, not every poll.
            let mut failing = false;
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    _ = ticker.tick() => {}
                }
                match store.watermarks().await {
                    Ok((applied, breakdowns)) => {
                        if std::mem::take(&mut failing) {
                            tracing::info!("applied feed: reads the aggregator state again");
                        }
                        crate::advance_feed(&tx, Some(applied), Some(breakdowns));
                    }
                    Err(e) => {
                        if !std::mem::replace(&mut failing, true) {
                            tracing::warn!(error = %e, "applied feed: cannot read the aggregator state");
                        }
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// Writes the changed breakdown rows of one apply: per site, and national (every currency of a
/// changed key, with its site count, marked changed at `position`). Bound values, in
/// statements of up to [`INSERT_CHUNK`] rows (money as decimal text).
async fn upsert_segments(
    conn: &mut SqliteConnection,
    changes: &Changes,
    position: u64,
) -> Result<()> {
    // New and stored rows alike go through the upsert (PostgreSQL inserts new ones plainly).
    for chunk in changes.segment_sites.chunks(INSERT_CHUNK) {
        let mut query = values_query(
            "INSERT INTO segment_site_totals (event_id, site_id, dimension, key, currency, \
             sale_count, gross_minor, refund_count, refunded_minor) VALUES ",
            9,
            chunk.len(),
            " ON CONFLICT (event_id, site_id, dimension, key, currency) DO UPDATE SET \
             sale_count = excluded.sale_count, gross_minor = excluded.gross_minor, \
             refund_count = excluded.refund_count, refunded_minor = excluded.refunded_minor",
        );
        for ((e, d, k, s), c, t, _) in chunk {
            query = query
                .bind(e.as_str())
                .bind(s.as_str())
                .bind(d.code())
                .bind(k.as_str())
                .bind(c.code());
            query = bind_totals(query, "segment_site_totals", t)?;
        }
        query.execute(&mut *conn).await?;
    }
    let national: Vec<_> = changes
        .segments
        .iter()
        .flat_map(|((e, d, k), figures)| {
            figures
                .totals
                .iter()
                .map(move |(c, t)| (e, *d, k, *c, t, figures.site_count))
        })
        .collect();
    for chunk in national.chunks(INSERT_CHUNK) {
        let mut query = values_query(
            "INSERT INTO segment_totals (event_id, dimension, key, currency, sale_count, \
             gross_minor, refund_count, refunded_minor, site_count, changed_at_position) VALUES ",
            10,
            chunk.len(),
            " ON CONFLICT (event_id, dimension, key, currency) DO UPDATE SET \
             sale_count = excluded.sale_count, gross_minor = excluded.gross_minor, \
             refund_count = excluded.refund_count, refunded_minor = excluded.refunded_minor, \
             site_count = excluded.site_count, changed_at_position = excluded.changed_at_position",
        );
        for (e, d, k, c, t, sites) in chunk {
            query = query
                .bind(e.as_str())
                .bind(d.code())
                .bind(k.as_str())
                .bind(c.code());
            query = bind_totals(query, "segment_totals", t)?
                .bind(i64::from(*sites))
                .bind(db_position(position)?);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows per insert statement: at most 15 values each, well under SQLite's 32,766 variables.
/// Only a full chunk's statement stays prepared: one of every remainder size would fill each
/// connection's statement cache with large programs. 250 rather than 1,000: every pooled
/// connection keeps its own copy of the program (about 1.4 MB at 1,000 rows), and the
/// shorter one is as fast (quick runs, 8 connections: ingest peak 79-81 MiB against 95-99,
/// 48-50k/s either way).
const INSERT_CHUNK: usize = 250;

/// `INSERT INTO ledger ... VALUES (?, ...), ...` for `rows` rows.
fn insert_ledger_query(rows: usize) -> SqliteQuery {
    values_query(
        "INSERT INTO ledger (position, site_id, transaction_id, store_id, kind, currency, \
         amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns, event_id, brand, \
         category, origin) VALUES ",
        15,
        rows,
        "",
    )
}

/// A query of `head` + `rows` groups of `columns` placeholders + `tail`, prepared and cached
/// only when it is a full chunk's (see [`INSERT_CHUNK`]).
fn values_query(head: &str, columns: usize, rows: usize, tail: &str) -> SqliteQuery {
    sqlx::query(sqlx::AssertSqlSafe(values_sql(head, columns, rows, tail)))
        .persistent(rows == INSERT_CHUNK)
}

/// A query with its arguments.
type SqliteQuery = sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds a total's four figures, as every totals table stores them: counts as integers, sums
/// as decimal text (exact for any `i128`).
fn bind_totals(query: SqliteQuery, table: &'static str, t: &CurrencyTotals) -> Result<SqliteQuery> {
    Ok(query
        .bind(to_i64(table, t.sale_count)?)
        .bind(t.gross_minor.to_string())
        .bind(to_i64(table, t.refund_count)?)
        .bind(t.refunded_minor.to_string()))
}

/// `head` + `rows` groups of `columns` placeholders + `tail`.
fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2) + tail.len());
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    sql.push_str(tail);
    sql
}

/// Sets one `late_totals` row (`$1` event, `$2` site, `$3` currency, `$4`, `$5`, `$7` sums as
/// decimal text, `$6` sales, `$8` round sales).
const UPSERT_LATE: &str = "INSERT INTO late_totals (event_id, site_id, currency, \
        late_refunded_minor, late_sales_minor, sale_count, gross_minor, round_count) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
        ON CONFLICT (event_id, site_id, currency) DO UPDATE SET \
        late_refunded_minor = excluded.late_refunded_minor, late_sales_minor = excluded.late_sales_minor, \
        sale_count = excluded.sale_count, gross_minor = excluded.gross_minor, \
        round_count = excluded.round_count";
