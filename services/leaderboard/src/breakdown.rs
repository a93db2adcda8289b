//! `GetBreakdown`: an event's figures by brand, category or origin, ranked by the rules of the
//! site leaderboard. National breakdowns come from the board's snapshot (ranked once per
//! change, like the leaderboard); one site's is read from storage when asked and kept for its
//! page tokens.

use std::collections::BTreeMap;

use saleboard_domain::page::PageToken;
use saleboard_domain::ranking::{KeyFigures, KeyRanking, rank_keys};
use saleboard_domain::totals::CurrencyTotals;
use saleboard_domain::{Currency, Dimension, EventState, SiteId, UnixNanos};
use saleboard_proto::v1::{Breakdown, BreakdownEntry, Dimension as DimensionMsg};
use saleboard_runtime::status::invalid_field;
use saleboard_storage::SiteBreakdownData;
use tonic::Status;

use crate::messages::{state_msg, timestamp};

/// One site's breakdown in one dimension, as answered (kept for its page tokens).
#[derive(Debug)]
pub struct SiteBreakdown {
    /// Names it in page tokens (shared with the board's snapshots).
    pub generation: u64,
    /// When it was read.
    pub as_of: UnixNanos,
    /// The site.
    pub site_id: SiteId,
    /// The event.
    pub event_id: String,
    /// Its reporting currency.
    pub reporting: Currency,
    /// Its state when read.
    pub state: EventState,
    /// The dimension.
    pub dimension: Dimension,
    /// Ledger position the figures include.
    pub watermark: u64,
    /// The ranking.
    pub ranking: KeyRanking,
}

impl SiteBreakdown {
    /// Ranks a site's rows (`None` without an event).
    #[must_use]
    pub fn build(
        generation: u64,
        data: SiteBreakdownData,
        dimension: Dimension,
        now: UnixNanos,
    ) -> Option<Self> {
        let event = data.event?;
        let mut keys: BTreeMap<String, BTreeMap<Currency, CurrencyTotals>> = BTreeMap::new();
        for (key, currency, t) in data.rows {
            keys.entry(key).or_default().insert(currency, t);
        }
        let keys = keys
            .into_iter()
            .map(|(key, totals)| KeyFigures {
                key,
                site_count: 1,
                totals,
            })
            .collect();
        let rates = data.rates.into_iter().collect();
        Some(Self {
            generation,
            as_of: now,
            site_id: data.site.site_id,
            state: event.state(now),
            reporting: event.reporting_currency,
            event_id: event.event_id,
            dimension,
            watermark: data.applied,
            ranking: rank_keys(keys, &rates, event.reporting_currency),
        })
    }
}

/// What a page of a breakdown is cut from.
pub struct View<'a> {
    /// Snapshot or site-breakdown generation.
    pub generation: u64,
    /// When the figures were read.
    pub as_of: UnixNanos,
    /// The event.
    pub event_id: &'a str,
    /// `""` for national.
    pub site_id: &'a str,
    /// The event's reporting currency.
    pub reporting: Currency,
    /// The event's state.
    pub state: EventState,
    /// The dimension.
    pub dimension: Dimension,
    /// Ledger position the figures include.
    pub watermark: u64,
    /// The figures are the last read while storage cannot be read.
    pub stale: bool,
    /// The ranking.
    pub ranking: &'a KeyRanking,
}

/// The wire enum of a dimension.
#[must_use]
pub fn dimension_msg(dimension: Dimension) -> DimensionMsg {
    match dimension {
        Dimension::Brand => DimensionMsg::Brand,
        Dimension::Category => DimensionMsg::Category,
        Dimension::Origin => DimensionMsg::Origin,
    }
}

/// The dimension a request names.
///
/// # Errors
/// INVALID_ARGUMENT for `DIMENSION_UNSPECIFIED` or a number the contract does not define.
pub fn dimension_of(value: i32) -> Result<Dimension, Status> {
    match DimensionMsg::try_from(value) {
        Ok(DimensionMsg::Brand) => Ok(Dimension::Brand),
        Ok(DimensionMsg::Category) => Ok(Dimension::Category),
        Ok(DimensionMsg::Origin) => Ok(Dimension::Origin),
        Ok(DimensionMsg::Unspecified) => Err(invalid_field(
            "dimension",
            "is DIMENSION_UNSPECIFIED; set DIMENSION_BRAND, DIMENSION_CATEGORY or DIMENSION_ORIGIN",
        )),
        Err(_) => Err(invalid_field(
            "dimension",
            format!("{value} is not a known Dimension"),
        )),
    }
}

fn codes(currencies: &[Currency]) -> Vec<String> {
    currencies.iter().map(|c| c.code().to_owned()).collect()
}

/// A page of a breakdown as a message.
#[must_use]
pub fn page(view: &View<'_>, offset: usize, limit: usize) -> Breakdown {
    let all = &view.ranking.entries;
    let end = offset.saturating_add(limit).min(all.len());
    let entries = all.get(offset..end).unwrap_or_default();
    Breakdown {
        event_id: view.event_id.to_owned(),
        dimension: dimension_msg(view.dimension).into(),
        site_id: view.site_id.to_owned(),
        reporting_currency: view.reporting.code().to_owned(),
        watermark: view.watermark,
        entries: entries
            .iter()
            .map(|e| BreakdownEntry {
                rank: e.rank,
                key: e.key.clone(),
                net_reporting_minor: e.net_reporting_minor,
                sale_count: e.sale_count,
                refund_count: e.refund_count,
                site_count: e.site_count,
                unconverted_currencies: codes(&e.unconverted_currencies),
                out_of_range: !e.out_of_range.is_empty(),
                out_of_range_currencies: codes(&e.out_of_range),
            })
            .collect(),
        next_page_token: if end < all.len() {
            PageToken {
                generation: view.generation,
                offset: end,
                dimension: Some(view.dimension),
            }
            .encode()
        } else {
            String::new()
        },
        // Entries are i64 each; a total past i64 saturates (each entry still says its own).
        total_net_reporting_minor: i64::try_from(view.ranking.total_net_reporting_minor).unwrap_or(
            if view.ranking.total_net_reporting_minor < 0 {
                i64::MIN
            } else {
                i64::MAX
            },
        ),
        unconverted_currencies: codes(&view.ranking.unconverted_currencies()),
        as_of: Some(timestamp(view.as_of)),
        state: state_msg(view.state).into(),
        stale: view.stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_and_unknown_dimensions_are_refused() {
        assert_eq!(dimension_of(1).ok(), Some(Dimension::Brand));
        assert_eq!(dimension_of(3).ok(), Some(Dimension::Origin));
        for bad in [0, 4, -1] {
            let status = dimension_of(bad).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status.message().contains("dimension"),
                "{}",
                status.message()
            );
        }
    }
}
