//! `saleboard.v1.LeaderboardService`: read-only figures from the board's snapshot (and, for one
//! site's totals and hourly series, one consistent read of the totals tables).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use saleboard_domain::SiteId;
use saleboard_domain::totals::CurrencyTotals;
use saleboard_proto::v1::leaderboard_service_server::LeaderboardService as LeaderboardApi;
use saleboard_proto::v1::{
    CurrencyTotals as CurrencyTotalsMsg, GetLeaderboardRequest, GetNationalTotalsRequest,
    GetSiteTotalsRequest, HourlyTotals as HourlyTotalsMsg, Leaderboard, LeaderboardEntry,
    NationalTotals, SiteTotals, WatchLeaderboardRequest,
};
use saleboard_runtime::status::{from_storage, invalid_field};
use saleboard_storage::Store;
use tonic::{Request, Response, Status};

use crate::admin::timestamp;
use crate::board::Board;
use crate::snapshot::Snapshot;

/// Entries per page when `limit` is 0.
pub const DEFAULT_LIMIT: u32 = 10;
/// Most entries per page.
pub const MAX_LIMIT: u32 = 1_000;
/// Watch interval when `min_interval_ms` is 0.
pub const DEFAULT_INTERVAL_MS: u32 = 250;
/// Shortest watch interval.
pub const MIN_INTERVAL_MS: u32 = 50;

/// The leaderboard gRPC service.
#[derive(Debug, Clone)]
pub struct LeaderboardService {
    board: Arc<Board>,
    store: Arc<dyn Store>,
    watchers: opentelemetry::metrics::UpDownCounter<i64>,
}

/// Counts one open watch stream for as long as it lives.
struct Watching(opentelemetry::metrics::UpDownCounter<i64>);

