//! The PostgreSQL store: production. Appends bind whole batches as arrays (`UNNEST`), so a
//! group commit of thousands of rows is a handful of statements.

use std::time::Duration;

use async_trait::async_trait;
use saleboard_domain::TransactionId;
use saleboard_domain::resolve::{Decision, LedgerState};
use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::append::{KeyRow, decide, keys_to_load, load_refunded, load_stored, refund_targets};
use crate::model::db_position;
use crate::shared_sql::shared_store_impl;
use crate::totals_sql::totals_store_impl;
use crate::{Candidate, LedgerRow, LedgerStore, Result, Store, TotalsStore};

/// Ledger and admin data in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects a pool of at most `max_connections`.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the credentials.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // With the database down, a request fails (UNAVAILABLE) within about 2 s instead
            // of hanging for its client's whole deadline.
            .acquire_timeout(Duration::from_secs(2))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for tests that inspect tables directly.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Loads CSV rows (the ledger's columns, in table order: position, site_id,
    /// transaction_id, store_id, kind, currency, amount_minor, occurred_at_ns, refund_of,
    /// key_id, received_at_ns) with `COPY ... FROM STDIN` in one transaction and moves the head.
    /// The benchmarks' physical limit of durable ingest; not a service path.
    ///
    /// # Errors
    /// When the server refuses the rows.
    pub async fn copy_in_ledger_csv(&self, csv: &[u8], head: u64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut copy = tx
            .copy_in_raw(
                "COPY ledger (position, site_id, transaction_id, store_id, kind, currency, \
                 amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns) \
                 FROM STDIN (FORMAT csv)",
            )
            .await?;
        for chunk in csv.chunks(1 << 20) {
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

    /// PostgreSQL queues writers by its own row lock; no gate is needed.
    pub(crate) async fn write_gate(&self) -> Result<Option<std::fs::File>> {
        Ok(None)
    }

    fn migrator() -> Migrator {
        Migrator::with_migrations(vec![
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
        ])
    }
}

shared_store_impl!(PgStore);

/// The changed per-currency totals of one apply, column by column (for `UNNEST`).
#[derive(Default)]
struct TotalsColumns<'a> {
    site: Vec<&'a str>,
    currency: Vec<&'a str>,
    sales: Vec<i64>,
    gross: Vec<String>,
    refunds: Vec<i64>,
    refunded: Vec<String>,
    net: Vec<String>,
}

/// The changed hourly totals of one apply, column by column (for `UNNEST`).
#[derive(Default)]
struct HourlyColumns<'a> {
    site: Vec<&'a str>,
    currency: Vec<&'a str>,
    hour: Vec<i64>,
    sales: Vec<i64>,
    net: Vec<String>,
}

