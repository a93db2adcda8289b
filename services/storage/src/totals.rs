//! [`TotalsStore`] written once for every [`Backend`]: the aggregator's writes (under the
//! backend's write lock, fenced by the applied position) and the leaderboard's consistent reads.

use async_trait::async_trait;
use saleboard_domain::comparison::HourlyNet;
use std::collections::{BTreeMap, HashSet};

use saleboard_domain::totals::{Changes, CurrencyTotals, SegmentFigures, SegmentKey, TotalsBook};
use saleboard_domain::{Currency, Dimension, SiteId, UnixNanos};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::backend::Backend;
use crate::model::{
    AggregatorState, BoardCursor, BoardData, EventTotals, SegmentRead, SiteBreakdownData,
    SiteCurrencyTotals, SiteRecord, SiteTotalsData, StoredTotals, db_position, to_u64,
};
use crate::rows::{
    HourlyRow, LateRow, LateWindowRow, NationalHourRow, RateRow, SegmentSiteTotalsRow,
    SegmentTotalsRow, SiteRow, StateRow, TotalsRow,
};
use crate::shared::events_in;
use crate::{Result, StorageError, TotalsStore, sql};

#[async_trait]
impl<B> TotalsStore for B
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
    async fn load_totals(&self) -> Result<StoredTotals> {
        let mut tx = self.begin(B::BEGIN_READ).await?;
        let (applied, breakdown_applied): (i64, i64) = sqlx::query_as(sql::APPLIED_BOTH)
            .fetch_one(&mut *tx)
            .await?;
        let totals = sqlx::query_as::<_, TotalsRow>(sql::TOTALS)
            .fetch_all(&mut *tx)
            .await?;
        let hourly = sqlx::query_as::<_, HourlyRow>(sql::HOURLY)
            .fetch_all(&mut *tx)
            .await?;
        let segment_sites = sqlx::query_as::<_, SegmentSiteTotalsRow>(sql::SEGMENT_SITES)
            .fetch_all(&mut *tx)
            .await?;
        let national = sqlx::query_as::<_, SegmentTotalsRow>(sql::SEGMENTS)
            .fetch_all(&mut *tx)
            .await?;
        let national_hourly = sqlx::query_as::<_, NationalHourRow>(sql::NATIONAL_HOURLY)
            .fetch_all(&mut *tx)
            .await?;
        let late_rows = sqlx::query_as::<_, LateRow>(sql::LATE)
            .fetch_all(&mut *tx)
            .await?;
        let late_windows = sqlx::query_as::<_, LateWindowRow>(sql::LATE_WINDOWS)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut late = saleboard_domain::late::LateBook::default();
        for row in late_rows {
            let (key, figures) = row.into_parts()?;
            late.load(key, figures);
        }
        for row in &late_windows {
            late.load_window(&row.event_id, row.window());
        }
        let mut book = TotalsBook::default();
        for row in totals {
            let (event, site, currency, t) = row.into_totals()?;
            book.load_totals((event, site, currency), t);
        }
        for row in hourly {
            let (event, site, currency, hour, h) = row.into_hourly()?;
            book.load_hourly((event, site, currency, hour), h)
                .map_err(|e| StorageError::corrupt("hourly_totals", e))?;
        }
        for row in segment_sites {
            let (event, site, dimension, key, currency, t) = row.into_parts()?;
            book.load_segment_site((event, dimension, key, site), currency, t)
                .map_err(|e| StorageError::corrupt("segment_site_totals", e))?;
        }
        let mut segments: BTreeMap<SegmentKey, SegmentFigures> = BTreeMap::new();
        for row in national {
            let (event, dimension, key, currency, t, sites) = row.into_parts()?;
            let figures = segments.entry((event, dimension, key)).or_default();
            figures.site_count = sites;
            figures.totals.insert(currency, t);
        }
        let (applied, breakdown_applied) = (
            to_u64("aggregator_state", applied)?,
            to_u64("aggregator_state", breakdown_applied)?,
        );
        if breakdown_applied > applied {
            return Err(StorageError::corrupt(
                "aggregator_state",
                format!(
                    "the breakdown watermark {breakdown_applied} is ahead of the applied \
                     position {applied}"
                ),
            ));
        }
        Ok(StoredTotals {
            applied,
            breakdown_applied,
            book,
            segments,
            national_hourly: national_hourly
                .into_iter()
                .map(NationalHourRow::into_parts)
                .collect::<Result<_>>()?,
            late,
        })
    }

    async fn apply_totals(
        &self,
        from: u64,
        to: u64,
        changes: &Changes,
        now: UnixNanos,
    ) -> Result<()> {
        let result = async {
            let mut write = self.begin_write().await?;
            let applied: i64 = sqlx::query_scalar(B::LOCK_STATE)
                .fetch_one(&mut *write.tx)
                .await?;
            if applied != db_position(from)? {
                let fenced = StorageError::Fenced {
                    expected: from,
                    found: u64::try_from(applied).unwrap_or_default(),
                };
                return Err(write.abandon(fenced).await);
            }
            B::upsert_totals(&mut write.tx, changes, to).await?;
            write_late::<B>(&mut write.tx, &changes.late).await?;
            sqlx::query(sql::MOVE_APPLIED)
                .bind(db_position(to)?)
                .bind(now.0)
                .bind(i64::from(changes.breakdowns))
                .execute(&mut *write.tx)
                .await?;
            if let Some(notify) = B::NOTIFY_APPLIED {
                // The applied position, and the breakdown watermark when it moved with it.
                let payload = if changes.breakdowns {
                    format!("{to} {to}")
                } else {
                    to.to_string()
                };
                sqlx::query(notify)
                    .bind(payload)
                    .execute(&mut *write.tx)
                    .await?;
            }
            write.tx.commit().await
        }
        .await;
        self.writes().record("apply", result)
    }

    async fn apply_breakdowns(&self, from: u64, at: u64, changes: &Changes) -> Result<()> {
        let result = async {
            let mut write = self.begin_write().await?;
            // The breakdown rows first, the state row last: the headline applies, which lock
            // the state row first, wait for it only for the end of this one.
            B::upsert_totals(&mut write.tx, changes, at).await?;
            write_late::<B>(&mut write.tx, &changes.late).await?;
            let moved: Option<i64> = sqlx::query_scalar(sql::MOVE_BREAKDOWNS)
                .bind(db_position(at)?)
                .bind(db_position(from)?)
                .fetch_optional(&mut *write.tx)
                .await?;
            if moved.is_none() {
                let found: (i64, i64) = sqlx::query_as(sql::APPLIED_BOTH)
                    .fetch_one(&mut *write.tx)
                    .await?;
                let fenced = StorageError::Fenced {
                    expected: from,
                    found: u64::try_from(found.1).unwrap_or_default(),
                };
                return Err(write.abandon(fenced).await);
            }
            if let Some(notify) = B::NOTIFY_APPLIED {
                // The breakdown watermark alone (see `apply_totals`).
                sqlx::query(notify)
                    .bind(format!("- {at}"))
                    .execute(&mut *write.tx)
                    .await?;
            }
            write.tx.commit().await
        }
        .await;
        self.writes().record("apply", result)
    }

    async fn event_late(
        &self,
        event_id: &str,
    ) -> Result<(
        u64,
        Vec<(
            saleboard_domain::totals::TotalsKey,
            saleboard_domain::late::LateTotals,
        )>,
    )> {
        let mut tx = self.begin(B::BEGIN_READ).await?;
        let (_, breakdown_applied): (i64, i64) = sqlx::query_as(sql::APPLIED_BOTH)
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query_as::<_, LateRow>(sql::EVENT_LATE)
            .bind(event_id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((
            to_u64("aggregator_state", breakdown_applied)?,
            rows.into_iter()
                .map(LateRow::into_parts)
                .collect::<Result<_>>()?,
        ))
    }

    async fn try_lease(&self, holder: &str, now: UnixNanos, until: UnixNanos) -> Result<bool> {
        let taken: Option<String> = sqlx::query_scalar(sql::TAKE_LEASE)
            .bind(holder)
            .bind(now.0)
            .bind(until.0)
            .fetch_optional(self.pool())
            .await?;
        Ok(taken.is_some())
    }

    async fn release_lease(&self, holder: &str) -> Result<()> {
        sqlx::query(sql::RELEASE_LEASE)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn aggregator_state(&self) -> Result<AggregatorState> {
        sqlx::query_as::<_, StateRow>(sql::STATE)
            .fetch_one(self.pool())
            .await?
            .into_state()
    }

    async fn applied_position(&self) -> Result<u64> {
        let applied: i64 = sqlx::query_scalar(sql::APPLIED)
            .fetch_one(self.pool())
            .await?;
        to_u64("aggregator_state", applied)
    }

    async fn read_board(
        &self,
        event_id: Option<&str>,
        cursor: Option<BoardCursor<'_>>,
    ) -> Result<BoardData> {
        let mut tx = self.begin(B::BEGIN_READ).await?;
        let (applied, breakdown_applied): (i64, i64) = sqlx::query_as(sql::APPLIED_BOTH)
            .fetch_one(&mut *tx)
            .await?;
        // The event's figures, all read in one consistent transaction.
        let events = events_in(&mut tx).await?;
        let event = chosen(&events, event_id);
        let event_id = event.as_ref().map_or("", |e| e.event_id.as_str());
        // What changed since the caller's last read of the same event, else everything.
        let cursor = cursor.filter(|c| c.event_id == event_id);
        let since = cursor.map(|c| db_position(c.applied)).transpose()?;
        let sites_version: i64 = sqlx::query_scalar(sql::SITES_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        let sites_version = to_u64("catalog_version", sites_version)?;
        let sites = match cursor {
            Some(c) if c.sites_version == sites_version => None,
            _ => Some(
                sqlx::query_as::<_, SiteRow>(sql::SITES)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(SiteRow::into_record)
                    .collect::<Result<Vec<SiteRecord>>>()?,
            ),
        };
        // The organizers' marks on sites in the event, read with the sites (a hold or a
        // review moves their version).
        let (held, under_review) = if sites.is_some() {
            let held: Vec<String> = sqlx::query_scalar(sql::HELD_SITES)
                .bind(event_id)
                .fetch_all(&mut *tx)
                .await?;
            let review: Vec<String> = sqlx::query_scalar(sql::UNDER_REVIEW_SITES)
                .bind(event_id)
                .fetch_all(&mut *tx)
                .await?;
            (
                Some(crate::model::site_ids("site_holds", &held)?),
                Some(crate::model::site_ids("integrity_flags", &review)?),
            )
        } else {
            (None, None)
        };
        let totals = sqlx::query_as::<_, TotalsRow>(sql::EVENT_TOTALS_SINCE)
            .bind(event_id)
            .bind(since.unwrap_or(-1))
            .fetch_all(&mut *tx)
            .await?;
        let rates = sqlx::query_as::<_, RateRow>(sql::RATES)
            .bind(event_id)
            .fetch_all(&mut *tx)
            .await?;
        let totals: Vec<SiteCurrencyTotals> = totals
            .into_iter()
            .map(|row| row.into_totals().map(|(_, s, c, t)| (s, c, t)))
            .collect::<Result<_>>()?;
        let national_hourly = sqlx::query_as::<_, NationalHourRow>(sql::EVENT_NATIONAL_HOURLY)
            .bind(event_id)
            .fetch_all(&mut *tx)
            .await?;
        let baseline = event.as_ref().map_or("", |e| e.baseline_event_id.as_str());
        let baseline_changed_at = if baseline.is_empty() {
            None
        } else {
            let at: i64 = sqlx::query_scalar(sql::EVENT_CHANGED_AT)
                .bind(baseline)
                .fetch_one(&mut *tx)
                .await?;
            Some(to_u64("national_hourly_totals", at)?)
        };
        // The national breakdown rows changed since the last read's breakdown watermark.
        let segments_since = cursor
            .map(|c| db_position(c.breakdown_applied))
            .transpose()?;
        let segment_rows = sqlx::query_as::<_, SegmentTotalsRow>(sql::EVENT_SEGMENTS_SINCE)
            .bind(event_id)
            .bind(segments_since.unwrap_or(-1))
            .fetch_all(&mut *tx)
            .await?;
        // The disabled sites' rows: their hourly rows when their totals moved since that
        // read, their breakdown rows when their origin rows did (the breakdown figures carry
        // their own watermark, which the totals may be ahead of).
        let now_sites = sites
            .as_deref()
            .or(cursor.map(|c| c.sites))
            .unwrap_or_default();
        let disabled_now = disabled_totals(now_sites, cursor.map(|c| c.totals), &totals);
        let hours_moved = |site: &SiteId| match cursor {
            None => true,
            Some(c) => {
                let was_disabled = c
                    .sites
                    .iter()
                    .any(|s| s.site_id == *site && s.disabled_at.is_some());
                let before = c.totals.get(site).filter(|_| was_disabled);
                before != disabled_now.get(site)
            }
        };
        let mut disabled_hourly = Vec::new();
        let mut disabled_origins = Vec::with_capacity(disabled_now.len());
        let mut disabled = Vec::new();
        for &site in disabled_now.keys() {
            if hours_moved(site) {
                let hours = sqlx::query_as::<_, HourlyRow>(sql::SITE_HOURLY)
                    .bind(event_id)
                    .bind(site.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                disabled_hourly.push((
                    site.clone(),
                    hours
                        .into_iter()
                        .map(|row| row.into_hourly().map(|(_, _, c, hour, h)| (c, hour, h)))
                        .collect::<Result<Vec<_>>>()?,
                ));
            }
            let origins = site_rows(
                sqlx::query_as::<_, SegmentSiteTotalsRow>(sql::SITE_SEGMENTS)
                    .bind(event_id)
                    .bind(site.as_str())
                    .bind(i64::from(Dimension::Origin.code()))
                    .fetch_all(&mut *tx)
                    .await?,
            )?;
            let breakdowns_moved = cursor.is_none_or(|c| {
                c.disabled_origins
                    .iter()
                    .find(|(s, _)| s == site)
                    .is_none_or(|(_, before)| *before != origins)
            });
            if breakdowns_moved {
                let rows = sqlx::query_as::<_, SegmentSiteTotalsRow>(sql::SITE_EVENT_SEGMENTS)
                    .bind(event_id)
                    .bind(site.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                disabled.push((site.clone(), site_rows(rows)?));
            }
            disabled_origins.push((site.clone(), origins));
        }
        let disabled_totals: Vec<SiteCurrencyTotals> = disabled_now
            .iter()
            .flat_map(|(site, per)| per.iter().map(|(c, t)| ((*site).clone(), *c, *t)))
            .collect();
        tx.commit().await?;
        let segments = SegmentRead {
            applied: to_u64("aggregator_state", breakdown_applied)?,
            full: segments_since.is_none(),
            rows: segment_rows
                .into_iter()
                .map(|row| row.into_parts().map(|(_, d, k, c, t, n)| (d, k, c, t, n)))
                .collect::<Result<_>>()?,
            disabled_totals,
            disabled_origins,
            disabled,
            disabled_hourly,
        };
        Ok(BoardData {
            baseline_changed_at,
            national_hourly: national_hourly
                .into_iter()
                .map(|row| row.into_parts().map(|((_, c, hour), h)| (c, hour, h)))
                .collect::<Result<_>>()?,
            segments,
            applied: to_u64("aggregator_state", applied)?,
            sites_version,
            sites,
            held,
            under_review,
            totals,
            totals_full: since.is_none(),
            rates: rates
                .into_iter()
                .map(RateRow::into_pair)
                .collect::<Result<_>>()?,
            event,
            events,
        })
    }

    async fn event_hourly(&self, event_id: &str) -> Result<Vec<HourlyNet>> {
        sqlx::query_as::<_, HourlyRow>(sql::EVENT_HOURLY)
            .bind(event_id)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|row| {
                row.into_hourly()
                    .map(|(_, s, c, hour, h)| (s, c, hour, h.net_minor))
            })
            .collect()
    }

    async fn site_breakdown(
        &self,
        site: &SiteId,
        event_id: Option<&str>,
        dimension: Dimension,
    ) -> Result<Option<SiteBreakdownData>> {
        let mut tx = self.begin(B::BEGIN_READ).await?;
        let Some((record, _, event)) = site_scope::<B>(&mut tx, site, event_id).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        // A site's breakdown is at the breakdown figures' own watermark.
        let (_, applied): (i64, i64) = sqlx::query_as(sql::APPLIED_BOTH)
            .fetch_one(&mut *tx)
            .await?;
        let event_id = event.as_ref().map_or("", |e| e.event_id.as_str());
        let rates = sqlx::query_as::<_, RateRow>(sql::RATES)
            .bind(event_id)
            .fetch_all(&mut *tx)
            .await?;
        let rows = sqlx::query_as::<_, SegmentSiteTotalsRow>(sql::SITE_SEGMENTS)
            .bind(event_id)
            .bind(site.as_str())
            .bind(i64::from(dimension.code()))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(SiteBreakdownData {
            site: record.into_record()?,
            event,
            rates: rates
                .into_iter()
                .map(RateRow::into_pair)
                .collect::<Result<_>>()?,
            rows: rows
                .into_iter()
                .map(|row| row.into_parts().map(|(_, _, _, k, c, t)| (k, c, t)))
                .collect::<Result<_>>()?,
            applied: to_u64("aggregator_state", applied)?,
        }))
    }

    async fn site_totals(
        &self,
        site: &SiteId,
        event_id: Option<&str>,
        include_hourly: bool,
    ) -> Result<Option<SiteTotalsData>> {
        let mut tx = self.begin(B::BEGIN_READ).await?;
        let Some((record, applied, event)) = site_scope::<B>(&mut tx, site, event_id).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let event_id = event.as_ref().map_or("", |e| e.event_id.as_str());
        let totals = sqlx::query_as::<_, TotalsRow>(sql::SITE_TOTALS)
            .bind(event_id)
            .bind(site.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let hourly = if include_hourly {
            sqlx::query_as::<_, HourlyRow>(sql::SITE_HOURLY)
                .bind(event_id)
                .bind(site.as_str())
                .fetch_all(&mut *tx)
                .await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        Ok(Some(SiteTotalsData {
            site: record.into_record()?,
            totals: totals
                .into_iter()
                .map(|row| row.into_totals().map(|(_, _, c, t)| (c, t)))
                .collect::<Result<_>>()?,
            hourly: hourly
                .into_iter()
                .map(|row| row.into_hourly().map(|(_, _, c, hour, h)| (hour, c, h)))
                .collect::<Result<_>>()?,
            applied: to_u64("aggregator_state", applied)?,
        }))
    }
}

/// What a read of one site's figures starts with, in its read transaction: the site's record
/// (`None`: not registered), the applied position, and the event named (or the current one).
async fn site_scope<B>(
    tx: &mut crate::tx::Tx<B::Db>,
    site: &SiteId,
    event_id: Option<&str>,
) -> Result<Option<(SiteRow, i64, Option<saleboard_domain::Event>)>>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    let Some(record) = sqlx::query_as::<_, SiteRow>(sql::SITE)
        .bind(site.as_str())
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    let applied: i64 = sqlx::query_scalar(sql::APPLIED)
        .fetch_one(&mut **tx)
        .await?;
    let event = chosen(&events_in(tx).await?, event_id);
    Ok(Some((record, applied, event)))
}

/// The event named, or the current one.
fn chosen(
    events: &saleboard_domain::Events,
    event_id: Option<&str>,
) -> Option<saleboard_domain::Event> {
    match event_id {
        Some(id) => events.get(id).cloned(),
        None => events.current(UnixNanos::now()).cloned(),
    }
}

/// One site's breakdown rows as read, without their event.
fn site_rows(rows: Vec<SegmentSiteTotalsRow>) -> Result<Vec<crate::SegmentSiteRow>> {
    rows.into_iter()
        .map(|row| row.into_parts().map(|(_, s, d, k, c, t)| (s, d, k, c, t)))
        .collect()
}

/// The disabled sites' totals as of a read, by site then currency: the ones `held` (the
/// cursor's; none without one) updated by the rows `read` (all of the event's without a
/// cursor). A disabled site without a total is not named.
fn disabled_totals<'a>(
    sites: &'a [SiteRecord],
    held: Option<&EventTotals>,
    read: &[SiteCurrencyTotals],
) -> BTreeMap<&'a SiteId, BTreeMap<Currency, CurrencyTotals>> {
    let disabled: HashSet<&SiteId> = sites
        .iter()
        .filter(|s| s.disabled_at.is_some())
        .map(|s| &s.site_id)
        .collect();
    let mut now: BTreeMap<&SiteId, BTreeMap<Currency, CurrencyTotals>> = BTreeMap::new();
    for &site in &disabled {
        if let Some(per) = held.and_then(|h| h.get(site)) {
            now.insert(site, per.clone());
        }
    }
    for (site, currency, t) in read {
        if let Some(&site) = disabled.get(site) {
            now.entry(site).or_default().insert(*currency, *t);
        }
    }
    now
}

/// Writes the late changes in the caller's transaction: the figures as the backend batches
/// them, the windows (a few per write) one statement each.
async fn write_late<B>(
    conn: &mut <B::Db as Database>::Connection,
    late: &saleboard_domain::late::LateChanges,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
{
    if !late.figures.is_empty() {
        B::upsert_late(&mut *conn, &late.figures).await?;
    }
    for (event, window) in &late.windows {
        sqlx::query(sql::UPSERT_LATE_WINDOW)
            .bind(event.as_str())
            .bind(window.ends_at.0)
            .bind(window.latest_received.0)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