impl Watching {
    fn start(counter: &opentelemetry::metrics::UpDownCounter<i64>) -> Self {
        counter.add(1, &[]);
        Self(counter.clone())
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}

impl LeaderboardService {
    /// A service reading `board` (and `store` for per-site detail).
    #[must_use]
    pub fn new(board: Arc<Board>, store: Arc<dyn Store>) -> Self {
        let watchers = saleboard_runtime::telemetry::meter()
            .i64_up_down_counter("saleboard.leaderboard.watchers")
            .with_unit("{stream}")
            .with_description("Open WatchLeaderboard streams")
            .build();
        Self {
            board,
            store,
            watchers,
        }
    }
}

fn limit_of(limit: u32) -> Result<usize, Status> {
    match limit {
        0 => Ok(DEFAULT_LIMIT as usize),
        l if l > MAX_LIMIT => Err(invalid_field(
            "limit",
            format!("is {l}; at most {MAX_LIMIT} entries per page"),
        )),
        l => Ok(l as usize),
    }
}

fn totals_msg(currency: &str, t: &CurrencyTotals) -> CurrencyTotalsMsg {
    CurrencyTotalsMsg {
        currency: currency.to_owned(),
        sale_count: t.sale_count,
        gross_minor: t.gross_minor,
        refund_count: t.refund_count,
        refunded_minor: t.refunded_minor,
        net_minor: t.net_minor(),
    }
}

fn no_event() -> Status {
    Status::failed_precondition(
        "no event is configured; the organizer must call AdminService.SetEvent first",
    )
}

/// A page of a snapshot as a message.
fn page(snapshot: &Snapshot, offset: usize, limit: usize) -> Result<Leaderboard, Status> {
    let f = &snapshot.figures;
    let (event_id, reporting) = f.event.as_ref().ok_or_else(no_event)?;
    let end = offset.saturating_add(limit).min(f.entries.len());
    let entries = f.entries.get(offset..end).unwrap_or_default();
    let next_page_token = if end < f.entries.len() {
        format!("{}.{end}", snapshot.generation)
    } else {
        String::new()
    };
    Ok(Leaderboard {
        event_id: event_id.clone(),
        reporting_currency: reporting.code().to_owned(),
        as_of: Some(timestamp(snapshot.as_of)),
        watermark: f.watermark,
        entries: entries
            .iter()
            .map(|e| LeaderboardEntry {
                rank: e.rank,
                site_id: e.site_id.to_string(),
                display_name: e.display_name.clone(),
                net_reporting_minor: e.net_reporting_minor,
                sale_count: e.sale_count,
                refund_count: e.refund_count,
                unconverted_currencies: e
                    .unconverted_currencies
                    .iter()
                    .map(|c| c.code().to_owned())
                    .collect(),
            })
            .collect(),
        national_net_reporting_minor: f.national_net_reporting_minor,
        next_page_token,
    })
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<Leaderboard, Status>> + Send>>;

#[tonic::async_trait]
impl LeaderboardApi for LeaderboardService {
    async fn get_leaderboard(
        &self,
        request: Request<GetLeaderboardRequest>,
    ) -> Result<Response<Leaderboard>, Status> {
        let req = request.into_inner();
        let limit = limit_of(req.limit)?;
        if req.page_token.is_empty() {
            return page(&self.board.current(), 0, limit).map(Response::new);
        }
        let (generation, offset) = req
            .page_token
            .split_once('.')
            .and_then(|(g, o)| Some((g.parse::<u64>().ok()?, o.parse::<usize>().ok()?)))
            .ok_or_else(|| invalid_field("page_token", "is not a token this service issued"))?;
        let snapshot = self.board.by_generation(generation).ok_or_else(|| {
            Status::failed_precondition(
                "page_token expired: its snapshot is no longer kept; start again without page_token",
            )
        })?;
        page(&snapshot, offset, limit).map(Response::new)
    }

    type WatchLeaderboardStream = WatchStream;

    async fn watch_leaderboard(
        &self,
        request: Request<WatchLeaderboardRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let req = request.into_inner();
        let limit = limit_of(req.limit)?;
        let interval_ms = match req.min_interval_ms {
            0 => DEFAULT_INTERVAL_MS,
            ms if ms < MIN_INTERVAL_MS => {
                return Err(invalid_field(
                    "min_interval_ms",
                    format!("is {ms}; at least {MIN_INTERVAL_MS} (0 means {DEFAULT_INTERVAL_MS})"),
                ));
            }
            ms => ms,
        };
        let interval = Duration::from_millis(u64::from(interval_ms));
        if self.board.current().figures.event.is_none() {
            return Err(no_event());
        }
        let snapshots = self.board.subscribe();
        let closing = self.board.closing();
        // The stream only advances when the transport asks for the next message, so a reader
        // that stops reading holds no backlog: when it resumes it gets the latest snapshot.
        let watching = Watching::start(&self.watchers);
        let state = (snapshots, closing, None::<tokio::time::Instant>, false);
        let stream = futures::stream::unfold(
            state,
            move |(mut rx, mut closing, last, done)| async move {
                if done {
                    return None;
                }
                if let Some(last) = last {
                    let closed = tokio::select! {
                        changed = rx.changed() => if changed.is_err() { return None; } else { false },
                        _ = closing.wait_for(|c| *c) => true,
                    };
                    if closed {
                        let status = Status::unavailable(
                            "the leaderboard service is shutting down; reconnect",
                        );
                        return Some((Err(status), (rx, closing, None, true)));
                    }
                    tokio::time::sleep_until(last + interval).await;
                }
                let snapshot = rx.borrow_and_update().clone();
                let item = page(&snapshot, 0, limit);
                let done = item.is_err();
                Some((item, (rx, closing, Some(tokio::time::Instant::now()), done)))
            },
        );
        // The stream owns `watching`: counted out when the stream is dropped.
        let stream = futures::StreamExt::map(stream, move |item| {
            let _ = &watching;
            item
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_site_totals(
        &self,
        request: Request<GetSiteTotalsRequest>,
    ) -> Result<Response<SiteTotals>, Status> {
        let req = request.into_inner();
        let site = SiteId::parse(&req.site_id)
            .map_err(|e| invalid_field("site_id", format!("{:?} {e}", req.site_id)))?;
        let data = self
            .store
            .site_totals(&site, req.include_hourly)
            .await
            .map_err(|e| from_storage(&e))?
            .ok_or_else(|| Status::not_found(format!("site {site:?} is not registered")))?;
        Ok(Response::new(SiteTotals {
            site_id: data.site.site_id.to_string(),
            display_name: data.site.display_name,
            totals: data
                .totals
                .iter()
                .map(|(c, t)| totals_msg(c.code(), t))
                .collect(),
            hourly: data
                .hourly
                .iter()
                .map(|(hour, c, h)| HourlyTotalsMsg {
                    hour_start: Some(timestamp(*hour)),
                    currency: c.code().to_owned(),
                    sale_count: h.sale_count,
                    net_minor: h.net_minor,
                })
                .collect(),
            watermark: data.applied,
        }))
    }

    async fn get_national_totals(
        &self,
        _: Request<GetNationalTotalsRequest>,
    ) -> Result<Response<NationalTotals>, Status> {
        let snapshot = self.board.current();
        let f = &snapshot.figures;
        if f.event.is_none() {
            return Err(no_event());
        }
        Ok(Response::new(NationalTotals {
            totals: f
                .national_totals
                .iter()
                .map(|(c, t)| totals_msg(c.code(), t))
                .collect(),
            net_reporting_minor: f.national_net_reporting_minor,
            site_count: f.site_count,
            watermark: f.watermark,
        }))
    }
}
