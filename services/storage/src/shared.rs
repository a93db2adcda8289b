//! [`AdminStore`] and [`LedgerStore`] written once for every [`Backend`]: the SQL is the same
//! on both databases ([`crate::sql`]); the append flow is one skeleton whose batch steps the
//! backend supplies.

use std::collections::BTreeSet;

use async_trait::async_trait;
use saleboard_domain::resolve::{Decision, LedgerState, Stored};
use saleboard_domain::{Currency, Event, Rate, SiteId, UnixNanos};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::backend::Backend;
use crate::model::{db_position, to_u64};
use crate::rows::{ActiveKeyRow, ApiKeyRow, EventRow, FullLedgerRow, RateRow, SiteRow};
use crate::{
    ActiveKey, AdminStore, ApiKeyRecord, Candidate, LedgerRow, LedgerStore, Result, SiteRecord,
    StorageError, sql,
};

#[async_trait]
impl<B> AdminStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Decode<'q, B::Db> + Type<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn create_site(
        &self,
        site: &SiteId,
        display_name: &str,
        now: UnixNanos,
    ) -> Result<SiteRecord> {
        sqlx::query_as::<_, SiteRow>(sql::INSERT_SITE)
            .bind(site.as_str())
            .bind(display_name)
            .bind(now.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StorageError::AlreadyExists {
                what: "site",
                id: site.to_string(),
            })?
            .into_record()
    }

    async fn list_sites(&self) -> Result<Vec<SiteRecord>> {
        sqlx::query_as::<_, SiteRow>(sql::SITES)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(SiteRow::into_record)
            .collect()
    }

    async fn set_site_enabled(
        &self,
        site: &SiteId,
        enabled: bool,
        now: UnixNanos,
    ) -> Result<SiteRecord> {
        sqlx::query_as::<_, SiteRow>(sql::SET_SITE_ENABLED)
            .bind(site.as_str())
            .bind(i64::from(enabled))
            .bind(now.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StorageError::NotFound {
                what: "site",
                id: site.to_string(),
            })?
            .into_record()
    }

    async fn create_api_key(
        &self,
        key_id: &str,
        site: &SiteId,
        secret_hash: &str,
        now: UnixNanos,
    ) -> Result<ApiKeyRecord> {
        sqlx::query_as::<_, ApiKeyRow>(sql::INSERT_KEY)
            .bind(key_id)
            .bind(site.as_str())
            .bind(secret_hash)
            .bind(now.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StorageError::NotFound {
                what: "site",
                id: site.to_string(),
            })?
            .into_record()
    }

    async fn revoke_api_key(&self, key_id: &str, now: UnixNanos) -> Result<ApiKeyRecord> {
        sqlx::query_as::<_, ApiKeyRow>(sql::REVOKE_KEY)
            .bind(key_id)
            .bind(now.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StorageError::NotFound {
                what: "API key",
                id: key_id.to_owned(),
            })?
            .into_record()
    }

    async fn list_api_keys(&self, site: Option<&SiteId>) -> Result<Vec<ApiKeyRecord>> {
        sqlx::query_as::<_, ApiKeyRow>(sql::KEYS)
            .bind(site.map_or("", SiteId::as_str))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(ApiKeyRow::into_record)
            .collect()
    }

    async fn active_keys(&self) -> Result<Vec<ActiveKey>> {
        sqlx::query_as::<_, ActiveKeyRow>(sql::ACTIVE_KEYS)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(ActiveKeyRow::into_record)
            .collect()
    }

    async fn find_active_key(&self, secret_hash: &str) -> Result<Option<ActiveKey>> {
        sqlx::query_as::<_, ActiveKeyRow>(sql::ACTIVE_KEY)
            .bind(secret_hash)
            .fetch_optional(self.pool())
            .await?
            .map(ActiveKeyRow::into_record)
            .transpose()
    }

    async fn set_event(&self, event: &Event) -> Result<()> {
        sqlx::query(sql::UPSERT_EVENT)
            .bind(event.event_id.as_str())
            .bind(event.display_name.as_str())
            .bind(event.starts_at.0)
            .bind(event.ends_at.0)
            .bind(event.reporting_currency.code())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn get_event(&self) -> Result<Option<Event>> {
        sqlx::query_as::<_, EventRow>(sql::EVENT)
            .fetch_optional(self.pool())
            .await?
            .map(EventRow::into_event)
            .transpose()
    }

    async fn set_exchange_rates(
        &self,
        rates: &[(Currency, Rate)],
    ) -> Result<Vec<(Currency, Rate)>> {
        let mut tx = self.pool().begin().await?;
        for (currency, rate) in rates {
            sqlx::query(sql::UPSERT_RATE)
                .bind(currency.code())
                .bind(rate.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.list_exchange_rates().await
    }

    async fn list_exchange_rates(&self) -> Result<Vec<(Currency, Rate)>> {
        sqlx::query_as::<_, RateRow>(sql::RATES)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(RateRow::into_pair)
            .collect()
    }
}

#[async_trait]
impl<B> LedgerStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i16: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn append(&self, batch: &[Candidate]) -> Result<Vec<Decision>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // From here until commit no other writer, in any process, can read or move the head,
        // so the state loaded below is complete.
        let mut write = self.begin_write().await?;
        let head: i64 = sqlx::query_scalar(B::LOCK_HEAD)
            .fetch_one(&mut *write.tx)
            .await?;
        let mut state = LedgerState::new(to_u64("ledger_head", head)?);
        for row in B::stored_rows(&mut write.tx, &keys_to_load(batch)).await? {
            let (site, tx, position) = row.into_domain()?;
            state.insert_stored(site, Stored { tx, position });
        }
        let targets = refund_targets(batch);
        if !targets.is_empty() {
            for row in B::refunded_sums(&mut write.tx, &targets).await? {
                let (site, sale, refunded) = row.into_parts()?;
                state.insert_refunded(site, sale, refunded);
            }
        }
        let (decisions, accepted) = decide(&mut state, batch);
        if let Some(&(_, last)) = accepted.last() {
            B::insert_accepted(&mut write.tx, &accepted).await?;
            sqlx::query(sql::MOVE_HEAD)
                .bind(db_position(last)?)
                .execute(&mut *write.tx)
                .await?;
        }
        write.tx.commit().await?;
        Ok(decisions)
    }

    async fn ledger_head(&self) -> Result<u64> {
        let head: i64 = sqlx::query_scalar(sql::HEAD).fetch_one(self.pool()).await?;
        to_u64("ledger_head", head)
    }

    async fn read_ledger(&self, after: u64, limit: u32) -> Result<Vec<LedgerRow>> {
        sqlx::query_as::<_, FullLedgerRow>(sql::LEDGER_AFTER)
            .bind(db_position(after)?)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(FullLedgerRow::into_row)
            .collect()
    }
}

