//! The PostgreSQL store: production. Accepted rows enter the ledger by binary `COPY` (the
//! cheapest way in for the server, [`crate::pg_copy`]); the other statements of an append and
//! of an apply bind whole batches as arrays (`UNNEST`), so a group commit of thousands of rows
//! is a handful of statements.

use std::time::Duration;

use async_trait::async_trait;
use saleboard_domain::totals::{Changes, CurrencyTotals, SegmentSiteKey};
use saleboard_domain::{Currency, Dimension, TransactionId};
use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, Postgres};

use crate::backend::{Accepted, Backend, Writing};
use crate::model::{db_position, to_i64};
use crate::pg_copy::BinaryRows;
use crate::rows::{RefundedRow, StoredRow};
use crate::tx::{ConnectionCounters, ConnectionStats};
use crate::writes::WriteHealth;
use crate::{Result, StorageError, Store};

/// Ledger and admin data in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    known: std::sync::Arc<crate::known::KnownKeys>,
    counters: std::sync::Arc<ConnectionCounters>,
    writes: std::sync::Arc<WriteHealth>,
}

impl PgStore {
    /// The applied position and the breakdown watermark (one row by primary key).
    async fn watermarks(&self) -> Result<(u64, u64)> {
        crate::watermarks(
            sqlx::query_as(crate::sql::APPLIED_BOTH)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Connects a pool of at most `max_connections`.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the credentials.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let counters = std::sync::Arc::default();
        let pool = crate::tx::guarded(PgPoolOptions::new(), &counters)
            .max_connections(max_connections)
            // With the database down, a request fails (UNAVAILABLE) within about 2 s instead
            // of hanging for its client's whole deadline.
            .acquire_timeout(Duration::from_secs(2))
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            known: std::sync::Arc::default(),
            counters,
            writes: std::sync::Arc::default(),
        })
    }

    /// The pool, for tests that inspect tables directly.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Loads rows into the ledger with `COPY ... FROM STDIN` in one transaction and moves the
    /// head: `data` in `format` (`binary`, as [`crate::pg_copy::BinaryRows`] writes it, or `csv`),
    /// the ledger's columns in table order: position, site_id, transaction_id, store_id, kind,
    /// currency, amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns, event_id,
    /// brand, category, origin. The benchmarks' physical limit of durable ingest; not a service
    /// path.
    ///
    /// # Errors
    /// When the server refuses the rows.
    pub async fn copy_in_ledger(&self, data: &[u8], format: CopyFormat, head: u64) -> Result<u64> {
        let mut tx = self.begin("BEGIN").await?;
        let statement = match format {
            CopyFormat::Binary => LEDGER_COPY.to_owned(),
            CopyFormat::Csv => LEDGER_COPY.replace("(FORMAT binary)", "(FORMAT csv)"),
        };
        let mut copy = tx.copy_in_raw(&statement).await?;
        for chunk in data.chunks(1 << 20) {
            copy.send(chunk).await?;
        }
        let rows = copy.finish().await?;
        sqlx::query("UPDATE ledger_head SET head = $1 WHERE id = 1")
            .bind(db_position(head)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
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
                include_str!("../migrations/postgres/0001_init.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                2,
                "totals".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0002_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                3,
                "c collation".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0003_c_collation.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                4,
                "wide totals".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0004_wide_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                5,
                "site disabled".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0005_site_disabled.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                6,
                "events".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0006_events.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                7,
                "event totals".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0007_event_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                8,
                "segments".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0008_segments.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                9,
                "hot path".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0009_hot_path.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                10,
                "national hourly".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0010_national_hourly.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                11,
                "breakdown watermark".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0011_breakdown_watermark.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                12,
                "incremental board".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0012_incremental_board.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                13,
                "organizers and the audit log".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0013_organizers_audit.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                14,
                "actions, holds and integrity policies".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0014_actions_holds.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                15,
                "late figures".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0015_late_totals.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                16,
                "organizers' voids".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0016_voids.sql").into_sql_str(),
                false,
            ),
            Migration::new(
                17,
                "late figures' denominators".into(),
                MigrationType::Simple,
                include_str!("../migrations/postgres/0017_late_denominators.sql").into_sql_str(),
                false,
            ),
        ];
        Migrator::with_migrations(all.into_iter().filter(|m| m.version <= version).collect())
    }
}