/// Writes the changed totals of one apply: one `UNNEST` statement per table. Money sums are
/// bound as decimal text and cast to NUMERIC.
async fn upsert_changes(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    changes: &saleboard_domain::totals::Changes,
) -> Result<()> {
    use crate::model::to_i64;
    if !changes.totals.is_empty() {
        let mut c = TotalsColumns::default();
        for ((site, currency), t) in &changes.totals {
            c.site.push(site.as_str());
            c.currency.push(currency.code());
            c.sales.push(to_i64("site_totals", t.sale_count)?);
            c.gross.push(t.gross_minor.to_string());
            c.refunds.push(to_i64("site_totals", t.refund_count)?);
            c.refunded.push(t.refunded_minor.to_string());
            c.net.push(t.net_minor().to_string());
        }
        sqlx::query(
            "INSERT INTO site_totals (site_id, currency, sale_count, gross_minor, refund_count, \
             refunded_minor, net_minor) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::numeric[], \
             $5::bigint[], $6::numeric[], $7::numeric[]) \
             ON CONFLICT (site_id, currency) DO UPDATE SET sale_count = excluded.sale_count, \
             gross_minor = excluded.gross_minor, refund_count = excluded.refund_count, \
             refunded_minor = excluded.refunded_minor, net_minor = excluded.net_minor",
        )
        .bind(c.site)
        .bind(c.currency)
        .bind(c.sales)
        .bind(c.gross)
        .bind(c.refunds)
        .bind(c.refunded)
        .bind(c.net)
        .execute(&mut **tx)
        .await?;
    }
    if !changes.hourly.is_empty() {
        let mut c = HourlyColumns::default();
        for ((site, currency, hour), h) in &changes.hourly {
            c.site.push(site.as_str());
            c.currency.push(currency.code());
            c.hour.push(hour.0);
            c.sales.push(to_i64("hourly_totals", h.sale_count)?);
            c.net.push(h.net_minor.to_string());
        }
        sqlx::query(
            "INSERT INTO hourly_totals (site_id, currency, hour_start_ns, sale_count, net_minor) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
             $5::numeric[]) \
             ON CONFLICT (site_id, currency, hour_start_ns) DO UPDATE SET \
             sale_count = excluded.sale_count, net_minor = excluded.net_minor",
        )
        .bind(c.site)
        .bind(c.currency)
        .bind(c.hour)
        .bind(c.sales)
        .bind(c.net)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
totals_store_impl!(
    PgStore,
    begin_write: "BEGIN",
    lock_state: "SELECT applied_position FROM aggregator_state WHERE id = 1 FOR UPDATE",
    begin_read: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    notify: Some("SELECT pg_notify('saleboard_applied', $1)"),
    upsert_changes: upsert_changes
);

#[async_trait]
impl LedgerStore for PgStore {
    async fn append(&self, batch: &[Candidate]) -> Result<Vec<Decision>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        // Lock the head row first: from here until commit no other writer, in any process,
        // can read or move the head, so the state loaded below is complete.
        let (head,): (i64,) =
            sqlx::query_as("SELECT head FROM ledger_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let head =
            u64::try_from(head).map_err(|e| crate::StorageError::corrupt("ledger_head", e))?;
        let mut state = LedgerState::new(head);

        let (sites, ids): (Vec<String>, Vec<String>) = keys_to_load(batch).into_iter().unzip();
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT l.site_id, l.transaction_id, l.store_id, l.kind, l.currency, l.amount_minor, \
             l.occurred_at_ns, l.refund_of, l.position \
             FROM UNNEST($1::text[], $2::text[]) AS k(site_id, transaction_id) \
             JOIN ledger l ON l.site_id = k.site_id AND l.transaction_id = k.transaction_id",
        )
        .bind(&sites)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        load_stored(&mut state, rows)?;

        let (sites, sales): (Vec<String>, Vec<String>) = refund_targets(batch).into_iter().unzip();
        if !sites.is_empty() {
            // The refunds of one sale never exceed the sale, an i64, so the sum fits a BIGINT.
            let sums: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT l.site_id, l.refund_of, SUM(l.amount_minor)::BIGINT \
                 FROM UNNEST($1::text[], $2::text[]) AS k(site_id, sale_id) \
                 JOIN ledger l ON l.site_id = k.site_id AND l.refund_of = k.sale_id \
                 AND l.refund_of <> '' \
                 GROUP BY l.site_id, l.refund_of",
            )
            .bind(&sites)
            .bind(&sales)
            .fetch_all(&mut *tx)
            .await?;
            load_refunded(&mut state, sums)?;
        }

        let (decisions, accepted) = decide(&mut state, batch);
        if let Some(&(_, last)) = accepted.last() {
            let n = accepted.len();
            let mut position = Vec::with_capacity(n);
            let mut site_id = Vec::with_capacity(n);
            let mut transaction_id = Vec::with_capacity(n);
            let mut store_id = Vec::with_capacity(n);
            let mut kind = Vec::with_capacity(n);
            let mut currency = Vec::with_capacity(n);
            let mut amount = Vec::with_capacity(n);
            let mut occurred = Vec::with_capacity(n);
            let mut refund_of = Vec::with_capacity(n);
            let mut key_id = Vec::with_capacity(n);
            let mut received = Vec::with_capacity(n);
            for (c, pos) in &accepted {
                position.push(db_position(*pos)?);
                site_id.push(c.site.as_str());
                transaction_id.push(c.tx.id.as_str());
                store_id.push(c.tx.store_id.as_str());
                kind.push(c.tx.kind().code());
                currency.push(c.tx.currency.code());
                amount.push(c.tx.amount_minor);
                occurred.push(c.tx.occurred_at.0);
                refund_of.push(c.tx.refund_of().map_or("", TransactionId::as_str));
                key_id.push(c.key_id.as_str());
                received.push(c.received_at.0);
            }
            sqlx::query(
                "INSERT INTO ledger (position, site_id, transaction_id, store_id, kind, currency, \
                 amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
                 $5::smallint[], $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], \
                 $11::bigint[])",
            )
            .bind(&position)
            .bind(&site_id)
            .bind(&transaction_id)
            .bind(&store_id)
            .bind(&kind)
            .bind(&currency)
            .bind(&amount)
            .bind(&occurred)
            .bind(&refund_of)
            .bind(&key_id)
            .bind(&received)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE ledger_head SET head = $1 WHERE id = 1")
                .bind(db_position(last)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(decisions)
    }

    async fn ledger_head(&self) -> Result<u64> {
        self.shared_ledger_head().await
    }

    async fn read_ledger(&self, after: u64, limit: u32) -> Result<Vec<LedgerRow>> {
        self.shared_read_ledger(after, limit).await
    }
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<()> {
        Self::migrator().run(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn applied_feed(&self) -> Result<tokio::sync::watch::Receiver<u64>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen("saleboard_applied").await?;
        let (tx, rx) = tokio::sync::watch::channel(self.applied_position().await?);
        let store = self.clone();
        tokio::spawn(async move {
            let mut safety = tokio::time::interval(crate::PG_FEED_SAFETY_POLL);
            loop {
                let seen = tokio::select! {
                    () = tx.closed() => break,
                    n = listener.recv() => match n {
                        Ok(n) => n.payload().parse::<u64>().ok(),
                        Err(e) => {
                            tracing::warn!(error = %e, "applied feed: notification connection lost; reconnecting");
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            None
                        }
                    },
                    _ = safety.tick() => store.applied_position().await.ok(),
                };
                if let Some(applied) = seen {
                    crate::advance_feed(&tx, applied);
                }
            }
        });
        Ok(rx)
    }
}
