//! A snapshot of the figures: built from one consistent read of totals, sites, rates and the
//! event, ranked once, then shared (behind an `Arc`) by every query and watcher until the next.

use std::collections::BTreeMap;

use saleboard_domain::ranking::{RankedEntry, SiteFigures, rank};
use saleboard_domain::totals::CurrencyTotals;
use saleboard_domain::{Currency, UnixNanos};
use saleboard_storage::BoardData;

/// The figures of a snapshot: what decides whether a new one is worth publishing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Ledger position the figures include.
    pub watermark: u64,
    /// (event id, reporting currency), when an event is set.
    pub event: Option<(String, Currency)>,
    /// Every site, ranked (empty without an event).
    pub entries: Vec<RankedEntry>,
    /// Sum of every site's converted net.
    pub national_net_reporting_minor: i64,
    /// Totals per currency over every site.
    pub national_totals: Vec<(Currency, CurrencyTotals)>,
    /// Registered sites.
    pub site_count: u32,
}

/// A published snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Increases with every published snapshot; names it in page tokens.
    pub generation: u64,
    /// When it was built.
    pub as_of: UnixNanos,
    /// The figures.
    pub figures: Figures,
}

/// A snapshot could not be built: figures out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Converting into the reporting currency overflowed.
    #[error(transparent)]
    Conversion(#[from] saleboard_domain::ranking::ConversionOverflow),
    /// A national total overflowed.
    #[error("the national {what} in {currency} overflows")]
    National {
        /// Which figure.
        what: &'static str,
        /// Currency.
        currency: Currency,
    },
}

fn add_national(
    acc: &mut CurrencyTotals,
    t: &CurrencyTotals,
    currency: Currency,
) -> Result<(), BuildError> {
    let err = |what| BuildError::National { what, currency };
    acc.sale_count = acc
        .sale_count
        .checked_add(t.sale_count)
        .ok_or_else(|| err("sale count"))?;
    acc.gross_minor = acc
        .gross_minor
        .checked_add(t.gross_minor)
        .ok_or_else(|| err("gross"))?;
    acc.refund_count = acc
        .refund_count
        .checked_add(t.refund_count)
        .ok_or_else(|| err("refund count"))?;
    acc.refunded_minor = acc
        .refunded_minor
        .checked_add(t.refunded_minor)
        .ok_or_else(|| err("refunded"))?;
    Ok(())
}

impl Figures {
    /// Ranks the data.
    ///
    /// # Errors
    /// When a converted or national figure does not fit.
    pub fn build(data: BoardData) -> Result<Self, BuildError> {
        let mut per_site: BTreeMap<_, BTreeMap<Currency, CurrencyTotals>> = BTreeMap::new();
        let mut national: BTreeMap<Currency, CurrencyTotals> = BTreeMap::new();
        for (site, currency, t) in data.totals {
            add_national(national.entry(currency).or_default(), &t, currency)?;
            per_site.entry(site).or_default().insert(currency, t);
        }
        let site_count = u32::try_from(data.sites.len()).unwrap_or(u32::MAX);
        let (entries, national_net, event) = match data.event {
            Some(event) => {
                let sites = data
                    .sites
                    .into_iter()
                    .map(|s| SiteFigures {
                        totals: per_site.remove(&s.site_id).unwrap_or_default(),
                        site_id: s.site_id,
                        display_name: s.display_name,
                    })
                    .collect();
                let rates = data.rates.into_iter().collect();
                let (entries, national_net) = rank(sites, &rates, event.reporting_currency)?;
                (
                    entries,
                    national_net,
                    Some((event.event_id, event.reporting_currency)),
                )
            }
            None => (Vec::new(), 0, None),
        };
        Ok(Self {
            watermark: data.applied,
            event,
            entries,
            national_net_reporting_minor: national_net,
            national_totals: national.into_iter().collect(),
            site_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saleboard_domain::{Event, Rate, SiteId};
    use saleboard_storage::SiteRecord;

    fn site(id: &str) -> SiteRecord {
        SiteRecord {
            site_id: SiteId::parse(id).expect("site"),
            display_name: id.to_uppercase(),
            created_at: UnixNanos(0),
        }
    }

    fn totals(gross: i64, refunded: i64) -> CurrencyTotals {
        CurrencyTotals {
            sale_count: 2,
            gross_minor: gross,
            refund_count: 1,
            refunded_minor: refunded,
        }
    }

    #[test]
    fn every_site_appears_and_national_totals_add_up() {
        let idr = Currency::parse("IDR").expect("IDR");
        let usd = Currency::parse("USD").expect("USD");
        let data = BoardData {
            applied: 42,
            event: Some(Event::new("e", "E", UnixNanos(0), UnixNanos(1), "IDR").expect("event")),
            sites: vec![site("a"), site("b"), site("c")],
            totals: vec![
                (SiteId::parse("a").expect("a"), idr, totals(1_000, 100)),
                (SiteId::parse("b").expect("b"), usd, totals(10, 0)),
                (SiteId::parse("b").expect("b"), idr, totals(5, 5)),
            ],
            rates: vec![(usd, Rate::parse("15000").expect("rate"))],
        };
        let f = Figures::build(data).expect("builds");
        let ranked: Vec<_> = f
            .entries
            .iter()
            .map(|e| (e.rank, e.site_id.as_str(), e.net_reporting_minor))
            .collect();
        assert_eq!(ranked, [(1, "b", 150_000), (2, "a", 900), (3, "c", 0)]);
        assert_eq!(f.national_net_reporting_minor, 150_900);
        assert_eq!(
            f.national_totals,
            vec![
                (
                    idr,
                    CurrencyTotals {
                        sale_count: 4,
                        gross_minor: 1_005,
                        refund_count: 2,
                        refunded_minor: 105
                    }
                ),
                (usd, totals(10, 0))
            ]
        );
        assert_eq!((f.site_count, f.watermark), (3, 42));
    }

    #[test]
    fn without_an_event_there_is_no_ranking() {
        let f = Figures::build(BoardData {
            sites: vec![site("a")],
            ..BoardData::default()
        })
        .expect("builds");
        assert_eq!(f.event, None);
        assert!(f.entries.is_empty());
        assert_eq!(f.site_count, 1);
    }
}