impl Backend for PgStore {
    type Db = Postgres;
    const BEGIN_READ: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    const LOCK_HEAD: &'static str = "SELECT head FROM ledger_head WHERE id = 1 FOR UPDATE";
    const LOCK_AUDIT: &'static str =
        "SELECT position, sha256 FROM audit_head WHERE id = 1 FOR UPDATE";
    // NO KEY UPDATE: ingest's ledger inserts take KEY SHARE on the site row (their foreign
    // key) under the ledger head's lock; FOR UPDATE would stall every append behind an
    // organizer's action.
    const LOCK_SITE: &'static str =
        "SELECT site_id FROM sites WHERE site_id = $1 FOR NO KEY UPDATE";
    const LOCK_STATE: &'static str =
        "SELECT applied_position FROM aggregator_state WHERE id = 1 FOR UPDATE";
    const NOTIFY_APPLIED: Option<&'static str> = Some("SELECT pg_notify('saleboard_applied', $1)");
    const MIGRATED: &'static str = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";
    fn pool(&self) -> &PgPool {
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

    /// PostgreSQL queues writers by its own row locks (`LOCK_HEAD`, `LOCK_STATE`).
    async fn begin_write(&self) -> Result<Writing<Postgres>> {
        Ok(Writing {
            tx: self.begin("BEGIN").await?,
            _queue: None,
        })
    }

    async fn ledger_after(&self, after: u64, limit: u32) -> Result<Vec<crate::LedgerRow>> {
        sqlx::query_as::<_, crate::rows::FullLedgerRow>(crate::sql::LEDGER_AFTER)
            .bind(db_position(after)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(crate::rows::FullLedgerRow::into_row)
            .collect()
    }

    async fn stored_rows(
        conn: &mut PgConnection,
        keys: &[(String, String)],
    ) -> Result<Vec<StoredRow>> {
        let (sites, ids): (Vec<&str>, Vec<&str>) =
            keys.iter().map(|(s, t)| (s.as_str(), t.as_str())).unzip();
        // One probe of the unique index per key, whatever the table's size or statistics: a
        // LATERAL subquery with LIMIT is never flattened into a join, so the planner cannot
        // turn thousands of keys into a hash join over the whole ledger.
        Ok(sqlx::query_as(
            "SELECT l.site_id, l.transaction_id, l.store_id, l.kind, l.currency, l.amount_minor, \
             l.occurred_at_ns, l.refund_of, l.position, l.event_id, l.brand, l.category, \
             l.origin FROM UNNEST($1::text[], $2::text[]) AS k(site_id, transaction_id) \
             CROSS JOIN LATERAL (SELECT * FROM ledger l WHERE l.site_id = k.site_id \
             AND l.transaction_id = k.transaction_id LIMIT 1) l",
        )
        .bind(sites)
        .bind(ids)
        .fetch_all(conn)
        .await?)
    }

    async fn refunded_sums(
        conn: &mut PgConnection,
        sales: &[(String, String)],
    ) -> Result<Vec<RefundedRow>> {
        let (sites, ids): (Vec<&str>, Vec<&str>) =
            sales.iter().map(|(s, t)| (s.as_str(), t.as_str())).unzip();
        // One probe of the refunds index per sale (the aggregate keeps the subquery apart).
        // Refunds only: a sale's void also names it, and is decided by its own row.
        Ok(sqlx::query_as(
            "SELECT k.site_id, k.sale_id, r.refunded \
             FROM UNNEST($1::text[], $2::text[]) AS k(site_id, sale_id) \
             CROSS JOIN LATERAL (SELECT SUM(l.amount_minor)::BIGINT AS refunded FROM ledger l \
             WHERE l.site_id = k.site_id AND l.refund_of = k.sale_id AND l.refund_of <> '' \
             AND l.kind = 2) r \
             WHERE r.refunded IS NOT NULL",
        )
        .bind(sites)
        .bind(ids)
        .fetch_all(conn)
        .await?)
    }

    async fn insert_accepted(conn: &mut PgConnection, accepted: &[Accepted<'_>]) -> Result<()> {
        if accepted.is_empty() {
            return Ok(());
        }
        let mut rows = BinaryRows::new(LEDGER_COPY_FIELDS, accepted.len());
        for a in accepted {
            ledger_row(&mut rows, a)?;
        }
        let expected = rows.len();
        let mut copy = conn.copy_in_raw(LEDGER_COPY).await?;
        copy.send(rows.finish()).await?;
        let stored = copy.finish().await?;
        if usize::try_from(stored).ok() != Some(expected) {
            return Err(StorageError::corrupt(
                "ledger",
                format!("COPY stored {stored} rows of {expected}"),
            ));
        }
        Ok(())
    }

    /// One statement: the keys and figures as arrays (`UNNEST`), sums as decimal text cast to
    /// NUMERIC.
    async fn upsert_late(
        conn: &mut PgConnection,
        figures: &[(
            saleboard_domain::totals::TotalsKey,
            saleboard_domain::late::LateTotals,
        )],
    ) -> Result<()> {
        let mut columns: (Vec<&str>, Vec<&str>, Vec<&str>) = (vec![], vec![], vec![]);
        let mut sums: (Vec<String>, Vec<String>, Vec<String>) = (vec![], vec![], vec![]);
        let mut counts: (Vec<i64>, Vec<i64>) = (vec![], vec![]);
        for ((event, site, currency), f) in figures {
            columns.0.push(event.as_str());
            columns.1.push(site.as_str());
            columns.2.push(currency.code());
            sums.0.push(f.late_refunded_minor.to_string());
            sums.1.push(f.late_sales_minor.to_string());
            sums.2.push(f.gross_minor.to_string());
            counts.0.push(to_i64("late_totals", f.sale_count)?);
            counts.1.push(to_i64("late_totals", f.round_count)?);
        }
        sqlx::query(
            "INSERT INTO late_totals (event_id, site_id, currency, late_refunded_minor, \
             late_sales_minor, sale_count, gross_minor, round_count) \
             SELECT e, s, c, r::numeric, l::numeric, n, g::numeric, o FROM UNNEST($1::text[], \
             $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], \
             $8::bigint[]) AS u(e, s, c, r, l, n, g, o) \
             ON CONFLICT (event_id, site_id, currency) DO UPDATE SET \
             late_refunded_minor = excluded.late_refunded_minor, \
             late_sales_minor = excluded.late_sales_minor, sale_count = excluded.sale_count, \
             gross_minor = excluded.gross_minor, round_count = excluded.round_count",
        )
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .bind(sums.0)
        .bind(sums.1)
        .bind(counts.0)
        .bind(sums.2)
        .bind(counts.1)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Money sums are bound as decimal text and cast to NUMERIC.
    async fn upsert_totals(
        conn: &mut PgConnection,
        changes: &Changes,
        position: u64,
    ) -> Result<()> {
        upsert_segments(&mut *conn, changes, position).await?;
        if !changes.totals.is_empty() {
            let mut c = TotalsColumns::default();
            for ((event, site, currency), t) in &changes.totals {
                c.event.push(event.as_str());
                c.site.push(site.as_str());
                c.currency.push(currency.code());
                c.sales.push(to_i64("site_totals", t.sale_count)?);
                c.gross.push(t.gross_minor);
                c.refunds.push(to_i64("site_totals", t.refund_count)?);
                c.refunded.push(t.refunded_minor);
                c.net.push(t.net_minor());
            }
            let (gross, refunded, net) =
                (Sums::of(&c.gross), Sums::of(&c.refunded), Sums::of(&c.net));
            let sql = format!(
                "INSERT INTO site_totals (site_id, currency, sale_count, gross_minor, \
                 refund_count, refunded_minor, net_minor, event_id, changed_at_position) \
                 SELECT u.*, $9 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::{}, \
                 $5::bigint[], $6::{}, $7::{}, $8::text[]) AS u \
                 ON CONFLICT (event_id, site_id, currency) DO UPDATE SET sale_count = excluded.sale_count, \
                 gross_minor = excluded.gross_minor, refund_count = excluded.refund_count, \
                 refunded_minor = excluded.refunded_minor, net_minor = excluded.net_minor, \
                 changed_at_position = excluded.changed_at_position",
                gross.array_type(),
                refunded.array_type(),
                net.array_type()
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(c.site)
                .bind(c.currency)
                .bind(c.sales);
            let query = gross.bind(query).bind(c.refunds);
            let query = refunded.bind(query);
            net.bind(query)
                .bind(c.event)
                .bind(db_position(position)?)
                .execute(&mut *conn)
                .await?;
        }
        if !changes.hourly.is_empty() {
            let mut c = HourlyColumns::default();
            for ((event, site, currency, hour), h) in &changes.hourly {
                c.event.push(event.as_str());
                c.site.push(site.as_str());
                c.currency.push(currency.code());
                c.hour.push(hour.0);
                c.sales.push(to_i64("hourly_totals", h.sale_count)?);
                c.net.push(h.net_minor);
            }
            let net = Sums::of(&c.net);
            let sql = format!(
                "INSERT INTO hourly_totals (site_id, currency, hour_start_ns, sale_count, \
                 net_minor, event_id) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
                 $5::{}, $6::text[]) \
                 ON CONFLICT (event_id, site_id, currency, hour_start_ns) DO UPDATE SET \
                 sale_count = excluded.sale_count, net_minor = excluded.net_minor",
                net.array_type()
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(c.site)
                .bind(c.currency)
                .bind(c.hour)
                .bind(c.sales);
            net.bind(query).bind(c.event).execute(&mut *conn).await?;
        }
        if !changes.national_hourly.is_empty() {
            let (mut event, mut currency, mut hour, mut sales, mut net) =
                (vec![], vec![], vec![], vec![], vec![]);
            for ((e, c, h), t) in &changes.national_hourly {
                event.push(e.as_str());
                currency.push(c.code());
                hour.push(h.0);
                sales.push(to_i64("national_hourly_totals", t.sale_count)?);
                net.push(t.net_minor);
            }
            let net = Sums::of(&net);
            let sql = format!(
                "INSERT INTO national_hourly_totals (event_id, currency, hour_start_ns, \
                 sale_count, net_minor, changed_at_position) \
                 SELECT u.*, $6 FROM UNNEST($1::text[], $2::text[], $3::bigint[], \
                 $4::bigint[], $5::{}) AS u \
                 ON CONFLICT (event_id, currency, hour_start_ns) DO UPDATE SET \
                 sale_count = excluded.sale_count, net_minor = excluded.net_minor, \
                 changed_at_position = excluded.changed_at_position",
                net.array_type()
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(event)
                .bind(currency)
                .bind(hour)
                .bind(sales);
            net.bind(query)
                .bind(db_position(position)?)
                .execute(conn)
                .await?;
        }
        Ok(())
    }
}

/// The formats of [`PgStore::copy_in_ledger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// PostgreSQL's binary format: how ingest writes.
    Binary,
    /// CSV.
    Csv,
}

/// How accepted rows enter the ledger (see [`crate::pg_copy`]); [`ledger_row`] writes the
/// fields in this order.
const LEDGER_COPY: &str = "COPY ledger (position, site_id, transaction_id, store_id, kind, \
     currency, amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns, event_id, brand, \
     category, origin) FROM STDIN (FORMAT binary)";
/// The columns of [`LEDGER_COPY`].
pub const LEDGER_COPY_FIELDS: i16 = 15;

/// One ledger row as [`LEDGER_COPY`] lists its columns: the one place their order is written
/// (ingest's appends, backup restore, and `bench-copy`'s baseline all go through it).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // the ledger's columns, by name
pub struct LedgerCopyRow<'a> {
    pub position: i64,
    pub site_id: &'a str,
    pub transaction_id: &'a str,
    pub store_id: &'a str,
    pub kind: i16,
    pub currency: &'a str,
    pub amount_minor: i64,
    pub occurred_at_ns: i64,
    /// Empty for a sale.
    pub refund_of: &'a str,
    pub key_id: &'a str,
    pub received_at_ns: i64,
    pub event_id: &'a str,
    pub brand: &'a str,
    pub category: &'a str,
    pub origin: i16,
}

impl LedgerCopyRow<'_> {
    /// Adds the row to `rows` (made with [`LEDGER_COPY_FIELDS`] fields).
    ///
    /// # Errors
    /// When a text field is longer than the format allows.
    pub fn write(&self, rows: &mut BinaryRows) -> Result<()> {
        rows.row();
        rows.int8(self.position)?;
        rows.text(self.site_id)?;
        rows.text(self.transaction_id)?;
        rows.text(self.store_id)?;
        rows.int2(self.kind)?;
        rows.text(self.currency)?;
        rows.int8(self.amount_minor)?;
        rows.int8(self.occurred_at_ns)?;
        rows.text(self.refund_of)?;
        rows.text(self.key_id)?;
        rows.int8(self.received_at_ns)?;
        rows.text(self.event_id)?;
        rows.text(self.brand)?;
        rows.text(self.category)?;
        rows.int2(self.origin)
    }
}

/// One accepted row, as [`LEDGER_COPY`] lists its columns.
fn ledger_row(rows: &mut BinaryRows, a: &Accepted<'_>) -> Result<()> {
    let c = a.candidate;
    LedgerCopyRow {
        position: db_position(a.position)?,
        site_id: c.site.as_str(),
        transaction_id: c.tx.id.as_str(),
        store_id: c.tx.store_id.as_str(),
        kind: c.tx.kind().code(),
        currency: c.tx.currency.code(),
        amount_minor: c.tx.amount_minor,
        occurred_at_ns: c.tx.occurred_at.0,
        refund_of: c.tx.nature.names().map_or("", TransactionId::as_str),
        key_id: c.key_id.as_str(),
        received_at_ns: c.received_at.0,
        event_id: a.event_id,
        brand: a.segments.key(Dimension::Brand),
        category: a.segments.key(Dimension::Category),
        origin: a.segments.origin.code(),
    }
    .write(rows)
}

/// The changed per-currency totals of one apply, column by column (for `UNNEST`).
#[derive(Default)]
struct TotalsColumns<'a> {
    event: Vec<&'a str>,
    site: Vec<&'a str>,
    currency: Vec<&'a str>,
    sales: Vec<i64>,
    gross: Vec<i128>,
    refunds: Vec<i64>,
    refunded: Vec<i128>,
    net: Vec<i128>,
}

/// The changed hourly totals of one apply, column by column (for `UNNEST`).
#[derive(Default)]
struct HourlyColumns<'a> {
    event: Vec<&'a str>,
    site: Vec<&'a str>,
    currency: Vec<&'a str>,
    hour: Vec<i64>,
    sales: Vec<i64>,
    net: Vec<i128>,
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<()> {
        crate::shared::refuse_newer_schema(self, "postgres", &Self::migrator()).await?;
        Self::migrator().run(&self.pool).await?;
        Ok(())
    }

    async fn migrate_until(&self, version: i64) -> Result<()> {
        Self::migrator_until(version).run(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn write_fault(&self) -> Option<crate::WriteFault> {
        self.writes.fault()
    }

    fn connection_stats(&self) -> ConnectionStats {
        self.counters.stats()
    }

    async fn applied_feed(&self) -> Result<tokio::sync::watch::Receiver<(u64, u64)>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen("saleboard_applied").await?;
        let (tx, rx) = tokio::sync::watch::channel(self.watermarks().await?);
        let store = self.clone();
        tokio::spawn(async move {
            let mut safety = tokio::time::interval(crate::PG_FEED_SAFETY_POLL);
            // Logged when the connection is lost, not at every failed reconnection.
            let mut lost = false;
            loop {
                let seen = tokio::select! {
                    () = tx.closed() => break,
                    n = listener.recv() => match n {
                        Ok(n) => {
                            lost = false;
                            // "APPLIED" or "APPLIED BREAKDOWNS" (see `apply_totals`).
                            let mut parts = n.payload().split(' ').map(|p| p.parse::<u64>().ok());
                            Some((parts.next().flatten(), parts.next().flatten()))
                        }
                        Err(e) => {
                            if !std::mem::replace(&mut lost, true) {
                                tracing::warn!(error = %e, "applied feed: notification connection lost; reconnecting");
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            None
                        }
                    },
                    _ = safety.tick() => store.watermarks().await.ok().map(|(a, b)| (Some(a), Some(b))),
                };
                if let Some((applied, breakdowns)) = seen {
                    crate::advance_feed(&tx, applied, breakdowns);
                }
            }
        });
        Ok(rx)
    }
}

/// Writes changed per-site breakdown rows: `insert`, rows the store does not hold yet;
/// otherwise an upsert.
async fn write_segment_sites<'a>(
    conn: &mut PgConnection,
    rows: impl Iterator<Item = &'a (SegmentSiteKey, Currency, CurrencyTotals, bool)>,
    insert: bool,
) -> Result<()> {
    let (mut event, mut site, mut dim, mut key, mut cur) = (vec![], vec![], vec![], vec![], vec![]);
    let mut f = FigureColumns::default();
    for ((e, d, k, s), c, t, _) in rows {
        event.push(e.as_str());
        site.push(s.as_str());
        dim.push(d.code());
        key.push(k.as_str());
        cur.push(c.code());
        f.push("segment_site_totals", t)?;
    }
    if event.is_empty() {
        return Ok(());
    }
    let (gross, refunded) = f.sums();
    let sql = format!(
        "INSERT INTO segment_site_totals (event_id, site_id, dimension, key, currency, \
         sale_count, gross_minor, refund_count, refunded_minor) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::smallint[], $4::text[], \
         $5::text[], $6::bigint[], $7::{}, $8::bigint[], $9::{}){}",
        gross.array_type(),
        refunded.array_type(),
        if insert {
            ""
        } else {
            " ON CONFLICT (event_id, site_id, dimension, key, currency) DO UPDATE SET \
             sale_count = excluded.sale_count, gross_minor = excluded.gross_minor, \
             refund_count = excluded.refund_count, refunded_minor = excluded.refunded_minor"
        }
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(event)
        .bind(site)
        .bind(dim)
        .bind(key)
        .bind(cur);
    f.bind(query, gross, refunded).execute(&mut *conn).await?;
    Ok(())
}

/// A totals row's four figures, column by column (for `UNNEST`).
#[derive(Default)]
struct FigureColumns {
    sales: Vec<i64>,
    gross: Vec<i128>,
    refunds: Vec<i64>,
    refunded: Vec<i128>,
}

impl FigureColumns {
    fn push(&mut self, table: &'static str, t: &CurrencyTotals) -> Result<()> {
        self.sales.push(to_i64(table, t.sale_count)?);
        self.gross.push(t.gross_minor);
        self.refunds.push(to_i64(table, t.refund_count)?);
        self.refunded.push(t.refunded_minor);
        Ok(())
    }

    /// The sums' columns, whose array types the statement names.
    fn sums(&self) -> (Sums, Sums) {
        (Sums::of(&self.gross), Sums::of(&self.refunded))
    }

    /// Binds the four columns in order (sales, gross, refunds, refunded).
    fn bind<'q>(self, query: PgQuery<'q>, gross: Sums, refunded: Sums) -> PgQuery<'q> {
        let query = gross.bind(query.bind(self.sales)).bind(self.refunds);
        refunded.bind(query)
    }
}

/// Writes the changed breakdown rows of one apply: per site, and national (every currency of a
/// changed key, with its site count, marked changed at `position`).
async fn upsert_segments(conn: &mut PgConnection, changes: &Changes, position: u64) -> Result<()> {
    // New rows go in with a plain insert, the others with an upsert: on the same rows, 40%
    // less server time for the insert (no probe for a conflict, no speculative insertion),
    // and new keys are a large part of an event's first hour. A row that exists after all
    // fails the insert, and with it the apply (the aggregator then reloads from the store).
    for new in [true, false] {
        let rows = changes.segment_sites.iter().filter(|r| r.3 == new);
        write_segment_sites(conn, rows, new).await?;
    }
    if !changes.segments.is_empty() {
        let (mut event, mut dim, mut key, mut cur) = (vec![], vec![], vec![], vec![]);
        let mut f = FigureColumns::default();
        let mut sites = vec![];
        for ((e, d, k), figures) in &changes.segments {
            for (c, t) in &figures.totals {
                event.push(e.as_str());
                dim.push(d.code());
                key.push(k.as_str());
                cur.push(c.code());
                f.push("segment_totals", t)?;
                sites.push(i32::try_from(figures.site_count).unwrap_or(i32::MAX));
            }
        }
        let (gross, refunded) = f.sums();
        let sql = format!(
            "INSERT INTO segment_totals (event_id, dimension, key, currency, sale_count, \
             gross_minor, refund_count, refunded_minor, site_count, changed_at_position) \
             SELECT u.*, $10 FROM UNNEST($1::text[], $2::smallint[], $3::text[], $4::text[], \
             $5::bigint[], $6::{}, $7::bigint[], $8::{}, $9::integer[]) AS u \
             ON CONFLICT (event_id, dimension, key, currency) DO UPDATE SET \
             sale_count = excluded.sale_count, gross_minor = excluded.gross_minor, \
             refund_count = excluded.refund_count, refunded_minor = excluded.refunded_minor, \
             site_count = excluded.site_count, changed_at_position = excluded.changed_at_position",
            gross.array_type(),
            refunded.array_type()
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(event)
            .bind(dim)
            .bind(key)
            .bind(cur);
        f.bind(query, gross, refunded)
            .bind(sites)
            .bind(db_position(position)?)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One column of exact sums for `UNNEST`: `bigint` when every sum of the column fits (the usual
/// case: the server widens integers instead of parsing decimal text), else decimal text.
/// `NUMERIC(39, 0)` columns take either.
enum Sums {
    Int(Vec<i64>),
    Text(Vec<String>),
}

impl Sums {
    fn of(values: &[i128]) -> Self {
        match values.iter().map(|&v| i64::try_from(v)).collect() {
            Ok(ints) => Self::Int(ints),
            Err(_) => Self::Text(values.iter().map(i128::to_string).collect()),
        }
    }

    /// The parameter's array type.
    fn array_type(&self) -> &'static str {
        match self {
            Self::Int(_) => "bigint[]",
            Self::Text(_) => "numeric[]",
        }
    }

    /// Binds the column as the query's next parameter.
    fn bind(self, query: PgQuery<'_>) -> PgQuery<'_> {
        match self {
            Self::Int(v) => query.bind(v),
            Self::Text(v) => query.bind(v),
        }
    }
}

/// A PostgreSQL query with its arguments.
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;