/// (site_id, transaction_id) pairs whose stored rows the batch needs: its own ids (for
/// duplicates and conflicts) and the sales its refunds name.
fn keys_to_load(batch: &[Candidate]) -> Vec<(String, String)> {
    let mut keys = BTreeSet::new();
    for c in batch {
        keys.insert((c.site.as_str(), c.tx.id.as_str()));
        if let Some(sale) = c.tx.refund_of() {
            keys.insert((c.site.as_str(), sale.as_str()));
        }
    }
    keys.into_iter()
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
        .collect()
}

/// (site_id, sale id) pairs whose refunded sums the batch needs.
fn refund_targets(batch: &[Candidate]) -> Vec<(String, String)> {
    let keys: BTreeSet<_> = batch
        .iter()
        .filter_map(|c| c.tx.refund_of().map(|s| (c.site.as_str(), s.as_str())))
        .collect();
    keys.into_iter()
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
        .collect()
}

/// Decides the batch in order. Returns the decisions and the accepted candidates with their
/// positions, in position order.
fn decide<'a>(
    state: &mut LedgerState,
    batch: &'a [Candidate],
) -> (Vec<Decision>, Vec<(&'a Candidate, u64)>) {
    let mut accepted = Vec::new();
    let decisions = batch
        .iter()
        .map(|c| {
            let d = state.resolve(&c.site, &c.tx);
            if let Decision::Accepted { position } = d {
                accepted.push((c, position));
            }
            d
        })
        .collect();
    (decisions, accepted)
}
