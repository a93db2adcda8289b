//! SQL that reads the same on PostgreSQL and SQLite (both accept `$n` placeholders, `RETURNING`
//! and `ON CONFLICT`), implemented once for both pools by a macro. Only the append path and the
//! connection set-up differ per database.

use saleboard_domain::{Currency, Event, Rate, SiteId, UnixNanos};

use crate::{ActiveKey, ApiKeyRecord, Result, SiteRecord, StorageError};

pub(crate) fn site_record(
    site_id: String,
    display_name: String,
    created: i64,
) -> Result<SiteRecord> {
    Ok(SiteRecord {
        site_id: SiteId::parse(&site_id).map_err(|e| StorageError::corrupt("sites", e))?,
        display_name,
        created_at: UnixNanos(created),
    })
}

pub(crate) fn key_record(
    key_id: String,
    site_id: String,
    created: i64,
    revoked: Option<i64>,
) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        key_id,
        site_id: SiteId::parse(&site_id).map_err(|e| StorageError::corrupt("api_keys", e))?,
        created_at: UnixNanos(created),
        revoked_at: revoked.map(UnixNanos),
    })
}

pub(crate) fn active_key(
    key_id: String,
    site_id: String,
    secret_hash: String,
) -> Result<ActiveKey> {
    Ok(ActiveKey {
        key_id,
        site_id: SiteId::parse(&site_id).map_err(|e| StorageError::corrupt("api_keys", e))?,
        secret_hash,
    })
}

pub(crate) fn event_record(
    event_id: &str,
    display_name: &str,
    starts: i64,
    ends: i64,
    currency: &str,
) -> Result<Event> {
    Event::new(
        event_id,
        display_name,
        UnixNanos(starts),
        UnixNanos(ends),
        currency,
    )
    .map_err(|e| StorageError::corrupt("event", e))
}

pub(crate) fn rate_record(currency: &str, rate: &str) -> Result<(Currency, Rate)> {
    Ok((
        Currency::parse(currency).map_err(|e| StorageError::corrupt("exchange_rates", e))?,
        Rate::parse(rate).map_err(|e| StorageError::corrupt("exchange_rates", e))?,
    ))
}

