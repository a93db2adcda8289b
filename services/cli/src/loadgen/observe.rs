//! What the leaderboard says during and after a run: site totals before and after, the
//! watermarks it publishes (for freshness), the wait for it to cover what was accepted, and the
//! reconciliation of every national breakdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use saleboard_domain::Dimension;
use saleboard_proto::v1::admin_service_client::AdminServiceClient;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    BreakdownEntry, GetBreakdownRequest, GetNationalTotalsRequest, GetSiteTotalsRequest,
    ListExchangeRatesRequest, WatchLeaderboardRequest,
};
use tokio::sync::Mutex;

use super::LoadgenArgs;
use super::report::{Figures, Movement, SegmentFigures};
use crate::client;

pub(super) async fn site_totals(
    client: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    sites: &[String],
    event: &str,
) -> anyhow::Result<Figures> {
    let mut out = Figures::new();
    for site in sites {
        let t = client
            .get_site_totals(GetSiteTotalsRequest {
                site_id: site.clone(),
                include_hourly: false,
                event_id: event.to_owned(),
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetSiteTotals", &s))?
            .into_inner();
        for c in t.totals {
            out.insert(
                (site.clone(), c.currency),
                Movement {
                    sales: i64::try_from(c.sale_count)?,
                    gross: c.gross_minor,
                    refunds: i64::try_from(c.refund_count)?,
                    refunded: c.refunded_minor,
                },
            );
        }
    }
    Ok(out)
}

/// Every entry of a national breakdown (all pages), once its own watermark covers `top` (the
/// breakdowns may trail the headline figures by the aggregator's breakdown interval; at most
/// two minutes).
async fn breakdown(
    board: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    event: &str,
    dimension: Dimension,
    top: u64,
) -> anyhow::Result<(String, Vec<BreakdownEntry>, i64)> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    let wait_until = Instant::now() + Duration::from_secs(120);
    loop {
        let b = board
            .get_breakdown(GetBreakdownRequest {
                event_id: event.to_owned(),
                dimension: crate::query::dimension_msg(dimension).into(),
                site_id: String::new(),
                limit: 1_000,
                page_token: page_token.clone(),
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetBreakdown", &s))?
            .into_inner();
        if b.watermark < top {
            if Instant::now() > wait_until {
                anyhow::bail!(
                    "the {dimension} breakdown's watermark stayed at {} below {top} for 2 minutes; is the aggregator running?",
                    b.watermark
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        entries.extend(b.entries);
        if b.next_page_token.is_empty() {
            return Ok((b.reporting_currency, entries, b.total_net_reporting_minor));
        }
        page_token = b.next_page_token;
    }
}

/// Compares every national breakdown of the run's own event with what was ACCEPTED: counts per
/// key, and each key's net converted as the server must (half-even once per (key, currency),
/// with the event's rates).
pub(super) async fn reconcile_breakdowns(
    args: &LoadgenArgs,
    board: &mut LeaderboardServiceClient<client::Authed>,
    event: &str,
    expected: &SegmentFigures,
    top: u64,
) -> anyhow::Result<Vec<String>> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    let rates: BTreeMap<saleboard_domain::Currency, saleboard_domain::Rate> = admin
        .list_exchange_rates(ListExchangeRatesRequest {
            event_id: event.to_owned(),
        })
        .await
        .map_err(|s| client::explain(&args.admin_endpoint, "ListExchangeRates", &s))?
        .into_inner()
        .rates
        .iter()
        .map(|r| {
            Ok((
                saleboard_domain::Currency::parse(&r.currency)?,
                saleboard_domain::Rate::parse(&r.rate)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut out = Vec::new();
    for dimension in Dimension::ALL {
        let (reporting, got, total) =
            breakdown(board, &args.endpoint, event, dimension, top).await?;
        let reporting = saleboard_domain::Currency::parse(&reporting)?;
        // key -> (sales, refunds, net in the reporting currency)
        let mut want: BTreeMap<&str, (i64, i64, i128)> = BTreeMap::new();
        for ((d, key, currency), m) in expected {
            if *d != dimension {
                continue;
            }
            let w = want.entry(key.as_str()).or_default();
            w.0 += m.sales;
            w.1 += m.refunds;
            let currency = saleboard_domain::Currency::parse(currency)?;
            let net = i128::from(m.gross - m.refunded);
            if let Some(rate) = rates.get(&currency) {
                w.2 += saleboard_domain::ranking::convert(net, currency, reporting, rate)
                    .unwrap_or_default();
            } else if currency == reporting {
                w.2 += net;
            }
        }
        let seen: BTreeMap<&str, &BreakdownEntry> =
            got.iter().map(|e| (e.key.as_str(), e)).collect();
        for (key, (sales, refunds, net)) in &want {
            let shown = seen.get(key).map_or((0, 0, 0), |e| {
                (
                    i64::try_from(e.sale_count).unwrap_or(i64::MAX),
                    i64::try_from(e.refund_count).unwrap_or(i64::MAX),
                    i128::from(e.net_reporting_minor),
                )
            });
            if shown != (*sales, *refunds, *net) {
                out.push(format!(
                    "{dimension} {key:?}: the breakdown says {} sales, {} refunds, net {} but {sales} sales, {refunds} refunds, net {net} was ACCEPTED",
                    shown.0, shown.1, shown.2
                ));
            }
        }
        for e in &got {
            if !want.contains_key(e.key.as_str()) {
                out.push(format!(
                    "{dimension} {:?}: in the breakdown, but nothing was ACCEPTED for it",
                    e.key
                ));
            }
        }
        let sum: i128 = got.iter().map(|e| i128::from(e.net_reporting_minor)).sum();
        if sum != i128::from(total) {
            out.push(format!(
                "{dimension}: the entries add up to {sum}, the breakdown's total says {total}"
            ));
        }
    }
    Ok(out)
}

/// Every watermark the leaderboard publishes, and when it was seen (for freshness).
type Watermarks = Arc<Mutex<Vec<(u64, Instant)>>>;

/// Starts recording the leaderboard's watermarks; abort the task to stop.
pub(super) async fn watch_watermarks(
    board: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    event: &str,
) -> anyhow::Result<(Watermarks, tokio::task::JoinHandle<()>)> {
    let watermarks: Watermarks = Arc::default();
    let mut watch = board
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 1,
            min_interval_ms: 50,
            event_id: event.to_owned(),
            baseline_event_id: String::new(),
        })
        .await
        .map_err(|s| client::explain(endpoint, "WatchLeaderboard", &s))?
        .into_inner();
    let seen = watermarks.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(Some(m)) = watch.message().await {
            seen.lock().await.push((m.watermark, Instant::now()));
        }
    });
    Ok((watermarks, watcher))
}

/// Polls until the leaderboard's watermark reaches `top` (at most two minutes).
pub(super) async fn wait_for_watermark(
    board: &mut LeaderboardServiceClient<client::Authed>,
    endpoint: &str,
    top: u64,
    event: &str,
) -> anyhow::Result<()> {
    let wait_until = Instant::now() + Duration::from_secs(120);
    loop {
        let n = board
            .get_national_totals(GetNationalTotalsRequest {
                event_id: event.to_owned(),
                baseline_event_id: String::new(),
            })
            .await
            .map_err(|s| client::explain(endpoint, "GetNationalTotals", &s))?
            .into_inner();
        if n.watermark >= top {
            return Ok(());
        }
        if Instant::now() > wait_until {
            anyhow::bail!(
                "the leaderboard watermark stayed at {} below {top} for 2 minutes; is the aggregator running?",
                n.watermark
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// For each acknowledged batch, how long until a published watermark covered it, sorted (µs).
pub(super) fn freshness(acks: &[(u64, Instant)], marks: &[(u64, Instant)]) -> Vec<u64> {
    let mut fresh_us: Vec<u64> = acks
        .iter()
        .filter_map(|(position, acked)| {
            let i = marks.partition_point(|(w, _)| *w < *position);
            #[allow(clippy::cast_possible_truncation)]
            marks
                .get(i)
                .map(|(_, seen)| seen.saturating_duration_since(*acked).as_micros() as u64)
        })
        .collect();
    fresh_us.sort_unstable();
    fresh_us
}
