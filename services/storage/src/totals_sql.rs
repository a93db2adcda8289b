//! The totals side of storage (aggregator writes, leaderboard reads), written once for both
//! databases by a macro. The two differ only in how a write transaction takes its lock and how
//! a consistent read transaction begins, which the macro takes as arguments.

/// Implements [`crate::TotalsStore`] for a store type with a `pool` field.
macro_rules! totals_store_impl {
    ($store:ty, begin_write: $begin_write:expr, lock_state: $lock_state:expr, begin_read: $begin_read:expr, notify: $notify:expr, upsert_changes: $upsert_changes:path) => {
        // Money sums are read as decimal text: NUMERIC on PostgreSQL, TEXT on SQLite.
        type TotalsRow = (String, String, i64, String, i64, String);
        type HourlyRow = (String, String, i64, i64, String);

        #[async_trait::async_trait]
        impl $crate::TotalsStore for $store {
            async fn load_totals(&self) -> $crate::Result<$crate::model::StoredTotals> {
                use $crate::model::{currency, site_id, to_u64};
                let mut tx = self.pool.begin_with($begin_read).await?;
                let (applied,): (i64,) =
                    sqlx::query_as("SELECT applied_position FROM aggregator_state WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let totals: Vec<TotalsRow> = sqlx::query_as(
                    "SELECT site_id, currency, sale_count, CAST(gross_minor AS TEXT), refund_count, CAST(refunded_minor AS TEXT) \
                     FROM site_totals",
                )
                .fetch_all(&mut *tx)
                .await?;
                let hourly: Vec<HourlyRow> = sqlx::query_as(
                    "SELECT site_id, currency, hour_start_ns, sale_count, CAST(net_minor AS TEXT) FROM hourly_totals",
                )
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut book = saleboard_domain::totals::TotalsBook::default();
                for (s, c, sc, g, rc, r) in totals {
                    book.load_totals(
                        (site_id("site_totals", &s)?, currency("site_totals", &c)?),
                        $crate::model::currency_totals(sc, &g, rc, &r)?,
                    );
                }
                for (s, c, h, sc, n) in hourly {
                    book.load_hourly(
                        (site_id("hourly_totals", &s)?, currency("hourly_totals", &c)?, saleboard_domain::UnixNanos(h)),
                        saleboard_domain::totals::HourlyTotals { sale_count: to_u64("hourly_totals", sc)?, net_minor: $crate::model::wide("hourly_totals", &n)? },
                    );
                }
                Ok($crate::model::StoredTotals { applied: to_u64("aggregator_state", applied)?, book })
            }

            async fn apply_totals(
                &self,
                from: u64,
                to: u64,
                changes: &saleboard_domain::totals::Changes,
                now: saleboard_domain::UnixNanos,
            ) -> $crate::Result<()> {
                use $crate::model::db_position;
                let _gate = self.write_gate().await?;
                let mut tx = self.pool.begin_with($begin_write).await?;
                let (applied,): (i64,) = sqlx::query_as($lock_state).fetch_one(&mut *tx).await?;
                if applied != db_position(from)? {
                    return Err($crate::StorageError::Fenced {
                        expected: from,
                        found: u64::try_from(applied).unwrap_or_default(),
                    });
                }
                // One statement per table, whatever the number of changed totals.
                $upsert_changes(&mut tx, changes).await?;
                sqlx::query("UPDATE aggregator_state SET applied_position = $1, updated_at_ns = $2 WHERE id = 1")
                    .bind(db_position(to)?)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                if let Some(sql) = $notify {
                    sqlx::query(sql).bind(to.to_string()).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn try_lease(
                &self,
                holder: &str,
                now: saleboard_domain::UnixNanos,
                until: saleboard_domain::UnixNanos,
            ) -> $crate::Result<bool> {
                let taken = sqlx::query(
                    "UPDATE aggregator_state SET holder = $1, lease_until_ns = $3 \
                     WHERE id = 1 AND (holder = $1 OR holder = '' OR lease_until_ns < $2)",
                )
                .bind(holder)
                .bind(now.0)
                .bind(until.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(taken == 1)
            }

            async fn release_lease(&self, holder: &str) -> $crate::Result<()> {
                sqlx::query("UPDATE aggregator_state SET holder = '', lease_until_ns = 0 WHERE id = 1 AND holder = $1")
                    .bind(holder)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn aggregator_state(&self) -> $crate::Result<$crate::model::AggregatorState> {
                use $crate::model::to_u64;
                let (applied, updated, holder, until, head): (i64, i64, String, i64, i64) = sqlx::query_as(
                    "SELECT a.applied_position, a.updated_at_ns, a.holder, a.lease_until_ns, h.head \
                     FROM aggregator_state a, ledger_head h WHERE a.id = 1 AND h.id = 1",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::model::AggregatorState {
                    applied: to_u64("aggregator_state", applied)?,
                    head: to_u64("ledger_head", head)?,
                    holder,
                    lease_until: saleboard_domain::UnixNanos(until),
                    updated_at: saleboard_domain::UnixNanos(updated),
                })
            }

            async fn applied_position(&self) -> $crate::Result<u64> {
                let (applied,): (i64,) =
                    sqlx::query_as("SELECT applied_position FROM aggregator_state WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?;
                $crate::model::to_u64("aggregator_state", applied)
            }

            async fn read_board(&self) -> $crate::Result<$crate::model::BoardData> {
                use $crate::model::{currency, site_id, to_u64};
                let mut tx = self.pool.begin_with($begin_read).await?;
                let (applied,): (i64,) =
                    sqlx::query_as("SELECT applied_position FROM aggregator_state WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let sites: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT site_id, display_name, created_at_ns FROM sites ORDER BY site_id",
                )
                .fetch_all(&mut *tx)
                .await?;
                let totals: Vec<TotalsRow> = sqlx::query_as(
                    "SELECT site_id, currency, sale_count, CAST(gross_minor AS TEXT), refund_count, CAST(refunded_minor AS TEXT) \
                     FROM site_totals",
                )
                .fetch_all(&mut *tx)
                .await?;
                let rates: Vec<(String, String)> =
                    sqlx::query_as("SELECT currency, rate FROM exchange_rates ORDER BY currency")
                        .fetch_all(&mut *tx)
                        .await?;
                let event: Option<(String, String, i64, i64, String)> = sqlx::query_as(
                    "SELECT event_id, display_name, starts_at_ns, ends_at_ns, reporting_currency \
                     FROM event WHERE id = 1",
                )
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::model::BoardData {
                    applied: to_u64("aggregator_state", applied)?,
                    event: event
                        .map(|(id, name, s, e, c)| $crate::shared_sql::event_record(&id, &name, s, e, &c))
                        .transpose()?,
                    sites: sites
                        .into_iter()
                        .map(|(id, name, created)| $crate::shared_sql::site_record(id, name, created))
                        .collect::<$crate::Result<_>>()?,
                    totals: totals
                        .into_iter()
                        .map(|(s, c, sc, g, rc, r)| {
                            Ok((site_id("site_totals", &s)?, currency("site_totals", &c)?, $crate::model::currency_totals(sc, &g, rc, &r)?))
                        })
                        .collect::<$crate::Result<_>>()?,
                    rates: rates
                        .iter()
                        .map(|(c, r)| $crate::shared_sql::rate_record(c, r))
                        .collect::<$crate::Result<_>>()?,
                })
            }

            async fn site_totals(
                &self,
                site: &saleboard_domain::SiteId,
                include_hourly: bool,
            ) -> $crate::Result<Option<$crate::model::SiteTotalsData>> {
                use $crate::model::{currency, to_u64};
                let mut tx = self.pool.begin_with($begin_read).await?;
                let record: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT site_id, display_name, created_at_ns FROM sites WHERE site_id = $1",
                )
                .bind(site.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id, name, created)) = record else {
                    return Ok(None);
                };
                let (applied,): (i64,) =
                    sqlx::query_as("SELECT applied_position FROM aggregator_state WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let totals: Vec<TotalsRow> = sqlx::query_as(
                    "SELECT site_id, currency, sale_count, CAST(gross_minor AS TEXT), refund_count, CAST(refunded_minor AS TEXT) \
                     FROM site_totals WHERE site_id = $1 ORDER BY currency",
                )
                .bind(site.as_str())
                .fetch_all(&mut *tx)
                .await?;
                let hourly: Vec<HourlyRow> = if include_hourly {
                    sqlx::query_as(
                        "SELECT site_id, currency, hour_start_ns, sale_count, CAST(net_minor AS TEXT) FROM hourly_totals \
                         WHERE site_id = $1 ORDER BY hour_start_ns, currency",
                    )
                    .bind(site.as_str())
                    .fetch_all(&mut *tx)
                    .await?
                } else {
                    Vec::new()
                };
                tx.commit().await?;
                Ok(Some($crate::model::SiteTotalsData {
                    site: $crate::shared_sql::site_record(id, name, created)?,
                    totals: totals
                        .into_iter()
                        .map(|(_, c, sc, g, rc, r)| Ok((currency("site_totals", &c)?, $crate::model::currency_totals(sc, &g, rc, &r)?)))
                        .collect::<$crate::Result<_>>()?,
                    hourly: hourly
                        .into_iter()
                        .map(|(_, c, h, sc, n)| {
                            Ok((
                                saleboard_domain::UnixNanos(h),
                                currency("hourly_totals", &c)?,
                                saleboard_domain::totals::HourlyTotals { sale_count: to_u64("hourly_totals", sc)?, net_minor: $crate::model::wide("hourly_totals", &n)? },
                            ))
                        })
                        .collect::<$crate::Result<_>>()?,
                    applied: to_u64("aggregator_state", applied)?,
                }))
            }
        }
    };
}

pub(crate) use totals_store_impl;