/// Implements [`crate::AdminStore`] and the read side of [`crate::LedgerStore`] for a store
/// type with a `pool` field.
macro_rules! shared_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::AdminStore for $store {
            async fn create_site(
                &self,
                site: &saleboard_domain::SiteId,
                display_name: &str,
                now: saleboard_domain::UnixNanos,
            ) -> $crate::Result<$crate::SiteRecord> {
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "INSERT INTO sites (site_id, display_name, created_at_ns) VALUES ($1, $2, $3) \
                     ON CONFLICT (site_id) DO NOTHING \
                     RETURNING site_id, display_name, created_at_ns",
                )
                .bind(site.as_str())
                .bind(display_name)
                .bind(now.0)
                .fetch_optional(&self.pool)
                .await?;
                let (id, name, created) = row.ok_or_else(|| $crate::StorageError::AlreadyExists {
                    what: "site",
                    id: site.to_string(),
                })?;
                $crate::shared_sql::site_record(id, name, created)
            }

            async fn list_sites(&self) -> $crate::Result<Vec<$crate::SiteRecord>> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT site_id, display_name, created_at_ns FROM sites ORDER BY site_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, name, created)| $crate::shared_sql::site_record(id, name, created))
                    .collect()
            }

            async fn create_api_key(
                &self,
                key_id: &str,
                site: &saleboard_domain::SiteId,
                secret_hash: &str,
                now: saleboard_domain::UnixNanos,
            ) -> $crate::Result<$crate::ApiKeyRecord> {
                let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
                    "INSERT INTO api_keys (key_id, site_id, secret_hash, created_at_ns) \
                     SELECT $1, site_id, $3, $4 FROM sites WHERE site_id = $2 \
                     RETURNING key_id, site_id, created_at_ns, revoked_at_ns",
                )
                .bind(key_id)
                .bind(site.as_str())
                .bind(secret_hash)
                .bind(now.0)
                .fetch_optional(&self.pool)
                .await?;
                let (k, s, c, r) = row.ok_or_else(|| $crate::StorageError::NotFound {
                    what: "site",
                    id: site.to_string(),
                })?;
                $crate::shared_sql::key_record(k, s, c, r)
            }

            async fn revoke_api_key(
                &self,
                key_id: &str,
                now: saleboard_domain::UnixNanos,
            ) -> $crate::Result<$crate::ApiKeyRecord> {
                let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
                    "UPDATE api_keys SET revoked_at_ns = COALESCE(revoked_at_ns, $2) \
                     WHERE key_id = $1 \
                     RETURNING key_id, site_id, created_at_ns, revoked_at_ns",
                )
                .bind(key_id)
                .bind(now.0)
                .fetch_optional(&self.pool)
                .await?;
                let (k, s, c, r) = row.ok_or_else(|| $crate::StorageError::NotFound {
                    what: "API key",
                    id: key_id.to_owned(),
                })?;
                $crate::shared_sql::key_record(k, s, c, r)
            }

            async fn list_api_keys(
                &self,
                site: Option<&saleboard_domain::SiteId>,
            ) -> $crate::Result<Vec<$crate::ApiKeyRecord>> {
                let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT key_id, site_id, created_at_ns, revoked_at_ns FROM api_keys \
                     WHERE $1 = '' OR site_id = $1 ORDER BY site_id, created_at_ns, key_id",
                )
                .bind(site.map_or("", |s| s.as_str()))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(k, s, c, r)| $crate::shared_sql::key_record(k, s, c, r))
                    .collect()
            }

            async fn active_keys(&self) -> $crate::Result<Vec<$crate::ActiveKey>> {
                let rows: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT key_id, site_id, secret_hash FROM api_keys \
                     WHERE revoked_at_ns IS NULL",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(k, s, h)| $crate::shared_sql::active_key(k, s, h))
                    .collect()
            }

            async fn find_active_key(
                &self,
                secret_hash: &str,
            ) -> $crate::Result<Option<$crate::ActiveKey>> {
                let row: Option<(String, String, String)> = sqlx::query_as(
                    "SELECT key_id, site_id, secret_hash FROM api_keys \
                     WHERE secret_hash = $1 AND revoked_at_ns IS NULL",
                )
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(k, s, h)| $crate::shared_sql::active_key(k, s, h))
                    .transpose()
            }

            async fn set_event(&self, event: &saleboard_domain::Event) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO event (id, event_id, display_name, starts_at_ns, ends_at_ns, \
                     reporting_currency) VALUES (1, $1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, \
                     display_name = excluded.display_name, starts_at_ns = excluded.starts_at_ns, \
                     ends_at_ns = excluded.ends_at_ns, \
                     reporting_currency = excluded.reporting_currency",
                )
                .bind(&event.event_id)
                .bind(&event.display_name)
                .bind(event.starts_at.0)
                .bind(event.ends_at.0)
                .bind(event.reporting_currency.code())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_event(&self) -> $crate::Result<Option<saleboard_domain::Event>> {
                let row: Option<(String, String, i64, i64, String)> = sqlx::query_as(
                    "SELECT event_id, display_name, starts_at_ns, ends_at_ns, reporting_currency \
                     FROM event WHERE id = 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(id, name, s, e, c)| $crate::shared_sql::event_record(&id, &name, s, e, &c))
                    .transpose()
            }

            async fn set_exchange_rates(
                &self,
                rates: &[(saleboard_domain::Currency, saleboard_domain::Rate)],
            ) -> $crate::Result<Vec<(saleboard_domain::Currency, saleboard_domain::Rate)>> {
                let mut tx = self.pool.begin().await?;
                for (currency, rate) in rates {
                    sqlx::query(
                        "INSERT INTO exchange_rates (currency, rate) VALUES ($1, $2) \
                         ON CONFLICT (currency) DO UPDATE SET rate = excluded.rate",
                    )
                    .bind(currency.code())
                    .bind(rate.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                $crate::AdminStore::list_exchange_rates(self).await
            }

            async fn list_exchange_rates(
                &self,
            ) -> $crate::Result<Vec<(saleboard_domain::Currency, saleboard_domain::Rate)>> {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT currency, rate FROM exchange_rates ORDER BY currency")
                        .fetch_all(&self.pool)
                        .await?;
                rows.iter()
                    .map(|(c, r)| $crate::shared_sql::rate_record(c, r))
                    .collect()
            }
        }

        impl $store {
            async fn shared_ledger_head(&self) -> $crate::Result<u64> {
                let (head,): (i64,) = sqlx::query_as("SELECT head FROM ledger_head WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                u64::try_from(head)
                    .map_err(|e| $crate::StorageError::corrupt("ledger_head", e))
            }

            async fn shared_read_ledger(
                &self,
                after: u64,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::LedgerRow>> {
                let rows: Vec<(String, String, String, i16, String, i64, i64, String, i64, String, i64)> =
                    sqlx::query_as(
                        "SELECT site_id, transaction_id, store_id, kind, currency, amount_minor, \
                         occurred_at_ns, refund_of, position, key_id, received_at_ns FROM ledger \
                         WHERE position > $1 ORDER BY position LIMIT $2",
                    )
                    .bind($crate::model::db_position(after)?)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter()
                    .map(|(site_id, transaction_id, store_id, kind, currency, amount_minor, occurred_at_ns, refund_of, position, key_id, received)| {
                        let (site, tx, position) = $crate::model::RawRow {
                            site_id, transaction_id, store_id, kind, currency, amount_minor,
                            occurred_at_ns, refund_of, position,
                        }
                        .into_domain()?;
                        Ok($crate::LedgerRow {
                            position,
                            site,
                            key_id,
                            received_at: saleboard_domain::UnixNanos(received),
                            tx,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use shared_store_impl;
